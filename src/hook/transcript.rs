//! Reading Claude Code's transcript (JSONL) for the Stop hook: how many prompts the user typed
//! since a point in time, and, for `auto` mode, a handoff derived without asking the model (the
//! last requests, the files touched by editing tools, the last assistant message).
//!
//! Transcripts can be large; only the tail is read. Lines that are not what we expect are skipped.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::handoff::Section;

/// How much of the end of a transcript is read.
const TAIL_BYTES: u64 = 2 << 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// User prompts (not tool results), oldest first, with their times when known.
    pub prompts: Vec<(Option<DateTime<Utc>>, String)>,
    /// Files written or edited by tools, in first-touched order, without duplicates.
    pub files: Vec<String>,
    pub last_assistant: Option<String>,
}

/// Open `path` for reading only when it is a regular file (a symlink to one is fine), without
/// ever waiting: a FIFO, socket or device is refused before it is opened, and the open itself is
/// non-blocking (`O_NONBLOCK`) with the type checked again on the open file, so a path swapped
/// for a FIFO in between cannot stall a hook either.
pub fn open_regular(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let link = std::fs::symlink_metadata(path).ok()?;
    let target = if link.file_type().is_symlink() {
        std::fs::metadata(path).ok()?
    } else {
        link
    };
    if !target.file_type().is_file() {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    f.metadata().ok().filter(|m| m.file_type().is_file())?;
    Some(f)
}

impl Summary {
    pub fn read(path: &Path) -> Summary {
        let Some(mut f) = open_regular(path) else {
            return Summary::default();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL_BYTES);
        if f.seek(SeekFrom::Start(start)).is_err() {
            return Summary::default();
        }
        let mut buf = Vec::new();
        if f.take(TAIL_BYTES).read_to_end(&mut buf).is_err() {
            return Summary::default();
        }
        let text = String::from_utf8_lossy(&buf);
        let mut lines = text.lines();
        if start > 0 {
            lines.next(); // a partial line
        }
        Summary::parse(lines)
    }

    pub fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Summary {
        let mut s = Summary::default();
        for line in lines {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let time = v
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let msg = v.get("message");
            let role = msg
                .and_then(|m| m.get("role"))
                .and_then(Value::as_str)
                .or(v.get("type").and_then(Value::as_str));
            let content = msg.and_then(|m| m.get("content"));
            match (role, content) {
                (Some("user"), Some(Value::String(t))) => s.push_prompt(time, t),
                (Some("user"), Some(Value::Array(blocks))) => {
                    let text: Vec<&str> = blocks
                        .iter()
                        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect();
                    if !text.is_empty() {
                        s.push_prompt(time, &text.join("\n"));
                    }
                }
                (Some("assistant"), Some(Value::Array(blocks))) => {
                    for b in blocks {
                        match b.get("type").and_then(Value::as_str) {
                            Some("text") => {
                                if let Some(t) = b
                                    .get("text")
                                    .and_then(Value::as_str)
                                    .filter(|t| !t.trim().is_empty())
                                {
                                    s.last_assistant = Some(t.to_string());
                                }
                            }
                            Some("tool_use") => {
                                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                                if matches!(name, "Write" | "Edit" | "MultiEdit" | "NotebookEdit") {
                                    let input = b.get("input");
                                    let path = input
                                        .and_then(|i| i.get("file_path").or_else(|| i.get("notebook_path")))
                                        .and_then(Value::as_str);
                                    if let Some(p) = path {
                                        if !s.files.iter().any(|f| f == p) {
                                            s.files.push(p.to_string());
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                (Some("assistant"), Some(Value::String(t))) if !t.trim().is_empty() => {
                    s.last_assistant = Some(t.clone());
                }
                _ => {}
            }
        }
        s
    }

    fn push_prompt(&mut self, time: Option<DateTime<Utc>>, text: &str) {
        let t = text.trim();
        // Command wrappers and hook feedback are not the user's words.
        if t.is_empty() || t.starts_with("<system-reminder>") || t.starts_with("<local-command") {
            return;
        }
        self.prompts.push((time, t.to_string()));
    }

    /// The same summary with `f` applied to every text in it (prompts, last reply, file paths).
    pub fn map_text(&self, f: impl Fn(&str) -> String) -> Summary {
        Summary {
            prompts: self.prompts.iter().map(|(t, p)| (*t, f(p))).collect(),
            files: self.files.iter().map(|p| f(p)).collect(),
            last_assistant: self.last_assistant.as_deref().map(&f),
        }
    }

    /// Prompts after `since` (all prompts when `since` is None or times are unknown).
    pub fn prompts_since(&self, since: Option<DateTime<Utc>>) -> usize {
        self.prompts
            .iter()
            .filter(|(t, _)| match (since, t) {
                (Some(s), Some(t)) => *t > s,
                _ => true,
            })
            .count()
    }

    /// Handoff sections derived from the transcript, for `auto` mode.
    pub fn sections(&self, workdir: Option<&Path>) -> Vec<Section> {
        let cut = |s: &str, n: usize| crate::timefmt::truncate_chars(s.trim(), n);
        let mut out = Vec::new();
        if let Some((_, last)) = self.prompts.last() {
            out.push(Section {
                title: "Current Task".into(),
                body: cut(last, 600),
            });
        }
        if let Some(a) = &self.last_assistant {
            out.push(Section {
                title: "Progress So Far".into(),
                body: cut(a, 1500),
            });
        }
        if self.prompts.len() > 1 {
            let earlier: Vec<String> = self
                .prompts
                .iter()
                .rev()
                .skip(1)
                .take(4)
                .rev()
                .map(|(_, p)| format!("- {}", cut(p, 200).replace('\n', " ")))
                .collect();
            out.push(Section {
                title: "Important Context".into(),
                body: format!("Earlier requests in this session:\n{}", earlier.join("\n")),
            });
        }
        if !self.files.is_empty() {
            let files: Vec<String> = self
                .files
                .iter()
                .take(50)
                .map(|f| {
                    let rel = workdir
                        .and_then(|w| Path::new(f).strip_prefix(w).ok())
                        .map(|p| p.display().to_string());
                    format!("- {}", rel.unwrap_or_else(|| f.clone()))
                })
                .collect();
            out.push(Section {
                title: "Files Modified".into(),
                body: files.join("\n"),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"type":"user","timestamp":"2026-11-24T10:00:00Z","message":{"role":"user","content":"My favourite pizza is Margherita. Add a login page."}}
garbage line
{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","name":"Write","input":{"file_path":"/repo/src/login.rs","content":"x"}},{"type":"text","text":"Added the login page."}]}}
{"type":"user","timestamp":"2026-11-24T10:05:00Z","message":{"role":"user","content":[{"type":"tool_result","content":"ok"}]}}
{"type":"user","timestamp":"2026-11-24T10:10:00Z","message":{"role":"user","content":[{"type":"text","text":"Now add logout."}]}}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","name":"Edit","input":{"file_path":"/repo/src/login.rs"}},{"type":"tool_use","name":"Bash","input":{"command":"ls"}},{"type":"text","text":"Logout works."}]}}
"#;

    #[test]
    fn derives_sections() {
        let s = Summary::parse(SAMPLE.lines());
        assert_eq!(s.prompts.len(), 2);
        assert_eq!(s.files, vec!["/repo/src/login.rs"]);
        assert_eq!(s.last_assistant.as_deref(), Some("Logout works."));
        let secs = s.sections(Some(Path::new("/repo")));
        assert_eq!(secs[0].body, "Now add logout.");
        assert!(secs.iter().any(|x| x.body.contains("Margherita")));
        assert!(secs.iter().any(|x| x.body == "- src/login.rs"));
        let since = DateTime::parse_from_rfc3339("2026-11-24T10:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(s.prompts_since(Some(since)), 1);
    }

    #[test]
    fn fifo_socket_and_device_transcripts_never_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t.fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let sock = dir.path().join("t.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        // A FIFO with no writer would block a plain open forever; a device would stream forever.
        for p in [&fifo, &sock, &link, Path::new("/dev/zero"), Path::new("/dev/tty")] {
            assert!(open_regular(p).is_none(), "{}", p.display());
            assert_eq!(Summary::read(p), Summary::default());
        }
        let real = dir.path().join("t.jsonl");
        std::fs::write(&real, SAMPLE).unwrap();
        let to_real = dir.path().join("to-real.jsonl");
        std::os::unix::fs::symlink(&real, &to_real).unwrap();
        assert_eq!(Summary::read(&to_real).prompts.len(), 2);
    }

    #[test]
    fn missing_or_junk_transcripts() {
        assert_eq!(
            Summary::read(Path::new("/nonexistent/x.jsonl")),
            Summary::default()
        );
        assert_eq!(Summary::parse("\u{0}\u{1}{[".lines()), Summary::default());
    }
}
