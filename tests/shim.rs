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
    let env = [
        ("CONVOSYNC_BIN", "/nonexistent"),
        ("CLAUDE_PLUGIN_ROOT", root.to_str().unwrap()),
    ];
    let (code, out) = shim(&env, home.path(), "{}", "session-start");
    assert_eq!(code, 0);
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).expect("valid JSON even with quotes in the path");
    assert!(v["systemMessage"]
        .as_str()
        .unwrap()
        .contains(root.to_str().unwrap()));
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
