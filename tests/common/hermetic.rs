//! The one hermetic git of the tests and the benches (which load this file with `#[path]`): no
//! user or system config, a fixed identity, no prompts.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Environment every git and convosync process of the tests and benches gets: no user or system
/// config (`home` is their HOME, its `.gitconfig` the only config git reads), a fixed identity, no
/// prompts.
pub fn hermetic<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_AUTHOR_NAME", "Test User")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test User")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
}

/// Run git in `dir` and return its stdout; panics with stderr on failure.
pub fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = git_output(dir, home, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Run git in `dir`, whatever its outcome.
pub fn git_output(dir: &Path, home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, home);
    cmd.current_dir(dir).args(args).output().expect("git runs")
}

/// Run git in `dir` with `input` on its stdin (the plumbing that builds hostile objects:
/// `hash-object --stdin`, `mktree`, `commit-tree`); its stdout, bytes as written. Panics with
/// stderr on failure.
#[allow(dead_code)] // the benches build no objects from stdin
pub fn git_input(dir: &Path, home: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, home);
    let mut child = cmd
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
