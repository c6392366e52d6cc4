//! Shared fixtures: a hermetic git environment with a bare remote and clones acting as devices.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The one rule for a missing tool (the file lives here; the fixtures that benches share load it).
pub use crate::servers::tools::skip;
pub mod corpus;
mod hermetic;
pub use hermetic::{git, git_input, git_output, hermetic};

/// A temp dir holding `remote.git` (bare) and any number of device clones, each with its own HOME
/// (and so its own convosync config dir and device id).
pub struct TestEnv {
    pub root: TempDir,
}

/// One clone acting as a device.
pub struct Device {
    pub name: String,
    pub dir: PathBuf,
    pub home: PathBuf,
}

impl TestEnv {
    /// A bare remote with one commit on `main`.
    pub fn new() -> TestEnv {
        let root = tempfile::tempdir().expect("tempdir");
        let env = TestEnv { root };
        let home = env.root.path().join("seed-home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
        git(env.root.path(), &home, &["init", "-q", "--bare", "remote.git"]);
        let seed = env.root.path().join("seed");
        git(
            env.root.path(),
            &home,
            &["clone", "-q", &env.remote_url(), "seed"],
        );
        std::fs::write(seed.join("README.md"), "# project\n").unwrap();
        git(&seed, &home, &["add", "README.md"]);
        git(&seed, &home, &["commit", "-q", "-m", "initial commit"]);
        git(&seed, &home, &["push", "-q", "origin", "HEAD:main"]);
        env
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn remote(&self) -> PathBuf {
        self.root.path().join("remote.git")
    }

    /// The note `device` has on the bare remote's handoff ref, as git shows the blob.
    pub fn pushed_note(&self, device: &Device) -> String {
        git(
            &self.remote(),
            &device.home,
            &[
                "show",
                &format!("refs/convosync/handoffs:devices/{}.md", device.name),
            ],
        )
    }

    pub fn remote_url(&self) -> String {
        format!("file://{}", self.remote().display())
    }

    /// Clone the remote as device `name`.
    pub fn device(&self, name: &str) -> Device {
        let home = self.root.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
        git(
            self.root.path(),
            &home,
            &["clone", "-q", &self.remote_url(), name],
        );
        Device {
            name: name.to_string(),
            dir: self.root.path().join(name),
            home,
        }
    }
}

impl Device {
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.dir, &self.home, args)
    }

    /// The `convosync` binary with this device's hermetic environment, run in its clone.
    pub fn convosync(&self) -> assert_cmd::Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("convosync"));
        hermetic(&mut cmd, &self.home)
            .env("CONVOSYNC_DEVICE", &self.name)
            // The hook tests read what a session start fetched in the same run: they pin the
            // synchronous start. The asynchronous start (the default) has tests of its own that
            // set `CONVOSYNC_START=async`.
            .env("CONVOSYNC_START", "sync")
            .env("NO_COLOR", "1")
            .current_dir(&self.dir);
        assert_cmd::Command::from_std(cmd)
    }
}

/// Only a guard against a hang, never a measure of speed: a command held up by a remote that
/// never answers is killed after this long, and the test fails on its missing exit code.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

/// Run `cmd` under [`HANG_GUARD`]; panics if it had to be killed.
pub fn within_guard(cmd: &mut assert_cmd::Command) -> Output {
    let out = cmd.timeout(HANG_GUARD).output().expect("runs");
    assert!(
        out.status.code().is_some(),
        "killed after {HANG_GUARD:?}: the command ignored its deadline; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// How many connections reached `listener` (which never answers) since the last call: proof
/// that a command talked to the hung remote and returned while it was still blocked.
pub fn contacts(listener: &std::net::TcpListener) -> usize {
    listener.set_nonblocking(true).unwrap();
    let mut n = 0;
    while listener.accept().is_ok() {
        n += 1;
    }
    n
}

/// A tiny deterministic generator (xorshift), so failures can be replayed from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Run convosync on `d`; it must succeed. Returns its stdout.
pub fn ok(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `s` quoted for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run convosync on a pseudo-terminal (`script` from util-linux), as a person at a terminal
/// does; `None` when `script` is missing (the test then skips, or fails under
/// CONVOSYNC_REQUIRE_TOOLS). Returns stdout+stderr (as the terminal shows them) and the exit code.
pub fn on_terminal(d: &Device, args: &[&str]) -> Option<(String, i32)> {
    if Command::new("script").arg("--version").output().is_err() {
        crate::common::skip("script (util-linux) is not installed");
        return None;
    }
    let bin = assert_cmd::cargo::cargo_bin("convosync");
    let line = std::iter::once(bin.to_str().unwrap())
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    hermetic(&mut cmd, &d.home);
    let out = cmd
        .env("CONVOSYNC_DEVICE", &d.name)
        .env("NO_COLOR", "1")
        .env("PAGER", "cat")
        .current_dir(&d.dir)
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    Some((text, out.status.code().unwrap_or(-1)))
}

/// A process's stdout, as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A process's stderr, as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run convosync on `d`; it must fail with a one-line message, which is returned.
pub fn fails_clearly(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// Run convosync's hook for `event` on `d` as an agent does, with `input` (its JSON) on stdin.
pub fn run_hook(d: &Device, event: &str, input: &str) -> Output {
    d.convosync()
        .args(["hook", event])
        .write_stdin(input.to_string())
        .output()
        .unwrap()
}

/// Run the hook for `event` on `d`: it exits 0 and prints nothing or one JSON value.
pub fn hook_is_quiet_or_json(d: &Device, event: &str) {
    let input = serde_json::json!({"session_id":"h","cwd":d.dir,"source":"startup","stop_hook_active":false})
        .to_string();
    let out = run_hook(d, event, &input);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    if !s.trim().is_empty() {
        serde_json::from_str::<serde_json::Value>(s.trim()).expect("valid JSON");
    }
}

/// Writes an executable script (a git hook, a fake ssh) at `path`.
pub fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
