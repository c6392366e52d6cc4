//! Carrying uncommitted work between two clones without touching branches, index or HEAD.

use std::os::unix::fs::PermissionsExt;

use crate::common::{Device, TestEnv};
use crate::core::{user_state, write_draft};

fn setup() -> (TestEnv, Device, Device) {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("keep.txt"), "line 1\nline 2\nline 3\n").unwrap();
    std::fs::write(a.dir.join("gone.txt"), "to be deleted\n").unwrap();
    std::fs::write(a.dir.join("other.txt"), "alpha\nbeta\ngamma\n").unwrap();
    a.git(&["add", "."]);
    a.git(&["commit", "-q", "-m", "files"]);
    a.git(&["push", "-q"]);
    let b = env.device("b");
    (env, a, b)
}

fn stdout(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn make_changes(a: &Device) {
    std::fs::write(a.dir.join("keep.txt"), "line 1\nline 2 edited on a\nline 3\n").unwrap();
    std::fs::remove_file(a.dir.join("gone.txt")).unwrap();
    std::fs::create_dir_all(a.dir.join("new/dir")).unwrap();
    std::fs::write(a.dir.join("new/dir/fresh.rs"), "fn fresh() {}\n").unwrap();
    std::fs::write(a.dir.join("logo.bin"), [0u8, 159, 146, 150, 0, 1, 2, 255]).unwrap();
    std::fs::write(a.dir.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(a.dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("keep.txt", a.dir.join("link-to-keep")).unwrap();
    // Secrets never travel.
    std::fs::write(a.dir.join(".env"), "API_TOKEN=abc123abc123\n").unwrap();
    std::fs::write(
        a.dir.join("id_rsa"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        a.dir.join("notes.md"),
        "-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
}

#[test]
fn uncommitted_work_arrives_exactly() {
    let (_env, a, b) = setup();
    make_changes(&a);
    let before = user_state(&a);
    let out = stdout(&a, &["wip", "save"]);
    assert!(out.contains("snapshot of 6 uncommitted file(s)"), "{out}");
    assert!(
        out.contains("skipped .env") && out.contains("skipped id_rsa") && out.contains("skipped notes.md"),
        "{out}"
    );
    assert_eq!(before, user_state(&a), "wip save changed nothing of a's");

    let b_before = user_state(&b);
    let listed = stdout(&b, &["wip", "list"]);
    assert!(listed.contains("a") && listed.contains("6 file(s)"), "{listed}");
    let applied = stdout(&b, &["wip", "apply", "a"]);
    assert!(
        applied.contains("updated keep.txt") && applied.contains("deleted gone.txt"),
        "{applied}"
    );
    for f in ["keep.txt", "new/dir/fresh.rs", "logo.bin", "run.sh", "other.txt"] {
        assert_eq!(
            std::fs::read(a.dir.join(f)).unwrap(),
            std::fs::read(b.dir.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(!b.dir.join("gone.txt").exists());
    assert_eq!(
        std::fs::metadata(b.dir.join("run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0o111,
        "exec bit kept"
    );
    assert_eq!(
        std::fs::read_link(b.dir.join("link-to-keep")).unwrap().to_str(),
        Some("keep.txt")
    );
    for secret in [".env", "id_rsa", "notes.md"] {
        assert!(!b.dir.join(secret).exists(), "{secret} travelled");
    }
    let after = user_state(&b);
    assert_eq!(
        b_before.head_and_index(),
        after.head_and_index(),
        "apply never touches HEAD, branches or the index"
    );
    assert_eq!(
        b.git(&["status", "--porcelain"]),
        a.git(&["status", "--porcelain"])
            .replace("?? .env\n", "")
            .replace("?? id_rsa\n", "")
            .replace("?? notes.md\n", "")
    );
}

#[test]
fn conflicting_local_edits_are_refused_or_forced() {
    let (_env, a, b) = setup();
    std::fs::write(a.dir.join("keep.txt"), "line 1\nline 2 from a\nline 3\n").unwrap();
    std::fs::write(a.dir.join("other.txt"), "alpha\nbeta\ngamma\ndelta from a\n").unwrap();
    stdout(&a, &["wip", "save"]);
    // b edits the same line of keep.txt, and a different line of other.txt.
    std::fs::write(b.dir.join("keep.txt"), "line 1\nline 2 from b\nline 3\n").unwrap();
    std::fs::write(b.dir.join("other.txt"), "alpha from b\nbeta\ngamma\n").unwrap();
    let out = b.convosync().args(["wip", "apply", "a"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keep.txt") && !err.contains("other.txt"),
        "lists exactly the conflicts: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("keep.txt")).unwrap(),
        "line 1\nline 2 from b\nline 3\n",
        "nothing written"
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("other.txt")).unwrap(),
        "alpha from b\nbeta\ngamma\n",
        "nothing written"
    );
    let forced = stdout(&b, &["wip", "apply", "a", "--force"]);
    assert!(forced.contains("CONFLICT keep.txt"), "{forced}");
    let keep = std::fs::read_to_string(b.dir.join("keep.txt")).unwrap();
    assert!(
        keep.contains("<<<<<<< local") && keep.contains(">>>>>>> a"),
        "{keep}"
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("other.txt")).unwrap(),
        "alpha from b\nbeta\ngamma\ndelta from a\n",
        "clean merge"
    );
}

#[test]
fn size_limit_and_replacement() {
    let (_env, a, _b) = setup();
    std::fs::write(a.dir.join("big.dat"), vec![b'x'; 2 << 20]).unwrap();
    a.git(&["config", "convosync.wipLimit", "1MB"]);
    let out = stdout(&a, &["wip", "save"]);
    assert!(out.contains("exceed the 1.0 MB limit"), "{out}");
    a.git(&["config", "convosync.wipLimit", "5MB"]);
    stdout(&a, &["wip", "save"]);
    std::fs::remove_file(a.dir.join("big.dat")).unwrap();
    std::fs::write(a.dir.join("small.txt"), "x\n").unwrap();
    stdout(&a, &["wip", "save"]);
    // One ref per device, old snapshots kept as its history.
    assert_eq!(
        a.git(&["for-each-ref", "--format=%(refname)", "refs/convosync/wip/"]),
        "refs/convosync/wip/a"
    );
    assert_eq!(a.git(&["rev-list", "--count", "refs/convosync/wip/a"]), "2");
}

#[test]
fn stop_hook_shares_work_and_session_start_mentions_it() {
    let (_env, a, b) = setup();
    std::fs::write(a.dir.join("keep.txt"), "half-written\n").unwrap();
    write_draft(&a, "### Current Task\nrefresh tokens\n");
    let input = serde_json::json!({"session_id":"s","cwd":a.dir,"stop_hook_active":true}).to_string();
    let out = a
        .convosync()
        .args(["hook", "stop"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("uncommitted changes in 1 file(s) shared"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let input = serde_json::json!({"session_id":"t","cwd":b.dir,"source":"startup"}).to_string();
    let ctx = crate::hooks::context(&crate::hooks::hook(&b, "session-start", &input).unwrap());
    assert!(
        ctx.contains("a left uncommitted changes in 1 file on main (base"),
        "{ctx}"
    );
    assert!(ctx.contains("/convosync:wip apply a"), "{ctx}");
}
