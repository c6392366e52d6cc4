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
