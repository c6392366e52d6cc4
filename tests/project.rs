//! The project a session belongs to: which repository its hooks use (the session's project, not
//! wherever the shell moved), which namespace it has in a notes repository, and convosync's own
//! git commands running none of the user's git hooks.

use std::path::Path;

use crate::common::{Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::hook;

/// A git hook that appends its own name to `marker` whenever git runs it.
fn marking_hook(dir: &Path, name: &str, marker: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho {name} >> '{}'\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn stop_json(d: &Device, cwd: &Path, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": cwd, "hook_event_name": "Stop",
        "stop_hook_active": true, "transcript_path": d.dir.join(".git/test-transcript.jsonl")})
    .to_string()
}

fn start_json(cwd: &Path, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": cwd, "hook_event_name": "SessionStart",
        "source": "startup"})
    .to_string()
}

#[test]
fn convosyncs_own_git_runs_no_user_hook() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    let marker = env.path().join("hooks-ran");
    // The user's hooks, both where git looks by default and where `core.hooksPath` points.
    let own = env.path().join("user-hooks");
    for dir in [a.dir.join(".git/hooks"), own.clone()] {
        for name in ["reference-transaction", "pre-push", "post-merge", "post-checkout"] {
            marking_hook(&dir, name, &marker);
        }
    }
    a.git(&["config", "core.hooksPath", own.to_str().unwrap()]);
    // The hooks work: a plain git command of the user's runs them.
    a.git(&["update-ref", "refs/probe", "HEAD"]);
    assert!(marker.exists(), "the hook runs for the user's own git");
    std::fs::remove_file(&marker).unwrap();

    // Another device's note, so that a's fetch brings something and merges it.
    write_draft(&b, "### Current Task\nnote from b\n");
    b.convosync().arg("save-handoff").assert().success();
    let v = hook(&a, "session-start", &start_json(&a.dir, "s1")).expect("notes");
    assert!(v.to_string().contains("note from b"), "{v}");
    // A Stop that commits a draft and pushes it.
    write_draft(&a, "### Current Task\nnote from a\n");
    let v = hook(&a, "stop", &stop_json(&a, &a.dir, "s1")).unwrap();
    assert!(v.to_string().contains("pushed"), "{v}");
    assert!(b.git(&["ls-remote", "origin", "refs/convosync/handoffs"]).len() > 40);
    a.convosync().arg("sync").assert().success();
    // `resume --pull` fetches the branch and fast-forwards it.
    std::fs::write(b.dir.join("new.txt"), "new\n").unwrap();
    b.git(&["add", "new.txt"]);
    b.git(&["commit", "-q", "-m", "new file"]);
    b.git(&["push", "-q", "origin", "HEAD:main"]);
    let out = a.convosync().args(["resume", "--pull"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fast-forwarded 1 commit"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(a.dir.join("new.txt").exists());

    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(ran.is_empty(), "user git hooks ran inside convosync: {ran}");
}
