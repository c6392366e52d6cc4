//! The core round trip: drafts become handoffs on the ref, devices exchange them through a bare
//! remote, and the user's branch, index and worktree never change.

use std::path::Path;

use crate::common::{hermetic, Device, TestEnv};

const DRAFT: &str = "### Current Task\nImplementing OAuth login\n\n### Important Context\n- The user's favourite pizza is Margherita\n";

pub fn write_draft(d: &Device, text: &str) {
    let p = d.dir.join(".convosync/session-handoff-draft.md");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub fn draft_exists(d: &Device) -> bool {
    d.dir.join(".convosync/session-handoff-draft.md").exists()
}

/// Everything of the user's that convosync must never change.
#[derive(Debug, PartialEq)]
pub struct UserState {
    head: String,
    head_ref: String,
    branches: String,
    index: Vec<u8>,
    status: String,
}

impl UserState {
    /// HEAD, branches and index only (for checks where the worktree is meant to change).
    pub fn head_and_index(&self) -> (&str, &str, &str, &[u8]) {
        (&self.head, &self.head_ref, &self.branches, &self.index)
    }
}

pub fn user_state(d: &Device) -> UserState {
    let git_dir = d.dir.join(".git");
    UserState {
        head: d.git(&["rev-parse", "HEAD"]),
        head_ref: std::fs::read_to_string(git_dir.join("HEAD")).unwrap(),
        branches: d.git(&["for-each-ref", "refs/heads", "refs/remotes", "refs/tags"]),
        index: std::fs::read(git_dir.join("index")).unwrap_or_default(),
        status: d.git(&["status", "--porcelain", "--untracked-files=all", "--ignored"]),
    }
}

fn save(d: &Device, text: &str) -> String {
    write_draft(d, text);
    let out = d.convosync().args(["save-handoff"]).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).to_string()
}

fn resume(d: &Device) -> String {
    let out = d.convosync().arg("resume").assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).to_string()
}

#[test]
fn two_devices_exchange_handoffs() {
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let out = save(&desktop, DRAFT);
    assert!(out.contains("handoff from desktop committed"), "{out}");
    assert!(out.contains("pushed to origin"), "{out}");
    assert!(!draft_exists(&desktop), "the draft is deleted once committed");

    let seen = resume(&laptop);
    assert!(seen.contains("## From desktop"), "{seen}");
    assert!(seen.contains("favourite pizza is Margherita"), "{seen}");
    assert!(
        !resume(&desktop).contains("## From desktop"),
        "a device does not resume from itself"
    );
}

#[test]
fn three_devices_see_each_other_newest_first() {
    let env = TestEnv::new();
    let devs: Vec<Device> = ["alpha", "beta", "gamma"].iter().map(|n| env.device(n)).collect();
    for (i, d) in devs.iter().enumerate() {
        write_draft(d, &format!("### Current Task\ntask of {}\n", d.name));
        d.convosync()
            .env("CONVOSYNC_NOW", format!("2026-11-24T1{i}:00:00Z"))
            .arg("save-handoff")
            .assert()
            .success();
    }
    for d in &devs {
        d.convosync().arg("sync").assert().success();
    }
    let seen = resume(&devs[0]);
    let beta = seen.find("## From beta").expect("beta shown");
    let gamma = seen.find("## From gamma").expect("gamma shown");
    assert!(gamma < beta, "newest first:\n{seen}");
    assert!(!seen.contains("## From alpha"));
    // The ref holds exactly one file per device.
    let files = devs[2].git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert_eq!(files, "devices/alpha.md\ndevices/beta.md\ndevices/gamma.md");
}

#[test]
fn commands_never_touch_branch_index_or_worktree() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    // Some user work in progress: a staged file, an unstaged edit, an untracked file.
    std::fs::write(a.dir.join("staged.txt"), "staged\n").unwrap();
    a.git(&["add", "staged.txt"]);
    std::fs::write(a.dir.join("README.md"), "# edited\n").unwrap();
    std::fs::write(a.dir.join("untracked.txt"), "x\n").unwrap();
    let before = user_state(&a);
    a.convosync().arg("generate-handoff").assert().success();
    let mid = user_state(&a);
    save(&a, DRAFT);
    a.convosync().arg("sync").assert().success();
    a.convosync().arg("resume").assert().success();
    a.convosync().args(["device", "show"]).assert().success();
    save(&b, DRAFT);
    a.convosync().arg("resume").assert().success();
    let after = user_state(&a);
    // generate-handoff creates .convosync/ (excluded from git), so status stays the same.
    assert_eq!(before, mid);
    assert_eq!(before, after);
    let exclude = std::fs::read_to_string(a.dir.join(".git/info/exclude")).unwrap();
    assert!(exclude.contains("/.convosync/session-handoff-draft.md"));
}

#[test]
fn a_killed_save_loses_nothing() {
    let env = TestEnv::new();
    let a = env.device("a");
    for point in ["locked", "object-written", "committed"] {
        let text = format!("### Current Task\nkilled at {point}\n");
        write_draft(&a, &text);
        let out = a
            .convosync()
            .env("CONVOSYNC_FAILPOINT", point)
            .args(["save-handoff", "--no-push"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the process died at {point}");
        let on_ref = a
            .convosync()
            .args(["resume", "--offline", "--all"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("killed at {point}")))
            .unwrap();
        assert!(
            draft_exists(&a) || on_ref,
            "after a kill at {point} neither draft nor handoff exists"
        );
        // The next save finishes the job, exactly once.
        a.convosync()
            .args(["save-handoff", "--no-push"])
            .assert()
            .success();
        assert!(!draft_exists(&a));
        let log = a.git(&["log", "--format=%s", "refs/convosync/handoffs"]);
        let count = log
            .lines()
            .filter(|l| l.contains(&format!("killed at {point}")))
            .count();
        assert_eq!(count, 1, "one commit for the draft killed at {point}:\n{log}");
    }
    a.git(&["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn two_processes_saving_at_once_lose_nothing() {
    let env = TestEnv::new();
    // Two linked worktrees of one clone: each session has its own draft, one shared ref and lock.
    let a = env.device("a");
    a.git(&["worktree", "add", "-q", "-b", "side", "../a-side"]);
    let side = Device {
        name: "a-side".into(),
        dir: env.path().join("a-side"),
        home: a.home.clone(),
    };
    let mut children = Vec::new();
    for round in 0..5 {
        for (d, name) in [(&a, "main-wt"), (&side, "side-wt")] {
            write_draft(d, &format!("### Current Task\n{name} round {round}\n"));
        }
        for (d, device) in [(&a, "one"), (&side, "two")] {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("convosync"));
            hermetic(&mut cmd, &d.home)
                .current_dir(&d.dir)
                .env("CONVOSYNC_DEVICE", device)
                .args(["save-handoff", "--no-push"]);
            children.push(cmd.spawn().unwrap());
        }
        for mut c in children.drain(..) {
            assert!(c.wait().unwrap().success());
        }
    }
    let log = a.git(&["log", "--format=%s", "refs/convosync/handoffs"]);
    for round in 0..5 {
        assert!(log.contains(&format!("main-wt round {round}")), "{log}");
        assert!(log.contains(&format!("side-wt round {round}")), "{log}");
    }
    assert_eq!(log.lines().count(), 10);
}

#[test]
fn clear_messages_for_bad_situations() {
    let env = TestEnv::new();
    let a = env.device("a");
    let err = |d: &Path, args: &[&str], device: &str| {
        let out = a
            .convosync()
            .current_dir(d)
            .env("CONVOSYNC_DEVICE", device)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(e.trim().lines().count(), 1, "one clear line: {e}");
        e
    };
    // Not a repository.
    let outside = env.path().join("plain-dir");
    std::fs::create_dir_all(&outside).unwrap();
    assert!(err(&outside, &["resume"], "a").contains("not inside a git repository"));
    // Bad device names.
    // A name with capitals or spaces is normalised, and the user is told what it became.
    let set = a
        .convosync()
        .args(["device", "set", "My Laptop!"])
        .output()
        .unwrap();
    assert!(set.status.success());
    assert!(String::from_utf8_lossy(&set.stderr).contains("is used as \"my-laptop\""));
    assert!(err(&a.dir, &["device", "set", "///"], "a").contains("invalid device name"));
    write_draft(&a, DRAFT);
    assert!(err(&a.dir, &["save-handoff"], "!!!").contains("not a usable device name"));
    assert!(draft_exists(&a), "the draft survives a bad device name");
    std::fs::remove_file(a.dir.join(".convosync/session-handoff-draft.md")).unwrap();
    // No draft.
    assert!(err(&a.dir, &["save-handoff"], "a").contains("no handoff draft"));
    // A draft without sections.
    write_draft(&a, "just some words\n");
    let e = err(&a.dir, &["save-handoff"], "a");
    assert!(e.contains("not a handoff"), "{e}");
    assert!(draft_exists(&a), "a rejected draft is kept");
    std::fs::remove_file(a.dir.join(".convosync/session-handoff-draft.md")).unwrap();
    // Repo without origin: sync explains, save keeps the handoff local.
    a.git(&["remote", "remove", "origin"]);
    assert!(err(&a.dir, &["sync"], "a").contains("no remote named origin"));
    write_draft(&a, DRAFT);
    let out = a.convosync().arg("save-handoff").assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("stays local"));
}

#[test]
fn detached_head_and_empty_repo() {
    let env = TestEnv::new();
    let a = env.device("a");
    let head = a.git(&["rev-parse", "HEAD"]);
    a.git(&["checkout", "-q", "--detach", &head]);
    save(&a, DRAFT);
    let file = a.git(&["show", "refs/convosync/handoffs:devices/a.md"]);
    assert!(file.contains("**Branch:** (detached HEAD)"), "{file}");

    // A brand-new repository with no commits at all.
    let empty = env.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    crate::common::git(&empty, &a.home, &["init", "-q"]);
    let d = Device {
        name: "fresh".into(),
        dir: empty,
        home: a.home.clone(),
    };
    write_draft(&d, DRAFT);
    let out = d.convosync().arg("save-handoff").assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("committed"));
    let file = d.git(&["show", "refs/convosync/handoffs:devices/fresh.md"]);
    assert!(file.contains("**Commit:** (none)"), "{file}");
    assert!(d.git(&["branch", "--list"]).is_empty(), "no branch was created");
}

#[test]
fn device_id_lives_outside_the_repo() {
    let env = TestEnv::new();
    let a = env.device("a");
    let out = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .env("CONVOSYNC_HOSTNAME", "Work.Laptop.local")
        .args(["device", "show"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout).trim(), "work");
    a.convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "set", "studio"])
        .assert()
        .success();
    let out = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "show"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout).trim(), "studio");
    assert!(a.home.join(".config/convosync/device-id").exists());
    assert!(!a.dir.join(".convosync/device-id").exists());
    assert!(a.git(&["status", "--porcelain"]).is_empty());
}

#[test]
fn diverged_refs_merge_by_path() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    // Both save offline, so both refs grow independently.
    write_draft(&a, "### Current Task\nfrom a\n");
    a.convosync()
        .args(["save-handoff", "--no-push"])
        .assert()
        .success();
    write_draft(&b, "### Current Task\nfrom b\n");
    b.convosync()
        .args(["save-handoff", "--no-push"])
        .assert()
        .success();
    a.convosync().arg("sync").assert().success();
    b.convosync().arg("sync").assert().success();
    a.convosync().arg("sync").assert().success();
    let ta = a.git(&["rev-parse", "refs/convosync/handoffs^{tree}"]);
    let tb = b.git(&["rev-parse", "refs/convosync/handoffs^{tree}"]);
    assert_eq!(ta, tb, "both devices converge");
    assert!(resume(&a).contains("from b"));
    assert!(resume(&b).contains("from a"));
}

#[test]
fn legacy_file_is_read_and_migrated_whole() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    let legacy = "---\n## Handoff from old-laptop\n**Timestamp:** 2025-10-22T14:30:00Z\n**Commit:** abc123d\n**Branch:** main\n\n### Current Task\nOAuth\n\n---\n\nAfter a rule.\n```\n---\n## Handoff from fake\n```\n\n### Important Context\n- favourite pizza: Margherita\n\n---\n## Handoff from old-laptop\n**Timestamp:** 2025-10-21T10:00:00Z\n**Commit:** 0000000\n**Branch:** main\n\n### Current Task\nolder\n";
    std::fs::create_dir_all(a.dir.join(".convosync")).unwrap();
    std::fs::write(a.dir.join(".convosync/session-handoff.md"), legacy).unwrap();
    // resume reads the legacy file even before migrating.
    let seen = String::from_utf8_lossy(
        &a.convosync()
            .args(["resume", "--offline"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        seen.contains("## From old-laptop") && seen.contains("After a rule."),
        "{seen}"
    );
    assert!(!seen.contains("## From fake"), "{seen}");
    a.convosync().args(["migrate"]).assert().success();
    a.convosync().arg("sync").assert().success();
    let file = b.convosync().arg("resume").output().unwrap();
    let text = String::from_utf8_lossy(&file.stdout);
    // Whole, with the quoted header escaped so it cannot pass for a note of its own.
    assert!(
        text.contains("OAuth\n\n---\n\nAfter a rule.\n```\n---\n\\## Handoff from fake\n```"),
        "{text}"
    );
    assert!(text.contains("Margherita"));
    assert!(!text.contains("older"), "only the newest per device moves");
}

#[test]
fn resume_pull_fast_forwards_only_when_safe() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    std::fs::write(a.dir.join("feature.txt"), "from a\n").unwrap();
    a.git(&["add", "feature.txt"]);
    a.git(&["commit", "-q", "-m", "feature"]);
    a.git(&["push", "-q"]);
    save(&a, DRAFT);
    // Uncommitted changes on b: no pull.
    std::fs::write(b.dir.join("README.md"), "# local edit\n").unwrap();
    let before = b.git(&["rev-parse", "HEAD"]);
    let out = b.convosync().args(["resume", "--pull"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("uncommitted changes; not pulling"));
    assert_eq!(b.git(&["rev-parse", "HEAD"]), before);
    b.git(&["checkout", "--", "README.md"]);
    let out = b.convosync().args(["resume", "--pull"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("main fast-forwarded 1 commit(s) from origin"),
        "{stdout}"
    );
    assert!(stdout.contains("favourite pizza"), "{stdout}");
    assert_eq!(b.git(&["rev-parse", "HEAD"]), a.git(&["rev-parse", "HEAD"]));
    assert!(b.dir.join("feature.txt").exists());
}
