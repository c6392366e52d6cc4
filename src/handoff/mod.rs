//! The handoff note: what one session on one device leaves for the next.
//!
//! [`Handoff`] is the domain value; [`format`] renders and parses the markdown stored on the ref
//! (compatible with the original plugin), [`legacy`] reads the original plugin's appended file, and
//! [`template`] says which sections a draft should have.

pub mod format;
pub mod legacy;
pub mod template;

use chrono::{DateTime, Utc};

/// One `### Title` section of a handoff and its markdown body (no trailing blank lines).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub title: String,
    pub body: String,
}

/// The commit HEAD pointed at when the handoff was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitRef {
    /// Object id: full (40 hex digits) in handoffs written by convosync, abbreviated (7+) in
    /// the original plugin's.
    pub sha: String,
    /// First line of the commit message; may be empty.
    pub subject: String,
}

impl CommitRef {
    /// The id as people read it: 7 hex digits.
    pub fn short(&self) -> &str {
        crate::refs::short_id(&self.sha)
    }
}

/// A complete handoff. Metadata is always filled in by convosync, never taken from the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    pub device: String,
    pub timestamp: DateTime<Utc>,
    /// `None` in a repository without commits.
    pub commit: Option<CommitRef>,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    /// Claude Code session id, when known.
    pub session: Option<String>,
    /// Who wrote it: the git `user.email` of the device's user, when configured. Two people's
    /// "laptop" are told apart by it.
    pub author: Option<String>,
    /// The agent that wrote it, with its version when known (`Codex 0.169.0`); `None` in notes
    /// written before convosync recorded it.
    #[serde(default)]
    pub agent: Option<String>,
    pub sections: Vec<Section>,
}

impl Handoff {
    /// The body of the first section whose title matches `title` (case-insensitive).
    pub fn section(&self, title: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|s| s.title.eq_ignore_ascii_case(title))
            .map(|s| s.body.as_str())
    }

    /// A one-line summary: the first non-empty line of "Current Task" (or of the first section),
    /// stripped of list markers and cut to `max` characters.
    pub fn task_line(&self, max: usize) -> String {
        let first = self.sections.first().map(|s| s.body.as_str());
        let body = self.section("Current Task").or(first).unwrap_or("");
        let line = body
            .lines()
            .map(|l| l.trim().trim_start_matches(['-', '*', '>', ' ']).trim())
            .find(|l| !l.is_empty())
            .unwrap_or("");
        crate::timefmt::truncate_chars(line, max)
    }
}
