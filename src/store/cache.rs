//! The tip cache: the notes of the ref's tip, kept in `<state dir>/tip-cache.json` under the tip's
//! tree id, so a session start in a repository whose handoffs did not change reads one file
//! instead of one object per device. The key is content-addressed, so the cache is never stale.
//!
//! The file is one line of JSON with what choosing notes needs of each (time, branch, author)
//! and where its whole note lies in the rest of the file, then the notes, each its own JSON text:
//! reading the cache parses the first line only, and a note is parsed when it is shown
//! ([`Note::handoff`]).

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use git2::Oid;
use std::ops::Range;
use std::sync::Arc;

use super::{commit_tree, entries_reusing, Entry, Listing, NoteError, Store};
use crate::handoff::Handoff;

/// 4: a line of heads, then the notes. 5: notes carry the agent that wrote them. 6: each
/// head says whether its note was decrypted with this device's key. 7: why a note cannot be read
/// is a [`NoteError`], not its text. 8: a note's line is its [`Note`], the head nested.
pub(super) const VERSION: u32 = 8;

const FILE: &str = "tip-cache.json";

/// What choosing notes needs of a readable one (in the file: its time in milliseconds since the
/// epoch, with what is absent left out, to be quick to read).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Head {
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// As [`Entry::proven`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proven: bool,
}

/// One device's note on the tip, its body parsed only on demand. In the file's first line, its
/// `span` is where the whole note lies in the text after that line.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Note {
    /// The file name on the ref (a valid device id).
    pub device: String,
    #[serde(with = "crate::history::oid_hex")]
    pub blob: Oid,
    /// As [`Entry::claimed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<String>,
    /// The readable note's head, or why it cannot be read.
    pub head: Result<Head, NoteError>,
    /// The whole note as JSON (`Result<Handoff, NoteError>`): `span` of `text`.
    #[serde(skip)]
    text: Arc<String>,
    span: Range<usize>,
}

impl Note {
    /// The note of an entry read from the ref (`None` only if it cannot be held as JSON).
    pub fn of(e: &Entry) -> Option<Note> {
        let head = e.handoff.as_ref().map(|h| Head {
            timestamp: h.timestamp,
            branch: h.branch.clone(),
            author: h.author.clone(),
            proven: e.proven,
        });
        let text = Arc::new(serde_json::to_string(&e.handoff).ok()?);
        Some(Note {
            device: e.device.clone(),
            blob: e.blob,
            claimed: e.claimed.clone(),
            head: head.map_err(Clone::clone),
            span: 0..text.len(),
            text,
        })
    }

    fn body(&self) -> &str {
        // Spans are checked when the file is read.
        self.text.get(self.span.clone()).unwrap_or_default()
    }

    /// The whole note, cleaned as everything read from the ref is.
    pub fn handoff(&self) -> Result<Handoff, NoteError> {
        match serde_json::from_str::<Result<Handoff, NoteError>>(self.body()) {
            Ok(Ok(mut h)) => {
                h.device = self.device.clone();
                Ok(crate::untrusted::handoff(h))
            }
            Ok(Err(reason)) => Err(reason),
            Err(e) => Err(NoteError::Cache(e.to_string())),
        }
    }

    /// The note as an [`Entry`] (its body parsed).
    pub fn entry(&self) -> Entry {
        Entry {
            device: self.device.clone(),
            blob: self.blob,
            handoff: self.handoff(),
            proven: self.head.as_ref().is_ok_and(|h| h.proven),
            claimed: self.claimed.clone(),
        }
    }

    /// Whether the note could not be read for want of a key.
    pub fn lacks_key(&self) -> bool {
        self.head.as_ref().is_err_and(NoteError::lacks_key)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Heads {
    version: u32,
    tree: String,
    notes: Vec<Note>,
}

/// The file's text for `notes` of `tree`.
fn write(tree: &str, notes: &[Note]) -> Option<String> {
    let mut bodies = String::new();
    let notes = notes.iter().map(|n| {
        let at = bodies.len();
        bodies.push_str(n.body());
        Note {
            span: at..bodies.len(),
            ..n.clone()
        }
    });
    let heads = Heads {
        version: VERSION,
        tree: tree.to_string(),
        notes: notes.collect(),
    };
    // Compact JSON has no line break: the first one ends the heads.
    Some(format!("{}\n{bodies}", serde_json::to_string(&heads).ok()?))
}

/// The notes of a file's text, with the tree they are of; `None` for a file of another version or
/// one that does not hold together.
fn read(text: String) -> Option<(String, Vec<Note>)> {
    let (first, _) = text.split_once('\n')?;
    let heads: Heads = serde_json::from_str(first).ok()?;
    if heads.version != VERSION {
        return None;
    }
    let start = first.len() + 1;
    let text = Arc::new(text);
    let line = |s: String| crate::untrusted::line(&s).into_owned();
    let mut notes = Vec::with_capacity(heads.notes.len());
    for n in heads.notes {
        let span = start.checked_add(n.span.start)?..start.checked_add(n.span.end)?;
        text.get(span.clone())?;
        // An entry no valid ref holds is left out.
        if !crate::device::is_valid(&n.device) {
            continue;
        }
        let head = n.head.map(|h| Head {
            branch: h.branch.map(line),
            author: h.author.map(line),
            ..h
        });
        notes.push(Note {
            claimed: n.claimed.map(line),
            head,
            text: text.clone(),
            span,
            ..n
        });
    }
    Some((heads.tree, notes))
}

impl Store<'_> {
    /// The notes of the tip, newest first, through the tip cache in `state_dir`, with what the
    /// read had to tell (nothing when they came from the cache: it was told when they were read).
    pub fn notes_cached(&self, state_dir: &Path) -> Result<Listing<Note>> {
        let mut out = Listing::default();
        let Some(tip) = self.tip()? else {
            return Ok(out);
        };
        let tree = tip.tree_id().to_string();
        let path = state_dir.join(FILE);
        let mut reusable = std::collections::HashMap::new();
        // Read as text: the JSON parser then need not check each string's UTF-8 again.
        if let Some((cached_tree, notes)) = std::fs::read_to_string(&path).ok().and_then(read) {
            // Notes cached as unreadable for want of a key are read again once a key is added.
            let key_now = notes.iter().any(Note::lacks_key) && crate::crypt::key_file_exists();
            if cached_tree == tree && !key_now {
                out.items = notes;
                return Ok(out);
            }
            // The tip moved: notes whose blob is unchanged are taken as they were, so only
            // changed notes are read (and decrypted) again.
            reusable = notes
                .iter()
                .filter(|n| !(key_now && n.lacks_key()))
                .map(|n| ((n.device.clone(), n.blob), n.entry()))
                .collect();
        }
        if let Some(t) = commit_tree(self.repo, &tip, &mut out.warnings.skipped) {
            let entries = entries_reusing(self.repo, &t, reusable, &mut out.warnings);
            out.items = entries.iter().filter_map(Note::of).collect();
        }
        if let Some(text) = write(&tree, &out.items) {
            let _ = crate::fsutil::replace_file(&path, text.as_bytes());
        }
        Ok(out)
    }

    /// [`Store::entries`] through the tip cache (every note parsed).
    #[cfg(test)]
    pub fn entries_cached(&self, state_dir: &Path) -> Result<Vec<Entry>> {
        Ok(self
            .notes_cached(state_dir)?
            .items
            .iter()
            .map(Note::entry)
            .collect())
    }
}
