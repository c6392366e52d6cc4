//! What Claude Code sends a hook on stdin, read leniently: any field may be missing or of the
//! wrong type, and garbage is simply "no input". Unknown fields are ignored.

use serde_json::Value;

/// Hook input is small; anything beyond this is not read (a hook must never stall on stdin).
pub const MAX_INPUT: usize = 1 << 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub cwd: Option<String>,
    pub hook_event_name: Option<String>,
    /// SessionStart: `startup`, `resume`, `clear` or `compact`.
    pub source: Option<String>,
    /// Stop: true when Claude is already continuing because of a Stop hook.
    pub stop_hook_active: bool,
    pub last_assistant_message: Option<String>,
    /// SessionEnd: why the session ended.
    pub reason: Option<String>,
}

impl HookInput {
    /// Parse stdin; anything that is not a JSON object gives the empty input.
    pub fn parse(bytes: &[u8]) -> HookInput {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return HookInput::default();
        };
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        };
        HookInput {
            session_id: text("session_id"),
            transcript_path: text("transcript_path"),
            cwd: text("cwd"),
            hook_event_name: text("hook_event_name"),
            source: text("source"),
            stop_hook_active: map
                .get("stop_hook_active")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            last_assistant_message: text("last_assistant_message"),
            reason: text("reason"),
        }
    }

    /// The session id made safe for a file name.
    pub fn session_key(&self) -> Option<String> {
        let id = self.session_id.as_deref()?;
        let key: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(100)
            .collect();
        (!key.is_empty()).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_claude_fields() {
        let i = HookInput::parse(br#"{"session_id":"abc-1","cwd":"/x","source":"startup","stop_hook_active":true,"extra":{"deep":[1,2]}}"#);
        assert_eq!(i.session_id.as_deref(), Some("abc-1"));
        assert_eq!(i.cwd.as_deref(), Some("/x"));
        assert!(i.stop_hook_active);
    }

    #[test]
    fn wrong_types_and_garbage_are_no_input() {
        assert_eq!(HookInput::parse(b"not json"), HookInput::default());
        assert_eq!(HookInput::parse(b"[1,2,3]"), HookInput::default());
        assert_eq!(HookInput::parse(b""), HookInput::default());
        let i = HookInput::parse(br#"{"session_id":42,"stop_hook_active":"yes","cwd":null}"#);
        assert_eq!(i, HookInput::default());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(HookInput::parse(deep.as_bytes()), HookInput::default());
        assert_eq!(
            HookInput::parse(br#"{"session_id":"../../etc/passwd"}"#)
                .session_key()
                .as_deref(),
            Some("etcpasswd")
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = HookInput::parse(&bytes);
        }
    }
}
