//! The outside tools some tests need (the pinned Claude Code CLI from ../shared/claude-harness,
//! sshd, python3, Chromium), and the one rule for a missing one: under `CONVOSYNC_REQUIRE_TOOLS=1`
//! (set by `.ci/run`) a missing tool fails the test; otherwise the test skips, and the `tools`
//! test target prints one line naming what a plain `cargo test` skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that turns a skip into a failure.
pub const REQUIRE: &str = "CONVOSYNC_REQUIRE_TOOLS";

pub fn required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skip the calling test because `why`; a failure when tools are required.
pub fn skip(why: &str) {
    if required() {
        panic!("{why}, and {REQUIRE} is set: install it (see README, \"Tests\")");
    }
    eprintln!("skipped: {why}");
}

pub fn harness_dir() -> PathBuf {
    std::env::var_os("CLAUDE_HARNESS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/claude-harness"))
}

/// The harness of another agent's CLI (`codex`, `gemini`): `$<NAME>_HARNESS_DIR`, else
/// `../shared/<name>-harness` next to this checkout, as for Claude Code's.
pub fn agent_harness_dir(name: &str) -> PathBuf {
    std::env::var_os(format!("{}_HARNESS_DIR", name.to_ascii_uppercase()))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/{name}-harness")))
}

/// Each tool some tests need, with the reason it is missing (`None` when present).
pub fn missing() -> Vec<String> {
    let mut out = Vec::new();
    let install = harness_dir().join("install");
    if !install.exists() {
        out.push(format!(
            "the Claude Code CLI (no harness at {}; it comes from ../shared/claude-harness)",
            install.display()
        ));
    }
    for (name, cli) in [("codex", "the Codex CLI"), ("gemini", "the Gemini CLI")] {
        let install = agent_harness_dir(name).join("install");
        if !install.exists() {
            out.push(format!(
                "{cli} (no harness at {}; it comes from ../shared/{name}-harness)",
                install.display()
            ));
        }
    }
    if !Path::new("/usr/sbin/sshd").exists() || Command::new("ssh-agent").arg("-h").output().is_err() {
        out.push("sshd/ssh-agent (apt-get install openssh-server openssh-client)".into());
    }
    if Command::new("python3").arg("--version").output().is_err() {
        out.push("python3".into());
    }
    if !["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .any(|b| Path::new(b).exists())
    {
        out.push("chromium (apt-get install chromium)".into());
    }
    if Command::new("script").arg("--version").output().is_err() {
        out.push("script, to run a command on a terminal (apt-get install util-linux)".into());
    }
    out
}
