//! Gemini CLI (0.61): the plugin's `gemini-extension/` directory loads as an extension
//! (`gemini-extension.json`, `hooks/hooks.json` calling the shim beside it through
//! `${extensionPath}`, timeouts in milliseconds). It is a directory of its own because Gemini CLI
//! reads an extension's hooks from `hooks/hooks.json`, where Claude Code's are, and each warns
//! about the other's event names. Events `SessionStart`, `BeforeAgent` (prompt submit), `AfterAgent` (stop),
//! `SessionEnd`; the whole stdout must be one JSON object (plain text becomes a message for the
//! user, never context). Context lands in the prompt inside `<hook_context>` tags; AfterAgent's
//! `{"decision":"deny","reason":…}` sends the reason to the model as a new user message and the
//! turn goes on (the next AfterAgent has `stop_hook_active`). It sets `GEMINI_PROJECT_DIR` and
//! `GEMINI_SESSION_ID`; the transcript is `~/.gemini/tmp/<project>/chats/session-*.jsonl`.

pub const SESSION_VAR: &str = "GEMINI_SESSION_ID";
