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
        out.contains("left out .env")
            && out.contains("left out id_rsa (an SSH key)")
            && out.contains("left out notes.md (it contains a secret)"),
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
    assert!(
        out.contains("skipped: 2.0 MB of changes exceed the 1.0 MB limit"),
        "{out}"
    );
    let big = a.git(&["hash-object", "big.dat"]);
    assert!(
        !crate::common::git_output(&a.dir, &a.home, &["cat-file", "-e", &big])
            .status
            .success(),
        "nothing of a refused snapshot is stored"
    );
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
    assert_eq!(
        a.git(&[
            "rev-list",
            "--count",
            "refs/convosync/wip/a",
            "--not",
            "origin/main"
        ]),
        "2"
    );
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

/// Every file of a worktree outside `.git` and `.convosync`: content (a symlink's target) and
/// whether it is executable or a symlink.
fn files(d: &Device) -> std::collections::BTreeMap<String, (Vec<u8>, bool, bool)> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, (Vec<u8>, bool, bool)>,
    ) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" || rel == ".convosync" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (t.to_string_lossy().into_owned().into_bytes(), false, true));
            } else if m.is_dir() {
                walk(root, &p, out);
            } else {
                let exec = m.permissions().mode() & 0o111 != 0;
                out.insert(rel, (std::fs::read(&p).unwrap(), exec, false));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(&d.dir, &d.dir, &mut out);
    out
}

fn fails(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn mode_changes_and_file_directory_swaps_arrive_exactly() {
    let (_env, a, b) = setup();
    std::fs::create_dir_all(a.dir.join("tree/deeper")).unwrap();
    std::fs::write(a.dir.join("tree/deeper/leaf.txt"), "leaf\n").unwrap();
    std::fs::write(a.dir.join("tool.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(a.dir.join("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    a.git(&["add", "."]);
    a.git(&["commit", "-q", "-m", "more files"]);
    a.git(&["push", "-q"]);
    b.git(&["pull", "-q"]);

    // Only the mode changes, both ways.
    std::fs::set_permissions(a.dir.join("other.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(a.dir.join("tool.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // A directory becomes a file, and a file becomes a directory.
    std::fs::remove_dir_all(a.dir.join("tree")).unwrap();
    std::fs::write(a.dir.join("tree"), "now a file\n").unwrap();
    std::fs::remove_file(a.dir.join("gone.txt")).unwrap();
    std::fs::create_dir(a.dir.join("gone.txt")).unwrap();
    std::fs::write(a.dir.join("gone.txt/inside.txt"), "now a directory\n").unwrap();
    let before = user_state(&a);
    stdout(&a, &["wip", "save"]);
    assert_eq!(before, user_state(&a), "wip save changed nothing of a's");

    let b_before = user_state(&b);
    stdout(&b, &["wip", "apply", "a"]);
    assert_eq!(
        files(&a),
        files(&b),
        "b's worktree is a's, byte for byte and mode for mode"
    );
    assert_eq!(b_before.head_and_index(), user_state(&b).head_and_index());
    assert_eq!(
        b.git(&["status", "--porcelain", "--untracked-files=all"]),
        a.git(&["status", "--porcelain", "--untracked-files=all"])
    );
}

#[test]
fn show_lists_kinds_and_diff_prints_the_patch() {
    let (_env, a, b) = setup();
    make_changes(&a);
    stdout(&a, &["wip", "save"]);
    // With one other device offering work, the device name may be left out.
    let shown = stdout(&b, &["wip", "show"]);
    for line in [
        "M keep.txt",
        "D gone.txt",
        "A new/dir/fresh.rs",
        "A run.sh",
        "A logo.bin",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} in {shown}");
    }
    assert!(!shown.contains(".env") && !shown.contains("id_rsa"), "{shown}");
    let diff = stdout(&b, &["wip", "diff", "a"]);
    assert!(diff.contains("-line 2\n+line 2 edited on a\n"), "{diff}");
    assert!(diff.contains("+fn fresh() {}"), "{diff}");
    assert!(diff.contains("-to be deleted"), "{diff}");
    let err = fails(&b, &["wip", "show", "nobody"]);
    assert!(err.contains("no snapshot from nobody"), "{err}");
}

#[test]
fn unpushed_commits_never_reach_the_remote_but_their_changes_do() {
    let (env, a, b) = setup();
    a.git(&["checkout", "-q", "-b", "feature/oauth"]);
    std::fs::write(a.dir.join("keep.txt"), "committed on a only\n").unwrap();
    std::fs::write(a.dir.join("added.txt"), "added in a local commit\n").unwrap();
    a.git(&["add", "."]);
    a.git(&["commit", "-q", "-m", "local commit, not pushed"]);
    let local = a.git(&["rev-parse", "HEAD"]);
    std::fs::write(a.dir.join("other.txt"), "then edited\n").unwrap();
    stdout(&a, &["wip", "save"]);
    let remote = env.remote();
    let on_remote = |id: &str| {
        crate::common::git_output(&remote, &a.home, &["cat-file", "-e", id])
            .status
            .success()
    };
    assert!(
        on_remote(&a.git(&["rev-parse", "refs/convosync/wip/a"])),
        "pushed"
    );
    assert!(
        !on_remote(&local),
        "the unpushed commit {local} reached the remote"
    );
    // The snapshot's base is the commit the remote has, and a parent of it.
    let main = a.git(&["rev-parse", "origin/main"]);
    let parents = a.git(&["rev-list", "--parents", "-n1", "refs/convosync/wip/a"]);
    assert!(parents.contains(&main) && !parents.contains(&local), "{parents}");

    let before = user_state(&b);
    stdout(&b, &["wip", "apply", "a"]);
    for f in ["keep.txt", "added.txt", "other.txt"] {
        assert_eq!(
            std::fs::read(a.dir.join(f)).unwrap(),
            std::fs::read(b.dir.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(before.head_and_index(), user_state(&b).head_and_index());
}

#[test]
fn with_nothing_on_the_remote_the_snapshot_is_the_whole_tree() {
    let env = crate::common::TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    // a's history shares nothing with the remote.
    a.git(&["checkout", "-q", "--orphan", "fresh"]);
    a.git(&["rm", "-rq", "--cached", "."]);
    std::fs::write(a.dir.join("new.txt"), "orphan\n").unwrap();
    a.git(&["add", "new.txt"]);
    a.git(&["commit", "-q", "-m", "orphan root"]);
    let local = a.git(&["rev-parse", "HEAD"]);
    std::fs::write(a.dir.join("new.txt"), "orphan, edited\n").unwrap();
    stdout(&a, &["wip", "save"]);
    assert!(
        !crate::common::git_output(&env.remote(), &a.home, &["cat-file", "-e", &local])
            .status
            .success()
    );
    assert!(stdout(&b, &["wip", "list"]).contains("base none"));
    stdout(&b, &["wip", "apply", "a"]);
    assert_eq!(
        std::fs::read_to_string(b.dir.join("new.txt")).unwrap(),
        "orphan, edited\n"
    );
}

#[test]
fn unmergeable_conflicts_keep_the_local_version_even_when_forced() {
    let (_env, a, b) = setup();
    std::fs::write(a.dir.join("data.bin"), [0u8, 1, 2]).unwrap();
    a.git(&["add", "."]);
    a.git(&["commit", "-q", "-m", "binary"]);
    a.git(&["push", "-q"]);
    b.git(&["pull", "-q"]);
    std::fs::write(a.dir.join("data.bin"), [0u8, 1, 2, 3]).unwrap();
    std::fs::remove_file(a.dir.join("other.txt")).unwrap();
    std::fs::write(a.dir.join("added.txt"), "from a\n").unwrap();
    std::fs::write(a.dir.join("keep.txt"), "line 1\nline 2\nline 3\nline 4 from a\n").unwrap();
    stdout(&a, &["wip", "save"]);
    std::fs::write(b.dir.join("data.bin"), [0u8, 9]).unwrap();
    std::fs::write(b.dir.join("other.txt"), "alpha from b\nbeta\ngamma\n").unwrap();
    std::fs::write(b.dir.join("added.txt"), "from b\n").unwrap();

    let before = files(&b);
    let err = fails(&b, &["wip", "apply", "a"]);
    for line in [
        "data.bin (a binary file changed on both sides)",
        "other.txt (deleted in the snapshot, changed here)",
        "added.txt (added on both sides with different content)",
    ] {
        assert!(err.contains(line), "{line:?} in {err}");
    }
    assert!(!err.contains("keep.txt"), "{err}");
    assert_eq!(before, files(&b), "nothing written");

    let out = stdout(&b, &["wip", "apply", "a", "--force"]);
    assert!(
        out.contains("CONFLICT data.bin (a binary file changed on both sides; kept the local version)"),
        "{out}"
    );
    assert!(
        out.contains(
            "CONFLICT added.txt (added on both sides with different content; conflict markers written)"
        ),
        "{out}"
    );
    assert!(out.contains("updated keep.txt"), "{out}");
    assert_eq!(std::fs::read(b.dir.join("data.bin")).unwrap(), [0u8, 9]);
    assert_eq!(
        std::fs::read_to_string(b.dir.join("other.txt")).unwrap(),
        "alpha from b\nbeta\ngamma\n"
    );
    let added = std::fs::read_to_string(b.dir.join("added.txt")).unwrap();
    assert!(
        added.contains("<<<<<<< local") && added.contains("from a") && added.contains("from b"),
        "{added}"
    );
}

#[test]
fn apply_never_writes_through_a_symlinked_directory() {
    let (env, a, b) = setup();
    std::fs::create_dir_all(a.dir.join("sub")).unwrap();
    std::fs::write(a.dir.join("sub/new.txt"), "new\n").unwrap();
    stdout(&a, &["wip", "save"]);
    let outside = env.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, b.dir.join("sub")).unwrap();
    let err = fails(&b, &["wip", "apply", "a"]);
    assert!(
        err.contains("sub/new.txt (a symlink is in the way here)"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    stdout(&b, &["wip", "apply", "a", "--force"]);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "not even when forced"
    );
}

#[test]
fn a_clean_worktree_withdraws_the_snapshot() {
    let (_env, a, b) = setup();
    std::fs::write(a.dir.join("keep.txt"), "edited\n").unwrap();
    stdout(&a, &["wip", "save"]);
    assert!(stdout(&b, &["wip", "list"]).contains("1 file(s)"));
    a.git(&["checkout", "--", "keep.txt"]);
    let out = stdout(&a, &["wip", "save"]);
    assert!(out.contains("no uncommitted changes to share"), "{out}");
    assert!(stdout(&b, &["wip", "list"]).contains("0 file(s)"));
    let err = fails(&b, &["wip", "apply"]);
    assert!(
        err.contains("no other device has shared uncommitted work"),
        "{err}"
    );
    let input = serde_json::json!({"session_id":"t","cwd":b.dir,"source":"startup"}).to_string();
    let ctx = crate::hooks::hook(&b, "session-start", &input)
        .map(|v| crate::hooks::context(&v))
        .unwrap_or_default();
    assert!(!ctx.contains("uncommitted changes"), "{ctx}");
    // Saving a clean worktree again does not grow the history.
    let count = a.git(&["rev-list", "--count", "refs/convosync/wip/a"]);
    stdout(&a, &["wip", "save"]);
    assert_eq!(count, a.git(&["rev-list", "--count", "refs/convosync/wip/a"]));
}
