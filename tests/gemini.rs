//! End to end with the real Gemini CLI (pinned by ../shared/gemini-harness), offline against a
//! scripted mock of the Gemini API, next to real Claude Code sessions: the same round trip as
//! with Codex. The extension is this checkout's `gemini-extension/`, linked as a user's would be.
//! Skipped with a message only when the CLI cannot be installed here (a failure under
//! `CONVOSYNC_REQUIRE_TOOLS`).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::json;

use crate::claude::{claude_bin, text, write, Session as ClaudeSession};
use crate::codex::{agent_bin, plugin_copy, RunArgs};
use crate::common::TestEnv;

fn gemini_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    agent_bin("gemini", &BIN)
}

/// A Claude Code note reaches a Gemini CLI session's first request; the Gemini session writes
/// and commits work, is asked once (AfterAgent `decision: deny`, which Gemini sends to the model
/// as a new user message), writes the draft, and its note, `**Agent:** Gemini CLI`, reaches a
/// Claude Code session on the first device.
#[test]
fn claude_code_and_gemini_cli_hand_off_both_ways() {
    let Some(gemini) = gemini_bin() else { return };
    let Some(claude) = claude_bin() else { return };
    let env = TestEnv::new();
    let desktop = env.device("desktop");
    let laptop = env.device("laptop");
    let logs = env.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let plugin = plugin_copy(env.path());
    let extension = plugin.join("gemini-extension");

    let draft = desktop.dir.join(".convosync/session-handoff-draft.md");
    let s = ClaudeSession::on(&claude, &desktop, logs.join("claude1"))
        .replies(&[
            write(
                &draft,
                "### Current Task\nPlanning the dinner\n\n### Important Context\n- The user's favourite pizza is Diavola\n",
            ),
            text("Handoff written."),
        ])
        .run("My favourite pizza is Diavola. Write a handoff.");
    assert_eq!(s.exit, 0, "{}", s.stdout);

    let gm = RunArgs {
        harness: "gemini",
        bin: ("--gemini", &gemini),
        plugin: ("--extension", &extension),
        open: "--yolo",
    };
    let laptop_draft = ".convosync/session-handoff-draft.md";
    let replies = [
        json!({ "write_file": { "path": "dinner.txt", "content": "Diavola\n" } }),
        json!({ "shell": "git add dinner.txt && git commit -qm 'Order the dinner'" }),
        text("Ordered and committed."),
        json!({ "write_file": { "path": laptop_draft, "content": "### Current Task\nOrdering the dinner\n\n### Next Steps\n- Book the table for eight\n" } }),
        text("Handoff written."),
    ];
    let r = gm
        .on(&laptop, logs.join("gemini1"))
        .replies(&replies)
        .run("What is my favourite pizza? Then order it.");
    assert_eq!(r.exit, 0, "{}", r.stderr());
    let reqs = r.requests();
    let first = reqs.first().expect("a request");
    assert!(
        first.contains("favourite pizza is Diavola") && first.contains("## From desktop (Claude Code 2."),
        "the Claude Code note reached Gemini CLI's first request"
    );
    let asked: Vec<usize> = reqs
        .iter()
        .map(|r| r.matches("Then stop: convosync commits and pushes it.").count())
        .collect();
    assert_eq!(asked.last().copied(), Some(1), "asked exactly once: {asked:?}");
    assert!(!laptop.dir.join(laptop_draft).exists(), "the draft was committed");
    let pushed = env.pushed_note(&laptop);
    assert!(
        pushed.contains("Book the table for eight") && pushed.contains("**Agent:** Gemini CLI"),
        "{pushed}"
    );
    assert!(pushed.contains("(Order the dinner)"), "{pushed}");

    let s = ClaudeSession::on(&claude, &desktop, logs.join("claude2")).run("Where were we?");
    assert_eq!(s.exit, 0);
    let first = s.requests().into_iter().next().expect("a request");
    assert!(
        first.contains("## From laptop (Gemini CLI, ") && first.contains("Book the table for eight"),
        "the Gemini CLI note reached Claude Code"
    );
}
