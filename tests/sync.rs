//! Syncing the handoff ref: concurrency without loss (many devices and linked worktrees saving at
//! once; the full size runs with `cargo test -- --ignored`), bounded time against bad remotes,
//! offline queueing, odd remotes (force-pushed, shallow clones, a garbage URL), and what a refusal
//! or a network problem is reported as.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::{contacts, git, out, within_guard, Device, Rng, TestEnv};
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

/// A pre-receive hook on the bare remote that refuses every `refs/convosync/*` update.
fn refuse_convosync_refs(env: &TestEnv, on: bool) {
    let hook = env.remote().join("hooks/pre-receive");
    if !on {
        std::fs::remove_file(&hook).unwrap();
        return;
    }
    crate::common::script(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/convosync/*) echo \"policy: $ref is not allowed on this server\" >&2; exit 1;; esac\ndone\nexit 0\n",
    );
}

fn stop_json(d: &Device, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": d.dir, "hook_event_name": "Stop", "stop_hook_active": false, "transcript_path": d.dir.join("no-transcript.jsonl")}).to_string()
}

fn start_json(d: &Device, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": d.dir, "hook_event_name": "SessionStart", "source": "startup"}).to_string()
}

#[test]
fn a_moved_remote_is_reported_with_gits_own_reason() {
    let env = TestEnv::new();
    let a = env.device("a");
    let gone = env.path().join("moved-away.git");
    a.git(&[
        "remote",
        "set-url",
        "origin",
        &format!("file://{}", gone.display()),
    ]);
    let o = a.convosync().arg("sync").output().unwrap();
    assert!(!o.status.success());
    let text = out(&o);
    assert!(
        text.contains("could not fetch from origin:")
            && text.contains("moved-away.git")
            && text.contains("does not appear to be a git repository"),
        "{text}"
    );
    assert!(!text.contains(": and the repository exists"), "{text}");
}

#[test]
fn a_server_refusal_is_a_refusal_not_a_queue() {
    let env = TestEnv::new();
    let a = env.device("a");
    refuse_convosync_refs(&env, true);
    write_draft(&a, "### Current Task\nrefused work\n");
    let o = a.convosync().arg("save-handoff").output().unwrap();
    let text = out(&o);
    assert!(
        text.contains("origin refused the handoff ref")
            && text.contains("refs/convosync/handoffs is not allowed on this server"),
        "{text}"
    );
    assert!(!text.contains("queued") && !text.contains("next sync"), "{text}");
    let o = a.convosync().arg("sync").output().unwrap();
    assert!(!o.status.success(), "sync fails when the server refuses");
    let text = out(&o);
    assert!(
        text.contains("refused the handoff ref") && text.contains("is not allowed on this server"),
        "{text}"
    );
    assert!(!text.contains("next sync"), "{text}");
    // The Stop hook saves the next draft and says the same, without promising a later push.
    write_draft(&a, "### Current Task\nmore refused work\n");
    let v = crate::hooks::hook(&a, "stop", &stop_json(&a, "s1")).unwrap();
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(
        msg.contains("handoff saved") && msg.contains("is not allowed on this server"),
        "{msg}"
    );
    assert!(!msg.contains("queued"), "{msg}");
}

#[test]
fn a_push_refusal_does_not_stop_fetching() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    refuse_convosync_refs(&env, true);
    write_draft(&a, "### Current Task\nrefused work\n");
    let v = crate::hooks::hook(&a, "stop", &stop_json(&a, "s1")).unwrap();
    assert!(v["systemMessage"].as_str().unwrap().contains("refused"), "{v}");
    // Another device gets its handoff through while the policy is lifted.
    refuse_convosync_refs(&env, false);
    write_draft(&b, "### Current Task\nb's fresh note\n");
    b.convosync().arg("save-handoff").assert().success();
    refuse_convosync_refs(&env, true);
    let v = crate::hooks::hook(&a, "session-start", &start_json(&a, "s2")).unwrap();
    assert!(
        crate::hooks::context(&v).contains("b's fresh note"),
        "the fetch still ran: {v}"
    );
}

#[test]
fn the_same_network_problem_is_told_once() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    write_draft(&b, "### Current Task\nb's note\n");
    b.convosync().arg("save-handoff").assert().success();
    a.convosync().arg("sync").assert().success();
    let gone = env.path().join("gone.git");
    a.git(&[
        "remote",
        "set-url",
        "origin",
        &format!("file://{}", gone.display()),
    ]);
    let first = crate::hooks::hook(&a, "session-start", &start_json(&a, "s1"));
    let said = first
        .as_ref()
        .and_then(|v| v["systemMessage"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        said.contains("could not reach origin") && said.contains("does not appear to be a git repository"),
        "{first:?}"
    );
    let second = crate::hooks::hook(&a, "session-start", &start_json(&a, "s2"));
    let again = second
        .as_ref()
        .and_then(|v| v["systemMessage"].as_str())
        .unwrap_or_default();
    assert!(!again.contains("could not reach"), "said once: {again}");
}

fn save_marker(d: &Device, device: &str, marker: &str) {
    write_draft(d, &format!("### Current Task\n{marker}\n"));
    let out = d
        .convosync()
        .env("CONVOSYNC_DEVICE", device)
        .arg("save-handoff")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stress(devices: usize, saves: usize) {
    let env = TestEnv::new();
    let clones: Vec<Device> = (0..devices).map(|i| env.device(&format!("d{i:02}"))).collect();
    // A second session on a linked worktree of the first clone: same machine, same device id,
    // its own draft, one shared ref and lock.
    let main_wt = &clones[0];
    main_wt.git(&["worktree", "add", "-q", "-b", "side", "../d00-side"]);
    let side = Device {
        name: "d00-side".into(),
        dir: env.path().join("d00-side"),
        home: main_wt.home.clone(),
    };
    let mut writers: Vec<(&Device, String)> = clones.iter().map(|d| (d, d.name.clone())).collect();
    writers.push((&side, main_wt.name.clone()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for (i, (dir, device)) in writers.iter().enumerate() {
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
                for n in 0..saves {
                    std::thread::sleep(Duration::from_millis(rng.below(30)));
                    save_marker(dir, device, &format!("marker {device} {i} #{n}"));
                }
            });
        }
    });
    eprintln!(
        "{} writers × {saves} saves in {:.1}s",
        writers.len(),
        start.elapsed().as_secs_f64()
    );
    for d in &clones {
        d.convosync().arg("sync").assert().success();
    }
    for d in &clones {
        d.convosync().arg("sync").assert().success();
    }
    let tip = clones[0].git(&["rev-parse", "refs/convosync/handoffs"]);
    for d in &clones {
        assert_eq!(
            d.git(&["rev-parse", "refs/convosync/handoffs"]),
            tip,
            "{} converged",
            d.name
        );
        for other in &clones {
            let file = d.git(&[
                "show",
                &format!("refs/convosync/handoffs:devices/{}.md", other.name),
            ]);
            // The newest save of any session writing as that device.
            let last: Vec<String> = writers
                .iter()
                .enumerate()
                .filter(|(_, (_, dev))| *dev == other.name)
                .map(|(i, (_, dev))| format!("marker {dev} {i} #{}", saves - 1))
                .collect();
            assert!(
                last.iter().any(|m| file.contains(m.as_str())),
                "{} sees {}'s newest: {file}",
                d.name,
                other.name
            );
        }
        git(&d.dir, &d.home, &["fsck", "--strict", "--no-progress"]);
    }
    git(
        &env.remote(),
        &clones[0].home,
        &["fsck", "--strict", "--no-progress"],
    );
    // Every version of every writer is in the history exactly once.
    let log = git(
        &env.remote(),
        &clones[0].home,
        &["log", "--no-merges", "--format=%B", "refs/convosync/handoffs"],
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines().filter_map(|l| l.strip_prefix("handoff from ")) {
        *counts
            .entry(
                line.split_once(": ")
                    .map(|(_, m)| m.to_string())
                    .unwrap_or_default(),
            )
            .or_default() += 1;
    }
    for (i, (_, device)) in writers.iter().enumerate() {
        for n in 0..saves {
            let m = format!("marker {device} {i} #{n}");
            assert_eq!(
                counts.get(&m).copied().unwrap_or(0),
                1,
                "{m} exactly once in history"
            );
        }
    }
}

#[test]
fn stress_small_loses_nothing() {
    stress(6, 5);
}

#[test]
#[ignore = "full size: cargo test -- --ignored"]
fn stress_full_16_devices_25_saves() {
    stress(16, 25);
}

#[test]
fn garbage_remote_url() {
    let env = TestEnv::new();
    let a = env.device("a");
    a.git(&["remote", "set-url", "origin", "::not a url::"]);
    write_draft(&a, "### Current Task\nqueued\n");
    let out = a.convosync().arg("save-handoff").output().unwrap();
    assert!(out.status.success(), "the handoff is committed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued"));
    let out = a.convosync().arg("sync").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not fetch from origin"));
}

/// A Stop whose push loses a race (another device pushes between its fetch and its push) fetches,
/// merges and pushes again within the same hook, with the wip snapshot in the same pushes: both
/// notes reach the remote, the snapshot is received once, and the ref is updated by two pushes
/// only (the other device's, then the merge).
#[test]
fn a_stop_that_loses_the_race_merges_and_pushes_in_the_same_hook() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    a.git(&["config", "convosync.wipPush", "true"]);
    let received = env.path().join("received");
    let hook = env.remote().join("hooks/post-receive");
    crate::common::script(
        &hook,
        &format!(
            "#!/bin/sh\nwhile read old new ref; do echo \"$ref\" >> '{}'; done\n",
            received.display()
        ),
    );
    // b's note is committed but not pushed yet; it goes out while a's Stop holds its draft.
    write_draft(&b, "### Current Task\nb was here first\n");
    b.convosync()
        .args(["save-handoff", "--no-push"])
        .assert()
        .success();
    std::fs::write(a.dir.join("README.md"), "# project\nuncommitted on a\n").unwrap();
    write_draft(&a, "### Current Task\na lost the race\n");
    let race = format!(
        "git -C '{}' push -q origin refs/convosync/handoffs:refs/convosync/handoffs",
        b.dir.display()
    );
    let input = serde_json::json!({"session_id": "s", "cwd": a.dir, "hook_event_name": "Stop", "stop_hook_active": true});
    let o = within_guard(
        a.convosync()
            .args(["hook", "stop"])
            .env("CONVOSYNC_FAILPOINT", "committed")
            .env("CONVOSYNC_FAILPOINT_RUN", &race)
            .write_stdin(input.to_string()),
    );
    assert!(o.status.success());
    assert!(out(&o).contains("handoff saved and pushed"), "{}", out(&o));
    assert!(env.pushed_note(&a).contains("a lost the race"));
    assert!(env.pushed_note(&b).contains("b was here first"));
    let received = std::fs::read_to_string(&received).unwrap();
    let count = |r: &str| received.lines().filter(|l| *l == r).count();
    assert_eq!(count("refs/convosync/handoffs"), 2, "{received}");
    assert_eq!(count("refs/convosync/wip/a"), 1, "{received}");
    // Nothing is left queued.
    let status = a.convosync().arg("status").output().unwrap();
    assert!(!out(&status).contains("waiting to be pushed"), "{}", out(&status));
}
