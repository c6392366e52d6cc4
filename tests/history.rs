//! `history`, `devices`, `search` and `diff` on a fixed history built in a temp repo, and the
//! dates people type for `--since`. Outputs a user reads are snapshotted (ids and paths
//! normalised).

use crate::common::{err, out, Device, TestEnv};
use crate::core::write_draft;

const NOW: &str = "2026-11-25T12:00:00Z";

/// desk and laptop trade handoffs over two days, one on a feature branch.
pub fn history_env() -> (TestEnv, Device) {
    let env = TestEnv::new();
    let a = env.device("a");
    let steps = [
        (
            "desk",
            "2026-11-23T09:00:00Z",
            "main",
            "Set up the OAuth client",
            "- favourite pizza: Margherita",
        ),
        (
            "laptop",
            "2026-11-23T18:30:00Z",
            "main",
            "Login routes",
            "- tests run with `cargo test`",
        ),
        (
            "desk",
            "2026-11-24T10:00:00Z",
            "feature/refresh",
            "Refresh-token storage in Redis",
            "- Redis chosen for speed",
        ),
        (
            "laptop",
            "2026-11-25T08:00:00Z",
            "feature/refresh",
            "Refresh endpoint and its tests",
            "- the pizza question is settled",
        ),
    ];
    for (device, when, branch, task, context) in steps {
        if a.git(&["branch", "--show-current"]) != branch {
            a.git(&["checkout", "-q", "-B", branch]);
        }
        write_draft(&a, &format!("### Current Task\n{task}\n\n### Important Context\n{context}\n\n### Next Steps\n1. keep going\n"));
        a.convosync()
            .env("CONVOSYNC_DEVICE", device)
            .env("CONVOSYNC_NOW", when)
            .args(["save-handoff", "--no-push"])
            .assert()
            .success();
    }
    (env, a)
}

pub fn run(d: &Device, device: &str, args: &[&str]) -> String {
    normalize(&run_raw(d, device, args))
}

fn run_raw(d: &Device, device: &str, args: &[&str]) -> String {
    let out = d
        .convosync()
        .env("CONVOSYNC_DEVICE", device)
        .env("CONVOSYNC_NOW", NOW)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Commit ids → <id>, so snapshots do not depend on the clone's own initial commit.
fn normalize(s: &str) -> String {
    let re = regex::Regex::new(r"\b[0-9a-f]{40}\b|\b[0-9a-f]{8}\b|\b[0-9a-f]{7}\b").unwrap();
    re.replace_all(s, "<id>").into_owned()
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
fn history_lists_filters_and_shows() {
    let (_env, a) = history_env();
    insta::assert_snapshot!("history", run(&a, "desk", &["history"]));
    insta::assert_snapshot!(
        "history_filtered",
        run(
            &a,
            "desk",
            &["history", "--device", "laptop", "--since", "2 days"]
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_raw(&a, "desk", &["history", "--json", "--limit", "2"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["device"], "laptop");
    assert_eq!(json[0]["branch"], "feature/refresh");
    assert_eq!(json[0]["task"], "Refresh endpoint and its tests");
    assert_eq!(json[0]["timestamp"], "2026-11-25T08:00:00Z");
    let id = json[1]["id"].as_str().unwrap()[..10].to_string();
    let shown = a.convosync().args(["history", "show", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("Refresh-token storage in Redis"));
    let bad = a
        .convosync()
        .args(["history", "show", "nothex"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn devices_list_rename_and_forget_keep_history() {
    let (_env, a) = history_env();
    insta::assert_snapshot!("devices", run(&a, "desk", &["devices"]));
    a.convosync()
        .args(["devices", "rename", "laptop", "travel-laptop"])
        .assert()
        .success();
    a.convosync()
        .args(["devices", "forget", "desk"])
        .assert()
        .success();
    let files = a.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert_eq!(files, "devices/travel-laptop.md");
    let renamed = a.git(&["show", "refs/convosync/handoffs:devices/travel-laptop.md"]);
    assert!(renamed.starts_with("## Handoff from travel-laptop\n") && renamed.contains("Refresh endpoint"));
    // History still has everything.
    let history = run(&a, "desk", &["history", "--limit", "50"]);
    assert!(
        history.contains("Set up the OAuth client") && history.contains("Login routes"),
        "{history}"
    );
    let json: serde_json::Value = serde_json::from_str(&run(&a, "desk", &["devices", "--json"])).unwrap();
    let desk = json
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == "desk")
        .unwrap();
    assert_eq!(desk["forgotten"], true);
    assert_eq!(desk["this_machine"], true);
    assert_eq!(desk["handoffs"], 2);
    let err = a
        .convosync()
        .args(["devices", "rename", "nobody", "x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&err.stderr).contains("no device named nobody"));
}

#[test]
fn search_ranks_newest_first_and_highlights_only_on_a_terminal() {
    let (_env, a) = history_env();
    insta::assert_snapshot!("search", run(&a, "desk", &["search", "pizza"]));
    assert!(
        !run(&a, "desk", &["search", "pizza"]).contains('\x1b'),
        "no colour when piped"
    );
    let none = a.convosync().args(["search", "sushi"]).output().unwrap();
    assert!(
        !none.status.success() && String::from_utf8_lossy(&none.stdout).contains("No handoff mentions sushi")
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_raw(&a, "desk", &["search", "redis", "--json"])).unwrap();
    let hits = json.as_array().unwrap();
    assert_eq!(hits.len(), 2, "two sections of one handoff");
    assert!(hits
        .iter()
        .all(|h| h["id"] == hits[0]["id"] && h["device"] == "desk"));
    let scoped = run(&a, "desk", &["search", "keep", "going", "--branch", "main"]);
    assert_eq!(scoped.matches("Next Steps").count(), 2, "{scoped}");
}

#[test]
fn diff_section_by_section() {
    let (_env, a) = history_env();
    insta::assert_snapshot!("diff_default", run(&a, "desk", &["diff"]));
    let own = run(&a, "desk", &["diff", "laptop"]);
    assert!(
        own.contains("- Login routes") && own.contains("+ Refresh endpoint and its tests"),
        "{own}"
    );
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
