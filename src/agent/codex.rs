//! Codex CLI (0.169): the plugin loads from a local marketplace (`.codex-plugin/plugin.json`,
//! hooks in `hooks/codex.json`, each run with `--agent codex`), Claude Code's event names, and
//! closed output schemas: any key it does not list fails the hook ("hook returned invalid … JSON
//! output") and drops its context. What each event accepts (from the schemas in the binary):
//!
//! | event | keys |
//! | --- | --- |
//! | SessionStart, UserPromptSubmit | `continue`, `stopReason`, `suppressOutput`, `systemMessage`, `hookSpecificOutput{hookEventName, additionalContext}` |
//! | Stop | `continue`, `stopReason`, `suppressOutput`, `systemMessage`, `decision: "block"`, `reason` |
//! | SessionEnd | no output schema: nothing is printed |
//!
//! A Stop `decision: block` reaches the model as a user message `<hook_prompt …>reason
//! </hook_prompt>` and the turn goes on; that is how the handoff request is delivered. SessionEnd
//! is clamped to 3 s (1 s by default); no `CLAUDE_PROJECT_DIR` (stdin's `cwd` is the project).
//! Hooks run only once trusted by hash (see [`crate::cmd::install`]). The transcript is the
//! rollout `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl` (see
//! [`crate::transcript`]).

use serde_json::Value;

use super::{context_output, decision_output, Reply};
use crate::hook::wire::Event;

pub fn render(event: Event, reply: &Reply) -> Option<Value> {
    match event {
        Event::SessionStart => context_output("SessionStart", reply),
        Event::UserPromptSubmit => context_output("UserPromptSubmit", reply),
        Event::Stop => match reply.problem.as_ref().or(reply.request.as_ref()) {
            Some(reason) => Some(decision_output("block", reason, reply.message.as_ref())),
            None => context_output("Stop", &Reply::message(reply.message.clone()?)),
        },
        _ => None,
    }
}
