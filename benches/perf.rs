//! Benchmarks of the real binary, as Claude Code and users run it, on repositories whose handoff
//! ref has 100 and 10,000 commits over 100 devices: the hooks (SessionStart with a warm cache, a
//! Stop with nothing to do), `save-handoff`, `resume`, `history`, `search`, `sync` against a local
//! bare remote, and, for comparison, what the original plugin did on resume (`git pull`, then read
//! and print the appended handoff file) on the same data. Prints a markdown table (median, p95,
//! peak RSS of one process); asserts nothing.
//!
//! `history` and `search` rows are warm (the history cache is built by a run before the timed
//! ones); the "cold" row deletes the cache before each run, so it times building it.
//! Also the hooks and `wip save` on worktrees of 100 and 100,000 files (and 1,000,000 with
//! `CONVOSYNC_BENCH_HUGE=1`; `CONVOSYNC_BENCH_WORKTREE_ONLY=1` runs only those), `wip save` with
//! the untracked cache off and on.
//!
//! cargo bench --bench perf
//!
//! `CONVOSYNC_BENCH_ONLY=<text>[|<text>...]` runs only the rows whose name contains one of the
//! texts, for example `CONVOSYNC_BENCH_ONLY='history|search'`; the fixtures are still built, and
//! the sync, fetching session-start and original-plugin rows run as one group.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use convosync::fixture::{commit_message, format, CommitRef, Handoff, Section, Store};

#[path = "../tests/common/hermetic.rs"]
mod hermetic;

use hermetic::hermetic;

const REF: &str = "refs/convosync/handoffs";

/// The HOME of every git and convosync process the bench runs, empty: no user's config changes
/// what is measured.
fn home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

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
        agent: None,
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

fn git(dir: &Path, args: &[&str]) {
    // No automatic gc or maintenance started in the background of a measured loop (with 10,000
    // loose objects it would, and hold the repository's locks).
    let quiet = ["-c", "gc.auto=0", "-c", "maintenance.auto=false"];
    hermetic::git(dir, home(), &[&quiet[..], args].concat());
}

/// A repo at `dir` whose handoff ref has `commits` commits spread over `devices` devices.
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

/// The same data as the original plugin kept it: every handoff appended to
/// `.convosync/session-handoff.md` on the working branch, one commit each, the file holding the
/// newest handoff of each device (its cleanup on resume).
fn build_legacy(dir: &Path, commits: usize, devices: usize) {
    let repo = git2::Repository::init(dir).unwrap();
    let sig = git2::Signature::now("Bench", "bench@example.com").unwrap();
    let mut newest: Vec<String> = vec![String::new(); devices];
    let mut parent: Option<git2::Oid> = None;
    for i in 0..commits {
        newest[i % devices] = format!(
            "---\n{}",
            format::render(&handoff(&format!("device-{}", i % devices), i as i64))
        );
        let file: String = newest.concat();
        let blob = repo.blob(file.as_bytes()).unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("session-handoff.md", blob, 0o100644).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert(".convosync", sub, 0o040000).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let parents: Vec<git2::Commit<'_>> =
            parent.map(|p| repo.find_commit(p).unwrap()).into_iter().collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        parent = Some(
            repo.commit(Some("refs/heads/main"), &sig, &sig, "handoff", &tree, &refs)
                .unwrap(),
        );
    }
    repo.set_head("refs/heads/main").unwrap();
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
}

/// Median, p95 and the peak RSS of one run.
struct Sample {
    median: Duration,
    p95: Duration,
    rss_kb: i64,
}

/// Run `cmd` (with `stdin` piped in) and wait for it with wait4 to read its own peak RSS.
fn run_once(mut cmd: Command, stdin: Option<&str>) -> (Duration, i64) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let mut status = 0;
    // SAFETY: rusage is plain data filled in by the kernel; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    // Already reaped by wait4; this only lets the handle go.
    let _ = child.try_wait();
    assert!(
        std::process::ExitStatus::from_raw(status).success() || stdin.is_some(),
        "{cmd:?} failed"
    );
    (elapsed, usage.ru_maxrss)
}

fn sample(runs: usize, mut setup: impl FnMut(usize) -> (Command, Option<String>)) -> Sample {
    let (c, input) = setup(usize::MAX);
    run_once(c, input.as_deref()); // warm-up
    let mut times = Vec::new();
    let mut rss = 0;
    for i in 0..runs {
        let (c, input) = setup(i);
        let (t, r) = run_once(c, input.as_deref());
        times.push(t);
        rss = rss.max(r);
    }
    times.sort();
    Sample {
        median: times[times.len() / 2],
        p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
        rss_kb: rss,
    }
}

fn convosync(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    hermetic(&mut c, home())
        .current_dir(dir)
        .env("CONVOSYNC_DEVICE", "bench-device")
        .args(args);
    c
}

fn row(name: &str, s: &Sample, target: &str) {
    println!(
        "| {name} | {:.1} ms | {:.1} ms | {:.1} MB | {target} |",
        s.median.as_secs_f64() * 1e3,
        s.p95.as_secs_f64() * 1e3,
        s.rss_kb as f64 / 1024.0
    );
}

/// Build the fixtures in a child process of this bench, so the measuring process stays small:
/// a child's peak RSS starts from the size of the process that forked it. `config`: the config
/// dir (and so the key) the notes are written with.
fn build_in_child(kind: &str, dir: &Path, commits: usize, config: Option<&Path>) {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--build", kind, &commits.to_string()]).arg(dir);
    if let Some(c) = config {
        child.env("CONVOSYNC_CONFIG_DIR", c);
    }
    let status = child.status().unwrap();
    assert!(status.success());
    // Let the fsynced writes of the build settle before measuring anything.
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(1));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--build") {
        let (kind, commits, dir) = (
            &args[i + 1],
            args[i + 2].parse().unwrap(),
            Path::new(&args[i + 3]),
        );
        match kind.as_str() {
            "ref" => build(dir, commits, 100),
            "encrypted" | "inflating" => {
                let repo = git2::Repository::init(dir).unwrap();
                let key = convosync::fixture::key().expect("CONVOSYNC_CONFIG_DIR holds a key");
                Store::new(&repo, REF).record_key(&key.id()).unwrap();
                drop(repo);
                build(dir, commits, 100);
                if kind == "inflating" {
                    add_inflating_objects(dir);
                }
            }
            _ => build_legacy(dir, commits, 100),
        }
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_convosync"));
    let only = std::env::var("CONVOSYNC_BENCH_ONLY").ok();
    let want = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split('|').any(|o| name.contains(o)))
    };
    println!("| benchmark | median | p95 | peak RSS | target |");
    println!("| --- | --- | --- | --- | --- |");
    if want("worktree") {
        worktree_sizes(bin);
    }
    if std::env::var_os("CONVOSYNC_BENCH_WORKTREE_ONLY").is_some() {
        return;
    }
    if want("encrypted") {
        encrypted(bin);
    }
    if want("inflating") {
        inflating(bin);
    }
    if args.iter().any(|a| a == "encrypted") {
        return;
    }
    for commits in [100usize, 10_000] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work");
        let t = Instant::now();
        build_in_child("ref", &dir, commits, None);
        eprintln!(
            "(built a {commits}-commit handoff ref in {:.1}s)",
            t.elapsed().as_secs_f64()
        );
        // A project with a commit on its branch, as users' are.
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "project"]);
        let label = |what: &str| format!("{what} ({commits} commits, 100 devices)");

        let start = serde_json::json!({"session_id":"bench","cwd":dir,"source":"startup"}).to_string();
        if want("hook session-start, warm") {
            let s = sample(30, |_| {
                // Warm cache: the handoffs are fetched already, so no network in the measured path.
                let mut c = convosync(bin, &dir, &["hook", "session-start"]);
                c.env("CONVOSYNC_TIMEOUT", "0");
                (c, Some(start.clone()))
            });
            row(&label("hook session-start, warm"), &s, "< 10 ms, < 20 MB");
        }
        if want("git rev-parse") {
            let s = sample(30, |_| {
                let mut c = Command::new("git");
                hermetic(&mut c, home())
                    .current_dir(&dir)
                    .args(["rev-parse", "HEAD"]);
                (c, None)
            });
            row(
                &label("git rev-parse HEAD (comparison)"),
                &s,
                "session start without network < 2x this",
            );
        }
        if want("hook stop") {
            let stop =
                serde_json::json!({"session_id":"bench","cwd":dir,"stop_hook_active":false}).to_string();
            let s = sample(30, |_| {
                (convosync(bin, &dir, &["hook", "stop"]), Some(stop.clone()))
            });
            row(&label("hook stop, nothing to do"), &s, "< 5 ms");
        }
        if want("save-handoff") {
            let draft = dir.join(".convosync/session-handoff-draft.md");
            std::fs::create_dir_all(draft.parent().unwrap()).unwrap();
            let s = sample(30, |i| {
                std::fs::write(&draft, format!("### Current Task\nbench run {i}\n")).unwrap();
                (convosync(bin, &dir, &["save-handoff", "--no-push"]), None)
            });
            row(&label("save-handoff"), &s, "< 20 ms");
        }
        if want("resume --offline") {
            let s = sample(30, |_| (convosync(bin, &dir, &["resume", "--offline"]), None));
            row(&label("resume --offline"), &s, "");
        }
        // The history cache lives in the state dir; a cold run starts without it.
        let state = dir.join(".git/convosync");
        let drop_cache = || {
            for e in std::fs::read_dir(&state).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with("history") {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
        };
        if want("history, cold") {
            let s = sample(10, |_| {
                drop_cache();
                (convosync(bin, &dir, &["history", "--limit", "20"]), None)
            });
            row(&label("history, cold (cache built)"), &s, "");
        }
        if want("history, warm") {
            // `sample` runs once untimed first: that run brings the cache up to the tip.
            let s = sample(10, |_| {
                (convosync(bin, &dir, &["history", "--limit", "20"]), None)
            });
            row(&label("history, warm"), &s, "< 100 ms");
        }
        if want("search, warm") {
            let s = sample(10, |_| {
                (convosync(bin, &dir, &["search", "small", "commits"]), None)
            });
            row(&label("search, warm"), &s, "< 100 ms");
        }
        if !want("sync") && !want("session-start, fetching") && !want("original plugin") {
            continue;
        }

        // Sync against a local bare remote holding the same history; another device pushes one
        // new handoff before each run.
        git(tmp.path(), &["init", "-q", "--bare", "remote.git"]);
        // No gc in the remote's background after each push, between measured runs.
        git(
            &tmp.path().join("remote.git"),
            &["config", "receive.autogc", "false"],
        );
        let url = format!("file://{}", tmp.path().join("remote.git").display());
        git(&dir, &["remote", "add", "origin", &url]);
        git(&dir, &["push", "-q", "origin", REF]);
        let other = tmp.path().join("other");
        git(tmp.path(), &["init", "-q", "other"]);
        git(&other, &["remote", "add", "origin", &url]);
        git(&other, &["fetch", "-q", "origin", &format!("{REF}:{REF}")]);
        let writer = |n: usize| {
            let repo = git2::Repository::open(&other).unwrap();
            let h = handoff("remote-writer", 1_000_000 + n as i64);
            Store::new(&repo, REF).put(&h, &commit_message(&h)).unwrap();
            git(&other, &["push", "-q", "origin", REF]);
        };
        let s = sample(20, |i| {
            writer(i);
            (convosync(bin, &dir, &["sync"]), None)
        });
        row(&label("sync, 1 new handoff, local remote"), &s, "< 50 ms");
        // What crosses the wire for such a sync: git's packet trace (protocol lines, sizes).
        writer(20_000);
        let trace = tmp.path().join("packet-trace");
        let mut c = convosync(bin, &dir, &["sync"]);
        c.env("GIT_TRACE_PACKET", &trace);
        run_once(c, None);
        let lines = std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .count();
        println!(
            "| {} | {lines} packet lines | | | must not grow with history |",
            label("sync, protocol traffic for 1 new handoff")
        );
        let fetch_spec = format!("+{REF}:refs/convosync/remote/origin/convosync/handoffs");
        let s = sample(20, |i| {
            writer(10_000 + i);
            let mut c = Command::new("git");
            hermetic(&mut c, home())
                .current_dir(&dir)
                // As convosync fetches: no gc started in the background afterwards.
                .args(["fetch", "-q", "--no-auto-gc", "origin", &fetch_spec]);
            (c, None)
        });
        row(
            &label("git fetch of the handoff ref, 1 new handoff (comparison)"),
            &s,
            "",
        );
        for (mode, i0, target) in [
            ("sync", 10_100, "< 1.5x the git fetch"),
            ("async", 10_200, "no network in the hook"),
        ] {
            let s = sample(20, |i| {
                writer(i0 + i % 100);
                let mut c = convosync(bin, &dir, &["hook", "session-start"]);
                c.env("CONVOSYNC_START", mode);
                (c, Some(start.clone()))
            });
            row(
                &label(&format!(
                    "hook session-start, local bare remote, 1 new handoff, {mode}"
                )),
                &s,
                target,
            );
        }

        // The original plugin's resume on the same data: `git pull` of the working branch, then
        // read and print the appended handoff file.
        let legacy = tmp.path().join("legacy-seed");
        let t = Instant::now();
        build_in_child("legacy", &legacy, commits, None);
        eprintln!(
            "(built the original plugin's layout in {:.1}s)",
            t.elapsed().as_secs_f64()
        );
        git(tmp.path(), &["init", "-q", "--bare", "-b", "main", "legacy.git"]);
        let lurl = format!("file://{}", tmp.path().join("legacy.git").display());
        git(&legacy, &["push", "-q", &lurl, "main"]);
        git(tmp.path(), &["clone", "-q", &lurl, "legacy-work"]);
        let lwork = tmp.path().join("legacy-work");
        let mut n = 0;
        let s = sample(20, |_| {
            n += 1;
            let f = legacy.join(".convosync/session-handoff.md");
            let mut text = std::fs::read_to_string(&f).unwrap();
            text.push_str(&format!(
                "---\n{}",
                format::render(&handoff("remote-writer", 2_000_000 + n))
            ));
            std::fs::write(&f, text).unwrap();
            git(&legacy, &["commit", "-q", "-am", "handoff"]);
            git(&legacy, &["push", "-q", &lurl, "main"]);
            let mut c = Command::new("sh");
            hermetic(&mut c, home()).current_dir(&lwork).args([
                "-c",
                "git pull -q --no-rebase origin main && cat .convosync/session-handoff.md",
            ]);
            (c, None)
        });
        row(
            &label("original plugin's resume: git pull + print file"),
            &s,
            "comparison",
        );
    }
}

/// A temp dir holding `config/`, a config dir with a new key in it (`CONVOSYNC_CONFIG_DIR`).
fn keyed_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let key = convosync::fixture::Key::generate();
    std::fs::write(config.join("key.txt"), format!("{}\n", key.secret())).unwrap();
    (tmp, config)
}

/// Session start with 100 devices' notes, plain and encrypted to the reader's key: with the tip
/// cache warm (the usual case) and cold (every note read, and decrypted, again).
fn encrypted(bin: &Path) {
    let (tmp, config) = keyed_config();
    // A device with a key encrypts every note it writes: the plain notes are written without one.
    let keyless = tmp.path().join("keyless");
    std::fs::create_dir_all(&keyless).unwrap();
    for kind in ["plain", "encrypted"] {
        let dir = tmp.path().join(kind);
        build_in_child(
            if kind == "plain" { "ref" } else { kind },
            &dir,
            100,
            Some(if kind == "plain" { &keyless } else { &config }),
        );
        session_start_rows(
            bin,
            &dir,
            &config,
            30,
            &format!("hook session-start, 100 devices' notes, {kind}"),
            "encrypted: < 1 ms over plain",
        );
    }
}

/// The size, inflated, of each object [`add_inflating_objects`] writes.
const INFLATING: usize = 200 << 20;

/// A blob of `prefix` then zeros up to [`INFLATING`] bytes, streamed into the object database
/// (a few hundred kilobytes on disk).
fn inflating_blob(repo: &git2::Repository, prefix: &[u8]) -> git2::Oid {
    let odb = repo.odb().unwrap();
    let mut w = odb.writer(INFLATING, git2::ObjectType::Blob).unwrap();
    w.write_all(prefix).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = INFLATING - prefix.len();
    while left > 0 {
        let n = left.min(zeros.len());
        w.write_all(&zeros[..n]).unwrap();
        left -= n;
    }
    w.finalize().unwrap()
}

/// What someone with push access can put on the refs: a note (`devices/evil.md`) and a sealed
/// snapshot (`refs/convosync/wip/evil`, its `meta.age` and `snapshot.age`) that each inflate to
/// 200 MB of zeros.
fn add_inflating_objects(dir: &Path) {
    let repo = git2::Repository::open(dir).unwrap();
    let note = inflating_blob(&repo, b"## Handoff from evil\n\n### Current Task\n");
    let age = inflating_blob(&repo, b"age-encryption.org/v1\n");
    let tip = repo.find_reference(REF).unwrap().peel_to_commit().unwrap();
    let root = tip.tree().unwrap();
    let devices = repo.find_tree(root.get_name("devices").unwrap().id()).unwrap();
    let mut d = repo.treebuilder(Some(&devices)).unwrap();
    d.insert("evil.md", note, 0o100644).unwrap();
    let mut r = repo.treebuilder(Some(&root)).unwrap();
    r.insert("devices", d.write().unwrap(), 0o040000).unwrap();
    let tree = repo.find_tree(r.write().unwrap()).unwrap();
    let sig = git2::Signature::now("Evil", "evil@example.com").unwrap();
    let id = repo
        .commit(None, &sig, &sig, "handoff from evil", &tree, &[&tip])
        .unwrap();
    repo.reference(REF, id, true, "bench").unwrap();
    let mut t = repo.treebuilder(None).unwrap();
    t.insert("meta.age", age, 0o100644).unwrap();
    t.insert("snapshot.age", age, 0o100644).unwrap();
    let tree = repo.find_tree(t.write().unwrap()).unwrap();
    let msg = "wip from evil (encrypted)\n\nConvosync-Device: evil\nConvosync-Base: none\nConvosync-Encrypted: yes\n";
    let id = repo.commit(None, &sig, &sig, msg, &tree, &[]).unwrap();
    repo.reference("refs/convosync/wip/evil", id, true, "bench")
        .unwrap();
}

/// Session start on a keyed device whose refs hold objects that inflate to 200 MB each (see
/// [`add_inflating_objects`]): each is refused from its header, so time and memory stay those of
/// an ordinary session start.
fn inflating(bin: &Path) {
    let (tmp, config) = keyed_config();
    let dir = tmp.path().join("inflating");
    build_in_child("inflating", &dir, 100, Some(&config));
    session_start_rows(
        bin,
        &dir,
        &config,
        10,
        "hook session-start, 100 devices' notes + a note and a sealed snapshot inflating to 200 MB, encrypted",
        "as without them",
    );
}

/// Rows for a session start without network in `dir`, with the tip cache warm, then cold.
fn session_start_rows(bin: &Path, dir: &Path, config: &Path, runs: usize, name: &str, target: &str) {
    let start = serde_json::json!({"session_id":"bench","cwd":dir,"source":"startup"}).to_string();
    let cache = dir.join(".git/convosync/tip-cache.json");
    for warm in [true, false] {
        let s = sample(runs, |_| {
            if !warm {
                let _ = std::fs::remove_file(&cache);
            }
            let mut c = convosync(bin, dir, &["hook", "session-start"]);
            c.env("CONVOSYNC_TIMEOUT", "0")
                .env("CONVOSYNC_CONFIG_DIR", config);
            (c, Some(start.clone()))
        });
        let what = if warm { "warm cache" } else { "cold cache" };
        row(&format!("{name}, {what}"), &s, target);
    }
}

/// A committed worktree of `files` small files in directories of 1,000, written directly, then
/// one `git add -A` and commit.
fn big_worktree(dir: &Path, files: usize) {
    git(
        dir.parent().unwrap(),
        &["init", "-q", dir.file_name().unwrap().to_str().unwrap()],
    );
    for i in 0..files {
        let sub = dir.join(format!("d{:04}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "many files"]);
}

/// The hooks on worktrees of 100, 100,000 and (with `CONVOSYNC_BENCH_HUGE=1`) 1,000,000 files:
/// neither looks at the worktree, so their cost must not grow with it.
fn worktree_sizes(bin: &Path) {
    let mut sizes = vec![100usize, 100_000];
    if std::env::var_os("CONVOSYNC_BENCH_HUGE").is_some() {
        sizes.push(1_000_000);
    }
    for files in sizes {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work");
        let t = Instant::now();
        big_worktree(&dir, files);
        eprintln!(
            "(built a worktree of {files} files in {:.1}s)",
            t.elapsed().as_secs_f64()
        );
        let _ = Command::new("sync").status();
        // One handoff from another device, so session start has something to inject.
        {
            let repo = git2::Repository::open(&dir).unwrap();
            let h = handoff("other-device", 1);
            Store::new(&repo, REF).put(&h, &commit_message(&h)).unwrap();
        }
        let label = |what: &str| format!("{what} ({files} files)");
        let transcript = tmp.path().join("transcript.jsonl");
        std::fs::write(&transcript, "").unwrap();
        let start = serde_json::json!({"session_id":"bench","cwd":dir,"source":"startup","transcript_path":transcript}).to_string();
        let s = sample(20, |_| {
            let mut c = convosync(bin, &dir, &["hook", "session-start"]);
            c.env("CONVOSYNC_TIMEOUT", "0");
            (c, Some(start.clone()))
        });
        row(
            &label("hook session-start, no network"),
            &s,
            "within 2x of 100 files",
        );
        let stop = serde_json::json!({"session_id":"bench","cwd":dir,"stop_hook_active":false,"transcript_path":transcript}).to_string();
        let s = sample(20, |_| {
            (convosync(bin, &dir, &["hook", "stop"]), Some(stop.clone()))
        });
        row(&label("hook stop, nothing to do"), &s, "within 2x of 100 files");
        // Claude edits a file: the Stop notices it from the transcript and asks (a new session
        // each run, so the interval between requests does not hide it).
        let edit = serde_json::json!({"type":"assistant","timestamp":Utc::now().to_rfc3339(),
            "message":{"role":"assistant","content":[{"type":"tool_use","name":"Edit","input":{"file_path":dir.join("d0000/f1.txt")}}]}});
        std::fs::write(&transcript, format!("{edit}\n")).unwrap();
        std::fs::write(dir.join("d0000/f1.txt"), "edited\n").unwrap();
        let s = sample(20, |i| {
            let input = serde_json::json!({"session_id":format!("edit-{i}"),"cwd":dir,"stop_hook_active":false,"transcript_path":transcript}).to_string();
            (convosync(bin, &dir, &["hook", "stop"]), Some(input))
        });
        let out = convosync(bin, &dir, &["hook", "stop"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                let input = serde_json::json!({"session_id":"edit-check","cwd":dir,"stop_hook_active":false,"transcript_path":transcript}).to_string();
                c.stdin.take().unwrap().write_all(input.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let asked = String::from_utf8_lossy(&out.stdout).contains("session-handoff-draft.md");
        row(
            &label(if asked {
                "hook stop, an edit in the transcript (asks)"
            } else {
                "hook stop, an edit in the transcript (DID NOT ASK)"
            }),
            &s,
            "noticed at any size",
        );
        wip_snapshot(bin, &dir, &label);
        // Leave the temp dir removal out of the measurements.
        drop(tmp);
    }
}

/// `wip save` on the worktree (one file edited), read by libgit2, then with the untracked cache
/// on (read by `git status`), each after one `git status` so the index and cache are fresh; and
/// that `git status` itself for comparison.
fn wip_snapshot(bin: &Path, dir: &Path, label: &dyn Fn(&str) -> String) {
    git(dir, &["status", "--porcelain"]);
    let s = sample(10, |_| (convosync(bin, dir, &["wip", "save"]), None));
    row(
        &label("wip save, 1 edited file, untracked cache off (libgit2 status)"),
        &s,
        "",
    );
    git(dir, &["config", "core.untrackedCache", "true"]);
    git(dir, &["update-index", "--untracked-cache"]);
    git(dir, &["status", "--porcelain"]);
    let s = sample(10, |_| (convosync(bin, dir, &["wip", "save"]), None));
    row(
        &label("wip save, 1 edited file, core.untrackedCache=true (git status)"),
        &s,
        "faster than with the cache off",
    );
    let s = sample(10, |_| {
        let mut c = Command::new("git");
        hermetic(&mut c, home())
            .current_dir(dir)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(["status", "--porcelain=v2", "-z", "--untracked-files=all"]);
        (c, None)
    });
    row(
        &label("git status --porcelain=v2 -uall, untracked cache on (comparison)"),
        &s,
        "",
    );
    git(dir, &["config", "core.untrackedCache", "false"]);
    git(dir, &["update-index", "--no-untracked-cache"]);
}
