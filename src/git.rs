//! Running the `git` executable: every child git process of convosync goes through here. Network
//! work (fetch and push of the handoff and wip refs) uses [`run`]; `save`, which commits and pushes
//! the user's own branch, uses the worktree mode ([`run_in`]); the wip
//! snapshot's `git status` uses [`read_in`].
//!
//! The user's own `git push` already works with their ssh config, agent, credential helpers and
//! proxies; libgit2 ignores most of that (libssh2 does not read `~/.ssh/config`), so all network
//! traffic goes through `git` itself. Every call has a hard deadline: the child runs in its own
//! process group and the whole group is killed when time is up, because a remote that accepts a
//! connection and never answers would otherwise hang a hook forever. Output goes to temp files,
//! not pipes, since an ssh ControlPersist master can hold a pipe open long after git exits.

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A point in time by which all network work of one run must be done.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(Instant::now() + d)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

/// What a finished (or killed) git process left behind.
#[derive(Debug)]
pub struct GitOutput {
    /// `None` when the process was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl GitOutput {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// git's own reason, on one line: every `fatal:`, `error:`, `ssh:` and `remote:` line of
    /// stderr (without the `fatal: ` / `error: ` prefix), else the last non-hint line. Control
    /// characters from the remote are replaced, so the text is safe for a terminal.
    pub fn brief_error(&self) -> String {
        const MEANINGFUL: [&str; 4] = ["fatal:", "error:", "ssh:", "remote:"];
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
            .collect();
        let mut picked: Vec<&str> = lines
            .iter()
            .filter(|l| MEANINGFUL.iter().any(|m| l.starts_with(m)))
            .map(|l| {
                l.trim_start_matches("fatal: ")
                    .trim_start_matches("error: ")
                    .trim()
            })
            .filter(|l| !l.is_empty() && *l != "remote:")
            .collect();
        picked.dedup();
        if picked.is_empty() {
            picked.push(lines.last().copied().unwrap_or("git failed without a message"));
        }
        crate::untrusted::line(&picked.join("; ")).into_owned()
    }
}

/// `git fetch` of exactly `refspecs` from `remote`: no tags, no FETCH_HEAD, no submodules, no gc.
pub fn fetch(git_dir: &Path, remote: &str, refspecs: &[&str], deadline: Deadline) -> Result<GitOutput> {
    let flags = "fetch --quiet --no-tags --no-write-fetch-head --no-recurse-submodules --no-auto-gc";
    let args = flags.split(' ').chain([remote]).chain(refspecs.iter().copied());
    run(git_dir, args, deadline)
}

/// A git command line: strings or paths.
pub trait Args: IntoIterator<Item: AsRef<OsStr>> {}
impl<I: IntoIterator<Item: AsRef<OsStr>>> Args for I {}

/// `-c` options that keep the user's git hooks out of convosync's own git commands: hooks are
/// looked up under this path, where no file can be (git 2.47 takes `/dev/null`, a path that is not
/// a directory, as "no hooks"). A `reference-transaction` hook would otherwise run inside every
/// fetch, and a `pre-push` hook inside every push of the handoff ref.
const NO_HOOKS: [&str; 2] = ["-c", "core.hooksPath=/dev/null"];

/// Submodules are not convosync's to fetch or read.
const NO_SUBMODULES: [&str; 2] = ["-c", "submodule.recurse=false"];

/// Run `git --git-dir <git_dir> <args>` with a clean environment, none of the user's git hooks,
/// and kill it at `deadline`.
pub fn run(git_dir: &Path, args: impl Args, deadline: Deadline) -> Result<GitOutput> {
    let mut cmd = command();
    cmd.arg("--git-dir")
        .arg(git_dir)
        .args(NO_HOOKS)
        // core.fsmonitor can start a daemon that hangs (jj-vcs/jj#6440); submodules are not ours.
        .args(["-c", "core.fsmonitor=false"])
        .args(NO_SUBMODULES)
        .args(args);
    execute(cmd, git_dir, deadline)
}

/// Run `git -C <workdir> <args>` on the user's worktree, as [`run`] does (clean environment,
/// `LC_ALL=C`, stdin null, no terminal prompts, killed at `deadline`). With `hooks` the user's git
/// hooks run (a `commit` with its pre-commit hook, a `push` with its pre-push hook), as they would
/// from the user's own shell; without, they are turned off: for commands that only read or stage.
pub fn run_in(workdir: &Path, hooks: bool, args: impl Args, deadline: Deadline) -> Result<GitOutput> {
    let settings: &[&str] = if hooks { &[] } else { &NO_HOOKS };
    execute(in_worktree(workdir, settings, args), workdir, deadline)
}

/// Run a read-only `git -C <workdir> <args>` as [`run_in`] does, with `GIT_OPTIONAL_LOCKS=0` so
/// git never writes the index (not even to refresh its stat data), and the repository's own
/// `core.fsmonitor` left as it is (the only runner that does not turn it off, since a status read
/// is what the monitor speeds up). Returns stdout as bytes: paths need not be UTF-8.
pub fn read_in(workdir: &Path, args: impl Args, deadline: Deadline) -> Result<(Option<ExitStatus>, Vec<u8>)> {
    let mut cmd = in_worktree(workdir, &[NO_HOOKS, NO_SUBMODULES].concat(), args);
    cmd.env("GIT_OPTIONAL_LOCKS", "0");
    let (status, stdout, _) = execute_raw(cmd, workdir, deadline)?;
    Ok((status, stdout))
}

/// `git -C <workdir>` with `settings` (`-c` options) before `args`.
fn in_worktree(workdir: &Path, settings: &[&str], args: impl Args) -> Command {
    let mut cmd = command();
    cmd.arg("-C").arg(workdir).args(settings).args(args);
    cmd
}

/// `git` (or `$CONVOSYNC_GIT`) with the environment every run shares: no inherited repository
/// selection, no prompts, messages in English so their words can be matched.
fn command() -> Command {
    let mut cmd = Command::new(std::env::var_os("CONVOSYNC_GIT").unwrap_or_else(|| "git".into()));
    cmd.env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C")
        .stdin(Stdio::null());
    cmd
}

/// [`execute_raw`], with its output as text.
fn execute(cmd: Command, repo: &Path, deadline: Deadline) -> Result<GitOutput> {
    let (status, stdout, stderr) = execute_raw(cmd, repo, deadline)?;
    Ok(GitOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Exit status (`None`: killed at the deadline), stdout and stderr.
type Raw = (Option<ExitStatus>, Vec<u8>, Vec<u8>);

/// Spawn `cmd` in its own session, collect its output in temp files, kill it at `deadline`.
/// `repo` (a git dir or worktree) is where the user's ssh settings are looked up.
fn execute_raw(mut cmd: Command, repo: &Path, deadline: Deadline) -> Result<Raw> {
    let temp = || tempfile::tempfile().context("could not create a temp file for git output");
    let (mut out, mut err) = (temp()?, temp()?);
    cmd.stdout(out.try_clone()?).stderr(err.try_clone()?);
    // A new session: its own process group (killed as a whole at the deadline) and no
    // controlling terminal, so ssh cannot stop to ask for a passphrase or host key on the tty.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    if !ssh_configured(repo) {
        // A prompt for a host key or passphrase would hang a hook; batch mode fails instead.
        let secs = deadline.remaining().as_secs().clamp(1, 30);
        cmd.env(
            "GIT_SSH_COMMAND",
            format!("ssh -o BatchMode=yes -o ConnectTimeout={secs} -o ServerAliveInterval=5"),
        );
    }
    let mut child = cmd
        .spawn()
        .context("could not run git (is it installed and on PATH?)")?;
    let pid = child.id() as i32;
    // Waited for on a thread of its own, so its end is seen the moment it comes (no polling
    // interval added to every git command) and the deadline is kept all the same.
    let (done, ended) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = ended.recv_timeout(deadline.remaining()).ok().transpose()?;
    if status.is_none() {
        // SAFETY: kill(2) on the process group we created for this child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    // The child is reaped either way (killed, its wait returns at once).
    let _ = waiter.join();
    Ok((status, read_all(&mut out), read_all(&mut err)))
}

fn read_all(f: &mut std::fs::File) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = f.rewind().and_then(|()| f.read_to_end(&mut buf));
    buf
}

/// Whether the user chose their own ssh command, which we must not override.
fn ssh_configured(repo: &Path) -> bool {
    let by_env = std::env::var_os("GIT_SSH_COMMAND").is_some() || std::env::var_os("GIT_SSH").is_some();
    by_env
        || git2::Repository::open_bare(repo)
            .or_else(|_| git2::Repository::open(repo))
            .ok()
            .and_then(|r| r.config().ok())
            .is_some_and(|c| c.get_string("core.sshCommand").is_ok())
}

/// Another ref to force-push in the same `git push` as the handoff ref (a device's own wip ref),
/// and the remote-tracking ref that records it once the remote has it.
#[derive(Debug, Clone)]
pub struct Extra {
    pub refname: String,
    pub tip: git2::Oid,
    pub tracking: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        // `git -c alias.slow=!sleep 5 slow` runs a shell that sleeps: a stand-in for a hung remote.
        let started = Instant::now();
        let out = run(
            &dir.path().join(".git"),
            ["-c", "alias.slow=!sleep 5", "slow"],
            Deadline::after(Duration::from_millis(300)),
        )
        .unwrap();
        assert!(out.timed_out());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn brief_keeps_the_meaningful_lines() {
        let brief = |stderr: &str| {
            let stderr = stderr.to_string();
            GitOutput {
                status: None,
                stdout: String::new(),
                stderr,
            }
            .brief_error()
        };
        let moved = "fatal: '/tmp/x/remote.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(
            brief(moved),
            "'/tmp/x/remote.git' does not appear to be a git repository; Could not read from remote repository."
        );
        let hook = "remote: refs/convosync/* are not allowed here\x1b[31m\nTo /tmp/r.git\n ! [remote rejected] abc -> refs/convosync/handoffs (pre-receive hook declined)\nerror: failed to push some refs to '/tmp/r.git'\n";
        assert_eq!(
            brief(hook),
            "remote: refs/convosync/* are not allowed here; failed to push some refs to '/tmp/r.git'"
        );
        assert_eq!(brief("hint: nothing\n"), "git failed without a message");
        assert_eq!(brief("something odd\n"), "something odd");
    }

    #[test]
    fn captures_output() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let out = run(
            &dir.path().join(".git"),
            ["rev-parse", "--git-dir"],
            Deadline::after(Duration::from_secs(10)),
        )
        .unwrap();
        assert!(out.success(), "{}", out.stderr);
        assert!(out.stdout.trim().ends_with(".git"));
    }

    #[test]
    fn ref_updates_run_no_user_hook() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@x").unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let commit = repo
            .commit(None, &sig, &sig, "x", &tree, &[])
            .unwrap()
            .to_string();
        let marker = dir.path().join("hook-ran");
        let hooks = dir.path().join("my-hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        let hook = hooks.join("reference-transaction");
        std::fs::write(&hook, format!("#!/bin/sh\necho ran >> '{}'\n", marker.display())).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        repo.config()
            .unwrap()
            .set_str("core.hooksPath", hooks.to_str().unwrap())
            .unwrap();
        let git_dir = dir.path().join(".git");
        let deadline = Deadline::after(Duration::from_secs(20));
        // The hook works: git run by hand calls it.
        let by_hand = command()
            .arg("--git-dir")
            .arg(&git_dir)
            .args(["update-ref", "refs/by-hand", &commit])
            .status()
            .unwrap();
        assert!(
            by_hand.success() && marker.exists(),
            "the hook runs for a plain git"
        );
        std::fs::remove_file(&marker).unwrap();
        // Through the runner it does not, in either mode; nor for libgit2's own ref updates.
        let out = run(&git_dir, ["update-ref", "refs/convosync/x", &commit], deadline).unwrap();
        assert!(out.success(), "{}", out.stderr);
        let out = run_in(
            dir.path(),
            false,
            ["update-ref", "refs/convosync/y", &commit],
            deadline,
        )
        .unwrap();
        assert!(out.success(), "{}", out.stderr);
        repo.reference(
            "refs/convosync/z",
            repo.revparse_single(&commit).unwrap().id(),
            true,
            "t",
        )
        .unwrap();
        assert!(!marker.exists(), "a user hook ran inside convosync's own git");
    }

    #[test]
    fn worktree_mode_runs_in_the_worktree_and_hooks_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let hook = dir.path().join(".git/hooks/pre-commit");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(&hook, "#!/bin/sh\necho refused by hook >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let deadline = Deadline::after(Duration::from_secs(20));
        let commit = [
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "--allow-empty",
            "-m",
            "x",
        ];
        let out = run_in(dir.path(), true, commit, deadline).unwrap();
        assert!(!out.success());
        assert!(out.stderr.contains("refused by hook"), "{}", out.stderr);
        let out = run_in(dir.path(), false, commit, deadline).unwrap();
        assert!(out.success(), "{}", out.stderr);
        let top = run_in(dir.path(), false, ["rev-parse", "--show-toplevel"], deadline).unwrap();
        assert_eq!(
            std::fs::canonicalize(top.stdout.trim()).unwrap(),
            std::fs::canonicalize(dir.path()).unwrap()
        );
    }
}
