//! Claude Code (the plugin's first home): its own event names, `hookSpecificOutput` context for
//! SessionStart, UserPromptSubmit and Stop, `decision: block` for a problem, seconds for
//! timeouts, `CLAUDE_PROJECT_DIR`, transcripts of `{"type":"user"|"assistant","message":…}`
//! lines under `~/.claude/projects/`.
//!
//! A Stop request goes as Stop `additionalContext`, not `decision: block`: Claude Code 2.1.331
//! feeds it to the model as hook context (the turn goes on, the next Stop has
//! `stop_hook_active`) and shows the user "Stop hook says: …", whereas a block is shown as "Stop
//! hook reported a problem" and sent to the model as a "blocking error".
