//! The installed plugin (not `--plugin-dir`): `convosync install --run` through the real CLI into
//! a throwaway config dir, then a session in another clone loads it and gets the handoff.

use std::path::Path;
use std::process::Command;

use super::{claude_bin, harness_dir, text, Session};
use crate::common::TestEnv;

/// Total size of the regular files under `dir` (symlinks not followed), and whether any
/// directory on the way is named `target`.
fn tree_size(dir: &Path) -> (u64, bool) {
    let mut total = 0;
    let mut has_target = false;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            has_target |= entry.file_name() == "target";
            let (s, t) = tree_size(&entry.path());
            total += s;
            has_target |= t;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    (total, has_target)
}

/// `unshare -n` (or `-r -n`) when this machine allows it, to prove the install needs no network.
fn offline_prefix() -> Vec<&'static str> {
    for args in [&["-n"][..], &["-r", "-n"][..]] {
        let ok = Command::new("unshare")
            .args(args)
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            let mut v = vec!["unshare"];
            v.extend_from_slice(args);
            return v;
        }
    }
    eprintln!("note: cannot unshare a network namespace; installing with the network up");
    Vec::new()
}

#[test]
fn installed_plugin_is_small_and_gets_the_other_devices_handoff() {
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    crate::core::write_draft(&desktop, "### Current Task\nThe pizza menu\n\n### Important Context\n- The user's favourite pizza is Margherita\n");
    desktop.convosync().arg("save-handoff").assert().success();

    // The harness's HOME and config dir, with the pinned CLI on PATH as `claude`.
    let state = env.path().join("state");
    let (home, config) = (state.join("home"), state.join("config"));
    let path_dir = env.path().join("path");
    for d in [&home, &config, &path_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(&claude, path_dir.join("claude")).unwrap();
    let prefix = offline_prefix();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_convosync"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_convosync")),
    };
    let out = cmd
        .args(["install", "--run"])
        .env_clear()
        .env("HOME", &home)
        .env("CLAUDE_CONFIG_DIR", &config)
        .env("PATH", format!("{}:/usr/bin:/bin", path_dir.display()))
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // What Claude Code installed: its cached copy and the directory the marketplace points at.
    let installed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(config.join("plugins/installed_plugins.json")).unwrap(),
    )
    .unwrap();
    let install_path = installed["plugins"]["convosync@convosync"][0]["installPath"]
        .as_str()
        .expect("convosync@convosync is installed")
        .to_string();
    let markets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(config.join("plugins/known_marketplaces.json")).unwrap(),
    )
    .unwrap();
    let market_dir = markets["convosync"]["installLocation"]
        .as_str()
        .unwrap()
        .to_string();
    for dir in [&install_path, &market_dir] {
        let (size, has_target) = tree_size(Path::new(dir));
        eprintln!("installed copy {dir}: {size} bytes");
        assert!(size < 50 << 20, "{dir} holds {size} bytes");
        assert!(!has_target, "{dir} holds a target/ directory");
        assert!(Path::new(dir).join("hooks/convosync-hook").exists());
    }
    assert!(
        !market_dir.starts_with(env!("CARGO_MANIFEST_DIR")),
        "not the checkout itself"
    );
    let bin = config.join("plugins/data/convosync-convosync/bin/convosync");
    assert!(bin.exists(), "the binary is in the plugin's data dir");

    // A session on the laptop: no --plugin-dir, no CONVOSYNC_BIN, no convosync on PATH.
    let logs = env.path().join("logs");
    let log = logs.join("laptop");
    std::fs::create_dir_all(&logs).unwrap();
    let replies = logs.join("replies.json");
    std::fs::write(&replies, serde_json::to_string(&[text("Margherita!")]).unwrap()).unwrap();
    let mut run = Command::new(harness_dir().join("run"));
    run.arg("--cwd")
        .arg(&laptop.dir)
        .arg("--state")
        .arg(&state)
        .arg("--log")
        .arg(&log)
        .arg("--replies")
        .arg(&replies)
        .arg("--claude")
        .arg(&claude)
        .args(["--env", "PATH=/usr/bin:/bin"])
        .args(["--env", "CONVOSYNC_DEVICE=laptop"])
        .args(["--env", "GIT_CONFIG_NOSYSTEM=1"]);
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "Test User"),
        ("GIT_AUTHOR_EMAIL", "test@example.com"),
        ("GIT_COMMITTER_NAME", "Test User"),
        ("GIT_COMMITTER_EMAIL", "test@example.com"),
    ] {
        run.args(["--env", &format!("{k}={v}")]);
    }
    let out = run.args(["--", "What is my favourite pizza?"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Session {
        log: log.clone(),
        exit: 0,
        stdout: std::fs::read_to_string(log.join("stdout")).unwrap_or_default(),
    };
    assert_eq!(s.stdout.trim(), "Margherita!");
    let first = s.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("favourite pizza is Margherita"),
        "the first request carries the desktop's handoff"
    );
    let debug = std::fs::read_to_string(log.join("debug.log")).unwrap_or_default();
    assert!(
        !debug.contains("binary not found"),
        "the hook found the installed binary"
    );
}
