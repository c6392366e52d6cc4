//! The one view of other devices' notes: the synchronous session start, the prompt after an
//! asynchronous one and `convosync resume` show the same notes in the same order, with the same
//! split between the user's and teammates', and say the same when a note cannot be read.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::{context, hook, start_json};

/// The clock of every reader below: notes are dated around it.
const NOW: &str = "2026-11-24T12:00:00Z";

fn identity(d: &Device, name: &str, email: &str) {
    d.git(&["config", "user.name", name]);
    d.git(&["config", "user.email", email]);
}

/// Save and push a note as `device`, dated `when`.
fn save_as(d: &Device, device: &str, when: &str, task: &str) {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    d.convosync()
        .env("CONVOSYNC_DEVICE", device)
        .env("CONVOSYNC_NOW", when)
        .arg("save-handoff")
        .assert()
        .success();
}

fn prompt_json(d: &Device, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": d.dir, "hook_event_name": "UserPromptSubmit", "prompt": "hi"})
        .to_string()
}

/// A hook run on `d` with an asynchronous start.
fn hook_async(d: &Device, event: &str, input: String) -> Option<Value> {
    let out = d
        .convosync()
        .args(["hook", event])
        .env("CONVOSYNC_START", "async")
        .env("CONVOSYNC_NOW", NOW)
        .write_stdin(input)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "hooks always exit 0");
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then(|| serde_json::from_str(&s).expect("JSON"))
}

/// The asynchronous path: a session start answered from the local ref (which has nothing yet),
/// then, once the detached fetch brought the notes, the first prompt.
fn async_start_then_prompt(d: &Device, session: &str) -> Value {
    assert_eq!(
        hook_async(d, "session-start", start_json(d, session, "startup")),
        None,
        "nothing local yet"
    );
    let arrived = || {
        crate::common::git_output(
            &d.dir,
            &d.home,
            &["rev-parse", "--verify", "-q", "refs/convosync/handoffs"],
        )
        .status
        .success()
    };
    let start = std::time::Instant::now();
    while !arrived() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the notes never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let v =
        hook_async(d, "user-prompt-submit", prompt_json(d, session)).expect("the notes at the first prompt");
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "UserPromptSubmit");
    v
}

/// The devices whose notes are shown in full, in order.
fn order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("## From "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// The teammates' block, one line each.
fn teammates(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("# Teammates"))
        .skip(1)
        .take_while(|l| l.starts_with("- "))
        .map(str::to_string)
        .collect()
}

#[test]
fn session_start_prompt_and_resume_show_one_order_and_one_split() {
    let env = TestEnv::new();
    let writer = env.device("writer");
    identity(&writer, "Test User", "test@example.com");
    save_as(&writer, "alpha", "2026-11-24T09:00:00Z", "alpha's task");
    // Two notes written in the same second: the device name decides, the same way everywhere.
    save_as(&writer, "zulu", "2026-11-24T11:00:00Z", "zulu's task");
    save_as(&writer, "mike", "2026-11-24T11:00:00Z", "mike's task");
    // One written as the readers' clock reads, and one dated next year: that one counts as now,
    // so it no longer outranks every note to come, and it is shown as from the future.
    save_as(&writer, "echo", NOW, "echo's task");
    save_as(&writer, "future", "2027-11-24T12:00:00Z", "future's task");
    // A teammate.
    identity(&writer, "Bob Builder", "bob@example.com");
    save_as(&writer, "bob-desk", "2026-11-24T10:00:00Z", "bob's task");
    save_as(&writer, "bob-laptop", "2026-11-24T10:00:00Z", "bob's other task");

    let expected = ["echo", "future", "mike", "zulu", "alpha"];

    // The synchronous start.
    let sync = env.device("sync");
    identity(&sync, "Test User", "test@example.com");
    let out = sync
        .convosync()
        .args(["hook", "session-start"])
        .env("CONVOSYNC_NOW", NOW)
        .write_stdin(start_json(&sync, "s1", "startup"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("context");
    let at_start = context(&v);
    assert_eq!(order(&at_start), expected, "{at_start}");
    assert!(at_start.contains("## From future (in the future)"), "{at_start}");
    let mates = teammates(&at_start);
    assert_eq!(mates.len(), 2, "{at_start}");
    assert!(
        mates[0].contains("(bob-desk,") && mates[1].contains("(bob-laptop,"),
        "{mates:?}"
    );
    assert!(
        v["systemMessage"].as_str().unwrap().contains("resumed from echo"),
        "{v}"
    );

    // The asynchronous path: the notes come with the first prompt.
    let late = env.device("late");
    identity(&late, "Test User", "test@example.com");
    let v = async_start_then_prompt(&late, "s1");
    let at_prompt = context(&v);
    assert_eq!(order(&at_prompt), expected, "{at_prompt}");
    assert_eq!(teammates(&at_prompt), mates, "{at_prompt}");
    assert!(
        v["systemMessage"].as_str().unwrap().contains("resumed from echo"),
        "{v}"
    );

    // `convosync resume`: the same order and the same teammates, no order of its own.
    let out = sync
        .convosync()
        .env("CONVOSYNC_NOW", NOW)
        .args(["resume", "--offline"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let resumed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(order(&resumed), expected, "{resumed}");
    assert_eq!(teammates(&resumed), mates, "{resumed}");
    assert!(resumed.contains("## From future (in the future)"), "{resumed}");
}

/// A device without the key, whose notes arrive at the first prompt (the asynchronous start),
/// is told that a note could not be read and why, as the synchronous start tells it, and never
/// that there are no notes.
#[test]
fn a_keyless_device_is_told_at_the_first_prompt_that_a_note_could_not_be_read() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("borrowed");
    a.convosync().args(["key", "init"]).assert().success();
    write_draft(
        &a,
        "### Current Task\nzebra-quantum-4711 rotate the signing keys\n",
    );
    a.convosync().arg("save-handoff").assert().success();

    let v = async_start_then_prompt(&b, "s1");
    let line = v["systemMessage"].as_str().unwrap().to_string();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("could not read encrypted notes from desktop: this device has no key"),
        "{line}"
    );
    assert!(
        line.contains("convosync key add"),
        "what to run, the first time: {line}"
    );
    assert!(!line.contains("no notes"), "{line}");
    let ctx = context(&v);
    assert!(
        ctx.contains("- could not read encrypted notes from desktop: this device has no key"),
        "{ctx}"
    );
    assert!(!ctx.contains("zebra-quantum"), "{ctx}");
    // Said once: the next prompt adds nothing.
    assert_eq!(hook_async(&b, "user-prompt-submit", prompt_json(&b, "s1")), None);

    // The synchronous start of another session says the same (what to run was said already).
    let v = hook(&b, "session-start", &start_json(&b, "s2", "startup")).expect("a message");
    let sync_line = v["systemMessage"].as_str().unwrap();
    assert_eq!(
        sync_line,
        "convosync: could not read encrypted notes from desktop: this device has no key"
    );
    assert_eq!(
        line.replacen("newer notes: ", "", 1)
            .split("; run")
            .next()
            .unwrap(),
        sync_line,
        "the prompt said what the start says"
    );
    assert!(context(&v).contains("- could not read encrypted notes from desktop"));
}
