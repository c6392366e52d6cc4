//! Reading an agent's transcript (JSONL: Claude Code's session file, Codex's rollout, Gemini CLI's
//! chat file; see [`items`]), for the Stop hook, drafts and the hooks' state: the
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

use crate::agent::Agent;
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
    // What the path names, through a symlink.
    std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    f.metadata().ok().filter(|m| m.file_type().is_file())?;
    Some(f)
}

/// What one transcript line says that matters here, whatever the format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Words of the user (maybe a wrapper the agent added: see [`is_prompt`]).
    Prompt(String),
    /// Text of the assistant.
    Reply(String),
    /// A file written or edited by a tool.
    Edit(String),
    /// A shell command run by a tool.
    Shell(String),
}

/// Whether a line may hold an [`Item`] that counts as activity (most lines are tool results
/// and assistant text: not parsed at all).
fn may_be_activity(agent: Agent, line: &str) -> bool {
    match agent {
        Agent::Claude => line.contains("\"user\"") || line.contains("\"tool_use\""),
        Agent::Codex => line.contains("\"response_item\""),
        Agent::Gemini => line.contains("\"user\"") || line.contains("\"toolCalls\""),
    }
}

/// The items of one parsed line; each agent has its own line format, read into the same
/// [`Item`]s.
fn items(agent: Agent, v: &Value) -> Vec<Item> {
    match agent {
        Agent::Claude => claude_items(v),
        Agent::Codex => codex_items(v),
        Agent::Gemini => gemini_items(v),
    }
}

fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Claude Code: `{"type":"user"|"assistant","timestamp","message":{"role","content":[…]}}`, tools
/// as `tool_use` blocks (Write, Edit, MultiEdit, NotebookEdit, Bash).
fn claude_items(v: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    let msg = v.get("message");
    let role = msg.and_then(|m| str_at(m, "role")).or(str_at(v, "type"));
    match (role, msg.and_then(|m| m.get("content"))) {
        (Some("user"), Some(Value::String(t))) => out.push(Item::Prompt(t.clone())),
        // The text parts of a user line (not tool results), if any.
        (Some("user"), Some(parts)) => out.extend(joined(texts(Some(parts), Some("text"))).map(Item::Prompt)),
        (Some("assistant"), Some(Value::Array(blocks))) => {
            out.extend(blocks.iter().filter_map(|b| match str_at(b, "type") {
                Some("text") => str_at(b, "text").map(|t| Item::Reply(t.to_string())),
                Some("tool_use") => tool_item(Agent::Claude, b, "input"),
                _ => None,
            }))
        }
        (Some("assistant"), Some(Value::String(t))) => out.push(Item::Reply(t.clone())),
        _ => {}
    }
    out
}

/// The files an apply_patch patch adds, updates, deletes or moves to.
fn patch_files(patch: &str) -> impl Iterator<Item = Item> + '_ {
    const HEADS: [&str; 4] = [
        "*** Add File: ",
        "*** Update File: ",
        "*** Delete File: ",
        "*** Move to: ",
    ];
    patch.lines().filter_map(|l| {
        let l = l.trim_start();
        HEADS
            .iter()
            .find_map(|h| l.strip_prefix(h))
            .map(|p| Item::Edit(p.trim().to_string()))
    })
}

/// Codex's rollout: `{"timestamp","type":"response_item","payload":{…}}` with `message` (role
/// user / assistant), `custom_tool_call` (apply_patch and its patch) and `function_call`
/// (exec_command, shell) payloads; `session_meta` first, with `cli_version`.
fn codex_items(v: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    let (Some("response_item"), Some(p)) = (str_at(v, "type"), v.get("payload")) else {
        return out;
    };
    let texts = |kind| {
        texts(p.get("content"), Some(kind))
            .into_iter()
            .map(str::to_string)
    };
    match (str_at(p, "type"), str_at(p, "role")) {
        (Some("message"), Some("user")) => out.extend(texts("input_text").map(Item::Prompt)),
        (Some("message"), Some("assistant")) => out.extend(texts("output_text").map(Item::Reply)),
        (Some("custom_tool_call"), _) if str_at(p, "name") == Some("apply_patch") => {
            out.extend(patch_files(str_at(p, "input").unwrap_or("")));
        }
        (Some("function_call"), _) => {
            let name = str_at(p, "name").unwrap_or("");
            let args: Value = str_at(p, "arguments")
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or(Value::Null);
            if name == "apply_patch" {
                out.extend(patch_files(str_at(&args, "input").unwrap_or("")));
            } else if ["exec_command", "shell", "shell_command", "local_shell"].contains(&name) {
                let cmd = match args.get("cmd").or_else(|| args.get("command")) {
                    Some(Value::String(c)) => c.clone(),
                    Some(Value::Array(words)) => words
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => String::new(),
                };
                // `apply_patch <<'PATCH'` through the shell is an edit (Codex intercepts it).
                out.extend(patch_files(&cmd));
                if out.is_empty() {
                    out.push(Item::Shell(cmd));
                }
            }
        }
        _ => {}
    }
    out
}

/// Gemini CLI's chat file: `{"type":"user","content":[{"text"}]}`, `{"type":"gemini",
/// "content":"…","toolCalls":[{"name","args"}]}` (write_file, replace, run_shell_command).
fn gemini_items(v: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    match str_at(v, "type") {
        Some("user") => {
            let text = joined(texts(v.get("content"), None));
            out.extend(text.map(|t| Item::Prompt(strip_hook_context(&t).to_string())));
        }
        Some("gemini") => {
            out.extend(str_at(v, "content").map(|t| Item::Reply(t.to_string())));
            let calls = v.get("toolCalls").and_then(Value::as_array).into_iter().flatten();
            out.extend(calls.filter_map(|call| tool_item(Agent::Gemini, call, "args")));
        }
        _ => {}
    }
    out
}

/// Gemini CLI glues SessionStart's context in front of the prompt: `<hook_context>…</hook_context>`.
fn strip_hook_context(text: &str) -> &str {
    let context = text.trim_start().strip_prefix("<hook_context>");
    context
        .and_then(|r| r.split_once("</hook_context>"))
        .map_or(text, |(_, rest)| rest.trim_start())
}

/// The agent's version, from the start of its transcript: Codex's `session_meta` `cli_version`,
/// Claude Code's `version` on each line. Only a plain version string (digits, letters, `.+-`).
pub fn agent_version(path: &Path, agent: Agent) -> Option<String> {
    let pointer = match agent {
        Agent::Codex => "/payload/cli_version",
        Agent::Claude => "/version",
        Agent::Gemini => return None,
    };
    head(path)?.lines().take(50).find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        let version = v.pointer(pointer)?.as_str()?;
        let ok = !version.is_empty()
            && version.len() <= 32
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c));
        ok.then(|| version.to_string())
    })
}

/// A use of a tool that is work on the code (an editing tool, the shell) in Claude Code's or
/// Gemini CLI's transcript: the tool's `name`, its input under `input_key`.
fn tool_item(agent: Agent, call: &Value, input_key: &str) -> Option<Item> {
    let input = call.get(input_key).unwrap_or(&Value::Null);
    let arg = |k| str_at(input, k).filter(|p| !p.is_empty());
    let text = |k| str_at(input, k).unwrap_or("").to_string();
    match (agent, str_at(call, "name").unwrap_or("")) {
        (Agent::Claude, "NotebookEdit") if arg("notebook_path").is_some() => {
            Some(Item::Edit(text("notebook_path")))
        }
        (Agent::Claude, "Write" | "Edit" | "MultiEdit" | "NotebookEdit") => {
            let path = str_at(input, "file_path").or_else(|| str_at(input, "notebook_path"));
            Some(Item::Edit(path.unwrap_or("").to_string()))
        }
        (Agent::Gemini, "write_file" | "replace" | "edit") => Some(Item::Edit(text("file_path"))),
        (Agent::Claude, "Bash") | (Agent::Gemini, "run_shell_command") => Some(Item::Shell(text("command"))),
        _ => None,
    }
}

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
    pub fn read_new(
        path: &Path,
        agent: Agent,
        mark: Option<&Mark>,
        now: DateTime<Utc>,
    ) -> Option<(Activity, Mark)> {
        use std::os::unix::fs::MetadataExt;
        let mut f = open_regular(path)?;
        let meta = f.metadata().ok()?;
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        let same_file = mark.filter(|m| m.dev == dev && m.ino == ino && m.offset <= len);
        let from = same_file.map_or(0, |m| m.offset);
        let (start, buf, first) = read_tail(&mut f, from, len)?;
        // Only whole lines: what follows the last newline is read again next time.
        let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&buf[first.min(whole)..whole]);
        let offset = start + whole as u64;
        let activity = Activity::parse(agent, text.lines(), now);
        Some((activity, Mark { dev, ino, offset }))
    }

    pub fn parse<'a>(agent: Agent, lines: impl Iterator<Item = &'a str>, now: DateTime<Utc>) -> Activity {
        let mut a = Activity::default();
        let lines = lines.filter(|l| may_be_activity(agent, l));
        each_item(agent, lines, |time, item| {
            let time = time.unwrap_or(now);
            match item {
                Item::Prompt(t) if is_prompt(&t) => a.prompts.push(time),
                // Work on the code, not convosync's own handoff draft being written.
                Item::Edit(s) | Item::Shell(s) if !s.contains(".convosync/") => {
                    a.last_work = a.last_work.max(Some(time));
                }
                _ => {}
            }
        });
        a
    }
}

/// Each item of the lines that are JSON, with the time of its line, to `f`.
fn each_item<'a>(
    agent: Agent,
    lines: impl Iterator<Item = &'a str>,
    mut f: impl FnMut(Option<DateTime<Utc>>, Item),
) {
    for v in lines.filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let time = line_time(&v);
        items(agent, &v).into_iter().for_each(|i| f(time, i));
    }
}

/// When the session of the transcript at `path` began, as far as its start tells: the time of
/// the first line that has one, within the first 64 KB. A time still to come is no start.
pub fn started(path: &Path) -> Option<DateTime<Utc>> {
    head(path)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| line_time(&v))
        .filter(|t| *t <= Utc::now())
}

/// The first 64 KB of the transcript at `path`, as text.
fn head(path: &Path) -> Option<String> {
    let mut buf = Vec::new();
    open_regular(path)?.take(64 << 10).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The end of `f` (`len` bytes long) from offset `from`, at most its last [`TAIL_BYTES`]: where
/// the bytes read start, the bytes, and where their first whole line starts (after the partial
/// line that a start moved up lands in).
fn read_tail(f: &mut std::fs::File, from: u64, len: u64) -> Option<(u64, Vec<u8>, usize)> {
    let start = from.max(len.saturating_sub(TAIL_BYTES));
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(len - start).read_to_end(&mut buf).ok()?;
    let first = match start > from {
        true => buf.iter().position(|&b| b == b'\n').map_or(buf.len(), |i| i + 1),
        false => 0,
    };
    Some((start, buf, first))
}

fn line_time(v: &Value) -> Option<DateTime<Utc>> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The `text` of each part in the array `parts` (of type `kind`, when one is given).
fn texts<'v>(parts: Option<&'v Value>, kind: Option<&str>) -> Vec<&'v str> {
    let parts = parts.and_then(Value::as_array).into_iter().flatten();
    parts
        .filter(|p| kind.is_none_or(|k| str_at(p, "type") == Some(k)))
        .filter_map(|p| str_at(p, "text"))
        .collect()
}

/// Texts as one, on separate lines; `None` for none.
fn joined(texts: Vec<&str>) -> Option<String> {
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// Command wrappers and hook feedback are not the user's words.
fn is_prompt(text: &str) -> bool {
    let t = text.trim();
    const WRAPPERS: [&str; 7] = [
        "<system-reminder>",
        "<local-command",
        "<environment_context>",
        "<user_instructions>",
        "<hook_prompt",
        "<session_context>",
        "<turn_aborted>",
    ];
    !(t.is_empty() || WRAPPERS.iter().any(|w| t.starts_with(w)))
}

impl Summary {
    pub fn read(path: &Path, agent: Agent) -> Summary {
        let tail = open_regular(path).and_then(|mut f| {
            let len = f.metadata().map_or(0, |m| m.len());
            read_tail(&mut f, 0, len)
        });
        tail.map(|(_, buf, first)| Summary::parse(agent, String::from_utf8_lossy(&buf[first..]).lines()))
            .unwrap_or_default()
    }

    pub fn parse<'a>(agent: Agent, lines: impl Iterator<Item = &'a str>) -> Summary {
        let mut s = Summary::default();
        each_item(agent, lines, |time, item| match item {
            Item::Prompt(t) if is_prompt(&t) => s.prompts.push((time, t.trim().to_string())),
            Item::Reply(t) if !t.trim().is_empty() => s.last_assistant = Some(t),
            Item::Edit(p) if !p.is_empty() && !s.files.contains(&p) => s.files.push(p),
            _ => {}
        });
        s
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
        let n = self.prompts.len();
        // The (at most four) requests before the last.
        let earlier: Vec<String> = self.prompts[n.saturating_sub(5)..n.saturating_sub(1)]
            .iter()
            .map(|(_, p)| format!("- {}", cut(p, 200).replace('\n', " ")))
            .collect();
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
        let task = self.prompts.last().map(|(_, last)| cut(last, 600));
        let progress = self.last_assistant.as_deref().map(|a| cut(a, 1500));
        let context = (n > 1).then(|| format!("Earlier requests in this session:\n{}", earlier.join("\n")));
        let files = (!files.is_empty()).then(|| files.join("\n"));
        let titled = [
            ("Current Task", task),
            ("Progress So Far", progress),
            ("Important Context", context),
            ("Files Modified", files),
        ];
        let titled = titled
            .into_iter()
            .filter_map(|(title, body)| Some((title.to_string(), body?)));
        titled.map(|(title, body)| Section { title, body }).collect()
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
        let s = Summary::parse(Agent::Claude, SAMPLE.lines());
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
            assert_eq!(Summary::read(p, Agent::Claude), Summary::default());
        }
        let real = dir.path().join("t.jsonl");
        std::fs::write(&real, SAMPLE).unwrap();
        let to_real = dir.path().join("to-real.jsonl");
        std::os::unix::fs::symlink(&real, &to_real).unwrap();
        assert_eq!(Summary::read(&to_real, Agent::Claude).prompts.len(), 2);
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn activity_is_prompts_edits_and_commands_not_the_draft() {
        let a = Activity::parse(Agent::Claude, SAMPLE.lines(), now());
        assert_eq!(a.prompts.len(), 2);
        // The Edit and the Bash of the last line have no time: read now.
        assert_eq!(a.last_work, Some(now()));
        let draft = r#"{"type":"assistant","timestamp":"2026-11-24T11:00:00Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Write","input":{"file_path":"/repo/.convosync/session-handoff-draft.md"}},{"type":"tool_use","name":"Read","input":{"file_path":"/repo/a.rs"}}]}}"#;
        assert_eq!(
            Activity::parse(Agent::Claude, [draft].into_iter(), now()),
            Activity::default()
        );
        let bash = r#"{"type":"assistant","timestamp":"2026-11-24T11:00:00Z","message":{"role":"assistant","content":[{"type":"tool_use","name":"Bash","input":{"command":"cargo fmt"}}]}}"#;
        assert_eq!(
            Activity::parse(Agent::Claude, [bash].into_iter(), now())
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
        let (a, mark) = Activity::read_new(&path, Agent::Claude, None, now()).unwrap();
        assert_eq!((a.prompts.len(), mark.offset), (1, first.len() as u64));
        // Nothing new: nothing read.
        let (a, same) = Activity::read_new(&path, Agent::Claude, Some(&mark), now()).unwrap();
        assert_eq!((a, &same), (Activity::default(), &mark));
        // A line still being written is left for the next read.
        let (whole, partial) = rest.split_at(rest.len() - 20);
        std::fs::write(&path, format!("{first}{whole}")).unwrap();
        let (a, mark2) = Activity::read_new(&path, Agent::Claude, Some(&mark), now()).unwrap();
        assert_eq!(a.prompts.len(), 1);
        assert_eq!(
            mark2.offset,
            (first.len() + whole.rfind('\n').unwrap() + 1) as u64
        );
        std::fs::write(&path, format!("{first}{whole}{partial}")).unwrap();
        let (a, mark3) = Activity::read_new(&path, Agent::Claude, Some(&mark2), now()).unwrap();
        assert_eq!(a.prompts.len(), 0);
        assert!(a.last_work.is_some() && mark3.offset == SAMPLE.len() as u64);
        // Truncated: read from the start again.
        std::fs::write(&path, first).unwrap();
        let (a, _) = Activity::read_new(&path, Agent::Claude, Some(&mark3), now()).unwrap();
        assert_eq!(a.prompts.len(), 1);
        // Replaced by another file, longer than the mark: from the start too.
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, SAMPLE.repeat(2)).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let (a, _) = Activity::read_new(&path, Agent::Claude, Some(&mark3), now()).unwrap();
        assert_eq!(a.prompts.len(), 4);
    }

    /// Lines as Codex 0.169.0 writes its rollout (trimmed): the session's metadata, the
    /// environment wrapper, a prompt, an apply_patch edit, a shell command, the draft written
    /// through apply_patch, the reply.
    const CODEX: &str = r#"{"timestamp":"2026-12-03T08:04:41.233Z","type":"session_meta","payload":{"id":"01a2","cwd":"/repo","originator":"codex_exec","cli_version":"0.169.0"}}
{"timestamp":"2026-12-03T08:04:41.281Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"}]}}
{"timestamp":"2026-12-03T08:04:41.310Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"edit a"}]}}
{"timestamp":"2026-12-03T08:04:41.511Z","type":"response_item","payload":{"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"*** Begin Patch\n*** Update File: a.txt\n@@\n-a\n+b\n*** End Patch"}}
{"timestamp":"2026-12-03T08:04:41.801Z","type":"response_item","payload":{"type":"function_call","name":"exec_command","arguments":"{\"cmd\": \"git commit -am 'edit a'\", \"yield_time_ms\": 10000}","call_id":"c2"}}
{"timestamp":"2026-12-03T08:04:42.229Z","type":"response_item","payload":{"type":"custom_tool_call","call_id":"c3","name":"apply_patch","input":"*** Begin Patch\n*** Add File: .convosync/session-handoff-draft.md\n+### Current Task\n+x\n*** End Patch"}}
{"timestamp":"2026-12-03T08:04:42.300Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"<hook_prompt hook_run_id=\"stop:1\">write the draft</hook_prompt>"}]}}
{"timestamp":"2026-12-03T08:04:42.619Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Done."}]}}
"#;

    /// Lines as Gemini CLI 0.61.0 writes its chat file (trimmed); a reply with tool calls is
    /// written twice.
    const GEMINI: &str = r#"{"sessionId":"86e6","projectHash":"dec1","startTime":"2026-12-03T08:06:22.281Z","kind":"main"}
{"$set":{"messages":[{"id":"d0","timestamp":"2026-12-03T08:06:22.282Z","type":"user","content":[{"text":"<session_context>\nThis is the Gemini CLI.</session_context>"}]}]}}
{"id":"26","timestamp":"2026-12-03T08:06:22.604Z","type":"user","content":[{"text":"<hook_context>notes</hook_context>\n\nedit a"}]}
{"id":"b6","timestamp":"2026-12-03T08:06:23.886Z","type":"gemini","content":"","toolCalls":[{"id":"w","name":"write_file","args":{"file_path":"b.txt","content":"b\n"},"status":"success"}]}
{"id":"22","timestamp":"2026-12-03T08:06:24.077Z","type":"user","content":[{"functionResponse":{"id":"w","name":"write_file","response":{"output":"ok"}}}]}
{"id":"01","timestamp":"2026-12-03T08:06:24.165Z","type":"gemini","content":"","toolCalls":[{"id":"s","name":"run_shell_command","args":{"command":"git commit -am 'edit a'"}}]}
{"id":"86","timestamp":"2026-12-03T08:06:24.834Z","type":"gemini","content":"Done."}
"#;

    #[test]
    fn codex_rollout_gives_the_same_evidence() {
        let a = Activity::parse(Agent::Codex, CODEX.lines(), now());
        assert_eq!(a.prompts.len(), 1, "the wrappers are not the user's words");
        assert_eq!(
            a.last_work.map(|t| t.to_rfc3339()),
            Some("2026-12-03T08:04:41.801+00:00".into()),
            "the shell command is the last work; the draft is not work"
        );
        let s = Summary::parse(Agent::Codex, CODEX.lines());
        assert_eq!(s.prompts.len(), 1);
        assert_eq!(s.files, vec!["a.txt", ".convosync/session-handoff-draft.md"]);
        assert_eq!(s.last_assistant.as_deref(), Some("Done."));
        let secs = s.sections(Some(Path::new("/repo")));
        assert_eq!(secs[0].body, "edit a");
        // Claude Code's reader finds nothing in a rollout, and the other way round.
        assert_eq!(
            Activity::parse(Agent::Claude, CODEX.lines(), now()),
            Activity::default()
        );
        assert_eq!(
            Activity::parse(Agent::Codex, SAMPLE.lines(), now()),
            Activity::default()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout.jsonl");
        std::fs::write(&path, CODEX).unwrap();
        assert_eq!(agent_version(&path, Agent::Codex).as_deref(), Some("0.169.0"));
        assert_eq!(agent_version(&path, Agent::Claude), None);
        std::fs::write(
            &path,
            r#"{"type":"session_meta","payload":{"cli_version":"1.0\n## Handoff from x"}}"#,
        )
        .unwrap();
        assert_eq!(agent_version(&path, Agent::Codex), None, "only a plain version");
    }

    #[test]
    fn gemini_chat_gives_the_same_evidence() {
        let a = Activity::parse(Agent::Gemini, GEMINI.lines(), now());
        assert_eq!(a.prompts.len(), 1);
        assert_eq!(
            a.last_work.map(|t| t.to_rfc3339()),
            Some("2026-12-03T08:06:24.165+00:00".into())
        );
        let s = Summary::parse(Agent::Gemini, GEMINI.lines());
        assert_eq!(
            s.prompts,
            vec![(
                line_time(&serde_json::json!({"timestamp":"2026-12-03T08:06:22.604Z"})),
                "edit a".to_string()
            )]
        );
        assert_eq!(s.files, vec!["b.txt"]);
        assert_eq!(s.last_assistant.as_deref(), Some("Done."));
    }

    #[test]
    fn missing_or_junk_transcripts() {
        assert_eq!(
            Summary::read(Path::new("/nonexistent/x.jsonl"), Agent::Claude),
            Summary::default()
        );
        assert_eq!(
            Summary::parse(Agent::Codex, "\u{0}\u{1}{[".lines()),
            Summary::default()
        );
    }
}
