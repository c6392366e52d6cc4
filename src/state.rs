//! Small local state the hooks keep between runs, under `<git common dir>/convosync/`:
//! per-session memory (what was injected, when we last asked for a handoff), the network backoff,
//! the time of the last successful sync, and a log. All writes are atomic; unreadable state is
//! treated as empty, never as an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fsutil::replace_file as atomic_write;

/// Per-session state files older than this are removed.
const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const LOG_LIMIT: u64 = 512 * 1024;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SessionState {
    /// `device:blob` keys of the handoffs this session already received.
    pub injected: Vec<String>,
    /// When the Stop hook last asked Claude for a handoff.
    pub last_block: Option<DateTime<Utc>>,
    /// Whether the previous Stop of this session blocked.
    pub blocked_last_stop: bool,
    /// Where the Stop hook stopped reading the transcript, so the next reads only new lines.
    pub transcript: Option<crate::transcript::Mark>,
    /// Times of the user's latest prompts (at most [`RECENT_PROMPTS`]), from the transcript.
    pub recent_prompts: Vec<DateTime<Utc>>,
    /// Time of the latest edit or shell command seen in the transcript.
    pub last_work: Option<DateTime<Utc>>,
    /// HEAD (commit id and branch) when the session last asked, saved, or first looked.
    pub head: Option<HeadMark>,
    /// When the session began (the clock of this machine, as file times are): a draft last
    /// written before it is not this session's.
    pub started: Option<DateTime<Utc>>,
    /// Whether the user was told that the file at the draft's path is not this session's draft.
    pub told_foreign_draft: bool,
}

/// How many of the latest prompt times a session remembers: enough for the "enough
/// conversation" rule of the Stop hook.
pub const RECENT_PROMPTS: usize = 16;

/// Where HEAD was: its commit (full id, `None` on an unborn branch) and branch (`None` detached).
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeadMark {
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// The value in the JSON file at `path`; the default when it is missing or unreadable.
fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl SessionState {
    pub fn load(state_dir: &Path, key: &str) -> SessionState {
        read_json(&state_dir.join("sessions").join(format!("{key}.json")))
    }

    pub fn save(&self, state_dir: &Path, key: &str) {
        let dir = state_dir.join("sessions");
        if let Ok(bytes) = serde_json::to_vec(self) {
            if let Err(e) = atomic_write(&dir.join(format!("{key}.json")), &bytes) {
                log(state_dir, &format!("could not save session state: {e:#}"));
            }
        }
        prune(&dir);
    }
}

/// Remove stale session files, at most now and then (cheap: one directory read).
pub(crate) fn prune(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten().take(1000) {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok());
        if old.is_some_and(|age| age > SESSION_TTL) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Which half of the network work a backoff is for: a push refused or failing must not stop
/// fetching other devices' handoffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Fetch,
    Push,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Backoff {
    pub failures: u32,
    pub next_try: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Backoff {
    fn path(state_dir: &Path, ch: Channel) -> PathBuf {
        state_dir.join(match ch {
            Channel::Fetch => "net-backoff.json",
            Channel::Push => "push-backoff.json",
        })
    }

    pub fn load(state_dir: &Path, ch: Channel) -> Backoff {
        read_json(&Self::path(state_dir, ch))
    }

    /// Whether hooks should leave the network alone for now.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.next_try.is_some_and(|t| t > now)
    }

    /// Record a failure: wait 30 s, then 1, 2, 4 … minutes, at most 15.
    pub fn failed(state_dir: &Path, ch: Channel, now: DateTime<Utc>, error: &str) {
        let mut b = Backoff::load(state_dir, ch);
        b.failures = b.failures.saturating_add(1);
        let secs = (30u64 << (b.failures - 1).min(5)).min(15 * 60);
        b.next_try = Some(now + chrono::Duration::seconds(secs as i64));
        b.last_error = Some(error.to_string());
        if let Ok(bytes) = serde_json::to_vec(&b) {
            let _ = atomic_write(&Self::path(state_dir, ch), &bytes);
        }
    }

    /// It worked: clear the backoff (and, for fetching, the network note).
    pub fn succeeded(state_dir: &Path, ch: Channel) {
        let _ = std::fs::remove_file(Self::path(state_dir, ch));
        if ch == Channel::Fetch {
            let _ = std::fs::remove_file(state_dir.join(NOTE_FILE));
        }
    }
}

/// Record a successful fetch of the handoff ref (what `status` shows as the last sync).
pub fn record_sync(state_dir: &Path, now: DateTime<Utc>) {
    let now = crate::timefmt::rfc3339(now);
    let _ = atomic_write(&state_dir.join("last-sync"), now.as_bytes());
}

/// When the handoff ref was last fetched successfully.
pub fn last_sync(state_dir: &Path) -> Option<DateTime<Utc>> {
    let s = std::fs::read_to_string(state_dir.join("last-sync")).ok()?;
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

const NOTE_FILE: &str = "net-note";

/// Whether the network note `note` is new: the same problem is told once, not at every session
/// start. The note is remembered until the network works again (or another problem comes).
pub fn note_is_new(state_dir: &Path, note: &str) -> bool {
    let path = state_dir.join(NOTE_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == note) {
        return false;
    }
    let _ = atomic_write(&path, note.as_bytes());
    true
}

/// Append a line to `convosync.log` (hooks never print errors on stdout).
pub fn log(state_dir: &Path, msg: &str) {
    if let Ok(mut f) = log_file(state_dir) {
        let _ = writeln!(f, "{} {msg}", crate::timefmt::rfc3339(Utc::now()));
    }
}

/// `convosync.log`, opened to append (moved to `convosync.log.old` first when it has grown past
/// [`LOG_LIMIT`]); also where the detached hooks write their stderr.
pub fn log_file(state_dir: &Path) -> std::io::Result<std::fs::File> {
    let path = state_dir.join("convosync.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_LIMIT) {
        let _ = std::fs::rename(&path, state_dir.join("convosync.log.old"));
    }
    std::fs::create_dir_all(state_dir)?;
    std::fs::OpenOptions::new().create(true).append(true).open(&path)
}

/// Where convosync keeps its state in a repository: `<git common dir>/convosync` (shared by every
/// worktree of one clone); [`crate::repo::Repo::state_dir`] of a bare `git2::Repository`.
pub fn state_dir_of(git: &git2::Repository) -> PathBuf {
    git.commondir().join("convosync")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        assert!(!Backoff::load(dir.path(), Channel::Fetch).active(now));
        Backoff::failed(dir.path(), Channel::Fetch, now, "refused");
        let b = Backoff::load(dir.path(), Channel::Fetch);
        assert!(b.active(now) && !b.active(now + chrono::Duration::seconds(31)));
        Backoff::failed(dir.path(), Channel::Fetch, now, "refused");
        assert!(Backoff::load(dir.path(), Channel::Fetch).active(now + chrono::Duration::seconds(45)));
        // A push failure is apart from fetching.
        Backoff::failed(dir.path(), Channel::Push, now, "refused");
        Backoff::succeeded(dir.path(), Channel::Fetch);
        assert!(!Backoff::load(dir.path(), Channel::Fetch).active(now));
        assert!(Backoff::load(dir.path(), Channel::Push).active(now));
        Backoff::succeeded(dir.path(), Channel::Push);
        assert!(!Backoff::load(dir.path(), Channel::Push).active(now));
        record_sync(dir.path(), now);
        assert!(last_sync(dir.path()).is_some());
    }

    #[test]
    fn a_note_is_told_once_until_the_network_works() {
        let dir = tempfile::tempdir().unwrap();
        assert!(note_is_new(dir.path(), "origin is gone"));
        assert!(!note_is_new(dir.path(), "origin is gone"));
        assert!(note_is_new(dir.path(), "origin timed out"));
        Backoff::succeeded(dir.path(), Channel::Fetch);
        assert!(note_is_new(dir.path(), "origin timed out"));
    }

    #[test]
    fn session_state_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let s = SessionState {
            injected: vec!["a:1".into()],
            blocked_last_stop: true,
            ..Default::default()
        };
        s.save(dir.path(), "sess");
        assert_eq!(SessionState::load(dir.path(), "sess"), s);
        std::fs::write(dir.path().join("sessions/bad.json"), "{{{").unwrap();
        assert_eq!(SessionState::load(dir.path(), "bad"), SessionState::default());
    }

    #[test]
    fn session_state_of_an_older_version_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sessions")).unwrap();
        std::fs::write(
            dir.path().join("sessions/old.json"),
            r#"{"injected":["a:1"],"last_block":null,"blocked_last_stop":true,"worktree_fingerprint":42}"#,
        )
        .unwrap();
        let s = SessionState::load(dir.path(), "old");
        assert_eq!(s.injected, vec!["a:1".to_string()]);
        assert!(s.blocked_last_stop && s.transcript.is_none() && s.head.is_none());
    }
}
