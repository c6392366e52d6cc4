//! The history cache (issue 15): `history` and `search` read the versions on the handoff ref from
//! a cache keyed by the ref's tip, brought up to date as the tip moves; a rewritten ref, a corrupt
//! or foreign cache file and concurrent writers never show anything but the ref's own history.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{Device, TestEnv};
use crate::core::write_draft;

const REF: &str = "refs/convosync/handoffs";

fn save(d: &Device, when: &str, task: &str, push: bool) {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    let mut c = d.convosync();
    c.env("CONVOSYNC_NOW", when).arg("save-handoff");
    if !push {
        c.arg("--no-push");
    }
    c.assert().success();
}

/// `history --json`: (id, device, task) of every version, newest first.
fn history(d: &Device) -> Vec<(String, String, String)> {
    let o = d
        .convosync()
        .args(["history", "--json", "--limit", "1000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["device"].as_str().unwrap().to_string(),
                x["task"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn tasks(h: &[(String, String, String)]) -> Vec<&str> {
    h.iter().map(|(_, _, t)| t.as_str()).collect()
}

fn cache_file(d: &Device) -> PathBuf {
    d.dir.join(".git/convosync/history-refs_convosync_handoffs.json")
}

fn cache_json(d: &Device) -> Value {
    serde_json::from_slice(&std::fs::read(cache_file(d)).expect("the cache was written"))
        .expect("the cache is valid JSON")
}

/// Edit the cached task line of `from` to `to` in place: visible only while the cache is used.
fn tamper(d: &Device, from: &str, to: &str) {
    let text = std::fs::read_to_string(cache_file(d)).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(cache_file(d), text.replace(from, to)).unwrap();
}

#[test]
fn history_cache_takes_in_handoffs_from_a_sync_merge_issue_15() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    save(&a, "2026-11-20T09:00:00Z", "first from a", true);
    b.convosync().arg("sync").assert().success();
    assert_eq!(tasks(&history(&b)), ["first from a"]);
    let tip = b.git(&["rev-parse", REF]);
    assert_eq!(
        cache_json(&b)["tip"],
        tip.as_str(),
        "the cache is keyed by the tip"
    );
    // Whatever the cache holds for commits it already covers is used as is from now on.
    tamper(&b, "first from a", "first from a (from the cache)");

    // Both sides move: a pushes two handoffs, b saves one of its own; the sync merges them.
    save(&a, "2026-11-20T10:00:00Z", "second from a", true);
    save(&a, "2026-11-20T11:00:00Z", "third from a", true);
    save(&b, "2026-11-20T12:00:00Z", "own work on b", false);
    b.convosync().arg("sync").assert().success();
    let parents = b.git(&["rev-list", "--parents", "-n", "1", REF]);
    assert_eq!(parents.split(' ').count(), 3, "sync made a merge: {parents}");

    let warm = history(&b);
    assert_eq!(
        tasks(&warm),
        [
            "own work on b",
            "third from a",
            "second from a",
            "first from a (from the cache)"
        ],
        "only the new commits were walked, on both sides of the merge"
    );
    assert_eq!(cache_json(&b)["tip"], b.git(&["rev-parse", REF]).as_str());
    let search = b.convosync().args(["search", "third"]).output().unwrap();
    assert!(String::from_utf8_lossy(&search.stdout).contains("third from a"));

    // A walk from scratch finds exactly the same versions, under the same ids.
    std::fs::remove_file(cache_file(&b)).unwrap();
    let cold = history(&b);
    assert_eq!(
        tasks(&cold),
        ["own work on b", "third from a", "second from a", "first from a"]
    );
    let ids = |h: &[(String, String, String)]| -> Vec<(String, String)> {
        h.iter().map(|(i, d, _)| (i.clone(), d.clone())).collect()
    };
    assert_eq!(ids(&warm), ids(&cold));
}

#[test]
fn history_cache_is_rebuilt_after_a_ref_rewrite_issue_15() {
    let env = TestEnv::new();
    let a = env.device("a");
    let c = env.device("c");
    save(&a, "2026-11-20T09:00:00Z", "old one", false);
    save(&a, "2026-11-20T10:00:00Z", "old two", false);
    assert_eq!(tasks(&history(&a)), ["old two", "old one"]);
    // An unrelated history, written elsewhere, replaces the ref.
    save(&c, "2026-11-21T09:00:00Z", "unrelated", false);
    a.git(&[
        "fetch",
        "-q",
        c.dir.to_str().unwrap(),
        &format!("{REF}:refs/elsewhere/handoffs"),
    ]);
    let other = a.git(&["rev-parse", "refs/elsewhere/handoffs"]);
    a.git(&["update-ref", REF, &other]);
    let after = history(&a);
    assert_eq!(tasks(&after), ["unrelated"], "no stale entries: {after:?}");
    assert_eq!(after[0].1, "c");
    assert_eq!(cache_json(&a)["tip"], other.as_str());
    // Back to an ancestor of the cached tip: also a rewrite.
    save(&a, "2026-11-22T09:00:00Z", "on top", false);
    assert_eq!(tasks(&history(&a)), ["on top", "unrelated"]);
    a.git(&["update-ref", REF, &other]);
    assert_eq!(tasks(&history(&a)), ["unrelated"]);
}

#[test]
fn corrupt_or_foreign_history_cache_is_ignored_and_rebuilt_issue_15() {
    let env = TestEnv::new();
    let a = env.device("a");
    save(&a, "2026-11-20T09:00:00Z", "one", false);
    save(&a, "2026-11-20T10:00:00Z", "two", false);
    assert_eq!(tasks(&history(&a)), ["two", "one"]);
    let good = cache_json(&a);

    for bad in [
        b"{\"format\": 1, \"versions\": [".to_vec(),
        b"\xff\xfe not json at all".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(cache_file(&a), &bad).unwrap();
        assert_eq!(tasks(&history(&a)), ["two", "one"]);
        assert_eq!(cache_json(&a), good, "rebuilt");
    }
    // A well-formed cache of another format version, or another release, is not trusted either.
    for (field, value) in [("format", Value::from(0)), ("writer", Value::from("0.0.0"))] {
        let mut old = good.clone();
        old[field] = value;
        let text = serde_json::to_string(&old).unwrap();
        let stale = text.replace("\"body\":\"one\"", "\"body\":\"stale\"");
        assert_ne!(stale, text);
        std::fs::write(cache_file(&a), stale).unwrap();
        assert_eq!(tasks(&history(&a)), ["two", "one"], "{field}");
        assert_eq!(cache_json(&a), good);
    }
    // A cache directory that cannot be written does not stop the listing.
    std::fs::remove_file(cache_file(&a)).unwrap();
    std::fs::create_dir(cache_file(&a)).unwrap();
    assert_eq!(tasks(&history(&a)), ["two", "one"]);
    a.convosync().args(["search", "two"]).assert().success();
}

#[test]
fn concurrent_history_runs_leave_a_whole_cache_issue_15() {
    let env = TestEnv::new();
    let a = env.device("a");
    for i in 0..6 {
        save(
            &a,
            &format!("2026-11-20T{:02}:00:00Z", 10 + i),
            &format!("task {i}"),
            false,
        );
    }
    let want: Vec<String> = (0..6).rev().map(|i| format!("task {i}")).collect();
    for round in 0..3 {
        if round < 2 {
            let _ = std::fs::remove_file(cache_file(&a));
        } else {
            // The tip moved since the cache was written: all of them bring it up to date at once.
            save(&a, "2026-11-21T09:00:00Z", "moved", false);
        }
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let mut c = a.convosync();
                c.args(["history", "--json", "--limit", "1000"]);
                std::thread::spawn(move || c.output().unwrap())
            })
            .collect();
        for run in runs {
            let o = run.join().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(v.as_array().unwrap().len() >= 6);
        }
        let cached = cache_json(&a);
        assert_eq!(cached["tip"], a.git(&["rev-parse", REF]).as_str());
        let got = history(&a);
        let mut expect: Vec<&str> = want.iter().map(String::as_str).collect();
        if round == 2 {
            expect.insert(0, "moved");
        }
        assert_eq!(tasks(&got), expect);
        let leftovers: Vec<_> = std::fs::read_dir(a.dir.join(".git/convosync"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
