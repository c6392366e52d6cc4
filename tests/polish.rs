//! Command-line polish (issue 14): export formats per file, table headers on a terminal only,
//! `demo -C`, what `wip apply` and `save` say.

use std::process::{Command, Stdio};

use crate::common::{hermetic, Device, TestEnv};
use crate::core::write_draft;

fn ok(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn save_handoff(d: &Device, task: &str) {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    ok(d, &["save-handoff"]);
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run convosync on a pseudo-terminal (`script` from util-linux), as a person at a terminal
/// does; `None` when `script` is missing (the test then skips, or fails under
/// CONVOSYNC_REQUIRE_TOOLS). Returns stdout+stderr (as the terminal shows them) and the exit code.
fn on_terminal(d: &Device, args: &[&str]) -> Option<(String, i32)> {
    if Command::new("script").arg("--version").output().is_err() {
        crate::common::skip("script (util-linux) is not installed");
        return None;
    }
    let bin = assert_cmd::cargo::cargo_bin("convosync");
    let line = std::iter::once(bin.to_str().unwrap())
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    hermetic(&mut cmd, &d.home);
    let out = cmd
        .env("CONVOSYNC_DEVICE", &d.name)
        .env("NO_COLOR", "1")
        .env("PAGER", "cat")
        .current_dir(&d.dir)
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    Some((text, out.status.code().unwrap_or(-1)))
}

#[test]
fn export_split_writes_each_handoff_in_the_chosen_format() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    save_handoff(&a, "first from a");
    save_handoff(&b, "first from b");
    for (format, check) in [("json", "json"), ("html", "html"), ("md", "md")] {
        let dir = env.path().join(format!("out-{format}"));
        let said = ok(
            &b,
            &[
                "export",
                "--split",
                "--format",
                format,
                "--output",
                dir.to_str().unwrap(),
            ],
        );
        assert!(said.contains("wrote 2 handoff(s)"), "{said}");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        let mut tasks = String::new();
        for f in &files {
            assert_eq!(f.extension().and_then(|e| e.to_str()), Some(check), "{f:?}");
            let text = std::fs::read_to_string(f).unwrap();
            match format {
                "json" => {
                    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
                    assert!(v.is_object(), "{text}");
                    assert!(v["device"] == "a" || v["device"] == "b", "{text}");
                }
                "html" => assert!(
                    text.starts_with("<!doctype html>") && text.contains("</html>"),
                    "{text}"
                ),
                _ => assert!(text.contains("## Handoff from"), "{text}"),
            }
            tasks.push_str(&text);
        }
        assert!(
            tasks.contains("first from a") && tasks.contains("first from b"),
            "{format}: {tasks}"
        );
    }
    // The format is a closed set.
    let out = b
        .convosync()
        .args(["export", "--format", "pdf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values: md, json, html"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tables_have_a_header_on_a_terminal_and_not_in_a_pipe() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    save_handoff(&a, "table work");
    save_handoff(&b, "more table work");
    std::fs::write(a.dir.join("README.md"), "# project\nchanged\n").unwrap();
    ok(&a, &["wip", "save", "--push"]);
    ok(&b, &["sync"]);
    for (args, header, record) in [
        (&["history"][..], "ID        DEVICE", "table work"),
        (&["devices"][..], "DEVICE               LAST SEEN", "handoff"),
        (&["wip", "list"][..], "DEVICE", "file(s)"),
    ] {
        let piped = ok(&b, args);
        let first = piped.lines().next().unwrap_or_default();
        assert!(
            first.contains(record) && !piped.contains(header),
            "{args:?} piped: one record per line, no header:\n{piped}"
        );
        let Some((shown, code)) = on_terminal(&b, args) else {
            return;
        };
        assert_eq!(code, 0, "{shown}");
        let lines: Vec<&str> = shown.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            lines[0].starts_with(header),
            "{args:?} on a terminal starts with a header:\n{shown}"
        );
        assert_eq!(
            lines.len(),
            piped.lines().count() + 1,
            "{args:?}: the header and the same records:\n{shown}\n---\n{piped}"
        );
    }
}

#[test]
fn demo_with_dash_c_builds_its_repositories_in_that_directory() {
    let env = TestEnv::new();
    let a = env.device("a");
    let place = env.path().join("demo-here");
    std::fs::create_dir(&place).unwrap();
    let out = a
        .convosync()
        .args(["-C", place.to_str().unwrap(), "demo", "--keep"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Margherita"), "{text}");
    let kept: Vec<_> = std::fs::read_dir(&place)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].join("laptop/.git").is_dir() && kept[0].join("remote.git").is_dir());
    assert!(
        text.contains(&format!("Kept the demo repositories in {}", kept[0].display())),
        "{text}"
    );
    // Without --keep nothing stays behind in DIR.
    std::fs::remove_dir_all(&kept[0]).unwrap();
    a.convosync()
        .args(["-C", place.to_str().unwrap(), "demo"])
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(&place).unwrap().count(), 0);
    // A DIR that does not exist is an error that names it, as with git -C.
    let missing = env.path().join("no-such-dir");
    let out = a
        .convosync()
        .args(["-C", missing.to_str().unwrap(), "demo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-dir") && err.contains("not a directory"),
        "{err}"
    );
    assert!(!missing.exists());
}

#[test]
fn wip_apply_says_added_updated_and_deleted() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("keep.txt"), "one\n").unwrap();
    std::fs::write(a.dir.join("gone.txt"), "bye\n").unwrap();
    a.git(&["add", "."]);
    a.git(&["commit", "-q", "-m", "files"]);
    a.git(&["push", "-q"]);
    let b = env.device("b");
    std::fs::write(a.dir.join("keep.txt"), "one, edited\n").unwrap();
    std::fs::remove_file(a.dir.join("gone.txt")).unwrap();
    std::fs::create_dir_all(a.dir.join("src")).unwrap();
    std::fs::write(a.dir.join("src/new.rs"), "fn new() {}\n").unwrap();
    ok(&a, &["wip", "save", "--push"]);
    let out = ok(&b, &["wip", "apply", "a"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["added src/new.rs", "deleted gone.txt", "updated keep.txt"],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("src/new.rs")).unwrap(),
        "fn new() {}\n"
    );
}

#[test]
fn save_without_a_draft_at_a_terminal_says_what_to_do() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("code.rs"), "fn main() {}\n").unwrap();
    // Called by Claude (no terminal): the instructions for writing the draft, exit code 3.
    let out = a.convosync().args(["save", "work"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("### Current Task") && text.contains("session-handoff-draft.md"),
        "{text}"
    );
    // A person at a terminal: what to do, not the template meant for Claude.
    let Some((shown, code)) = on_terminal(&a, &["save", "work"]) else {
        return;
    };
    assert_eq!(code, 3, "{shown}");
    assert!(
        shown.contains("No handoff draft")
            && shown.contains("/convosync:save")
            && shown.contains("--skip-handoff"),
        "{shown}"
    );
    assert!(!shown.contains("### Current Task"), "{shown}");
    assert_eq!(
        a.git(&["log", "--format=%s"]),
        "initial commit",
        "nothing committed"
    );
}

#[test]
fn save_says_each_push_once_and_names_it() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("code.rs"), "fn main() {}\n").unwrap();
    std::fs::write(a.dir.join("README.md"), "# project\nedited\n").unwrap();
    a.git(&["add", "code.rs"]);
    write_draft(&a, "### Current Task\npush once\n");
    a.git(&["config", "convosync.wipPush", "true"]);
    let out = ok(&a, &["save", "--wip", "add code"]);
    for line in [
        "✓ pushed the snapshot to origin",
        "✓ pushed main to origin",
        "✓ pushed the handoff to origin",
    ] {
        assert_eq!(out.matches(line).count(), 1, "{line}:\n{out}");
    }
    assert_eq!(out.matches("pushed").count(), 3, "{out}");
    assert!(a.git(&["show", "origin/main:code.rs"]).contains("fn main"));
}

#[test]
fn an_empty_draft_is_reported_as_empty() {
    let env = TestEnv::new();
    let a = env.device("a");
    let template = ok(&a, &["template", "show"]);
    let copied: String = template
        .lines()
        .filter(|l| !l.starts_with("<!--"))
        .map(|l| format!("{l}\n"))
        .collect();
    for draft in [
        "",
        "  \n\n\t\n",
        "### Current Task\n\n### Next Steps\n   \n",
        copied.as_str(),
    ] {
        write_draft(&a, draft);
        for args in [&["save", "msg"][..], &["save-handoff"][..]] {
            let out = a.convosync().args(args).output().unwrap();
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("is empty") && !err.contains("incomplete") && !err.contains("no `### `"),
                "{draft:?} {args:?}: {err}"
            );
            assert!(crate::core::draft_exists(&a), "the draft is kept");
        }
    }
    // A draft with something to say is not empty.
    write_draft(&a, "### Current Task\n#42 is the bug we chase\n");
    ok(&a, &["save-handoff"]);
}
