//! Benchmarks of the real binary on a repository whose handoff ref has a long history and many
//! devices: the hooks (SessionStart with a warm cache, a Stop with nothing to do), `save-handoff`,
//! `resume` and `sync`. Prints medians and p95; asserts nothing.
//!
//! cargo bench --bench perf

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use convosync::handoff::{CommitRef, Handoff, Section};
use convosync::store::{commit_message, Store};

const REF: &str = "refs/convosync/handoffs";

fn handoff(device: &str, i: i64) -> Handoff {
    Handoff {
        device: device.to_string(),
        timestamp: Utc.timestamp_opt(1_700_000_000 + i * 60, 0).unwrap(),
        commit: Some(CommitRef {
            sha: format!("{:040x}", i),
            subject: "work in progress".into(),
        }),
        branch: Some("main".into()),
        session: Some(format!("session-{i}")),
        author: None,
        sections: vec![
            Section {
                title: "Current Task".into(),
                body: format!("Task number {i} on {device}"),
            },
            Section {
                title: "Progress So Far".into(),
                body: "- ✅ one\n- ⏳ two\n".repeat(5).trim().into(),
            },
            Section {
                title: "Important Context".into(),
                body: "- The user prefers small commits".into(),
            },
        ],
    }
}

/// A clone-like repo whose handoff ref has `commits` commits spread over `devices` devices.
fn build(dir: &Path, commits: usize, devices: usize) {
    let repo = git2::Repository::init(dir).unwrap();
    let mut cfg = repo.config().unwrap();
    cfg.set_str("user.name", "Bench").unwrap();
    cfg.set_str("user.email", "bench@example.com").unwrap();
    let store = Store::new(&repo, REF);
    for i in 0..commits {
        let h = handoff(&format!("device-{}", i % devices), i as i64);
        store.put(&h, &commit_message(&h)).unwrap();
    }
}

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[v.len() / 2], v[v.len() * 95 / 100])
}

/// Run a hook with `input` on stdin, as Claude Code does.
fn hook(bin: &Path, dir: &Path, event: &str, input: &str) {
    use std::io::Write;
    let mut child = Command::new(bin)
        .current_dir(dir)
        .env("CONVOSYNC_DEVICE", "bench-device")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Warm cache: the handoffs are already fetched, so no network in the measured path.
        .env("CONVOSYNC_TIMEOUT", "0")
        .args(["hook", event])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

fn run(bin: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(bin)
        .current_dir(dir)
        .env("CONVOSYNC_DEVICE", "bench-device")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn main() {
    let bin = Path::new(env!("CARGO_BIN_EXE_convosync"));
    println!("{:<44} {:>10} {:>10}", "benchmark", "median", "p95");
    for commits in [100usize, 10_000] {
        let tmp = tempfile::tempdir().unwrap();
        let t = Instant::now();
        build(tmp.path(), commits, 100);
        if std::env::var_os("BENCH_KEEP").is_some() {
            let _ = std::fs::remove_dir_all("/tmp/convosync-bench");
            Command::new("cp")
                .args(["-r"])
                .arg(tmp.path())
                .arg("/tmp/convosync-bench")
                .status()
                .unwrap();
        }
        eprintln!("(built {commits} commits in {:.1}s)", t.elapsed().as_secs_f64());
        let start = serde_json::json!({"session_id":"bench","cwd":tmp.path(),"source":"startup"}).to_string();
        let (med, p95) = time(30, || hook(bin, tmp.path(), "session-start", &start));
        report(
            &format!("hook session-start ({commits} commits, 100 devices)"),
            med,
            p95,
        );
        let stop =
            serde_json::json!({"session_id":"bench","cwd":tmp.path(),"stop_hook_active":false}).to_string();
        let (med, p95) = time(30, || hook(bin, tmp.path(), "stop", &stop));
        report(&format!("hook stop, nothing to do ({commits} commits)"), med, p95);
        let draft = tmp.path().join(".convosync/session-handoff-draft.md");
        std::fs::create_dir_all(draft.parent().unwrap()).unwrap();
        let mut n = 0;
        let (med, p95) = time(30, || {
            n += 1;
            std::fs::write(&draft, format!("### Current Task\nbench run {n}\n")).unwrap();
            run(bin, tmp.path(), &["save-handoff", "--no-push"]);
        });
        report(
            &format!("save-handoff ({commits} commits, 100 devices)"),
            med,
            p95,
        );
        let (med, p95) = time(30, || run(bin, tmp.path(), &["resume", "--offline"]));
        report(
            &format!("resume --offline ({commits} commits, 100 devices)"),
            med,
            p95,
        );
        let (med, p95) = time(10, || run(bin, tmp.path(), &["history", "--limit", "20"]));
        report(&format!("history ({commits} handoffs)"), med, p95);
        let (med, p95) = time(10, || {
            let _ = Command::new(bin)
                .current_dir(tmp.path())
                .args(["search", "small", "commits"])
                .output();
        });
        report(&format!("search ({commits} handoffs)"), med, p95);
        bench_sync(bin, commits);
    }
}

/// `sync` against a local bare remote that holds the same long history, with one new handoff
/// from another device each time; reports time and the protocol bytes git traced.
fn bench_sync(bin: &Path, commits: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    build(&work, commits, 100);
    let remote = tmp.path().join("remote.git");
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    git(tmp.path(), &["init", "-q", "--bare", "remote.git"]);
    let url = format!("file://{}", remote.display());
    git(&work, &["remote", "add", "origin", &url]);
    git(&work, &["push", "-q", "origin", REF]);
    // A second device writes into the remote between our syncs.
    let other = tmp.path().join("other");
    git(tmp.path(), &["init", "-q", "other"]);
    git(&other, &["remote", "add", "origin", &url]);
    git(&other, &["fetch", "-q", "origin", &format!("{REF}:{REF}")]);
    let trace = tmp.path().join("trace");
    let mut bytes = Vec::new();
    let mut times = Vec::new();
    for n in 0..21 {
        {
            let repo = git2::Repository::open(&other).unwrap();
            let h = handoff("remote-writer", 100_000 + n);
            Store::new(&repo, REF).put(&h, &commit_message(&h)).unwrap();
        }
        git(&other, &["push", "-q", "origin", REF]);
        let _ = std::fs::remove_file(&trace);
        let t = Instant::now();
        let out = Command::new(bin)
            .current_dir(&work)
            .env("CONVOSYNC_DEVICE", "bench-device")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TRACE_PACKET", &trace)
            .arg("sync")
            .output()
            .unwrap();
        times.push(t.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        bytes.push(std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0));
    }
    times.remove(0);
    times.sort();
    let (med, p95) = (times[times.len() / 2], times[times.len() * 95 / 100]);
    bytes.sort();
    report(
        &format!("sync, 1 new remote handoff ({commits} commits)"),
        med,
        p95,
    );
    println!(
        "{:<44} {:>8} bytes of protocol trace (median)",
        "",
        bytes[bytes.len() / 2]
    );
}

fn report(name: &str, med: Duration, p95: Duration) {
    println!(
        "{name:<44} {:>8.2}ms {:>8.2}ms",
        med.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3
    );
}
