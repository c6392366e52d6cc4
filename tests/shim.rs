//! The hook shim itself: whatever the environment, exit 0 and stdout empty or one JSON object.

use std::path::Path;
use std::process::{Command, Stdio};

fn shim(env: &[(&str, &str)], home: &Path, stdin: &str, event: &str) -> (i32, String) {
    use std::io::Write;
    let mut cmd = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/convosync-hook"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .arg(event);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn shim_without_binary_hints_once_and_exits_zero() {
    let home = tempfile::tempdir().unwrap();
    let plugin = tempfile::tempdir().unwrap();
    let root = plugin.path().join("odd \"name\" \\ dir");
    std::fs::create_dir_all(&root).unwrap();
    // A checkout: the hint names `cargo install --path` with its path.
    std::fs::write(root.join("Cargo.toml"), "[package]\n").unwrap();
    let env = [
        ("CONVOSYNC_BIN", "/nonexistent"),
        ("CLAUDE_PLUGIN_ROOT", root.to_str().unwrap()),
    ];
    let (code, out) = shim(&env, home.path(), "{}", "session-start");
    assert_eq!(code, 0);
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).expect("valid JSON even with quotes in the path");
    let hint = v["systemMessage"].as_str().unwrap();
    assert!(
        hint.contains(&format!("cargo install --path \"{}\"", root.display())),
        "{hint}"
    );
    assert!(hint.contains("cargo binstall convosync"), "{hint}");
    let (code, out) = shim(&env, home.path(), "{}", "session-start");
    assert_eq!((code, out.as_str()), (0, ""), "only once");
    let (code, out) = shim(&env, home.path(), "garbage", "stop");
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn shim_runs_the_binary_and_passes_stdin() {
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_convosync");
    let dir = tempfile::tempdir().unwrap();
    let input = serde_json::json!({"cwd": dir.path(), "session_id": "x"}).to_string();
    for event in ["session-start", "stop", "session-end"] {
        let (code, out) = shim(&[("CONVOSYNC_BIN", bin)], home.path(), &input, event);
        assert_eq!(
            (code, out.as_str()),
            (0, ""),
            "{event}: not a repo, nothing printed"
        );
    }
}

/// A fake binary that says which copy ran.
fn fake_bin(path: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("#!/bin/sh\ncat >/dev/null\necho '{{\"ran\":\"{name}\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The copy `convosync install` leaves in `${CLAUDE_PLUGIN_DATA}` wins over one shipped in the
/// plugin, which wins over the checkout's release build; `CONVOSYNC_BIN` wins over all.
#[test]
fn shim_finds_the_binary_in_plugin_data_then_plugin_root() {
    let home = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("plugin");
    let data = t.path().join("data");
    fake_bin(&root.join("target/release/convosync"), "release");
    let env = [
        ("CLAUDE_PLUGIN_ROOT", root.to_str().unwrap()),
        ("CLAUDE_PLUGIN_DATA", data.to_str().unwrap()),
    ];
    let ran = |extra: &[(&str, &str)]| {
        let mut all = env.to_vec();
        all.extend_from_slice(extra);
        let (code, out) = shim(&all, home.path(), "{}", "stop");
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
        v["ran"].as_str().unwrap().to_string()
    };
    assert_eq!(ran(&[]), "release");
    fake_bin(&root.join("bin/convosync"), "root-bin");
    assert_eq!(ran(&[]), "root-bin");
    fake_bin(&data.join("bin/convosync"), "data");
    assert_eq!(ran(&[]), "data");
    let explicit = t.path().join("explicit/convosync");
    fake_bin(&explicit, "explicit");
    assert_eq!(ran(&[("CONVOSYNC_BIN", explicit.to_str().unwrap())]), "explicit");
}

/// An installed copy of the plugin has no Cargo.toml: the hint names both ways to get the binary
/// (with Rust from the repository, without through binstall or the release page).
#[test]
fn shim_hint_outside_a_checkout_names_both_ways() {
    let home = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let env = [
        ("CLAUDE_PLUGIN_ROOT", t.path().to_str().unwrap()),
        ("CONVOSYNC_BIN", "/nonexistent"),
    ];
    let (code, out) = shim(&env, home.path(), "{}", "session-start");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    let hint = v["systemMessage"].as_str().unwrap();
    assert!(
        hint.contains("cargo install --locked --git https://github.com/convocli/convosync-plugin"),
        "{hint}"
    );
    assert!(hint.contains("cargo binstall convosync"), "{hint}");
    assert!(hint.contains("/releases"), "{hint}");
    assert!(!hint.contains("--path"), "{hint}");
}
