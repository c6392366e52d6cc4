//! End to end with the real Claude Code CLI (pinned by ../shared/claude-harness), offline against
//! a scripted mock of the model API: the plugin as a user runs it. Skipped with a message only
//! when the CLI cannot be installed here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{Device, TestEnv};

fn harness_dir() -> PathBuf {
    std::env::var_os("CLAUDE_HARNESS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/claude-harness"))
}

/// The pinned Claude Code binary, installed once per test run; `None` (with the reason printed)
/// when it cannot be had.
pub(crate) fn claude_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BIN.get_or_init(|| {
        let install = harness_dir().join("install");
        if !install.exists() {
            return Err(format!("no harness at {}", install.display()));
        }
        let out = Command::new(&install)
            .arg("--quiet")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match r {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            crate::common::skip(&format!("Claude Code CLI unavailable: {why}"));
            None
        }
    }
}

/// One `claude -p` run through the harness.
pub(crate) struct Session {
    pub log: PathBuf,
    pub exit: i32,
    pub stdout: String,
}

/// A `claude -p` run being set up: this checkout as the plugin, the built binary, a device, and
/// the model's scripted replies ("ok" unless [`Run::replies`] says otherwise). Made by
/// [`Session::on`] or [`Session::at`], started by [`Run::run`].
pub(crate) struct Run<'a> {
    claude: &'a Path,
    cwd: PathBuf,
    device: String,
    log: PathBuf,
    replies: Vec<Value>,
    env: Vec<(String, String)>,
    resume: Option<PathBuf>,
}

impl Run<'_> {
    /// What the model answers, in order.
    pub fn replies(mut self, replies: &[Value]) -> Self {
        self.replies = replies.to_vec();
        self
    }

    /// Environment for the session and its hooks, on top of the device's.
    pub fn env(mut self, env: &[(&str, String)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self
    }

    /// Continue the session whose harness state is `state` (`claude -p --continue`).
    pub fn resume(mut self, state: &Path) -> Self {
        self.resume = Some(state.to_path_buf());
        self
    }

    /// Run the session on `prompt`; it must reach the model.
    pub fn run(self, prompt: &str) -> Session {
        let log = self.log;
        let replies_file = log.with_extension("replies.json");
        std::fs::write(&replies_file, serde_json::to_string(&self.replies).unwrap()).unwrap();
        let mut cmd = Command::new(harness_dir().join("run"));
        cmd.arg("--plugin-dir")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg("--cwd")
            .arg(&self.cwd)
            .arg("--log")
            .arg(&log)
            .arg("--replies")
            .arg(&replies_file)
            .arg("--claude")
            .arg(self.claude)
            .arg("--bypass")
            .args([
                "--env",
                &format!("CONVOSYNC_BIN={}", env!("CARGO_BIN_EXE_convosync")),
            ])
            .args(["--env", &format!("CONVOSYNC_DEVICE={}", self.device)])
            .args(["--env", "GIT_CONFIG_NOSYSTEM=1"]);
        for (k, v) in &self.env {
            cmd.args(["--env", &format!("{k}={v}")]);
        }
        if let Some(state) = &self.resume {
            cmd.arg("--state").arg(state).arg("--continue");
        }
        let out = cmd.arg("--").arg(prompt).output().expect("harness runs");
        assert!(
            log.join("requests.jsonl").exists(),
            "the session never reached the model: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Session {
            stdout: std::fs::read_to_string(log.join("stdout")).unwrap_or_default(),
            log,
            exit: out.status.code().unwrap_or(-1),
        }
    }
}

impl Session {
    /// A session in `d`'s clone as device `d`, its harness log in `log`.
    pub fn on<'a>(claude: &'a Path, d: &Device, log: PathBuf) -> Run<'a> {
        Session::at(claude, &d.dir, &d.name, log)
    }

    /// A session in `cwd` (a clone or not) as `device`, its harness log in `log`.
    pub fn at<'a>(claude: &'a Path, cwd: &Path, device: &str, log: PathBuf) -> Run<'a> {
        Run {
            claude,
            cwd: cwd.to_path_buf(),
            device: device.to_string(),
            log,
            replies: vec![text("ok")],
            env: Vec::new(),
            resume: None,
        }
    }

    /// Request bodies the model received (main requests, in order).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.log.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["kind"] == "main")
            .map(|r| r["body"].to_string())
            .collect()
    }
}

pub(crate) fn text(t: &str) -> Value {
    serde_json::json!({ "text": t })
}

pub(crate) fn write(path: &Path, content: &str) -> Value {
    serde_json::json!({ "tool": "Write", "input": { "file_path": path, "content": content } })
}

#[test]
fn plugin_validates_with_the_real_cli() {
    let Some(claude) = claude_bin() else { return };
    // `--strict`: warnings (a missing marketplace description, icon, unknown fields) fail too.
    let out = Command::new(harness_dir().join("validate"))
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg("--strict")
        .env("CLAUDE_BIN", &claude)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Validation passed"), "{report}");
}

/// The pizza test: session 1 on the desktop hears the user's favourite pizza, the Stop hook asks
/// for a handoff, the model writes it, the next Stop commits and pushes it; session 2 on the
/// laptop opens and its very first request to the model already knows.
#[test]
fn pizza_test_end_to_end() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let draft = desktop.dir.join(".convosync/session-handoff-draft.md");
    let replies = [
        write(&desktop.dir.join("src/menu.txt"), "pizza menu\n"),
        text("Noted: your favourite pizza is Margherita. I created src/menu.txt."),
        write(
            &draft,
            "### Current Task\nBuilding the pizza menu\n\n### Important Context\n- The user's favourite pizza is Margherita\n",
        ),
        text("Handoff written."),
    ];
    let s1 = Session::on(&claude, &desktop, logs.join("s1"))
        .replies(&replies)
        .run("My favourite pizza is Margherita. Start a menu file.");
    assert_eq!(s1.exit, 0, "{}", s1.stdout);
    let asked = s1
        .requests()
        .last()
        .map(|r| r.matches("Stop hook additional context").count())
        .unwrap_or(0);
    assert_eq!(asked, 1, "the Stop hook asked exactly once");
    assert!(!draft.exists(), "the second Stop committed the draft");
    let remote_file = env.pushed_note(&desktop);
    assert!(
        remote_file.contains("Margherita"),
        "pushed to the remote: {remote_file}"
    );

    let s2 = Session::on(&claude, &laptop, logs.join("s2"))
        .replies(&[text("Margherita!")])
        .run("What is my favourite pizza?");
    assert_eq!(s2.exit, 0);
    let first = s2.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("favourite pizza is Margherita"),
        "the first request carries the handoff"
    );
    assert!(first.contains("not instructions"));
    assert_eq!(
        laptop.git(&["status", "--porcelain"]),
        "",
        "the laptop's worktree is untouched"
    );
}

#[test]
fn sessions_run_normally_without_repo_remote_or_binary() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Not a repository.
    let plain = env.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let s = Session::at(&claude, &plain, "x", logs.join("plain"))
        .replies(&[text("hello from the model")])
        .run("hi");
    assert_eq!(s.exit, 0);
    assert!(s.stdout.contains("hello from the model"));
    // A repository without a remote, with a draft to commit (written in the session: a draft
    // from before it is not its handoff).
    let a = env.device("a");
    a.git(&["remote", "remove", "origin"]);
    let draft = a.dir.join(".convosync/session-handoff-draft.md");
    let s = Session::on(&claude, &a, logs.join("noremote"))
        .replies(&[write(&draft, "### Current Task\nlocal only\n"), text("fine")])
        .run("hi");
    assert_eq!(s.exit, 0);
    assert!(s.stdout.contains("fine"));
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/a.md"])
        .contains("local only"));
    // No binary anywhere (a copy of the plugin without a build, nothing on PATH): the shim tells
    // the user once how to install it, and the sessions go on.
    let plugin = env.path().join("plugin-copy");
    std::fs::create_dir_all(&plugin).unwrap();
    for dir in [".claude-plugin", "hooks", "commands"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        assert!(Command::new("cp")
            .arg("-r")
            .arg(src)
            .arg(&plugin)
            .status()
            .unwrap()
            .success());
    }
    let b = env.device("b");
    let state = logs.join("shared-state");
    let mut hints = Vec::new();
    for name in ["nobin1", "nobin2"] {
        let log = logs.join(name);
        let out = Command::new(harness_dir().join("run"))
            .arg("--plugin-dir")
            .arg(&plugin)
            .arg("--cwd")
            .arg(&b.dir)
            .arg("--log")
            .arg(&log)
            .arg("--state")
            .arg(&state)
            .arg("--claude")
            .arg(&claude)
            .args([
                "--env",
                "CONVOSYNC_BIN=/nonexistent/convosync",
                "--env",
                "PATH=/usr/bin:/bin",
            ])
            .args(["--", "hi"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(log.join("stdout")).unwrap().trim(),
            "OK",
            "the session answered"
        );
        let debug = std::fs::read_to_string(log.join("debug.log")).unwrap_or_default();
        hints.push(debug.contains("convosync: binary not found; install it with Rust"));
    }
    assert_eq!(hints, [true, false], "the install hint is shown once");
}

#[test]
fn stop_never_blocks_more_than_once_per_turn() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let a = env.device("a");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // The model keeps editing and never writes the draft.
    let replies = [
        write(&a.dir.join("one.txt"), "1"),
        text("done one"),
        write(&a.dir.join("two.txt"), "2"),
        text("done two"),
    ];
    let s = Session::on(&claude, &a, logs.join("s"))
        .replies(&replies)
        .run("make files");
    assert_eq!(s.exit, 0);
    let asked = s
        .requests()
        .last()
        .map(|r| r.matches("Stop hook additional context").count())
        .unwrap_or(0);
    assert_eq!(
        asked, 1,
        "one request for a handoff, then the session ends normally"
    );
}

/// The shim as Claude runs it with the Bash tool, arguments quoted one by one.
fn shim_call(args: &[&str]) -> Value {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let command = format!(
        r#""{}/hooks/convosync-run" {}"#,
        env!("CARGO_MANIFEST_DIR"),
        quoted.join(" ")
    );
    serde_json::json!({"tool": "Bash", "input": {"command": command, "description": "run convosync"}})
}

/// Slash commands hand their arguments to Claude verbatim, and Claude runs the CLI with them.
#[test]
fn slash_commands_run_the_cli_with_arguments() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    crate::core::write_draft(
        &desktop,
        "### Current Task\nSlash commands\n\n### Important Context\n- favourite pizza: Margherita\n",
    );
    desktop.convosync().arg("save-handoff").assert().success();
    let s = Session::on(&claude, &laptop, logs.join("resume"))
        .replies(&[shim_call(&["resume"]), text("ok")])
        .run("/convosync:resume");
    assert_eq!(s.exit, 0);
    let reqs = s.requests();
    assert!(reqs[0].contains("hooks/convosync-run resume"), "the instructions");
    assert!(
        reqs.get(1)
            .is_some_and(|r| r.contains("convosync: 1 handoff(s) from other devices (you are laptop)")),
        "the command's output reached Claude"
    );
    let s = Session::on(&claude, &laptop, logs.join("history"))
        .replies(&[
            shim_call(&["history", "--device", "desktop", "--json"]),
            text("ok"),
        ])
        .run("/convosync:history --device desktop --json");
    let reqs = s.requests();
    assert!(
        reqs[0].contains("<arguments>\\n--device desktop --json\\n</arguments>"),
        "arguments passed to Claude verbatim"
    );
    let result = reqs.get(1).expect("the tool result");
    assert!(
        result.contains("\\\"device\\\": \\\"desktop\\\"") && result.contains("Slash commands"),
        "arguments passed through"
    );
}

/// Arguments with shell syntax never run anything: not in a `!` line of any command, even with
/// permission checks bypassed.
#[test]
fn slash_command_arguments_never_reach_a_shell() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let a = env.device("a");
    let logs = env.path().join("logs");
    let marks = env.path().join("marks");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&marks).unwrap();
    let commands = Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
    let mut names: Vec<String> = std::fs::read_dir(&commands)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".md")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    for name in &names {
        let m = marks.display();
        let args = format!(
            r#"foo & touch {m}/amp-{name}; touch {m}/semi-{name} "it's" $(touch {m}/subst-{name}) `touch {m}/tick-{name}`"#
        );
        let s = Session::on(&claude, &a, logs.join(name)).run(&format!("/convosync:{name} {args}"));
        assert_eq!(s.exit, 0, "/convosync:{name}: {}", s.stdout);
        let first = s.requests().into_iter().next().unwrap_or_default();
        assert!(
            first.contains(&format!("amp-{name}")),
            "/convosync:{name}: the arguments reached Claude as text"
        );
    }
    let ran: Vec<_> = std::fs::read_dir(&marks)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(ran.is_empty(), "shell syntax in arguments ran: {ran:?}");
    // And no command pastes them into a shell line at all.
    for name in &names {
        let body = std::fs::read_to_string(commands.join(format!("{name}.md"))).unwrap();
        for line in body.lines().filter(|l| l.trim_start().starts_with("!`")) {
            assert!(
                !line.contains("$ARGUMENTS") && !line.contains("$1"),
                "{name}: {line}"
            );
        }
    }
}

/// A command that fails still hands its message to Claude (the `!` line itself succeeds), so the
/// command's instructions for failures can run.
#[test]
fn a_failing_slash_command_still_reaches_claude() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let a = env.device("a");
    a.git(&["remote", "remove", "origin"]);
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let s = Session::on(&claude, &a, logs.join("sync"))
        .replies(&[text("no remote")])
        .run("/convosync:sync");
    assert_eq!(s.exit, 0);
    let first = s
        .requests()
        .into_iter()
        .next()
        .expect("the command reached the model");
    assert!(
        first.contains("has no remote named origin"),
        "the error is in the prompt"
    );
}

/// `/convosync:save "message"`: Claude runs the CLI through the plugin's shim with the message as
/// one argument; the code and the handoff are committed and pushed.
#[test]
fn save_slash_command_commits_code_and_handoff() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let a = env.device("a");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(a.dir.join("menu.txt"), "margherita\n").unwrap();
    std::fs::write(a.dir.join(".env"), "TOKEN=abc123abc123\n").unwrap();
    crate::core::write_draft(&a, "### Current Task\nMenu\n");
    let message = r#"add the menu — "quoted" & it's fine"#;
    let shell_quoted = format!("'{}'", message.replace('\'', r"'\''"));
    let command = format!(
        r#""{}/hooks/convosync-run" save -- {shell_quoted}"#,
        env!("CARGO_MANIFEST_DIR")
    );
    let replies = [
        serde_json::json!({"tool": "Bash", "input": {"command": command, "description": "save the session"}}),
        text("Saved."),
    ];
    let prompt = format!("/convosync:save {message}");
    let identity = [
        ("GIT_AUTHOR_NAME", "Test User".to_string()),
        ("GIT_AUTHOR_EMAIL", "test@example.com".to_string()),
        ("GIT_COMMITTER_NAME", "Test User".to_string()),
        ("GIT_COMMITTER_EMAIL", "test@example.com".to_string()),
    ];
    let s = Session::on(&claude, &a, logs.join("save"))
        .replies(&replies)
        .env(&identity)
        .run(&prompt);
    assert_eq!(s.exit, 0);
    let reqs = s.requests();
    assert!(reqs.len() >= 2, "Claude ran the command");
    let result = &reqs[1];
    assert!(
        result.contains("committed"),
        "tool result: {}",
        &result[result.len().saturating_sub(1500)..]
    );
    let first = s.requests().into_iter().next().unwrap();
    assert!(
        first.contains("&amp;") || first.contains("& it"),
        "the message reached Claude verbatim"
    );
    assert_eq!(a.git(&["log", "-1", "--format=%s"]), message);
    let files = a.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(files.contains("menu.txt") && !files.contains(".env"), "{files}");
    let remote = crate::common::git(&env.remote(), &a.home, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(remote, message);
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/a.md"])
        .contains("Menu"));
}

/// The two-identity pizza test: one person, two machines, two git emails (work and home), the
/// same name spelled differently. The home machine's first request carries the work machine's
/// note in full, and the user is told their notes were loaded. A real teammate still gets a
/// one-line entry.
#[test]
fn two_identity_pizza_test() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let work = env.device("work");
    let home = env.device("home");
    let grace = env.device("grace");
    for (d, name, email) in [
        (&work, "Ada Lovelace", "ada@work.example"),
        (&home, "ada lovelace", "ada@home.example"),
        (&grace, "Grace Hopper", "grace@navy.example"),
    ] {
        d.git(&["config", "user.name", name]);
        d.git(&["config", "user.email", email]);
    }
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let draft = work.dir.join(".convosync/session-handoff-draft.md");
    let s = Session::on(&claude, &work, logs.join("work"))
        .replies(&[
            write(
                &draft,
                "### Current Task\nPlanning the office party\n\n### Important Context\n- The user's favourite pizza is Quattro Formaggi\n",
            ),
            text("Noted, and the handoff is written."),
        ])
        .run("My favourite pizza is Quattro Formaggi. Write a handoff.");
    assert_eq!(s.exit, 0, "{}", s.stdout);
    let pushed = env.pushed_note(&work);
    assert!(
        pushed.contains("Quattro Formaggi") && pushed.contains("**Author:** Ada Lovelace <ada@work.example>"),
        "{pushed}"
    );

    let s = Session::on(&claude, &home, logs.join("home"))
        .replies(&[text("Quattro Formaggi!")])
        .run("What is my favourite pizza?");
    assert_eq!(s.exit, 0);
    let first = s.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("## From work") && first.contains("favourite pizza is Quattro Formaggi"),
        "the full note, not a teammate's line"
    );
    assert!(!first.contains("# Teammates"), "no teammates here");
    let debug = std::fs::read_to_string(logs.join("home/debug.log")).unwrap_or_default();
    assert!(
        debug.contains("convosync: resumed from work")
            || debug.contains("convosync: newer notes: resumed from work"),
        "the user is told their notes were loaded"
    );

    let s = Session::on(&claude, &grace, logs.join("grace")).run("hello");
    assert_eq!(s.exit, 0);
    let first = s.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("- Ada Lovelace (work, "),
        "a teammate's one-line entry"
    );
    assert!(
        !first.contains("Quattro Formaggi"),
        "not the teammate's full note"
    );
    let debug = std::fs::read_to_string(logs.join("grace/debug.log")).unwrap_or_default();
    assert!(
        debug.contains("teammates' notes loaded: Ada Lovelace (work)") && !debug.contains("resumed from"),
        "the message says whose notes were loaded"
    );
}

#[path = "claude_install.rs"]
mod install;
/// The interactive TUI under tmux, through the harness's `tui` script.
struct Tui {
    log: PathBuf,
}

impl Tui {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(harness_dir().join("tui"))
            .args(args)
            .output()
            .expect("tui runs")
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.cmd(&["stop", &self.log.display().to_string()]);
    }
}

/// A routine request for a handoff, as the user sees it in the TUI: shown as the hook's words,
/// never as a problem or an error, while Claude writes the draft and the next Stop commits it.
#[test]
fn routine_stop_request_is_not_an_error_in_the_tui() {
    let Some(claude) = claude_bin() else { return };
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is missing, the TUI cannot be driven");
        return;
    }
    let env = TestEnv::new();
    let a = env.device("desktop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let draft = a.dir.join(".convosync/session-handoff-draft.md");
    let replies = [
        write(&a.dir.join("menu.txt"), "pizza menu\n"),
        text("Created menu.txt."),
        write(&draft, "### Current Task\nPizza menu from the TUI\n"),
        text("HANDOFF-WRITTEN"),
    ];
    let replies_file = logs.join("replies.json");
    std::fs::write(&replies_file, serde_json::to_string(&replies).unwrap()).unwrap();
    let log = logs.join("tui");
    let out = Command::new(harness_dir().join("tui"))
        .arg("start")
        .arg("--plugin-dir")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg("--cwd")
        .arg(&a.dir)
        .arg("--log")
        .arg(&log)
        .arg("--replies")
        .arg(&replies_file)
        .arg("--claude")
        .arg(&claude)
        .args([
            "--env",
            &format!("CONVOSYNC_BIN={}", env!("CARGO_BIN_EXE_convosync")),
        ])
        .args(["--env", "CONVOSYNC_DEVICE=desktop"])
        .args(["--env", "GIT_CONFIG_NOSYSTEM=1"])
        .args(["--env", &format!("HOME={}", a.home.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the TUI did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tui = Tui { log };
    let l = tui.log.display().to_string();
    assert!(tui
        .cmd(&["type", &l, "Start a pizza menu file."])
        .status
        .success());
    let waited = tui.cmd(&["wait", &l, "HANDOFF-WRITTEN", "90"]);
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let _ = tui.cmd(&["idle", &l, "30"]);
    let screen = String::from_utf8_lossy(&tui.cmd(&["screen", &l]).stdout).into_owned();
    assert!(
        screen.contains("Stop hook says: convosync:"),
        "the request is shown as the hook's words: {screen}"
    );
    for bad in [
        "reported a problem",
        "blocking error",
        "stop hook problem",
        "Stop hook error",
    ] {
        assert!(
            !screen.to_lowercase().contains(&bad.to_lowercase()),
            "the user is shown {bad:?}: {screen}"
        );
    }
    drop(tui);
    assert!(!draft.exists(), "the draft was committed");
    let committed = a.git(&["show", "refs/convosync/handoffs:devices/desktop.md"]);
    assert!(committed.contains("Pizza menu from the TUI"), "{committed}");
}

/// A remote that answers slowly (3 s, past the 2 s network timeout): the session starts without
/// waiting, the first request lacks the note another device pushed (the fetch was still under
/// way), and the note reaches the model with the next prompt of the same session, exactly once.
#[test]
fn slow_remote_note_reaches_the_model_with_the_next_prompt_once() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    crate::core::write_draft(&a, "### Current Task\nLate pizza: Diavola\n");
    a.convosync().arg("save-handoff").assert().success();
    let ssh = env.path().join("slow-ssh");
    crate::common::script(
        &ssh,
        "#!/bin/sh\nsleep 3\nfor last; do :; done\nexec sh -c \"$last\"\n",
    );
    b.git(&[
        "remote",
        "set-url",
        "origin",
        &format!("ssh://slow{}", env.remote().display()),
    ]);
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let net = [
        ("GIT_SSH_COMMAND", ssh.display().to_string()),
        ("GIT_SSH_VARIANT", "simple".to_string()),
    ];
    let s = Session::on(&claude, &b, logs.join("one")).env(&net).run("hello");
    assert_eq!(s.exit, 0, "{}", s.stdout);
    let first = s.requests().concat();
    assert!(
        !first.contains("Late pizza: Diavola"),
        "the fetch could not have finished"
    );
    // The detached fetch outlives the session and brings the note.
    let arrived = || {
        crate::common::git_output(&b.dir, &b.home, &["show", "refs/convosync/handoffs:devices/a.md"])
            .status
            .success()
    };
    for _ in 0..300 {
        if arrived() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(arrived(), "the background fetch delivered the note");
    let s2 = Session::on(&claude, &b, logs.join("two"))
        .env(&net)
        .resume(&logs.join("one/state"))
        .run("and now?");
    assert_eq!(s2.exit, 0, "{}", s2.stdout);
    let reqs = s2.requests();
    let last = reqs.last().expect("a request");
    assert_eq!(
        last.matches("Late pizza: Diavola").count(),
        1,
        "the note reaches the model once: {last}"
    );
}
