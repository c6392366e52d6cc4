//! The coding agents convosync serves, one adapter each: what the agent sends a hook (event names,
//! input fields, environment), what it accepts back (exactly those fields: Codex fails a hook
//! whose JSON has a key it does not know), how a Stop request reaches its model, the format of its
//! transcript, its name and version for a note's `**Agent:**` line, and where it installs.
//!
//! Everything else (what to inject, when to ask, the draft, redaction, encryption, sync) is the
//! shared core in [`crate::hook`], which answers in one agent-neutral [`Reply`]; nothing outside
//! this module knows which agent called. A further agent with hooks of the same shape (session
//! start, prompt submit, stop, session end; JSON on stdin) is one more file here and one more arm
//! in each `match` below.

pub mod claude;
pub mod codex;
pub mod gemini;

use std::path::Path;

use serde_json::Value;

use crate::hook::wire::{Event, HookInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Claude,
    Codex,
    Gemini,
}

/// What a hook answers, whatever the agent: each adapter turns it into its agent's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Text for the model's context (SessionStart, UserPromptSubmit).
    pub context: Option<String>,
    /// Stop: ask the model to go on and do this (the routine request for a handoff).
    pub request: Option<String>,
    /// Stop: something the model must fix before it stops (a draft that could not be saved).
    pub problem: Option<String>,
    /// One short line for the user.
    pub message: Option<String>,
}

impl Agent {
    pub const ALL: [Agent; 3] = [Agent::Claude, Agent::Codex, Agent::Gemini];

    /// `claude`, `codex` or `gemini` (as `--agent` takes them).
    pub fn parse(id: &str) -> Option<Agent> {
        Agent::ALL
            .into_iter()
            .find(|a| a.id() == id.trim().to_ascii_lowercase())
    }

    pub fn id(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
        }
    }

    /// The agent's name as people know it.
    pub fn name(self) -> &'static str {
        match self {
            Agent::Claude => "Claude Code",
            Agent::Codex => "Codex",
            Agent::Gemini => "Gemini CLI",
        }
    }

    /// The agent that ran a hook without `--agent`: Gemini CLI sets `GEMINI_SESSION_ID` and
    /// sends a `timestamp`; Codex's transcript is a `rollout-*.jsonl` under `sessions/` and its
    /// Stop sends a `turn_id`; anything else is Claude Code.
    pub fn detect(input: &HookInput, env: impl Fn(&str) -> Option<String>) -> Agent {
        if env(gemini::SESSION_VAR).is_some() || input.timestamp.is_some() {
            return Agent::Gemini;
        }
        let rollout = input
            .transcript_path
            .as_deref()
            .and_then(|p| Path::new(p).file_name())
            .is_some_and(|f| f.to_string_lossy().starts_with("rollout-"));
        if rollout || input.turn_id.is_some() {
            return Agent::Codex;
        }
        Agent::Claude
    }

    /// The JSON to print for `reply` at `event`, with exactly the fields this agent accepts
    /// there; `None` prints nothing. Context goes as `hookSpecificOutput` under the agent's name
    /// for the event; a Stop that makes the model go on as `{"decision": <word>, "reason": …}`
    /// (Claude Code takes the routine request as Stop context and blocks only for a problem, see
    /// [`claude`]); the line for the user as `systemMessage`. Codex has no output schema for
    /// SessionEnd: nothing is printed there.
    pub fn render(self, event: Event, reply: &Reply) -> Option<Value> {
        let (context, request, problem) = (
            reply.context.as_ref(),
            reply.request.as_ref(),
            reply.problem.as_ref(),
        );
        let (name, context, decision) = match (self, event) {
            (Agent::Codex, Event::SessionEnd | Event::Push | Event::Fetch) => return None,
            (Agent::Claude, _) if problem.is_some() => ("", None, problem.map(|p| ("block", p))),
            (Agent::Claude, Event::Stop) => ("Stop", context.or(request), None),
            (Agent::Codex, Event::Stop) => ("", None, problem.or(request).map(|r| ("block", r))),
            (Agent::Gemini, Event::Stop) => ("", None, problem.or(request).map(|r| ("deny", r))),
            (Agent::Gemini, Event::UserPromptSubmit) => ("BeforeAgent", context, None),
            (_, Event::UserPromptSubmit) => ("UserPromptSubmit", context, None),
            (_, Event::SessionStart) => ("SessionStart", context, None),
            _ => ("", None, None),
        };
        let mut out = serde_json::Map::new();
        if let Some((word, reason)) = decision {
            out.insert("decision".into(), word.into());
            out.insert("reason".into(), reason.as_str().into());
        }
        if let Some(c) = context {
            let specific = serde_json::json!({ "hookEventName": name, "additionalContext": c });
            out.insert("hookSpecificOutput".into(), specific);
        }
        if let Some(m) = &reply.message {
            out.insert("systemMessage".into(), m.as_str().into());
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }

    /// How a session of this agent runs the convosync command `what`: Claude Code has the
    /// plugin's slash commands (`/convosync:resume`); the others run the command in their shell.
    pub fn command(self, what: &str) -> String {
        match self {
            Agent::Claude => format!("/convosync:{what}"),
            Agent::Codex | Agent::Gemini => format!("`convosync {what}`"),
        }
    }

    /// What a note's `**Agent:**` line says: the name, and the version when the transcript
    /// tells it (`Codex 0.169.0`, see [`crate::transcript::agent_version`]).
    pub fn label(self, version: Option<String>) -> String {
        version.map_or_else(|| self.name().to_string(), |v| format!("{} {v}", self.name()))
    }

    /// The agent whose shell runs a convosync command (`save-handoff` run by the model), from the
    /// variables each agent sets for its tools; `None` from a plain terminal.
    pub fn from_tool_env(env: impl Fn(&str) -> Option<String>) -> Option<Agent> {
        if env("CODEX_SESSION_ID").is_some() || env("CODEX_THREAD_ID").is_some() {
            Some(Agent::Codex)
        } else if env("GEMINI_CLI").is_some() || env(gemini::SESSION_VAR).is_some() {
            Some(Agent::Gemini)
        } else if env("CLAUDECODE").is_some() {
            Some(Agent::Claude)
        } else {
            None
        }
    }
}

/// The agent's name from a note's `**Agent:**` line (`Codex 0.169.0` → `Codex`): the words
/// before a version.
pub fn name_of(label: &str) -> String {
    label
        .split_whitespace()
        .take_while(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_agent_from_its_input() {
        let none = |_: &str| None;
        let codex = HookInput::parse(br#"{"session_id":"s","transcript_path":"/h/.codex/sessions/2026/12/03/rollout-2026-12-03T07-06-09-s.jsonl","hook_event_name":"SessionStart","model":"gpt-5.5","source":"startup"}"#).unwrap();
        assert_eq!(Agent::detect(&codex, none), Agent::Codex);
        let stop = HookInput::parse(br#"{"session_id":"s","turn_id":"t","hook_event_name":"Stop"}"#).unwrap();
        assert_eq!(Agent::detect(&stop, none), Agent::Codex);
        let gemini = HookInput::parse(
            br#"{"session_id":"s","hook_event_name":"AfterAgent","timestamp":"2026-12-03T07:13:54.436Z"}"#,
        )
        .unwrap();
        assert_eq!(Agent::detect(&gemini, none), Agent::Gemini);
        let claude = HookInput::parse(br#"{"session_id":"s","transcript_path":"/h/.claude/projects/-x/s.jsonl","hook_event_name":"Stop"}"#).unwrap();
        assert_eq!(Agent::detect(&claude, none), Agent::Claude);
        assert_eq!(
            Agent::detect(&claude, |k| (k == "GEMINI_SESSION_ID").then(|| "g".into())),
            Agent::Gemini
        );
        assert_eq!(Agent::parse("Codex"), Some(Agent::Codex));
        assert_eq!(Agent::parse("cursor"), None);
    }

    #[test]
    fn names_from_labels() {
        assert_eq!(name_of("Codex 0.169.0"), "Codex");
        assert_eq!(name_of("Claude Code 2.1.331"), "Claude Code");
        assert_eq!(name_of("Gemini CLI"), "Gemini CLI");
        assert_eq!(name_of(""), "");
    }

    /// What every agent gets for each kind of reply: only keys it accepts.
    #[test]
    fn replies_per_agent() {
        let start = Reply {
            context: Some("CTX".into()),
            message: Some("convosync: resumed".into()),
            ..Reply::default()
        };
        let ask = Reply {
            request: Some("write the draft".into()),
            ..Reply::default()
        };
        let end = crate::hook::message("handoff saved");
        let s = |a: Agent, e: Event, r: &Reply| a.render(e, r).map(|v| v.to_string()).unwrap_or_default();
        assert_eq!(
            s(Agent::Claude, Event::SessionStart, &start),
            r#"{"hookSpecificOutput":{"additionalContext":"CTX","hookEventName":"SessionStart"},"systemMessage":"convosync: resumed"}"#
        );
        assert_eq!(
            s(Agent::Claude, Event::Stop, &ask),
            r#"{"hookSpecificOutput":{"additionalContext":"write the draft","hookEventName":"Stop"}}"#
        );
        assert_eq!(
            s(Agent::Codex, Event::SessionStart, &start),
            s(Agent::Claude, Event::SessionStart, &start)
        );
        assert_eq!(
            s(Agent::Codex, Event::Stop, &ask),
            r#"{"decision":"block","reason":"write the draft"}"#
        );
        assert_eq!(s(Agent::Codex, Event::SessionEnd, &end), "");
        assert_eq!(
            s(Agent::Gemini, Event::UserPromptSubmit, &start),
            r#"{"hookSpecificOutput":{"additionalContext":"CTX","hookEventName":"BeforeAgent"},"systemMessage":"convosync: resumed"}"#
        );
        assert_eq!(
            s(Agent::Gemini, Event::Stop, &ask),
            r#"{"decision":"deny","reason":"write the draft"}"#
        );
        assert_eq!(s(Agent::Gemini, Event::Stop, &Reply::default()), "");
    }
}
