//! Evidence that nothing is lost: stress with many devices and linked worktrees saving at once,
//! kill -9 at random points of a save, and hostile repositories. CI runs small sizes; the full
//! sizes run with `cargo test -- --ignored`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{git, Device, TestEnv};
use crate::core::write_draft;

/// A tiny deterministic generator (xorshift), so failures can be replayed from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
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

fn crash(iterations: usize) {
    let env = TestEnv::new();
    let a = env.device("a");
    let bin = assert_cmd::cargo::cargo_bin("convosync");
    let mut rng = Rng(0xdead_beef);
    // Calibrate: kill points spread over the whole length of a save on this machine.
    write_draft(&a, "### Current Task\ncalibration\n");
    let t = Instant::now();
    a.convosync()
        .args(["save-handoff", "--no-push"])
        .env("CONVOSYNC_DEVICE", "a")
        .assert()
        .success();
    let span = (t.elapsed().as_micros() as u64 * 12 / 10).max(1000);
    let (mut drafts_left, mut committed) = (0, 0);
    for n in 0..iterations {
        let marker = format!("crash marker {n}");
        write_draft(&a, &format!("### Current Task\n{marker}\n"));
        let mut child = std::process::Command::new(&bin)
            .current_dir(&a.dir)
            .env("HOME", &a.home)
            .env("GIT_CONFIG_GLOBAL", a.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("CONVOSYNC_DEVICE", "a")
            .args(["save-handoff", "--no-push"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        // SIGKILL, like a power cut or kill -9.
        let _ = child.kill();
        let _ = child.wait();
        let draft = a.dir.join(".convosync/session-handoff-draft.md").exists();
        let shown =
            crate::common::git_output(&a.dir, &a.home, &["show", "refs/convosync/handoffs:devices/a.md"]);
        let on_ref = String::from_utf8_lossy(&shown.stdout).contains(&marker);
        assert!(
            draft || on_ref,
            "iteration {n}: neither the draft nor the handoff exists"
        );
        if draft {
            drafts_left += 1;
            // The lock is never stuck: finishing the save works at once.
            // The kill released the lock: no wait for it, no error.
            let out = a
                .convosync()
                .args(["save-handoff", "--no-push"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains("lock"),
                "lock released by the kill: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(a
                .git(&["show", "refs/convosync/handoffs:devices/a.md"])
                .contains(&marker));
        } else {
            committed += 1;
        }
        if n % 25 == 0 {
            git(&a.dir, &a.home, &["fsck", "--no-progress", "--no-dangling"]);
        }
    }
    eprintln!("{iterations} kills over {span} µs: {drafts_left} left the draft (then saved), {committed} had committed");
    git(
        &a.dir,
        &a.home,
        &["fsck", "--strict", "--no-progress", "--no-dangling"],
    );
    let log = a.git(&["log", "--format=%s", "refs/convosync/handoffs"]);
    for n in 0..iterations {
        assert_eq!(
            log.matches(&format!("crash marker {n}\n")).count()
                + usize::from(log.ends_with(&format!("crash marker {n}"))),
            1,
            "marker {n} once"
        );
    }
}

#[test]
fn crash_small_never_loses_a_draft() {
    crash(40);
}

#[test]
#[ignore = "full size: cargo test -- --ignored"]
fn crash_full_200_kills() {
    crash(200);
}

fn fails_clearly(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

fn hook_is_quiet_or_json(d: &Device, event: &str) {
    let input = serde_json::json!({"session_id":"h","cwd":d.dir,"source":"startup","stop_hook_active":false})
        .to_string();
    let out = d
        .convosync()
        .args(["hook", event])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    if !s.trim().is_empty() {
        serde_json::from_str::<serde_json::Value>(s.trim()).expect("valid JSON");
    }
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

#[test]
fn unexpected_tree_contents_and_enormous_blobs() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    write_draft(&b, "### Current Task\nthe real one\n");
    b.convosync().arg("save-handoff").assert().success();
    // Build a hostile tree by hand: stray files, a directory where a device file should be, a
    // non-UTF-8 file, a 50 MB file, a file that is not .md.
    let work = env.path().join("hostile");
    git(
        env.path(),
        &a.home,
        &["clone", "-q", &env.remote_url(), "hostile"],
    );
    git(
        &work,
        &a.home,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/convosync/handoffs:refs/convosync/handoffs",
        ],
    );
    git(&work, &a.home, &["checkout", "-q", "refs/convosync/handoffs"]);
    std::fs::write(work.join("ROOT.md"), "stray\n").unwrap();
    std::fs::create_dir_all(work.join("devices/dir.md")).unwrap();
    std::fs::write(work.join("devices/dir.md/x"), "x").unwrap();
    std::fs::write(
        work.join("devices/latin1.md"),
        b"## Handoff from latin1\n\xe9\xe8\n",
    )
    .unwrap();
    std::fs::write(work.join("devices/notes.txt"), "not a handoff\n").unwrap();
    let mut big = b"## Handoff from huge\n**Timestamp:** 2026-01-01T00:00:00Z\n\n### Current Task\n".to_vec();
    big.resize(50 << 20, b'x');
    std::fs::write(work.join("devices/huge.md"), big).unwrap();
    git(&work, &a.home, &["add", "-A"]);
    git(&work, &a.home, &["commit", "-q", "-m", "hostile"]);
    git(
        &work,
        &a.home,
        &["push", "-q", "origin", "HEAD:refs/convosync/handoffs"],
    );
    let out = crate::common::within_guard(a.convosync().arg("resume"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the real one"), "{text}");
    assert!(
        !text.contains("xxxxxxxxxx") && !text.contains("stray"),
        "hostile files not shown"
    );
    let input = serde_json::json!({"session_id":"h","cwd":a.dir,"source":"startup"}).to_string();
    let ctx = crate::hooks::context(&crate::hooks::hook(&a, "session-start", &input).unwrap());
    assert!(ctx.contains("the real one") && ctx.len() < 10_000);
    // Saving on top keeps working and keeps every device's file; what is not a device file is
    // left out of the new tree, so the next push heals the ref.
    write_draft(&a, "### Current Task\nstill fine\n");
    a.convosync().arg("save-handoff").assert().success();
    let files = a.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert!(
        !files.contains("ROOT.md") && !files.contains("dir.md/x") && !files.contains("notes.txt"),
        "{files}"
    );
    assert!(
        files.contains("devices/huge.md") && files.contains("devices/latin1.md"),
        "{files}"
    );
}

#[test]
fn symlinked_drafts_are_refused() {
    let env = TestEnv::new();
    let a = env.device("a");
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("secret.txt"), "### Current Task\nnot yours\n").unwrap();
    std::fs::create_dir_all(a.dir.join(".convosync")).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.join("secret.txt"),
        a.dir.join(".convosync/session-handoff-draft.md"),
    )
    .unwrap();
    assert!(fails_clearly(&a, &["save-handoff"]).contains("is a symlink"));
    assert!(elsewhere.join("secret.txt").exists());
    std::fs::remove_dir_all(a.dir.join(".convosync")).unwrap();
    std::fs::write(
        elsewhere.join("session-handoff-draft.md"),
        "### Current Task\nvia a linked dir\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, a.dir.join(".convosync")).unwrap();
    assert!(fails_clearly(&a, &["save-handoff"]).contains("is a symlink"));
    assert!(
        elsewhere.join("session-handoff-draft.md").exists(),
        "nothing deleted through the link"
    );
    hook_is_quiet_or_json(&a, "stop");
}

#[test]
fn full_disk_keeps_the_draft() {
    let env = TestEnv::new();
    let a = env.device("a");
    // A draft that does not compress, so writing its objects needs more than the limit allows.
    let mut rng = Rng(42);
    let body: String = (0..2000).map(|_| format!("- {:016x}\n", rng.next())).collect();
    write_draft(
        &a,
        &format!("### Current Task\nbig\n\n### Progress So Far\n{body}"),
    );
    let bin = assert_cmd::cargo::cargo_bin("convosync");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 2; exec '{}' save-handoff --no-push",
            bin.display()
        ))
        .current_dir(&a.dir)
        .env("HOME", &a.home)
        .env("GIT_CONFIG_GLOBAL", a.home.join(".gitconfig"))
        .env("CONVOSYNC_DEVICE", "a")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the save cannot succeed");
    assert!(
        err.starts_with("convosync: "),
        "a clear message, not a crash: {err}"
    );
    assert!(
        a.dir.join(".convosync/session-handoff-draft.md").exists(),
        "draft kept"
    );
    git(&a.dir, &a.home, &["fsck", "--no-progress", "--no-dangling"]);
    a.convosync()
        .args(["save-handoff", "--no-push"])
        .assert()
        .success();
}

#[test]
fn read_only_git_dir() {
    let env = TestEnv::new();
    let a = env.device("a");
    write_draft(&a, "### Current Task\nread-only\n");
    let bin = assert_cmd::cargo::cargo_bin("convosync");
    // chmod does not stop root: use a read-only bind mount in a private mount namespace.
    let script = format!(
        "mount --bind '{git}' '{git}' && mount -o remount,ro,bind '{git}' && exec '{bin}' save-handoff --no-push",
        git = a.dir.join(".git").display(),
        bin = bin.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(&a.dir)
        .env("HOME", &a.home)
        .env("GIT_CONFIG_GLOBAL", a.home.join(".gitconfig"))
        .env("CONVOSYNC_DEVICE", "a")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("mount") || err.contains("unshare") {
        eprintln!("skipped: cannot make a read-only mount here ({})", err.trim());
        return;
    }
    assert!(!out.status.success());
    assert!(
        err.starts_with("convosync: ") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(
        a.dir.join(".convosync/session-handoff-draft.md").exists(),
        "draft kept"
    );
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
