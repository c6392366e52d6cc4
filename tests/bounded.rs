//! Bounded reads: objects pushed to a convosync ref that are small on the wire and enormous once
//! inflated (a "zip bomb" of zeros) cost a device neither time nor memory. Each is refused from
//! its object header, before it is inflated, and the session still gets its notes.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{git, git_input, hermetic, Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::{context, start_json};

const REF: &str = "refs/convosync/handoffs";
const TASK: &str = "quokka-5150 tune the cache eviction";

/// How large each crafted object is once inflated.
const BOMB: &str = "200M";

/// A hook or command may use this much memory at most while such objects sit on the ref (the
/// bomb alone is 200 MB).
const MAX_RSS_KB: i64 = 100 * 1024;

/// Run `script` with `sh` in `dir` (hermetic git environment); returns stdout.
fn sh(dir: &Path, home: &Path, script: &str) -> String {
    let mut cmd = Command::new("sh");
    hermetic(&mut cmd, home);
    let out = cmd.current_dir(dir).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A blob in the remote: `prefix`, then `BOMB` of zeros. Small on disk, huge inflated.
fn bomb(env: &TestEnv, prefix: &str) -> String {
    let home = env.path().join("seed-home");
    sh(
        &env.remote(),
        &home,
        &format!("{{ printf '{prefix}'; head -c {BOMB} /dev/zero; }} | git hash-object -w --stdin"),
    )
}

/// On the remote: a note blob of zeros beside the real notes, and a wip ref of device `evil`
/// whose sealed `meta.age` and `snapshot.age` are zeros behind an age header.
fn push_bombs(env: &TestEnv) {
    let home = env.path().join("seed-home");
    let remote = env.remote();
    let note = bomb(
        env,
        "## Handoff from evil\\n**Timestamp:** 2026-01-01T00:00:00Z\\n\\n### Current Task\\n",
    );
    let age = bomb(env, "age-encryption.org/v1\\n");
    // The handoff ref: its devices plus `evil.md`.
    // A small note whose commit line names the snapshot's bomb: looking the commit up must not
    // inflate it either.
    let named = format!("## Handoff from mallory\n**Timestamp:** 2026-01-01T00:00:00Z\n**Commit:** {age} (x)\n**Author:** Test User <test@example.com>\n\n### Current Task\nlook here\n");
    let named = git_stdin(
        &remote,
        &home,
        &["hash-object", "-w", "--stdin"],
        named.as_bytes(),
    );
    let devices = git(&remote, &home, &["ls-tree", &format!("{REF}:devices")]);
    let listing = format!("{devices}\n100644 blob {note}\tevil.md\n100644 blob {named}\tmallory.md\n");
    let devices = sh(
        &remote,
        &home,
        &format!(
            "printf '{}' | git mktree",
            listing.replace('\t', "\\t").replace('\n', "\\n")
        ),
    );
    let keys = git(&remote, &home, &["rev-parse", &format!("{REF}:keys")]);
    let root = sh(
        &remote,
        &home,
        &format!("printf '040000 tree {devices}\\tdevices\\n040000 tree {keys}\\tkeys\\n' | git mktree"),
    );
    let tip = git(&remote, &home, &["rev-parse", REF]);
    let commit = git(
        &remote,
        &home,
        &["commit-tree", &root, "-p", &tip, "-m", "handoff from evil"],
    );
    git(&remote, &home, &["update-ref", REF, &commit]);
    // The wip ref: a sealed snapshot of device `evil`.
    let tree = sh(
        &remote,
        &home,
        &format!("printf '100644 blob {age}\\tmeta.age\\n100644 blob {age}\\tsnapshot.age\\n' | git mktree"),
    );
    let commit = git(
        &remote,
        &home,
        &[
            "commit-tree",
            &tree,
            "-m",
            "wip from evil (encrypted)\n\nConvosync-Device: evil\nConvosync-Base: none\nConvosync-Encrypted: yes\n",
        ],
    );
    git(
        &remote,
        &home,
        &["update-ref", "refs/convosync/wip/evil", &commit],
    );
    // Packed, as a push leaves them: a few hundred kilobytes on the wire.
    git(
        &remote,
        &home,
        &["-c", "core.bigFileThreshold=1m", "repack", "-adq"],
    );
}

/// Run git in `dir` with `input` on stdin; returns stdout.
fn git_stdin(dir: &Path, home: &Path, args: &[&str], input: &[u8]) -> String {
    String::from_utf8_lossy(&git_input(dir, home, args, input))
        .trim()
        .to_string()
}

fn run(d: &Device, args: &[&str]) -> (bool, String, String) {
    let out = d.convosync().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// What one run of the binary printed, and its peak memory (kB) and time.
struct Measured {
    ok: bool,
    stdout: String,
    max_rss_kb: i64,
    took: Duration,
}

/// Run `convosync <args>` as `d` with `input` on stdin, measuring its peak resident memory
/// (its own and its children's, from `wait4`) and its wall time.
fn measured(d: &Device, args: &[&str], input: &str) -> Measured {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("convosync"));
    hermetic(&mut cmd, &d.home);
    cmd.env("CONVOSYNC_DEVICE", &d.name)
        .env("CONVOSYNC_START", "sync")
        .env("NO_COLOR", "1")
        .current_dir(&d.dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    // Reaped by `wait4` below, which also gives the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; `wait4` fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    Measured {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
        max_rss_kb: usage.ru_maxrss,
        took: started.elapsed(),
    }
}

fn hook_json(m: &Measured) -> Value {
    assert!(m.ok, "hooks always exit 0");
    serde_json::from_str(m.stdout.trim()).expect("one JSON object")
}

#[test]
fn inflating_objects_on_the_refs_cost_nothing() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    assert!(run(&a, &["key", "init"]).0);
    write_draft(&a, &format!("### Current Task\n{TASK}\n"));
    a.convosync().arg("save-handoff").assert().success();
    let secret = run(&a, &["key", "show"]).1.trim().to_string();
    assert!(run(&b, &["key", "add", &secret]).0, "the laptop has the key");
    push_bombs(&env);
    // The objects arrive (the transfer itself is git's work, unmeasured here).
    let (ok, _, err) = run(&b, &["sync"]);
    assert!(ok, "{err}");

    let start = measured(&b, &["hook", "session-start"], &start_json(&b, "s1", "startup"));
    let v = hook_json(&start);
    assert!(context(&v).contains(TASK), "the notes still arrive: {v}");
    let prompt = serde_json::json!({"session_id": "s1", "cwd": b.dir, "hook_event_name": "UserPromptSubmit", "prompt": "hi"});
    let prompt = measured(&b, &["hook", "user-prompt-submit"], &prompt.to_string());
    assert!(prompt.ok, "hooks always exit 0");
    let list = measured(&b, &["wip", "list"], "");
    for (what, m) in [
        ("session start", &start),
        ("prompt", &prompt),
        ("wip list", &list),
    ] {
        eprintln!("{what}: {:?}, max RSS {} kB", m.took, m.max_rss_kb);
        assert!(
            m.max_rss_kb < MAX_RSS_KB,
            "{what} used {} kB: an object was inflated",
            m.max_rss_kb
        );
        // A guard against a hang, far above what it takes (well under a second).
        assert!(m.took < Duration::from_secs(8), "{what} took {:?}", m.took);
    }
    assert!(list.ok);
    assert!(
        list.stdout.contains("evil"),
        "the snapshot is listed, unreadable: {}",
        list.stdout
    );

    let log = std::fs::read_to_string(b.dir.join(".git/convosync/convosync.log")).unwrap_or_default();
    assert!(
        log.contains("evil.md") && log.contains("meta.age"),
        "one log line for each object refused: {log}"
    );
    // A command that would read the whole snapshot refuses it, bounded too.
    let diff = measured(&b, &["wip", "diff", "evil"], "");
    assert!(!diff.ok);
    assert!(
        diff.max_rss_kb < MAX_RSS_KB,
        "wip diff used {} kB",
        diff.max_rss_kb
    );
}
