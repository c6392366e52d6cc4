//! Everything convosync says is true: diff, migrate, status, errors and the CLI's small promises,
//! each checked on real repositories (issue 14).

use std::process::Output;

use crate::common::{Device, TestEnv};
use crate::core::write_draft;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Save a handoff as `device` at `when`, without pushing.
fn save_as(d: &Device, device: &str, when: &str, draft: &str) {
    write_draft(d, draft);
    d.convosync()
        .env("CONVOSYNC_DEVICE", device)
        .env("CONVOSYNC_NOW", when)
        .args(["save-handoff", "--no-push"])
        .assert()
        .success();
}

#[test]
fn diff_never_shows_an_identical_last_line_as_changed_issue_14() {
    let env = TestEnv::new();
    let a = env.device("a");
    save_as(
        &a,
        "desk",
        "2026-11-23T09:00:00Z",
        "### Current Task\nsame task\n\n### Next Steps\n1. one\n2. two\n",
    );
    save_as(
        &a,
        "laptop",
        "2026-11-24T09:00:00Z",
        "### Current Task\nsame task\n\n### Next Steps\n1. one\n2. two\n3. three\n",
    );
    // Run as the newer device: the default order is still older → newer.
    let o = a
        .convosync()
        .env("CONVOSYNC_DEVICE", "laptop")
        .arg("diff")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.starts_with("--- desk "), "{text}");
    assert!(text.contains("\n+++ laptop "), "{text}");
    assert!(!text.contains("- 2. two"), "{text}");
    assert!(text.contains("  2. two\n+ 3. three"), "{text}");
    assert!(!text.contains("### Current Task"), "unchanged section: {text}");
    // A bogus id says that device names are accepted too.
    let o = a.convosync().args(["diff", "nosuch"]).output().unwrap();
    assert!(!o.status.success());
    assert!(
        err(&o).contains("neither a device") && err(&o).contains("desk, laptop"),
        "{}",
        err(&o)
    );
}

#[test]
fn migrate_moves_every_legacy_handoff_into_history_issue_14() {
    let env = TestEnv::new();
    let a = env.device("a");
    // Nine handoffs from three devices, in no particular order, one with a name to normalise
    // and one with no usable name at all.
    let mut legacy = String::from("# Session handoffs\n");
    let entries = [
        ("desk", "2025-10-22T14:30:00Z", "desk 2"),
        ("Old Laptop", "2025-10-20T08:00:00Z", "laptop 1"),
        ("desk", "2025-10-21T10:00:00Z", "desk 1"),
        ("Old Laptop", "2025-10-23T08:00:00Z", "laptop 3"),
        ("desk", "2025-10-24T10:00:00Z", "desk 3"),
        ("Old Laptop", "2025-10-21T18:00:00Z", "laptop 2"),
        ("pi", "2025-10-19T07:00:00Z", "pi 1"),
        ("pi", "2025-10-25T07:00:00Z", "pi 2"),
        ("desk", "2025-10-26T10:00:00Z", "desk 4"),
    ];
    for (device, when, task) in entries {
        legacy.push_str(&format!(
            "\n---\n## Handoff from {device}\n**Timestamp:** {when}\n**Commit:** abc123d\n**Branch:** main\n\n### Current Task\n{task}\n"
        ));
    }
    std::fs::create_dir_all(a.dir.join(".convosync")).unwrap();
    std::fs::write(a.dir.join(".convosync/session-handoff.md"), &legacy).unwrap();
    let o = a.convosync().arg("migrate").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("moved 9 handoff(s) from 3 device(s)") && text.contains("skipped 0"),
        "{text}"
    );
    assert!(text.contains("\"Old Laptop\" becomes old-laptop"), "{text}");
    assert!(text.contains("can be removed"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&out(&a
        .convosync()
        .args(["history", "--json", "--limit", "100"])
        .output()
        .unwrap()))
    .unwrap();
    let mut tasks: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["task"].as_str().unwrap().to_string())
        .collect();
    tasks.sort();
    let mut want: Vec<String> = entries.iter().map(|e| e.2.to_string()).collect();
    want.sort();
    assert_eq!(tasks, want, "every legacy handoff is in history");
    // The tree holds each device's newest.
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/desk.md"])
        .contains("desk 4"));
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/old-laptop.md"])
        .contains("laptop 3"));
    // One commit each, dated with the handoff's own time, oldest first.
    let dates = a.git(&[
        "log",
        "--format=%cI",
        "--no-merges",
        "--reverse",
        "refs/convosync/handoffs",
    ]);
    let mut sorted: Vec<&str> = entries.iter().map(|e| e.1).collect();
    sorted.sort();
    let got: Vec<String> = dates.lines().map(|d| d.replace("+00:00", "Z")).collect();
    assert_eq!(got, sorted);
    // Again: nothing is written twice.
    let o = a.convosync().arg("migrate").output().unwrap();
    assert!(
        out(&o).contains("moved 0 handoff(s)") && out(&o).contains("9 already there"),
        "{}",
        out(&o)
    );
    assert_eq!(
        a.git(&["rev-list", "--count", "--no-merges", "refs/convosync/handoffs"]),
        "9"
    );
}

#[test]
fn migrate_keeps_the_file_when_an_entry_was_skipped_and_gives_no_sync_advice_without_a_remote() {
    let env = TestEnv::new();
    let a = env.device("a");
    a.git(&["remote", "remove", "origin"]);
    let legacy = "---\n## Handoff from !!!\n**Timestamp:** 2025-10-20T08:00:00Z\n\n### Current Task\nnameless\n\n---\n## Handoff from broken\nno timestamp\n\n---\n## Handoff from desk\n**Timestamp:** 2025-10-21T08:00:00Z\n\n### Current Task\nkept\n";
    std::fs::create_dir_all(a.dir.join(".convosync")).unwrap();
    std::fs::write(a.dir.join(".convosync/session-handoff.md"), legacy).unwrap();
    let o = a.convosync().arg("migrate").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("moved 1 handoff(s)") && text.contains("skipped 2"),
        "{text}"
    );
    assert!(text.contains("not a usable device name"), "{text}");
    assert!(text.contains("(from broken)"), "{text}");
    assert!(
        !text.contains("can be removed") && text.contains("Keep "),
        "{text}"
    );
    assert!(!text.contains("convosync sync"), "no remote: {text}");
}

/// A pre-receive hook on the bare remote that refuses every `refs/convosync/*` update.
fn refuse_convosync_refs(env: &TestEnv, on: bool) {
    let hook = env.remote().join("hooks/pre-receive");
    if !on {
        std::fs::remove_file(&hook).unwrap();
        return;
    }
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/convosync/*) echo \"policy: $ref is not allowed on this server\" >&2; exit 1;; esac\ndone\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn stop_json(d: &Device, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": d.dir, "hook_event_name": "Stop", "stop_hook_active": false, "transcript_path": d.dir.join("no-transcript.jsonl")}).to_string()
}

fn start_json(d: &Device, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": d.dir, "hook_event_name": "SessionStart", "source": "startup"}).to_string()
}

#[test]
fn a_moved_remote_is_reported_with_gits_own_reason() {
    let env = TestEnv::new();
    let a = env.device("a");
    let gone = env.path().join("moved-away.git");
    a.git(&[
        "remote",
        "set-url",
        "origin",
        &format!("file://{}", gone.display()),
    ]);
    let o = a.convosync().arg("sync").output().unwrap();
    assert!(!o.status.success());
    let text = out(&o);
    assert!(
        text.contains("could not fetch from origin:")
            && text.contains("moved-away.git")
            && text.contains("does not appear to be a git repository"),
        "{text}"
    );
    assert!(!text.contains(": and the repository exists"), "{text}");
}

#[test]
fn a_server_refusal_is_a_refusal_not_a_queue() {
    let env = TestEnv::new();
    let a = env.device("a");
    refuse_convosync_refs(&env, true);
    write_draft(&a, "### Current Task\nrefused work\n");
    let o = a.convosync().arg("save-handoff").output().unwrap();
    let text = out(&o);
    assert!(
        text.contains("origin refused the handoff ref")
            && text.contains("refs/convosync/handoffs is not allowed on this server"),
        "{text}"
    );
    assert!(!text.contains("queued") && !text.contains("next sync"), "{text}");
    let o = a.convosync().arg("sync").output().unwrap();
    assert!(!o.status.success(), "sync fails when the server refuses");
    let text = out(&o);
    assert!(
        text.contains("refused the handoff ref") && text.contains("is not allowed on this server"),
        "{text}"
    );
    assert!(!text.contains("next sync"), "{text}");
    // The Stop hook saves the next draft and says the same, without promising a later push.
    write_draft(&a, "### Current Task\nmore refused work\n");
    let v = crate::hooks::hook(&a, "stop", &stop_json(&a, "s1")).unwrap();
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(
        msg.contains("handoff saved") && msg.contains("is not allowed on this server"),
        "{msg}"
    );
    assert!(!msg.contains("queued"), "{msg}");
}

#[test]
fn a_push_refusal_does_not_stop_fetching() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    refuse_convosync_refs(&env, true);
    write_draft(&a, "### Current Task\nrefused work\n");
    let v = crate::hooks::hook(&a, "stop", &stop_json(&a, "s1")).unwrap();
    assert!(v["systemMessage"].as_str().unwrap().contains("refused"), "{v}");
    // Another device gets its handoff through while the policy is lifted.
    refuse_convosync_refs(&env, false);
    write_draft(&b, "### Current Task\nb's fresh note\n");
    b.convosync().arg("save-handoff").assert().success();
    refuse_convosync_refs(&env, true);
    let v = crate::hooks::hook(&a, "session-start", &start_json(&a, "s2")).unwrap();
    assert!(
        crate::hooks::context(&v).contains("b's fresh note"),
        "the fetch still ran: {v}"
    );
}

#[test]
fn the_same_network_problem_is_told_once() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    write_draft(&b, "### Current Task\nb's note\n");
    b.convosync().arg("save-handoff").assert().success();
    a.convosync().arg("sync").assert().success();
    let gone = env.path().join("gone.git");
    a.git(&[
        "remote",
        "set-url",
        "origin",
        &format!("file://{}", gone.display()),
    ]);
    let first = crate::hooks::hook(&a, "session-start", &start_json(&a, "s1"));
    let said = first
        .as_ref()
        .and_then(|v| v["systemMessage"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        said.contains("could not reach origin") && said.contains("does not appear to be a git repository"),
        "{first:?}"
    );
    let second = crate::hooks::hook(&a, "session-start", &start_json(&a, "s2"));
    let again = second
        .as_ref()
        .and_then(|v| v["systemMessage"].as_str())
        .unwrap_or_default();
    assert!(!again.contains("could not reach"), "said once: {again}");
}

#[test]
fn status_tells_the_last_sync_of_any_command() {
    let env = TestEnv::new();
    let a = env.device("a");
    let status = || out(&a.convosync().arg("status").output().unwrap());
    assert!(status().contains("last sync: never"), "{}", status());
    a.convosync().arg("sync").assert().success();
    let text = status();
    assert!(
        text.contains("last sync: ") && !text.contains("last sync: never"),
        "{text}"
    );
}

/// Claude Code 2.1.331's own files after `claude plugin install` and `claude plugin disable`
/// (shapes taken from the pinned CLI).
#[test]
fn status_reads_the_plugin_state_from_claude_codes_settings() {
    let env = TestEnv::new();
    let a = env.device("a");
    let config = env.path().join("claude-config");
    let status = || {
        out(&a
            .convosync()
            .env("CLAUDE_CONFIG_DIR", &config)
            .arg("status")
            .output()
            .unwrap())
    };
    assert!(status().contains("hooks:     not installed"), "{}", status());
    std::fs::create_dir_all(config.join("plugins")).unwrap();
    std::fs::write(
        config.join("plugins/installed_plugins.json"),
        r#"{"version":2,"plugins":{"convosync@convosync":[{"scope":"user","installPath":"/x","version":"2.0.0","installedAt":"2026-11-25T19:51:39.435Z","lastUpdated":"2026-11-25T19:51:39.435Z"}]}}"#,
    )
    .unwrap();
    std::fs::write(
        config.join("settings.json"),
        r#"{"extraKnownMarketplaces":{"convosync":{"source":{"source":"directory","path":"/x"}}},"enabledPlugins":{"convosync@convosync":true}}"#,
    )
    .unwrap();
    assert!(status().contains("hooks:     installed, enabled"), "{}", status());
    std::fs::write(
        config.join("settings.json"),
        r#"{"enabledPlugins":{"convosync@convosync":false}}"#,
    )
    .unwrap();
    assert!(
        status().contains("hooks:     installed, disabled"),
        "{}",
        status()
    );
    // The project's local settings override the user's.
    std::fs::create_dir_all(a.dir.join(".claude")).unwrap();
    std::fs::write(
        a.dir.join(".claude/settings.local.json"),
        r#"{"enabledPlugins":{"convosync@convosync":true}}"#,
    )
    .unwrap();
    assert!(status().contains("hooks:     installed, enabled"), "{}", status());
}

#[test]
fn device_names_follow_one_rule_from_set_and_from_the_environment() {
    let env = TestEnv::new();
    let a = env.device("a");
    let o = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "set", "Laptop"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("device name set to laptop"), "{}", out(&o));
    assert!(
        err(&o).contains("\"Laptop\" is used as \"laptop\""),
        "{}",
        err(&o)
    );
    let o = a
        .convosync()
        .env("CONVOSYNC_DEVICE", "my laptop")
        .args(["device", "show"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "my-laptop");
    assert_eq!(
        err(&o).matches("\"my laptop\" is used as \"my-laptop\"").count(),
        1,
        "{}",
        err(&o)
    );
    // Nothing usable: both refuse.
    let set = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "set", "!!!"])
        .output()
        .unwrap();
    let envd = a
        .convosync()
        .env("CONVOSYNC_DEVICE", "!!!")
        .args(["device", "show"])
        .output()
        .unwrap();
    assert!(!set.status.success() && !envd.status.success());
}

#[test]
fn since_takes_the_words_people_type() {
    let env = TestEnv::new();
    let a = env.device("a");
    save_as(
        &a,
        "desk",
        "2026-11-25T09:00:00Z",
        "### Current Task\ntoday's work\n",
    );
    save_as(&a, "desk", "2026-11-10T09:00:00Z", "### Current Task\nold work\n");
    for since in [
        "yesterday",
        "today",
        "last week",
        "3 days",
        "2 weeks ago",
        "2026-11-24",
    ] {
        let o = a
            .convosync()
            .env("CONVOSYNC_NOW", "2026-11-25T12:00:00Z")
            .args(["history", "--since", since])
            .output()
            .unwrap();
        assert!(o.status.success(), "{since}: {}", err(&o));
        assert!(out(&o).contains("today's work"), "{since}: {}", out(&o));
        assert!(!out(&o).contains("old work"), "{since}: {}", out(&o));
    }
}
