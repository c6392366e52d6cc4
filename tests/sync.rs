//! Syncing the handoff ref: concurrency without loss, bounded time against bad remotes, offline
//! queueing, and odd remotes (force-pushed, shallow clones).

use std::net::TcpListener;

use crate::common::{contacts, within_guard, Device, TestEnv};
use crate::core::write_draft;

fn save(d: &Device, marker: &str) -> std::process::Output {
    write_draft(d, &format!("### Current Task\n{marker}\n"));
    d.convosync().arg("save-handoff").output().unwrap()
}

#[test]
fn eight_clones_saving_at_once_lose_nothing() {
    let env = TestEnv::new();
    let devices: Vec<Device> = (0..8).map(|i| env.device(&format!("dev{i}"))).collect();
    std::thread::scope(|s| {
        for d in &devices {
            s.spawn(move || {
                for n in 0..5 {
                    let out = save(d, &format!("marker {} #{n}", d.name));
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                }
            });
        }
    });
    for d in &devices {
        d.convosync().arg("sync").assert().success();
    }
    for d in &devices {
        d.convosync().arg("sync").assert().success();
        let files = d.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
        assert_eq!(files.lines().count(), 8, "{}: {files}", d.name);
        for other in &devices {
            let text = d.git(&[
                "show",
                &format!("refs/convosync/handoffs:devices/{}.md", other.name),
            ]);
            assert!(
                text.contains(&format!("marker {} #4", other.name)),
                "{} sees {}'s newest:\n{text}",
                d.name,
                other.name
            );
        }
    }
    // Every one of the 40 versions is in the remote's history.
    let log = crate::common::git(
        &env.remote(),
        &devices[0].home,
        &["log", "--format=%B", "refs/convosync/handoffs"],
    );
    for d in &devices {
        for n in 0..5 {
            let m = format!("marker {} #{n}", d.name);
            assert_eq!(log.matches(&m).count(), 1, "{m} once in history");
        }
    }
    crate::common::git(&env.remote(), &devices[0].home, &["fsck", "--strict"]);
}

/// Accepts connections and never answers.
fn hung_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// The deadline is what ends a command against a remote that never answers: the command returns
/// (with its exit code, under a hang guard far above the 1 s budget) while the hung listener
/// still holds the connection it accepted, and the handoff is committed and queued.
#[test]
fn bad_remotes_return_within_the_budget_and_keep_the_handoff() {
    let env = TestEnv::new();
    let a = env.device("a");
    let (hung, port) = hung_listener();
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (url, hangs) in [
        (format!("http://127.0.0.1:{port}/repo.git"), true),
        (format!("ssh://git@127.0.0.1:{port}/repo.git"), true),
        (format!("http://127.0.0.1:{refused}/repo.git"), false),
        ("https://convosync-test.invalid/repo.git".to_string(), false),
    ] {
        a.git(&["remote", "set-url", "origin", &url]);
        write_draft(&a, &format!("### Current Task\noffline work for {url}\n"));
        let out = within_guard(a.convosync().args(["save-handoff", "--timeout", "1"]));
        assert!(out.status.success(), "the handoff is committed even offline");
        if hangs {
            assert!(
                contacts(&hung) > 0,
                "{url}: the hung remote was reached and never answered"
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("queued") || stdout.contains("using the cached"),
            "{url}: {stdout}"
        );
        let file = a.git(&["show", "refs/convosync/handoffs:devices/a.md"]);
        assert!(file.contains(&format!("offline work for {url}")));
        let out = within_guard(a.convosync().args(["sync", "--timeout", "1"]));
        assert!(!out.status.success(), "sync reports the failure");
        if hangs {
            assert!(contacts(&hung) > 0, "{url}: sync reached the hung remote");
        }
    }
}

#[test]
fn offline_save_is_delivered_later() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    let url = env.remote_url();
    a.git(&["remote", "set-url", "origin", "http://127.0.0.1:9/nothing.git"]);
    assert!(save(&a, "written on the train").status.success());
    a.git(&["remote", "set-url", "origin", &url]);
    // The next sync (or hook) delivers it.
    a.convosync().arg("sync").assert().success();
    let seen = b.convosync().arg("resume").output().unwrap();
    assert!(String::from_utf8_lossy(&seen.stdout).contains("written on the train"));
}

#[test]
fn force_pushed_remote_ref_is_merged_not_lost() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    assert!(save(&a, "a's note").status.success());
    // Someone replaces the remote ref with an unrelated history.
    assert!(save(&b, "b's note").status.success());
    b.git(&["branch", "-q", "unrelated", "main"]);
    b.git(&[
        "push",
        "-q",
        "--force",
        "origin",
        "unrelated:refs/convosync/handoffs",
    ]);
    // a's sync must not lose its handoff, and must not fail.
    a.convosync().arg("sync").assert().success();
    let files = a.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert!(files.contains("devices/a.md"), "{files}");
}

#[test]
fn shallow_clone_works() {
    let env = TestEnv::new();
    let a = env.device("a");
    assert!(save(&a, "from the full clone").status.success());
    let home = a.home.clone();
    crate::common::git(
        env.path(),
        &home,
        &["clone", "-q", "--depth", "1", &env.remote_url(), "shallow"],
    );
    let s = Device {
        name: "shallow".into(),
        dir: env.path().join("shallow"),
        home,
    };
    let out = s.convosync().arg("resume").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the full clone"));
    assert!(save(&s, "from the shallow clone").status.success());
    let seen = a.convosync().arg("resume").output().unwrap();
    assert!(String::from_utf8_lossy(&seen.stdout).contains("from the shallow clone"));
}

#[test]
fn only_the_handoff_ref_travels() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    // b has a branch and a tag on the remote that a has not fetched.
    b.git(&["tag", "v1"]);
    b.git(&["push", "-q", "origin", "v1", "main:other-branch"]);
    a.git(&["branch", "-q", "local-only"]);
    assert!(save(&a, "note").status.success());
    a.convosync().arg("sync").assert().success();
    assert!(a.git(&["tag", "--list"]).is_empty(), "no tags fetched");
    assert!(
        !a.git(&["branch", "-a"]).contains("other-branch"),
        "no branches fetched"
    );
    let remote_refs = crate::common::git(&env.remote(), &a.home, &["for-each-ref", "--format=%(refname)"]);
    assert!(
        !remote_refs.contains("local-only"),
        "no branches pushed: {remote_refs}"
    );
}

#[test]
fn convosync_remote_setting_is_used() {
    let env = TestEnv::new();
    let a = env.device("a");
    let mirror = env.path().join("mirror.git");
    crate::common::git(env.path(), &a.home, &["init", "-q", "--bare", "mirror.git"]);
    a.git(&["remote", "add", "backup", &format!("file://{}", mirror.display())]);
    a.git(&["config", "convosync.remote", "backup"]);
    assert!(save(&a, "to the backup").status.success());
    crate::common::git(
        &mirror,
        &a.home,
        &["rev-parse", "--verify", "refs/convosync/handoffs"],
    );
    let origin = crate::common::git_output(
        &env.remote(),
        &a.home,
        &["rev-parse", "--verify", "refs/convosync/handoffs"],
    );
    assert!(!origin.status.success(), "origin untouched");
}
