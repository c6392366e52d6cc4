//! Carrying uncommitted work between two clones without touching branches, index or HEAD.

use std::os::unix::fs::PermissionsExt;

use crate::common::{ok, Device, TestEnv};
use crate::core::{user_state, write_draft};

fn setup() -> (TestEnv, Device, Device) {
    let env = TestEnv::new();
    let a = env.device("a");
    // Plain snapshots are pushed only when turned on (see tests/private.rs for the default).
    a.git(&["config", "convosync.wipPush", "true"]);
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

/// The Stop hook of a turn after which Claude wrote the draft; what it printed.
fn stop_after_draft(d: &Device) -> String {
    let input = serde_json::json!({"session_id":"s","cwd":d.dir,"stop_hook_active":true}).to_string();
    let out = d
        .convosync()
        .args(["hook", "stop"])
        .write_stdin(input)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stop_hook_shares_work_and_session_start_mentions_it() {
    let (_env, a, b) = setup();
    std::fs::write(a.dir.join("keep.txt"), "half-written\n").unwrap();
    write_draft(&a, "### Current Task\nrefresh tokens\n");
    let said = stop_after_draft(&a);
    assert!(said.contains("uncommitted changes in 1 file(s) shared"), "{said}");
    let input = serde_json::json!({"session_id":"t","cwd":b.dir,"source":"startup"}).to_string();
    let ctx = crate::hooks::context(&crate::hooks::hook(&b, "session-start", &input).unwrap());
    assert!(
        ctx.contains("a left uncommitted changes in 1 file on main (base"),
        "{ctx}"
    );
    assert!(ctx.contains("/convosync:wip apply a"), "{ctx}");
    // Codex has no slash commands: its model is told the command its shell runs, as the
    // terminal is.
    let out = b
        .convosync()
        .args(["hook", "--agent", "codex", "session-start"])
        .write_stdin(serde_json::json!({"session_id":"u","cwd":b.dir,"source":"startup"}).to_string())
        .output()
        .unwrap();
    let codex = String::from_utf8_lossy(&out.stdout);
    assert!(
        codex.contains("run `convosync wip apply a` to bring them here"),
        "{codex}"
    );
    assert!(!codex.contains("/convosync:"), "{codex}");
    let resumed = stdout(&b, &["resume", "--offline"]);
    assert!(resumed.contains("run `convosync wip apply a`"), "{resumed}");
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
    a.git(&["config", "convosync.wipPush", "true"]);
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

// ---------------------------------------------------------------------------------------------
// Hostile snapshots: objects crafted with git plumbing, pushed to the remote as if by a device
// called `evil`, then applied on b. Each must be refused whole with nothing written anywhere.

/// Store `bytes` as an object of `kind` in `d`'s repository, unchecked (`--literally`).
fn object(d: &Device, kind: &str, bytes: &[u8]) -> String {
    use std::io::Write;
    let mut cmd = std::process::Command::new("git");
    crate::common::hermetic(&mut cmd, &d.home);
    let mut child = cmd
        .current_dir(&d.dir)
        .args(["hash-object", "-w", "--literally", "--stdin", "-t", kind])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A raw tree with exactly these entries, in this order: (mode, name, object id).
fn raw_tree(d: &Device, entries: &[(&str, &[u8], &str)]) -> String {
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(mode.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(name);
        raw.push(0);
        let id: Vec<u8> = (0..40)
            .step_by(2)
            .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
            .collect();
        raw.extend_from_slice(&id);
    }
    object(d, "tree", &raw)
}

/// The base commit's top-level entries plus `extra`, in git's order (unless `sorted` is false,
/// when `extra` comes first), duplicates kept.
fn with_base(d: &Device, extra: &[(&str, &[u8], &str)], sorted: bool) -> String {
    let listing = d.git(&["ls-tree", "origin/main"]);
    let base: Vec<(String, Vec<u8>, String)> = listing
        .lines()
        .map(|l| {
            let (meta, name) = l.split_once('\t').unwrap();
            let parts: Vec<&str> = meta.split(' ').collect();
            (
                parts[0].to_string(),
                name.as_bytes().to_vec(),
                parts[2].to_string(),
            )
        })
        .collect();
    let mut all: Vec<(String, Vec<u8>, String)> = extra
        .iter()
        .map(|(m, n, i)| (m.to_string(), n.to_vec(), i.to_string()))
        .collect();
    all.extend(base);
    if sorted {
        all.sort_by_key(|(m, n, _)| {
            let mut k = n.clone();
            if m == "40000" {
                k.push(b'/');
            }
            k
        });
    }
    let refs: Vec<(&str, &[u8], &str)> = all
        .iter()
        .map(|(m, n, i)| (m.as_str(), n.as_slice(), i.as_str()))
        .collect();
    raw_tree(d, &refs)
}

/// A snapshot commit of `tree` on `base` from device `evil`, pushed to the remote.
fn push_snapshot(d: &Device, tree: &str, base: &str) {
    let msg = format!(
        "wip from evil\n\nConvosync-Device: evil\nConvosync-Base: {base}\nConvosync-Branch: main\nConvosync-Files: 1\nConvosync-File: x\n"
    );
    let commit = d.git(&["commit-tree", tree, "-p", base, "-m", &msg]);
    d.git(&[
        "push",
        "-q",
        "-f",
        "origin",
        &format!("{commit}:refs/convosync/wip/evil"),
    ]);
}

/// A blob that would run as a git hook, creating `marker`.
fn hook_blob(d: &Device, marker: &std::path::Path) -> String {
    object(
        d,
        "blob",
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()).as_bytes(),
    )
}

/// `.git/hooks/post-checkout` as a tree under the given name for `.git`.
fn dotgit_tree(d: &Device, hook: &str) -> String {
    let hooks = raw_tree(d, &[("100755", b"post-checkout", hook)]);
    raw_tree(d, &[("40000", b"hooks", &hooks)])
}

struct Attack {
    env: crate::common::TestEnv,
    evil: Device,
    b: Device,
    c: Device,
    outside: std::path::PathBuf,
    marker: std::path::PathBuf,
    base: String,
}

fn attack() -> Attack {
    let (env, a, b) = setup();
    drop(a);
    let evil = env.device("evil");
    let c = env.device("c");
    let outside = env.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let marker = env.path().join("hook-ran");
    let base = evil.git(&["rev-parse", "origin/main"]);
    Attack {
        env,
        evil,
        b,
        c,
        outside,
        marker,
        base,
    }
}

fn dir_listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Attack {
    /// Apply evil's snapshot on b with `args`: refused with a message containing `expect`, and
    /// nothing changed in b's worktree, its `.git`, or outside it; no hook runs; everyone's sync
    /// still works.
    fn refused(&self, args: &[&str], expect: &str) {
        let b = &self.b;
        let before = files(b);
        let hooks = dir_listing(&b.dir.join(".git/hooks"));
        let config = std::fs::read(b.dir.join(".git/config")).unwrap();
        let state = user_state(b);
        let mut full = vec!["wip", "apply", "evil"];
        full.extend_from_slice(args);
        let err = fails(b, &full);
        assert!(err.contains(expect), "{expect:?} in {err}");
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert_eq!(before, files(b), "nothing written in the worktree");
        assert_eq!(
            dir_listing(&self.outside),
            Vec::<String>::new(),
            "nothing outside"
        );
        assert_eq!(hooks, dir_listing(&b.dir.join(".git/hooks")), "no hook created");
        assert_eq!(config, std::fs::read(b.dir.join(".git/config")).unwrap());
        assert_eq!(state, user_state(b));
        // A checkout would run a post-checkout hook had one been planted.
        b.git(&["checkout", "-q", "-b", "probe"]);
        b.git(&["checkout", "-q", "main"]);
        b.git(&["branch", "-q", "-D", "probe"]);
        assert!(!self.marker.exists(), "a hook ran");
        for d in [b, &self.c, &self.evil] {
            stdout(d, &["sync"]);
            stdout(d, &["wip", "list"]);
        }
    }
}

#[test]
fn dotgit_in_any_spelling_is_refused() {
    let t = attack();
    let hook = hook_blob(&t.evil, &t.marker);
    for name in [
        ".git",
        ".GIT",
        ".Git",
        ".g\u{200c}it",
        ".git\u{feff}",
        "git~1",
        "GIT~1",
        ".git.",
        ".git ",
        ".git::$INDEX_ALLOCATION",
    ] {
        let dotgit = dotgit_tree(&t.evil, &hook);
        let tree = with_base(&t.evil, &[("40000", name.as_bytes(), &dotgit)], true);
        push_snapshot(&t.evil, &tree, &t.base);
        t.refused(&[], "a .git entry");
        t.refused(&["--force", "--allow-steering"], "not a valid git tree");
    }
    // Nested deeper, too.
    let dotgit = dotgit_tree(&t.evil, &hook);
    let sub = raw_tree(&t.evil, &[("40000", b".git", &dotgit)]);
    let tree = with_base(&t.evil, &[("40000", b"vendor", &sub)], true);
    push_snapshot(&t.evil, &tree, &t.base);
    t.refused(&[], "in vendor");
}

#[test]
fn dot_and_dotdot_entries_are_refused() {
    let t = attack();
    let pwned = object(&t.evil, "blob", b"pwned\n");
    let outside = raw_tree(&t.evil, &[("100644", b"pwned.txt", &pwned)]);
    let up = raw_tree(&t.evil, &[("40000", b"outside", &outside)]);
    for name in ["..", "."] {
        let tree = with_base(&t.evil, &[("40000", name.as_bytes(), &up)], true);
        push_snapshot(&t.evil, &tree, &t.base);
        t.refused(&["--force", "--allow-steering"], "a '.' or '..' entry");
    }
}

#[test]
fn names_with_a_slash_are_refused() {
    let t = attack();
    let pwned = object(&t.evil, "blob", b"pwned\n");
    for name in [
        "../outside/pwned.txt",
        "sub/../../outside/pwned.txt",
        ".git/hooks/post-checkout",
    ] {
        let tree = with_base(&t.evil, &[("100755", name.as_bytes(), &pwned)], true);
        push_snapshot(&t.evil, &tree, &t.base);
        t.refused(&["--force", "--allow-steering"], "a name containing '/'");
    }
}

#[test]
fn duplicate_entries_are_refused() {
    let t = attack();
    let one = object(&t.evil, "blob", b"one\n");
    let two = object(&t.evil, "blob", b"two\n");
    let tree = with_base(
        &t.evil,
        &[("100644", b"dup.txt", &one), ("100644", b"dup.txt", &two)],
        true,
    );
    push_snapshot(&t.evil, &tree, &t.base);
    t.refused(&["--force", "--allow-steering"], "a duplicate entry \"dup.txt\"");
}

#[test]
fn a_symlink_and_a_directory_of_the_same_name_are_refused() {
    let t = attack();
    let target = object(&t.evil, "blob", t.outside.to_str().unwrap().as_bytes());
    let pwned = object(&t.evil, "blob", b"pwned\n");
    let dir = raw_tree(&t.evil, &[("100644", b"pwned.txt", &pwned)]);
    // Both orders: the symlink first (git's order) and the directory first.
    for entries in [
        [
            ("120000", &b"sub"[..], target.as_str()),
            ("40000", b"sub", dir.as_str()),
        ],
        [
            ("40000", b"sub", dir.as_str()),
            ("120000", b"sub", target.as_str()),
        ],
    ] {
        let tree = with_base(&t.evil, &entries, true);
        push_snapshot(&t.evil, &tree, &t.base);
        t.refused(&["--force", "--allow-steering"], "a duplicate entry \"sub\"");
    }
}

#[test]
fn a_path_below_a_symlink_the_same_apply_writes_is_refused() {
    let t = attack();
    let target = object(&t.evil, "blob", t.outside.to_str().unwrap().as_bytes());
    let pwned = object(&t.evil, "blob", b"pwned\n");
    let dir = raw_tree(&t.evil, &[("100644", b"pwned.txt", &pwned)]);
    // A valid tree; on a case-insensitive filesystem `Sub` and `sub` are one name.
    let tree = with_base(
        &t.evil,
        &[("120000", b"Sub", &target), ("40000", b"sub", &dir)],
        true,
    );
    push_snapshot(&t.evil, &tree, &t.base);
    t.refused(&[], "Sub (a symlink to an absolute path)");
    t.refused(
        &["--force", "--allow-steering"],
        "below a symlink it also writes (sub)",
    );
}

#[test]
fn bad_modes_and_unsorted_trees_are_refused() {
    let t = attack();
    let pwned = object(&t.evil, "blob", b"pwned\n");
    for mode in ["100777", "100600", "140000"] {
        let tree = with_base(&t.evil, &[(mode, b"f.txt", &pwned)], true);
        push_snapshot(&t.evil, &tree, &t.base);
        t.refused(&["--force", "--allow-steering"], "a bad mode");
    }
    let tree = with_base(&t.evil, &[("100644", b"zzz.txt", &pwned)], false);
    push_snapshot(&t.evil, &tree, &t.base);
    t.refused(&["--force", "--allow-steering"], "out of order");
}

#[test]
fn a_hostile_base_tree_is_refused() {
    let t = attack();
    let hook = hook_blob(&t.evil, &t.marker);
    let dotgit = dotgit_tree(&t.evil, &hook);
    let bad = with_base(&t.evil, &[("40000", b".git", &dotgit)], true);
    let base = t.evil.git(&["commit-tree", &bad, "-p", &t.base, "-m", "base"]);
    let fine = object(&t.evil, "blob", b"fine\n");
    let tree = with_base(&t.evil, &[("100644", b"fine.txt", &fine)], true);
    push_snapshot(&t.evil, &tree, &base);
    t.refused(
        &["--force", "--allow-steering"],
        "the base of evil's snapshot is not a valid git tree",
    );
    drop(t.env);
}

#[test]
fn steering_files_need_the_flag_and_show_flags_them() {
    let (env, a, b) = setup();
    std::fs::create_dir_all(a.dir.join(".claude")).unwrap();
    std::fs::write(a.dir.join(".claude/settings.json"), "{\"hooks\":{}}\n").unwrap();
    std::fs::write(a.dir.join(".envrc"), "echo hi\n").unwrap();
    std::fs::create_dir_all(a.dir.join(".github/workflows")).unwrap();
    std::fs::write(a.dir.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    std::fs::write(a.dir.join(".gitattributes"), "* filter=x\n").unwrap();
    std::os::unix::fs::symlink(env.path(), a.dir.join("escape")).unwrap();
    std::fs::write(a.dir.join("plain.txt"), "plain\n").unwrap();
    stdout(&a, &["wip", "save"]);

    let shown = stdout(&b, &["wip", "show", "a"]);
    for p in [
        ".claude/settings.json",
        ".envrc",
        ".github/workflows/ci.yml",
        ".gitattributes",
        "escape",
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.starts_with(&format!("A {p}  [steers tools")) && l.contains("--allow-steering")),
            "{p} flagged in {shown}"
        );
    }
    assert!(shown.lines().any(|l| l == "A plain.txt"), "{shown}");

    let before = files(&b);
    let err = fails(&b, &["wip", "apply", "a"]);
    for p in [
        ".claude/settings.json",
        ".envrc",
        ".github/workflows/ci.yml",
        ".gitattributes",
        "escape",
    ] {
        assert!(err.contains(&format!("  {p} (")), "{p} in {err}");
    }
    assert!(err.contains("--allow-steering"), "{err}");
    assert_eq!(before, files(&b), "nothing written, not even plain.txt");

    stdout(&b, &["wip", "apply", "a", "--allow-steering"]);
    assert_eq!(
        std::fs::read_to_string(b.dir.join(".envrc")).unwrap(),
        "echo hi\n"
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("plain.txt")).unwrap(),
        "plain\n"
    );
    assert_eq!(std::fs::read_link(b.dir.join("escape")).unwrap(), env.path());
}

#[test]
fn credential_files_never_enter_a_snapshot() {
    let (env, a, b) = setup();
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n";
    let files_in: Vec<(&str, String)> = vec![
        (".git-credentials", "https://u:secretpw1@example.com\n".into()),
        (
            ".netrc",
            "machine example.com login u password secretpw2\n".into(),
        ),
        (".npmrc", "//registry.npmjs.org/:_authToken=secretpw3\n".into()),
        (".pypirc", "[pypi]\npassword = secretpw4\n".into()),
        (
            ".docker/config.json",
            "{\"auths\":{\"x\":{\"auth\":\"secretpw5\"}}}\n".into(),
        ),
        (".kube/config", "users:\n- token: secretpw6\n".into()),
        ("kubeconfig-prod", "users:\n- token: secretpw7\n".into()),
        ("prod.tfvars", "db_password = \"secretpw8\"\n".into()),
        ("credentials-ci.json", "{\"k\":\"secretpw9\"}\n".into()),
        (
            "deploy/sa.json",
            "{\"type\": \"service_account\", \"private_key\": \"secretpw10\"}\n".into(),
        ),
        ("tls.pem", "secretpw11\n".into()),
        ("server.key", "secretpw12\n".into()),
        ("cert.p12", "secretpw13\n".into()),
        ("id_ed25519", "secretpw14\n".into()),
        ("docs/notes.md", format!("see\n{key}")),
        (
            "src/config.py",
            "TOKEN = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'\n".into(),
        ),
    ];
    for (path, content) in &files_in {
        let full = a.dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    std::fs::write(a.dir.join("keep.txt"), "ordinary edit\n").unwrap();
    let out = stdout(&a, &["wip", "save"]);
    for (path, _) in &files_in {
        assert!(
            out.contains(&format!("left out {path} (")),
            "{path} named in {out}"
        );
    }
    assert!(out.contains("snapshot of 1 uncommitted file(s)"), "{out}");
    let remote = env.remote();
    for (path, content) in &files_in {
        let id = a.git(&["hash-object", path]);
        assert!(
            !crate::common::git_output(&remote, &a.home, &["cat-file", "-e", &id])
                .status
                .success(),
            "{path} reached the remote"
        );
        let _ = content;
    }
    stdout(&b, &["wip", "apply", "a"]);
    for (path, _) in &files_in {
        assert!(!b.dir.join(path).exists(), "{path} travelled");
    }

    // Committed locally but not pushed: still left out, and named by the Stop hook.
    a.git(&["add", "-f", "tls.pem", "keep.txt"]);
    a.git(&["commit", "-q", "-m", "local"]);
    std::fs::write(a.dir.join("other.txt"), "edited after the commit\n").unwrap();
    write_draft(&a, "### Current Task\nkeys\n");
    let said = stop_after_draft(&a);
    assert!(
        said.contains("uncommitted changes in 2 file(s) shared (credential files left out: ")
            && said.contains("tls.pem"),
        "{said}"
    );
    let tree = a.git(&["ls-tree", "-r", "--name-only", "refs/convosync/wip/a"]);
    assert!(!tree.lines().any(|l| l == "tls.pem"), "{tree}");
}

/// With the untracked cache on, the snapshot reads the status with `git status`, which must not
/// refresh (rewrite) the user's index even though its stat data is stale.
#[test]
fn stop_hook_snapshot_with_untracked_cache_leaves_the_index_alone() {
    let (_env, a, b) = setup();
    a.git(&["config", "core.untrackedCache", "true"]);
    a.git(&["update-index", "--untracked-cache"]);
    a.git(&["status", "--porcelain"]);
    // Changes after the index was last written: a refreshing status would rewrite it.
    std::fs::write(a.dir.join("keep.txt"), "line 1\nline 2 edited\nline 3\n").unwrap();
    std::fs::write(a.dir.join("other.txt"), "alpha\nbeta\ngamma\n").unwrap();
    std::fs::create_dir_all(a.dir.join("fresh/dir")).unwrap();
    std::fs::write(a.dir.join("fresh/dir/new file.txt"), "new\n").unwrap();
    write_draft(&a, "### Current Task\nuntracked cache\n");
    let index = a.dir.join(".git/index");
    let bytes = std::fs::read(&index).unwrap();
    let mtime = std::fs::metadata(&index).unwrap().modified().unwrap();
    let head = a.git(&["rev-parse", "HEAD"]);
    let said = stop_after_draft(&a);
    assert!(said.contains("uncommitted changes in 2 file(s) shared"), "{said}");
    assert_eq!(std::fs::read(&index).unwrap(), bytes, "index bytes unchanged");
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        mtime,
        "index mtime unchanged"
    );
    assert_eq!(head, a.git(&["rev-parse", "HEAD"]));
    let applied = stdout(&b, &["wip", "apply", "a"]);
    assert!(applied.contains("fresh/dir/new file.txt"), "{applied}");
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
