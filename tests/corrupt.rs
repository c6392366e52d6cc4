//! A damaged object store, as a failing disk or an interrupted copy leaves it: a loose object of
//! the handoff ref gone. Commands fail with one line that names the ref and the object; hooks
//! still exit 0 with nothing on stdout but their JSON.

use crate::common::{fails_clearly, git_output, hook_is_quiet_or_json, Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::hook;

const REF: &str = "refs/convosync/handoffs";

/// Three handoffs saved on `a` without pushing: each one commit, each object loose.
fn three_handoffs(a: &Device) {
    for (i, when) in [
        "2026-11-20T09:00:00Z",
        "2026-11-20T10:00:00Z",
        "2026-11-20T11:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        write_draft(a, &format!("### Current Task\ntask {i}\n"));
        a.convosync()
            .env("CONVOSYNC_NOW", when)
            .args(["save-handoff", "--no-push"])
            .assert()
            .success();
    }
}

/// Delete the loose object `id` (it must be loose: the test would prove nothing otherwise).
fn delete_object(d: &Device, id: &str) {
    let path = d.dir.join(".git/objects").join(&id[..2]).join(&id[2..]);
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{} is not a loose object: {e}", path.display()));
    let out = git_output(&d.dir, &d.home, &["cat-file", "-e", id]);
    assert!(!out.status.success(), "{id} is gone");
}

/// A command's failure: its stderr, one line, after a non-zero exit with nothing on stdout.
fn failure(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} failed: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// The hooks of a session run as Claude Code runs them: exit 0, stdout empty or one JSON object.
fn hooks_still_answer(d: &Device) -> Option<serde_json::Value> {
    let start = serde_json::json!({"session_id": "s", "cwd": d.dir, "hook_event_name": "SessionStart", "source": "startup"});
    let v = hook(d, "session-start", &start.to_string());
    let stop = serde_json::json!({"session_id": "s", "cwd": d.dir, "hook_event_name": "Stop", "stop_hook_active": false, "transcript_path": d.dir.join(".git/none.jsonl")});
    hook(d, "stop", &stop.to_string());
    v
}

#[test]
fn history_names_the_ref_and_the_missing_commit() {
    let env = TestEnv::new();
    let a = env.device("a");
    three_handoffs(&a);
    let tip = a.git(&["rev-parse", REF]);
    let middle = a.git(&["rev-parse", &format!("{REF}~1")]);
    delete_object(&a, &middle);
    for args in [&["history"][..], &["history", "--json"], &["export"]] {
        let e = failure(&a, args);
        assert!(
            e.starts_with("convosync: could not walk the history of refs/convosync/handoffs from ")
                && e.contains(&tip)
                && e.contains(&middle),
            "{args:?}: {e}"
        );
    }
    // The tip is whole: a session start still shows what it holds, and nothing breaks the hooks.
    hooks_still_answer(&a);
}

#[test]
fn a_missing_tip_commit_or_tree_is_named() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    three_handoffs(&a);
    a.convosync().arg("sync").assert().success();
    b.convosync().arg("sync").assert().success();
    // Offline from here on: a fetch would bring the deleted objects back from the remote.
    let gone = env.path().join("unreachable.git");
    b.git(&["remote", "set-url", "origin", gone.to_str().unwrap()]);

    // The tip's tree gone: skipped (a hostile or broken tip never blocks), and the warning names
    // the commit and the missing tree.
    let tree = b.git(&["rev-parse", &format!("{REF}^{{tree}}")]);
    let tip = b.git(&["rev-parse", REF]);
    delete_object(&b, &tree);
    let out = b.convosync().args(["resume", "--offline"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&tip) && stderr.contains(&tree), "{stderr}");
    hooks_still_answer(&b);

    // The tip commit itself gone: the ref cannot be read at all, and the error says which ref.
    delete_object(&b, &tip);
    let e = failure(&b, &["resume", "--offline"]);
    assert!(e.contains("could not resolve refs/convosync/handoffs"), "{e}");
    let e = failure(&b, &["history"]);
    assert!(e.contains(REF), "{e}");
    let v = hooks_still_answer(&b).expect("the session start says what went wrong");
    let said = v["systemMessage"].as_str().unwrap_or_default();
    assert!(said.contains(REF), "{v}");
}

#[test]
fn ref_pointing_at_a_non_commit() {
    let env = TestEnv::new();
    let a = env.device("a");
    let blob = a.git(&["hash-object", "-w", "README.md"]);
    a.git(&["update-ref", "refs/convosync/handoffs", &blob]);
    assert!(fails_clearly(&a, &["resume", "--offline"]).contains("points at a blob instead of a commit"));
    write_draft(&a, "### Current Task\nkept\n");
    assert!(fails_clearly(&a, &["save-handoff"]).contains("points at a blob"));
    assert!(
        a.dir.join(".convosync/session-handoff-draft.md").exists(),
        "draft kept"
    );
    hook_is_quiet_or_json(&a, "session-start");
    hook_is_quiet_or_json(&a, "stop");
    let tree = a.git(&["rev-parse", "HEAD^{tree}"]);
    a.git(&["update-ref", "refs/convosync/handoffs", &tree]);
    assert!(fails_clearly(&a, &["resume", "--offline"]).contains("points at a tree"));
}
