//! `convosync save`: commits code safely (never secrets, never convosync's own files), keeps the
//! message intact, and pushes the branch and the handoff ref.

use crate::common::TestEnv;
use crate::core::{draft_exists, write_draft};

const DRAFT: &str = "### Current Task\nShipping the login page\n";

#[test]
fn save_commits_code_but_never_secret_files() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("app.rs"), "fn main() {}\n").unwrap();
    std::fs::create_dir_all(a.dir.join("src/deep")).unwrap();
    std::fs::write(a.dir.join("src/deep/lib.rs"), "pub fn f() {}\n").unwrap();
    std::fs::write(a.dir.join(".env"), "DB_PASSWORD=hunter2\n").unwrap();
    std::fs::write(
        a.dir.join("id_rsa"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        a.dir.join("notes.txt"),
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(a.dir.join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(a.dir.join("debug.log"), "noise\n").unwrap();
    write_draft(&a, DRAFT);

    let out = a.convosync().args(["save", "add the app"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("skipped .env"), "{stdout}");
    assert!(stdout.contains("skipped id_rsa"), "{stdout}");
    assert!(stdout.contains("skipped notes.txt"), "{stdout}");
    assert!(stdout.contains("app.rs"), "lists what it committed: {stdout}");
    assert!(!draft_exists(&a));

    let files = a.git(&["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(
        files.contains("app.rs") && files.contains("src/deep/lib.rs") && files.contains(".gitignore"),
        "{files}"
    );
    for never in [".env", "id_rsa", "notes.txt", "debug.log", ".convosync"] {
        assert!(
            !files.lines().any(|f| f.starts_with(never)),
            "{never} was committed: {files}"
        );
    }
    // Pushed: the remote's main has the commit, and the handoff ref too.
    let remote_log = crate::common::git(&env.remote(), &a.home, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(remote_log, "add the app");
    crate::common::git(
        &env.remote(),
        &a.home,
        &["rev-parse", "--verify", "refs/convosync/handoffs"],
    );

    // Named explicitly, a secret-looking file is committed.
    a.convosync()
        .args(["save", "--skip-handoff", "--include", ".env", "add env"])
        .assert()
        .success();
    assert!(a
        .git(&["ls-tree", "-r", "--name-only", "HEAD"])
        .lines()
        .any(|f| f == ".env"));
}

#[test]
fn save_message_arrives_intact() {
    let env = TestEnv::new();
    let a = env.device("a");
    let message = "fix: \"quoted\" and 'single' — ünïcødé ✓\n\nsecond paragraph with $HOME and `ticks`";
    std::fs::write(a.dir.join("x.txt"), "x\n").unwrap();
    write_draft(&a, DRAFT);
    a.convosync().args(["save", message]).assert().success();
    assert_eq!(a.git(&["log", "-1", "--format=%B"]).trim_end(), message);
}

#[test]
fn save_without_draft_asks_for_one_and_commits_nothing() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("x.txt"), "x\n").unwrap();
    let head = a.git(&["rev-parse", "HEAD"]);
    let out = a.convosync().args(["save", "msg"]).assert().code(3);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("No handoff draft yet"), "{stdout}");
    assert!(stdout.contains(".convosync/session-handoff-draft.md"), "{stdout}");
    assert_eq!(a.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn staged_secret_is_refused_before_committing() {
    let env = TestEnv::new();
    let a = env.device("a");
    std::fs::write(a.dir.join("server.pem"), "cert\n").unwrap();
    a.git(&["add", "server.pem"]);
    write_draft(&a, DRAFT);
    let head = a.git(&["rev-parse", "HEAD"]);
    let out = a.convosync().args(["save", "msg"]).assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("server.pem is staged and looks like a secret"),
        "{stderr}"
    );
    assert_eq!(a.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn rejected_branch_push_says_what_to_do() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    std::fs::write(b.dir.join("b.txt"), "b\n").unwrap();
    b.git(&["add", "b.txt"]);
    b.git(&["commit", "-q", "-m", "b"]);
    b.git(&["push", "-q"]);
    std::fs::write(a.dir.join("a.txt"), "a\n").unwrap();
    write_draft(&a, DRAFT);
    let out = a.convosync().args(["save", "from a"]).assert().failure();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("git pull --rebase"), "{stdout}");
    // Never forced: the remote still has b's commit.
    assert_eq!(
        crate::common::git(&env.remote(), &a.home, &["log", "-1", "--format=%s", "main"]),
        "b"
    );
}

#[test]
fn pre_commit_hooks_run() {
    let env = TestEnv::new();
    let a = env.device("a");
    let hook = a.dir.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho 'blocked by policy' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(a.dir.join("x.txt"), "x\n").unwrap();
    write_draft(&a, DRAFT);
    let out = a.convosync().args(["save", "msg"]).assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("blocked by policy"), "{stderr}");
}
