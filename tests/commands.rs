//! The CLI's small promises: table headers on a terminal only, `demo -C`, what `status` tells,
//! `migrate` of the legacy handoff file, and templates shaping drafts.

use crate::common::{err, ok, on_terminal, out, TestEnv};
use crate::core::write_draft;
use crate::export::save_handoff;
use crate::history::run;

#[test]
fn tables_have_a_header_on_a_terminal_and_not_in_a_pipe() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    save_handoff(&a, "table work");
    save_handoff(&b, "more table work");
    std::fs::write(a.dir.join("README.md"), "# project\nchanged\n").unwrap();
    ok(&a, &["wip", "save", "--push"]);
    ok(&b, &["sync"]);
    for (args, header, record) in [
        (&["history"][..], "ID        DEVICE", "table work"),
        (&["devices"][..], "DEVICE               LAST SEEN", "handoff"),
        (&["wip", "list"][..], "DEVICE", "file(s)"),
    ] {
        let piped = ok(&b, args);
        let first = piped.lines().next().unwrap_or_default();
        assert!(
            first.contains(record) && !piped.contains(header),
            "{args:?} piped: one record per line, no header:\n{piped}"
        );
        let Some((shown, code)) = on_terminal(&b, args) else {
            return;
        };
        assert_eq!(code, 0, "{shown}");
        let lines: Vec<&str> = shown.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            lines[0].starts_with(header),
            "{args:?} on a terminal starts with a header:\n{shown}"
        );
        assert_eq!(
            lines.len(),
            piped.lines().count() + 1,
            "{args:?}: the header and the same records:\n{shown}\n---\n{piped}"
        );
    }
}

#[test]
fn demo_with_dash_c_builds_its_repositories_in_that_directory() {
    let env = TestEnv::new();
    let a = env.device("a");
    let place = env.path().join("demo-here");
    std::fs::create_dir(&place).unwrap();
    let out = a
        .convosync()
        .args(["-C", place.to_str().unwrap(), "demo", "--keep"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Margherita"), "{text}");
    let kept: Vec<_> = std::fs::read_dir(&place)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].join("laptop/.git").is_dir() && kept[0].join("remote.git").is_dir());
    assert!(
        text.contains(&format!("Kept the demo repositories in {}", kept[0].display())),
        "{text}"
    );
    // Without --keep nothing stays behind in DIR.
    std::fs::remove_dir_all(&kept[0]).unwrap();
    a.convosync()
        .args(["-C", place.to_str().unwrap(), "demo"])
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(&place).unwrap().count(), 0);
    // A DIR that does not exist is an error that names it, as with git -C.
    let missing = env.path().join("no-such-dir");
    let out = a
        .convosync()
        .args(["-C", missing.to_str().unwrap(), "demo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-dir") && err.contains("not a directory"),
        "{err}"
    );
    assert!(!missing.exists());
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

#[test]
fn templates_shape_drafts() {
    let env = TestEnv::new();
    let a = env.device("a");
    let shown = run(&a, "a", &["template", "show"]);
    assert!(
        shown.contains("built-in default") && shown.contains("### Current Task (required)"),
        "{shown}"
    );
    a.convosync().args(["template", "init"]).assert().success();
    assert!(
        !a.convosync()
            .args(["template", "init"])
            .output()
            .unwrap()
            .status
            .success(),
        "no overwrite without --force"
    );
    std::fs::write(
        a.dir.join(".convosync/template.md"),
        "Answer in French.\n\n### Goal (required)\n### Risques\n",
    )
    .unwrap();
    let generated = run(&a, "a", &["generate-handoff"]);
    assert!(
        // The repository's template, quoted as repository content after convosync's request.
        generated.contains("<repository-template>\nAnswer in French.")
            && generated.contains("### Goal")
            && generated.contains("### Risques"),
        "{generated}"
    );
    write_draft(&a, "### Risques\naucun\n");
    let out = a.convosync().arg("save-handoff").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the required section `### Goal` is missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_draft(&a, "### goal\nmigrer la base\n\n### Risques\naucun\n");
    a.convosync().arg("save-handoff").assert().success();
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/a.md"])
        .contains("### Goal\nmigrer la base"));
}
