//! The history cache: every version on the handoff ref, as [`super::walk`] found and
//! [`crate::store::read_note`] parsed and cleaned it, keyed by the ref's tip.
//!
//! One JSON file per ref in the repository's state dir (`<git common dir>/convosync`), replaced
//! atomically. When the tip has only moved forward (new handoffs saved or fetched, merges from
//! sync), only the commits the cached tip cannot reach are walked; when it was moved anywhere else
//! (a rewrite, a reset), the history is walked again from scratch. A file that cannot be read, or
//! that another format or another convosync release wrote, is ignored and replaced. Losing it
//! costs one walk, so writing it is best-effort.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use super::Version;
use crate::store::{Listing, NoteError, Warnings};

/// Bump whenever the layout changes or a blob would parse to something else (a new field, other
/// cleaning, decryption): every older file is then ignored and rebuilt.
/// 3: why a note could not be decrypted is a [`crate::crypt::OpenError`], not its text. 4: it is
/// the whole [`crate::store::NoteError`].
const FORMAT: u32 = 4;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    /// The release that wrote it: another release may parse or clean blobs differently.
    writer: String,
    refname: String,
    #[serde(with = "super::oid_hex")]
    tip: Oid,
    /// What the walk that found these versions skipped, told again on every read.
    skipped: Vec<String>,
    /// Notes the walk could not decrypt (device, reason), told again on every read; a key added
    /// since makes the whole cache stale.
    unreadable: Vec<(String, NoteError)>,
    /// Newest first, as [`super::versions`] returns them.
    versions: Vec<Version>,
}

fn load(path: &Path, refname: &str) -> Option<CacheFile> {
    // Read as text: the JSON parser then need not check each string's UTF-8 again.
    let text = std::fs::read_to_string(path).ok()?;
    let file: CacheFile = serde_json::from_str(&text).ok()?;
    let current =
        file.format == FORMAT && file.writer == env!("CARGO_PKG_VERSION") && file.refname == refname;
    // Notes cached as unreadable for want of a key are read again once there is one.
    let keyless = file.unreadable.iter().any(|(_, r)| r.lacks_key());
    (current && !(keyless && crate::crypt::key().is_some())).then_some(file)
}

/// Every version on `refname`, newest first (by the handoff's own timestamp), each blob once,
/// with what the walks that found them skipped and could not decrypt: from the cache in the
/// repository's state dir (shared by every worktree) when it is up to date with the ref's tip,
/// else brought up to date (and saved) first.
pub fn versions(repo: &Repository, refname: &str) -> Result<Listing<Version>> {
    let Some(tip) = crate::store::tip_of(repo, refname)? else {
        return Ok(Listing::default());
    };
    let tip = tip.id();
    let name = refname.replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'),
        "_",
    );
    let path = crate::state::state_dir_of(repo).join(format!("history-{name}.json"));
    // What the cached walks found to tell is told again on every read.
    let told = |c: &CacheFile| {
        let mut w = Warnings::default();
        for s in &c.skipped {
            w.skipped.note(s);
        }
        w.unreadable.extend(c.unreadable.iter().cloned());
        w
    };
    let cached = match load(&path, refname) {
        Some(c) if c.tip == tip => {
            return Ok(Listing {
                warnings: told(&c),
                items: c.versions,
            })
        }
        cached => cached,
    };
    // Only a tip that descends from the cached one keeps the cached versions: anything else
    // (a rewrite, a reset, a cached commit gone) walks everything again.
    let base = cached.filter(|c| repo.graph_descendant_of(tip, c.tip).unwrap_or(false));
    let mut warnings = Warnings::default();
    let mut versions = super::walk(repo, refname, tip, base.as_ref().map(|c| c.tip), &mut warnings)?;
    if let Some(old) = base {
        warnings.extend(told(&old));
        // A blob the new commits wrote again belongs to the newest of them, as in a full walk.
        let fresh: HashSet<Oid> = versions.iter().map(|v| v.blob).collect();
        versions.extend(old.versions.into_iter().filter(|v| !fresh.contains(&v.blob)));
    }
    versions.sort_by_cached_key(|v| (std::cmp::Reverse(v.handoff.timestamp), v.device.clone()));
    let file = CacheFile {
        format: FORMAT,
        writer: env!("CARGO_PKG_VERSION").to_string(),
        refname: refname.to_string(),
        tip,
        skipped: warnings.skipped.lines().to_vec(),
        unreadable: warnings.unreadable.iter().cloned().collect(),
        versions,
    };
    // Best-effort: a read-only repository still lists its history, walking it each time.
    if let Ok(bytes) = serde_json::to_vec(&file) {
        let _ = crate::fsutil::replace_file(&path, &bytes);
    }
    Ok(Listing {
        items: file.versions,
        warnings,
    })
}
