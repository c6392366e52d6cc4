//! What an agent (Claude Code, Codex, Gemini CLI) sends a hook on stdin, read leniently: any field may be missing or of the
//! wrong type, and garbage is simply "no input". Unknown fields are ignored.

use serde_json::Value;

/// Hook input is small; anything beyond this is not read (a hook must never stall on stdin).
pub const MAX_INPUT: usize = 1 << 20;

/// The hook events this binary answers; anything else does nothing, before any repository work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SessionStart,
    UserPromptSubmit,
    Stop,
    SessionEnd,
    /// Internal: the detached push SessionEnd starts.
    Push,
    /// Internal: the detached fetch an asynchronous SessionStart starts.
    Fetch,
}

impl Event {
    /// The event a hook name means: convosync's own names (`session-start`, …, as every hooks
    /// file of this plugin passes them) and each agent's names for the same moments (Claude
    /// Code's and Codex's `SessionStart`, Gemini CLI's `BeforeAgent` for a prompt submit and
    /// `AfterAgent` for a stop).
    pub fn parse(name: &str) -> Option<Event> {
        Some(match name {
            "session-start" | "SessionStart" => Event::SessionStart,
            "user-prompt-submit" | "UserPromptSubmit" | "BeforeAgent" => Event::UserPromptSubmit,
            "stop" | "Stop" | "AfterAgent" => Event::Stop,
            "session-end" | "SessionEnd" => Event::SessionEnd,
            "push" => Event::Push,
            "fetch" => Event::Fetch,
            _ => return None,
        })
    }

    /// The internal events run detached, with a longer deadline of their own.
    pub fn is_background(self) -> bool {
        matches!(self, Event::Push | Event::Fetch)
    }
}

/// Why a session (re)started, from SessionStart's `source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// A new session (also when Claude Code sent no source).
    #[default]
    Startup,
    Resume,
    /// A new session id over an earlier session's transcript.
    Fork,
    /// The context is gone, the ref has not changed.
    Clear,
    Compact,
    /// A source this version does not know: treated like `resume`.
    Unknown,
}

impl Source {
    pub fn parse(source: Option<&str>) -> Source {
        match source {
            None | Some("startup") => Source::Startup,
            Some("resume") => Source::Resume,
            Some("fork") => Source::Fork,
            Some("clear") => Source::Clear,
            Some("compact") => Source::Compact,
            Some(_) => Source::Unknown,
        }
    }

    /// Whether the session's context is known to hold none of our notes.
    pub fn context_is_empty(self) -> bool {
        matches!(self, Source::Startup | Source::Clear | Source::Compact)
    }

    /// After `clear` or `compact` the ref has not changed: no network.
    pub fn wants_network(self) -> bool {
        !matches!(self, Source::Clear | Source::Compact)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub cwd: Option<String>,
    /// SessionStart: `startup`, `resume`, `fork`, `clear` or `compact` (see [`Source`]).
    pub source: Source,
    /// Stop: true when Claude is already continuing because of a Stop hook.
    pub stop_hook_active: bool,
    /// Codex: the turn (UserPromptSubmit, Stop); tells Codex's input from Claude Code's.
    pub turn_id: Option<String>,
    /// Gemini CLI: when the event fired; tells Gemini CLI's input from the others'.
    pub timestamp: Option<String>,
    /// Stop: background tasks (`background_tasks`) and scheduled prompts (`session_crons`)
    /// still running or pending; the session's work is not finished while there are any.
    pub running_work: usize,
}

impl HookInput {
    /// Read all of stdin, at most [`MAX_INPUT`] bytes. `None` when it cannot be had whole (over
    /// the cap, a read error, not a JSON object): a hook then does nothing at all, since acting
    /// on a part of the input (a Stop without `stop_hook_active`, say) could be wrong.
    pub fn read(stdin: impl std::io::Read) -> Option<HookInput> {
        use std::io::Read;
        let mut buf = Vec::new();
        stdin.take(MAX_INPUT as u64 + 1).read_to_end(&mut buf).ok()?;
        (buf.len() <= MAX_INPUT).then(|| HookInput::parse(&buf))?
    }

    /// Parse stdin, once: `None` when it is not a JSON object. Fields of the wrong type are
    /// missing; fields this binary does not read are ignored.
    pub fn parse(bytes: &[u8]) -> Option<HookInput> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return None;
        };
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        };
        Some(HookInput {
            session_id: text("session_id"),
            transcript_path: text("transcript_path"),
            cwd: text("cwd"),
            source: Source::parse(text("source").as_deref()),
            stop_hook_active: map.get("stop_hook_active").and_then(Value::as_bool) == Some(true),
            turn_id: text("turn_id"),
            timestamp: text("timestamp"),
            running_work: running(map.get("background_tasks")) + running(map.get("session_crons")),
        })
    }

    /// The session id made safe for a file name.
    pub fn session_key(&self) -> Option<String> {
        session_key(self.session_id.as_deref()?)
    }
}

/// A session id made safe for a file name.
pub fn session_key(id: &str) -> Option<String> {
    let key: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(100)
        .collect();
    (!key.is_empty()).then_some(key)
}

/// Entries of a `background_tasks` / `session_crons` array that are not finished. Claude Code
/// 2.1.331 sends `[{"id","type":"shell","status":"running","description","command"}]`; an entry
/// without a known final status counts as running (a session cron has no status: it fires again).
fn running(v: Option<&Value>) -> usize {
    let done = |t: &&Value| {
        let status = t.get("status").and_then(Value::as_str);
        matches!(
            status,
            Some("completed" | "failed" | "killed" | "stopped" | "cancelled" | "canceled")
        )
    };
    v.and_then(Value::as_array)
        .map_or(0, |items| items.iter().filter(|t| !done(t)).count())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_claude_fields() {
        let i = HookInput::parse(br#"{"session_id":"abc-1","cwd":"/x","source":"startup","stop_hook_active":true,"extra":{"deep":[1,2]}}"#).unwrap();
        assert_eq!(i.session_id.as_deref(), Some("abc-1"));
        assert_eq!(i.cwd.as_deref(), Some("/x"));
        assert!(i.stop_hook_active);
    }

    #[test]
    fn wrong_types_and_garbage_are_no_input() {
        assert_eq!(HookInput::parse(b"not json"), None);
        assert_eq!(HookInput::parse(b"[1,2,3]"), None);
        assert_eq!(HookInput::parse(b""), None);
        let i = HookInput::parse(br#"{"session_id":42,"stop_hook_active":"yes","cwd":null}"#);
        assert_eq!(i, Some(HookInput::default()));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(HookInput::parse(deep.as_bytes()), None);
        assert_eq!(
            HookInput::parse(br#"{"session_id":"../../etc/passwd"}"#)
                .unwrap()
                .session_key()
                .as_deref(),
            Some("etcpasswd")
        );
    }

    #[test]
    fn running_work_from_stop_input() {
        // As Claude Code 2.1.331 sends it while a `run_in_background` Bash task runs.
        let i = HookInput::parse(br#"{"hook_event_name":"Stop","background_tasks":[{"id":"bs4mklyp8","type":"shell","status":"running","description":"long","command":"sleep 20"}],"session_crons":[]}"#).unwrap();
        assert_eq!(i.running_work, 1);
        let i = HookInput::parse(br#"{"background_tasks":[{"status":"completed"},{"status":"killed"}],"session_crons":[{"id":"c1","cron":"*/5 * * * *"}]}"#).unwrap();
        assert_eq!(
            i.running_work, 1,
            "a scheduled prompt counts, finished tasks do not"
        );
        let i = HookInput::parse(br#"{"background_tasks":[],"session_crons":[]}"#).unwrap();
        assert_eq!(i.running_work, 0);
        let i = HookInput::parse(br#"{"background_tasks":"junk","session_crons":7}"#).unwrap();
        assert_eq!(i.running_work, 0);
    }

    #[test]
    fn input_not_read_whole_is_no_input() {
        let ok = br#"{"session_id":"s","cwd":"/x"}"#;
        assert!(HookInput::read(&ok[..]).is_some());
        // Over the cap: even a valid object whose tail is padding is refused, not cut.
        let mut big = br#"{"session_id":"s","pad":""#.to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_INPUT));
        big.extend(br#""}"#);
        assert_eq!(HookInput::read(&big[..]), None);
        // Truncated, garbage, empty, not an object.
        assert_eq!(HookInput::read(&ok[..ok.len() - 1]), None);
        assert_eq!(HookInput::read(&b"not json"[..]), None);
        assert_eq!(HookInput::read(&b""[..]), None);
        assert_eq!(HookInput::read(&b"[1]"[..]), None);
        // A reader that fails midway.
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("broken pipe"))
            }
        }
        assert_eq!(HookInput::read(Broken), None);
    }

    #[test]
    fn events_and_sources_are_closed_sets() {
        assert_eq!(Event::parse("session-start"), Some(Event::SessionStart));
        assert_eq!(Event::parse("SessionStart"), Some(Event::SessionStart));
        assert_eq!(Event::parse("UserPromptSubmit"), Some(Event::UserPromptSubmit));
        assert_eq!(Event::parse("fetch"), Some(Event::Fetch));
        assert_eq!(Event::parse("AfterAgent"), Some(Event::Stop));
        assert_eq!(Event::parse("PreToolUse"), None);
        assert_eq!(Event::parse(""), None);
        assert!(Event::Push.is_background() && !Event::Stop.is_background());
        assert_eq!(Source::parse(None), Source::Startup);
        assert_eq!(Source::parse(Some("fork")), Source::Fork);
        assert_eq!(Source::parse(Some("compact")), Source::Compact);
        assert_eq!(Source::parse(Some("teleport")), Source::Unknown);
        assert!(!Source::Clear.wants_network() && Source::Unknown.wants_network());
        assert!(Source::Clear.context_is_empty() && !Source::Resume.context_is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = HookInput::parse(&bytes);
        }
    }
}
