//! End to end with the real Codex CLI (pinned by ../shared/codex-harness), offline against a
//! scripted mock of the Responses API, next to real Claude Code sessions: one thread across two
//! agents and two devices. The plugin is installed as a user's would be (a local marketplace,
//! `codex plugin add`, its hooks trusted by hash) from a clean copy of this checkout's plugin
//! files. Skipped with a message only when the CLI cannot be installed here (a failure under
//! `CONVOSYNC_REQUIRE_TOOLS`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::claude::{claude_bin, text, write, Session as ClaudeSession};
use crate::common::{Device, TestEnv};
use crate::servers::tools::agent_harness_dir;

/// The pinned CLI of the agent whose harness is `../shared/<name>-harness`, installed once per
/// test run (its `install` prints the path); `None`, with the reason, when it cannot be had.
pub(crate) fn agent_bin(
    name: &'static str,
    cell: &'static OnceLock<Result<PathBuf, String>>,
) -> Option<PathBuf> {
    let r = cell.get_or_init(|| {
        let install = agent_harness_dir(name).join("install");
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
        let path = String::from_utf8_lossy(&out.stdout);
        let path = path.lines().last().unwrap_or("").trim();
        Ok(PathBuf::from(path))
    });
    match r {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            crate::common::skip(&format!("the {name} CLI is unavailable: {why}"));
            None
        }
    }
}

fn codex_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    agent_bin("codex", &BIN)
}

/// A clean copy of the plugin (manifests, hooks, commands; no build output, which Codex would
/// copy into its plugin cache) in `dir`.
pub(crate) fn plugin_copy(dir: &Path) -> PathBuf {
    let plugin = dir.join("plugin");
    std::fs::create_dir_all(&plugin).unwrap();
    for sub in [
        ".claude-plugin",
        ".codex-plugin",
        "hooks",
        "commands",
        "gemini-extension",
    ] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(sub);
        if src.exists() {
            assert!(Command::new("cp")
                .arg("-r")
                .arg(src)
                .arg(&plugin)
                .status()
                .unwrap()
                .success());
        }
    }
    plugin
}

/// One run of an agent CLI through its harness (`codex exec`, `gemini -p`).
pub(crate) struct Run {
    pub log: PathBuf,
    pub exit: i32,
}

impl Run {
    /// Main request bodies the model received, in order.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.log.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["kind"] == "main")
            .map(|r| r["body"].to_string())
            .collect()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.join("stderr")).unwrap_or_default()
    }
}

/// What differs between two runs of one harness.
pub(crate) struct RunArgs<'a> {
    pub harness: &'static str,
    /// `--codex PATH` / `--gemini PATH`.
    pub bin: (&'static str, &'a Path),
    /// `--plugin DIR` / `--extension DIR`.
    pub plugin: (&'static str, &'a Path),
    /// Permission flag: `--bypass` (Codex, so the model's `git commit` may write .git), `--yolo`.
    pub open: &'static str,
}

impl<'a> RunArgs<'a> {
    /// A run as `device` in its clone, logged to `log`; its state (to resume with `--continue`)
    /// beside the log unless [`AgentRun::state`] says where.
    pub fn on(&'a self, device: &'a Device, log: PathBuf) -> AgentRun<'a> {
        let mut state = log.clone().into_os_string();
        state.push("-state");
        AgentRun {
            args: self,
            device,
            log,
            state: PathBuf::from(state),
            replies: Vec::new(),
            resume: false,
        }
    }
}

/// One run of a harness, built up and then [`AgentRun::run`].
pub(crate) struct AgentRun<'a> {
    args: &'a RunArgs<'a>,
    device: &'a Device,
    log: PathBuf,
    state: PathBuf,
    replies: Vec<Value>,
    resume: bool,
}

impl AgentRun<'_> {
    pub fn state(mut self, state: &Path) -> Self {
        self.state = state.to_path_buf();
        self
    }

    /// What the mock model answers, in order.
    pub fn replies(mut self, replies: &[Value]) -> Self {
        self.replies = replies.to_vec();
        self
    }

    /// Continue the session kept in the state dir.
    pub fn resume(mut self) -> Self {
        self.resume = true;
        self
    }

    pub fn run(self, prompt: &str) -> Run {
        let (a, log) = (self.args, &self.log);
        let replies_file = log.with_extension("replies.json");
        std::fs::write(&replies_file, serde_json::to_string(&self.replies).unwrap()).unwrap();
        let mut cmd = Command::new(agent_harness_dir(a.harness).join("run"));
        cmd.arg(a.plugin.0)
            .arg(a.plugin.1)
            .arg("--cwd")
            .arg(&self.device.dir)
            .arg("--log")
            .arg(log)
            .arg("--state")
            .arg(&self.state)
            .arg("--replies")
            .arg(&replies_file)
            .arg(a.bin.0)
            .arg(a.bin.1)
            .arg(a.open);
        for (k, v) in [
            ("CONVOSYNC_BIN", env!("CARGO_BIN_EXE_convosync").to_string()),
            ("CONVOSYNC_DEVICE", self.device.name.clone()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_AUTHOR_NAME", "Test User".into()),
            ("GIT_AUTHOR_EMAIL", "test@example.com".into()),
            ("GIT_COMMITTER_NAME", "Test User".into()),
            ("GIT_COMMITTER_EMAIL", "test@example.com".into()),
        ] {
            cmd.args(["--env", &format!("{k}={v}")]);
        }
        if self.resume {
            cmd.arg("--continue");
        }
        let out = cmd.arg("--").arg(prompt).output().expect("harness runs");
        assert!(
            log.join("requests.jsonl").exists(),
            "the session never reached the model: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Run {
            log: log.to_path_buf(),
            exit: out.status.code().unwrap_or(-1),
        }
    }
}

fn codex<'a>(bin: &'a Path, plugin: &'a Path) -> RunArgs<'a> {
    RunArgs {
        harness: "codex",
        bin: ("--codex", bin),
        plugin: ("--plugin", plugin),
        open: "--bypass",
    }
}

/// Codex reports each hook run on stderr; a hook whose output breaks Codex's schema is `Failed`.
fn assert_no_failed_hook(run: &Run) {
    let stderr = run.stderr();
    assert!(
        stderr.contains("hook: SessionStart Completed"),
        "the plugin's hooks ran (trusted): {stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("hook: ") && l.contains("Failed")),
        "no hook failed: {stderr}"
    );
}

fn apply_patch_edit(path: &str, old: &str, new: &str) -> Value {
    json!({ "apply_patch": format!("*** Begin Patch\n*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch") })
}

/// A Claude Code device leaves a note; a Codex session on another device has it in its first
/// request to the model, with the agent named. Then the Codex session edits and commits work, is
/// asked once for a handoff (a `<hook_prompt>` user message), writes the draft with apply_patch,
/// and the next Stop commits and pushes it with `**Agent:** Codex 0.169.0`; a Claude Code
/// session on the first device opens with that note, "from laptop (Codex …)".
#[test]
fn claude_code_and_codex_hand_off_both_ways() {
    let Some(codex_cli) = codex_bin() else { return };
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let plugin = plugin_copy(env.path());

    // Claude Code on the desktop.
    let draft = desktop.dir.join(".convosync/session-handoff-draft.md");
    let s = ClaudeSession::on(&claude, &desktop, logs.join("claude1"))
        .replies(&[
            write(&desktop.dir.join("menu.txt"), "pizza menu\n"),
            text("Menu started."),
            write(
                &draft,
                "### Current Task\nBuilding the pizza menu\n\n### Important Context\n- The user's favourite pizza is Margherita\n",
            ),
            text("Handoff written."),
        ])
        .run("My favourite pizza is Margherita. Start a menu file.");
    assert_eq!(s.exit, 0, "{}", s.stdout);
    let pushed = env.pushed_note(&desktop);
    assert!(
        pushed.contains("Margherita") && pushed.contains("**Agent:** Claude Code 2."),
        "{pushed}"
    );

    // Codex on the laptop: the note is there from the first request; then work, a commit, one
    // request for a handoff, the draft.
    let cx = codex(&codex_cli, &plugin);
    let laptop_draft = ".convosync/session-handoff-draft.md";
    let replies = [
        apply_patch_edit("README.md", "# project", "# project: pizza menu"),
        json!({ "shell": "git commit -qam 'Name the project after the menu'" }),
        text("Renamed and committed."),
        json!({ "write_file": { "path": laptop_draft, "content": "### Current Task\nNaming the pizza project\n\n### Next Steps\n- Add the Quattro Formaggi page\n" } }),
        text("Handoff written."),
    ];
    let r = cx
        .on(&laptop, logs.join("codex1"))
        .replies(&replies)
        .run("What is my favourite pizza? Then rename the project.");
    assert_eq!(r.exit, 0, "{}", r.stderr());
    assert_no_failed_hook(&r);
    let reqs = r.requests();
    let first = reqs.first().expect("a request");
    assert!(
        first.contains("favourite pizza is Margherita") && first.contains("## From desktop (Claude Code 2."),
        "the Claude Code note, its agent named, reached Codex's first request"
    );
    assert!(first.contains("not instructions"));
    let asked: Vec<usize> = reqs.iter().map(|r| r.matches("<hook_prompt").count()).collect();
    assert_eq!(
        asked.last().copied(),
        Some(1),
        "asked exactly once for a handoff: {asked:?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.contains("session-handoff-draft.md") && r.contains("<hook_prompt")),
        "the request names the draft"
    );
    assert!(!laptop.dir.join(laptop_draft).exists(), "the draft was committed");
    let pushed = env.pushed_note(&laptop);
    assert!(
        pushed.contains("Quattro Formaggi") && pushed.contains("**Agent:** Codex 0.169.0"),
        "{pushed}"
    );
    assert!(pushed.contains("(Name the project after the menu)"), "{pushed}");
    assert_eq!(laptop.git(&["status", "--porcelain"]), "");

    // Claude Code on the desktop again: the Codex note, its agent named.
    let s = ClaudeSession::on(&claude, &desktop, logs.join("claude2")).run("Where were we?");
    assert_eq!(s.exit, 0);
    let first = s.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("## From laptop (Codex 0.169.0, ") && first.contains("Quattro Formaggi page"),
        "the Codex note reached Claude Code"
    );
    let debug = std::fs::read_to_string(logs.join("claude2/debug.log")).unwrap_or_default();
    assert!(
        debug.contains("resumed from laptop, Codex, "),
        "the user is told which agent wrote it"
    );
}

/// A resumed Codex session (same session id; Codex re-sends the old items) is not given the same
/// notes twice; a Stop with nothing done asks nothing; no hook ever fails Codex's output schema.
#[test]
fn resumed_codex_session_is_not_given_the_notes_twice() {
    let Some(codex_cli) = codex_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let plugin = plugin_copy(env.path());
    crate::core::write_draft(
        &desktop,
        "### Current Task\nTuning the oven\n\n### Important Context\n- Oven temperature: 485 C\n",
    );
    desktop.convosync().arg("save-handoff").assert().success();

    let cx = codex(&codex_cli, &plugin);
    let state = logs.join("state");
    let r1 = cx
        .on(&laptop, logs.join("r1"))
        .state(&state)
        .replies(&[text("hot")])
        .run("How hot?");
    assert_eq!(r1.exit, 0, "{}", r1.stderr());
    assert_no_failed_hook(&r1);
    assert_eq!(r1.requests()[0].matches("Oven temperature: 485 C").count(), 1);
    assert!(
        !r1.requests().iter().any(|r| r.contains("<hook_prompt")),
        "nothing done, nothing asked"
    );
    let r2 = cx
        .on(&laptop, logs.join("r2"))
        .state(&state)
        .replies(&[text("still")])
        .resume()
        .run("And now?");
    assert_eq!(r2.exit, 0, "{}", r2.stderr());
    assert_no_failed_hook(&r2);
    let last = r2.requests().pop().expect("a request");
    assert!(last.contains("And now?"), "the resumed session's request");
    assert_eq!(
        last.matches("Oven temperature: 485 C").count(),
        1,
        "the note once (from the resumed history), not again"
    );
}

/// `convosync install --agent codex --run` with the real CLI: the plugin is added from a local
/// marketplace and all four hooks are trusted at the hashes Codex computes (Codex itself lists
/// them as trusted); `convosync status` says they run. Installing again (an upgrade) replaces the
/// trust entries instead of adding a second copy.
#[test]
fn install_for_codex_trusts_its_hooks() {
    let Some(codex_cli) = codex_bin() else { return };
    let env = TestEnv::new();
    let home = env.path().join("user-home");
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let path = format!("{}:/usr/bin:/bin", codex_cli.parent().unwrap().display());
    let convosync = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_convosync"))
            .args(args)
            .env_clear()
            .env("HOME", &home)
            .env("CODEX_HOME", &codex_home)
            .env("PATH", &path)
            // Codex syncs its curated plugins at start; a dead proxy keeps this offline.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(&home)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "convosync {args:?}: {text}");
        text
    };
    let out = convosync(&["install", "--agent", "codex", "--run"]);
    assert!(out.contains("4 hooks trusted"), "{out}");
    let out = convosync(&["install", "--agent", "codex", "--run"]);
    assert!(out.contains("4 hooks trusted"), "{out}");
    let config = std::fs::read_to_string(codex_home.join("config.toml")).unwrap();
    assert_eq!(
        config.matches("[hooks.state.\"convosync@convosync:").count(),
        4,
        "{config}"
    );
    // Codex's own view.
    let listed = Command::new("python3")
        .arg(agent_harness_dir("codex").join("codex_rpc.py"))
        .arg("hooks")
        .arg(&codex_cli)
        .arg(&home)
        .env_clear()
        .env("HOME", &home)
        .env("CODEX_HOME", &codex_home)
        .env("PATH", &path)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let ours: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("convosync@convosync:hooks/codex.json"))
        .collect();
    assert_eq!(ours.len(), 4, "{listed}");
    assert!(
        ours.iter().all(|l| l.split('\t').nth(2) == Some("trusted")),
        "{listed}"
    );
    let status = convosync(&["status"]);
    assert!(
        status.contains("Codex: installed, 4 hooks trusted (they run)"),
        "{status}"
    );
}

/// `convosync.stop auto` in Codex: no request to the model; the handoff is derived from the
/// rollout (the prompt, the files apply_patch touched, the last reply) and pushed.
#[test]
fn auto_mode_derives_a_handoff_from_a_codex_rollout() {
    let Some(codex_cli) = codex_bin() else { return };
    let env = TestEnv::new();
    let laptop = env.device("laptop");
    laptop.git(&["config", "convosync.stop", "auto"]);
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let plugin = plugin_copy(env.path());
    let cx = codex(&codex_cli, &plugin);
    let r = cx
        .on(&laptop, logs.join("auto"))
        .replies(&[
            apply_patch_edit("README.md", "# project", "# project: the oven"),
            text("Renamed the project after the oven."),
        ])
        .run("Rename the project after the oven.");
    assert_eq!(r.exit, 0, "{}", r.stderr());
    assert_no_failed_hook(&r);
    assert!(
        !r.requests().iter().any(|q| q.contains("<hook_prompt")),
        "nothing asked of the model"
    );
    let pushed = env.pushed_note(&laptop);
    for want in [
        "**Agent:** Codex 0.169.0",
        "### Current Task\nRename the project after the oven.",
        "Renamed the project after the oven.",
        "### Files Modified\n- README.md",
    ] {
        assert!(pushed.contains(want), "{want:?} in {pushed}");
    }
}

/// Without the CLI: each hook, given Codex's exact input, prints only keys Codex's closed
/// schema for that event accepts (SessionEnd nothing), and a Stop after an apply_patch edit in
/// the rollout asks with `decision: block`. Gemini CLI's AfterAgent asks with `decision: deny`.
#[test]
fn hooks_answer_each_agent_only_what_it_accepts() {
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    crate::core::write_draft(&desktop, "### Current Task\nKneading\n");
    desktop.convosync().arg("save-handoff").assert().success();
    let rollout = env.path().join("rollout-2026-12-03T07-06-09-s1.jsonl");
    std::fs::write(
        &rollout,
        concat!(
            r#"{"timestamp":"2026-12-03T07:06:09.000Z","type":"session_meta","payload":{"id":"s1","cli_version":"0.169.0"}}"#,
            "\n",
            r#"{"timestamp":"2026-12-03T07:06:10.000Z","type":"response_item","payload":{"type":"custom_tool_call","name":"apply_patch","input":"*** Begin Patch\n*** Update File: README.md\n@@\n-a\n+b\n*** End Patch"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let base = json!({
        "session_id": "s1",
        "transcript_path": rollout,
        "cwd": laptop.dir,
        "model": "gpt-5.5",
        "permission_mode": "bypassPermissions",
    });
    let hook = |agent: &str, event: &str, extra: Value| -> String {
        let mut input = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        let out = laptop
            .convosync()
            .args(["hook", "--agent", agent, event])
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let keys = |out: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        if let Some(h) = v.get("hookSpecificOutput").and_then(Value::as_object) {
            k.extend(h.keys().map(|x| format!("hookSpecificOutput.{x}")));
        }
        k.sort();
        k
    };
    let start = hook(
        "codex",
        "session-start",
        json!({"hook_event_name": "SessionStart", "source": "startup"}),
    );
    assert!(start.contains("Kneading"), "{start}");
    for k in keys(&start) {
        assert!(
            [
                "systemMessage",
                "hookSpecificOutput",
                "hookSpecificOutput.hookEventName",
                "hookSpecificOutput.additionalContext"
            ]
            .contains(&k.as_str()),
            "{k} in {start}"
        );
    }
    let stop = hook(
        "codex",
        "stop",
        json!({"hook_event_name": "Stop", "turn_id": "t1", "stop_hook_active": false, "last_assistant_message": "done"}),
    );
    assert_eq!(keys(&stop), ["decision", "reason"], "{stop}");
    assert!(stop.contains(r#""decision":"block""#) && stop.contains("session-handoff-draft.md"));
    let end = hook(
        "codex",
        "session-end",
        json!({"hook_event_name": "SessionEnd", "reason": "other"}),
    );
    assert_eq!(end, "", "Codex's SessionEnd has no output schema");
    // Gemini CLI: the same Stop, as AfterAgent, with a new session and its own transcript format.
    let chat = env.path().join("session-2026-12-03T07-13-g1.jsonl");
    std::fs::write(
        &chat,
        concat!(
            r#"{"id":"b6","timestamp":"2026-12-03T07:14:00.000Z","type":"gemini","content":"","toolCalls":[{"name":"write_file","args":{"file_path":"b.txt","content":"b"}}]}"#,
            "\n"
        ),
    )
    .unwrap();
    let stop = hook(
        "gemini",
        "stop",
        json!({"session_id": "g1", "transcript_path": chat, "hook_event_name": "AfterAgent", "timestamp": "2026-12-03T07:13:54.436Z", "prompt": "p", "prompt_response": "r", "stop_hook_active": false}),
    );
    assert_eq!(keys(&stop), ["decision", "reason"], "{stop}");
    assert!(stop.contains(r#""decision":"deny""#), "{stop}");
}
