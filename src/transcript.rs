//! Reading Claude Code's transcript (JSONL), for the Stop hook, drafts and the hooks' state: the
//! evidence of work (the user's prompts, edits and shell commands, with their times), read
//! incrementally from where the last Stop of the session stopped, and, for `auto` mode, a handoff
//! derived without asking the model (the last requests, the files touched by editing tools, the
//! last assistant message).
//!
//! Transcripts can be large; at most the last [`TAIL_BYTES`] are read at once. Lines that are not
//! what we expect are skipped.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

/// Tools whose use is work on the code: the editing tools and the shell.
const EDIT_TOOLS: [&str; 4] = ["Write", "Edit", "MultiEdit", "NotebookEdit"];

/// Where the previous read of a transcript stopped: the file (device and inode, so a transcript
/// replaced by another file is read from its start) and the byte after the last whole line read.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mark {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// What the transcript tells about work, from the lines not read before.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Times of the user's prompts, oldest first (`now` for a line without a time).
    pub prompts: Vec<DateTime<Utc>>,
    /// Time of the newest use of an editing tool or of the shell.
    pub last_work: Option<DateTime<Utc>>,
}

impl Activity {
    /// Read the lines of `path` after `mark` (all of it, up to the last [`TAIL_BYTES`], when the
    /// file is another one, or shorter than the mark: rotated or truncated). Returns what they
    /// tell and the new mark; a partial last line is left for the next read. `None` for a path
    /// that is not a readable regular file.
    pub fn read_new(path: &Path, mark: Option<&Mark>, now: DateTime<Utc>) -> Option<(Activity, Mark)> {
        use std::os::unix::fs::MetadataExt;
        let mut f = open_regular(path)?;
        let meta = f.metadata().ok()?;
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        let mut start = match mark {
            Some(m) if m.dev == dev && m.ino == ino && m.offset <= len => m.offset,
            _ => 0,
        };
        let mut partial_first = false;
        if len - start > TAIL_BYTES {
            start = len - TAIL_BYTES;
            partial_first = true;
        }
        f.seek(SeekFrom::Start(start)).ok()?;
        let mut buf = Vec::new();
        f.take(len - start).read_to_end(&mut buf).ok()?;
        // Only whole lines: what follows the last newline is read again next time.
        let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut body = &buf[..whole];
        if partial_first {
            let cut = body
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len(), |i| i + 1);
            body = &body[cut..];
        }
        let text = String::from_utf8_lossy(body);
        let activity = Activity::parse(text.lines(), now);
        Some((
            activity,
            Mark {
                dev,
                ino,
                offset: start + whole as u64,
            },
        ))
    }

    pub fn parse<'a>(lines: impl Iterator<Item = &'a str>, now: DateTime<Utc>) -> Activity {
        let mut a = Activity::default();
        for line in lines {
            // Most lines are tool results and assistant text: not parsed at all.
            if !line.contains("\"user\"") && !line.contains("\"tool_use\"") {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let time = line_time(&v).unwrap_or(now);
            match line_role(&v) {
                (Some("user"), Some(content)) if prompt_text(content).is_some_and(|t| is_prompt(&t)) => {
                    a.prompts.push(time);
                }
                (Some("assistant"), Some(Value::Array(blocks))) if blocks.iter().any(is_work) => {
                    a.last_work = a.last_work.max(Some(time));
                }
                _ => {}
            }
        }
        a
    }
}

/// Whether an assistant content block is a use of an editing tool or the shell that is not
/// convosync's own handoff draft being written.
fn is_work(block: &Value) -> bool {
    if block.get("type").and_then(Value::as_str) != Some("tool_use") {
        return false;
    }
    let name = block.get("name").and_then(Value::as_str).unwrap_or("");
    let input = block.get("input");
    let field = |k: &str| input.and_then(|i| i.get(k)).and_then(Value::as_str).unwrap_or("");
    let own = |s: &str| s.contains(".convosync/");
    if EDIT_TOOLS.contains(&name) {
        let path = if name == "NotebookEdit" && !field("notebook_path").is_empty() {
            field("notebook_path")
        } else {
            field("file_path")
        };
        !own(path)
    } else {
        name == "Bash" && !own(field("command"))
    }
}

/// When the session of the transcript at `path` began, as far as its start tells: the time of
/// the first line that has one, within the first 64 KB. A time still to come is no start.
pub fn started(path: &Path) -> Option<DateTime<Utc>> {
    let f = open_regular(path)?;
    let mut buf = Vec::new();
    f.take(64 * 1024).read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| line_time(&v))
        .filter(|t| *t <= Utc::now())
}

fn line_time(v: &Value) -> Option<DateTime<Utc>> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn line_role(v: &Value) -> (Option<&str>, Option<&Value>) {
    let msg = v.get("message");
    let role = msg
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        .or(v.get("type").and_then(Value::as_str));
    (role, msg.and_then(|m| m.get("content")))
}

/// The text a user line carries (not tool results), if any.
fn prompt_text(content: &Value) -> Option<String> {
    match content {
        Value::String(t) => Some(t.clone()),
        Value::Array(blocks) => {
            let text: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!text.is_empty()).then(|| text.join("\n"))
        }
        _ => None,
    }
}

/// Command wrappers and hook feedback are not the user's words.
fn is_prompt(text: &str) -> bool {
    let t = text.trim();
    !(t.is_empty() || t.starts_with("<system-reminder>") || t.starts_with("<local-command"))
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
            let time = line_time(&v);
            match line_role(&v) {
                (Some("user"), Some(content)) => {
                    if let Some(t) = prompt_text(content) {
                        s.push_prompt(time, &t);
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
                                if EDIT_TOOLS.contains(&name) {
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
        if is_prompt(text) {
            self.prompts.push((time, text.trim().to_string()));
        }
    }

    /// The same summary with `f` applied to every text in it (prompts, last reply, file paths).
    pub fn map_text(&self, f: impl Fn(&str) -> String) -> Summary {
        Summary {
            prompts: self.prompts.iter().map(|(t, p)| (*t, f(p))).collect(),
            files: self.files.iter().map(|p| f(p)).collect(),
            last_assistant: self.last_assistant.as_deref().map(&f),
        }
    }

    #[cfg(test)]
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

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn activity_is_prompts_edits_and_commands_not_the_draft() {
        let a = Activity::parse(SAMPLE.lines(), now());
        assert_eq!(a.prompts.len(), 2);
        // The Edit and the Bash of the last line have no time: read now.
        assert_eq!(a.last_work, Some(now()));
        let draft = r#"{"type":"assistant","timestamp":"2026-11-24T11:00:00Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Write","input":{"file_path":"/repo/.convosync/session-handoff-draft.md"}},{"type":"tool_use","name":"Read","input":{"file_path":"/repo/a.rs"}}]}}"#;
        assert_eq!(Activity::parse([draft].into_iter(), now()), Activity::default());
        let bash = r#"{"type":"assistant","timestamp":"2026-11-24T11:00:00Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Bash","input":{"command":"cargo fmt"}}]}}"#;
        assert_eq!(
            Activity::parse([bash].into_iter(), now())
                .last_work
                .map(|t| t.to_rfc3339()),
            Some("2026-11-24T11:00:00+00:00".into())
        );
    }

    #[test]
    fn reads_only_new_whole_lines_and_starts_over_on_truncation_or_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let (first, rest) = SAMPLE.split_at(SAMPLE.find("garbage").unwrap());
        std::fs::write(&path, first).unwrap();
        let (a, mark) = Activity::read_new(&path, None, now()).unwrap();
        assert_eq!((a.prompts.len(), mark.offset), (1, first.len() as u64));
        // Nothing new: nothing read.
        let (a, same) = Activity::read_new(&path, Some(&mark), now()).unwrap();
        assert_eq!((a, &same), (Activity::default(), &mark));
        // A line still being written is left for the next read.
        let (whole, partial) = rest.split_at(rest.len() - 20);
        std::fs::write(&path, format!("{first}{whole}")).unwrap();
        let (a, mark2) = Activity::read_new(&path, Some(&mark), now()).unwrap();
        assert_eq!(a.prompts.len(), 1);
        assert_eq!(
            mark2.offset,
            (first.len() + whole.rfind('\n').unwrap() + 1) as u64
        );
        std::fs::write(&path, format!("{first}{whole}{partial}")).unwrap();
        let (a, mark3) = Activity::read_new(&path, Some(&mark2), now()).unwrap();
        assert_eq!(a.prompts.len(), 0);
        assert!(a.last_work.is_some() && mark3.offset == SAMPLE.len() as u64);
        // Truncated: read from the start again.
        std::fs::write(&path, first).unwrap();
        let (a, _) = Activity::read_new(&path, Some(&mark3), now()).unwrap();
        assert_eq!(a.prompts.len(), 1);
        // Replaced by another file, longer than the mark: from the start too.
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, SAMPLE.repeat(2)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let (a, _) = Activity::read_new(&path, Some(&mark3), now()).unwrap();
        assert_eq!(a.prompts.len(), 4);
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
