//! The handoff ref: a commit history whose tree holds one file per device,
//! `devices/<device>.md`, each the newest handoff of that device.
//!
//! Everything goes through git objects: blob → tree → commit → compare-and-swap of the ref. The
//! worktree, the index, HEAD and the user's branches are never touched, so this is safe while the
//! user is mid-rebase or another session is writing. Reading costs one tree walk of the tip, no
//! matter how long the history is.

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use git2::{Commit, ErrorCode, FileMode, ObjectType, Oid, Repository, Signature, Tree};

use crate::handoff::{format, Handoff};

mod cache;
mod merge;
pub use crate::untrusted::Skipped;
pub use cache::{Head, Note};
pub use merge::{absorb, merge_commit};

/// The directory in the ref's tree that holds one file per device.
pub const DEVICES_DIR: &str = "devices";

/// The most bytes of notes one read of a tip takes in (each distinct blob counted once); the
/// notes past it are skipped, so many large notes cost a bounded amount together.
pub const MAX_NOTES_BYTES: usize = 16 << 20;

/// Why a device's file on the ref could not be read as a note. Each renders as the reason users
/// see; it is kept in the tip and history caches, so a change here bumps their versions.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub enum NoteError {
    /// git could not read the object (its message).
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// Another kind of object (named) where a file belongs.
    #[error("a {0} where a blob belongs")]
    NotABlob(String),
    /// Over the cap of [`crate::untrusted::Object::Note`], known from the object's header:
    /// never inflated (a hostile ref must not make a hook read megabytes into a context).
    #[error("too large ({size} bytes; a note is read up to {cap} bytes)")]
    TooLarge { size: usize, cap: usize },
    /// Past [`MAX_NOTES_BYTES`], the most one read of a tip takes in.
    #[error("skipped: the notes read at once are capped at {MAX_NOTES_BYTES} bytes")]
    OverBudget,
    /// Encrypted, and this device could not decrypt it.
    #[error(transparent)]
    Encrypted(#[from] crate::crypt::OpenError),
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Not a note: the parser's reason, cleaned to one line.
    #[error("{0}")]
    BadFormat(String),
    /// The tip cache's copy of the note could not be parsed.
    #[error("the local cache of this note is unreadable ({0})")]
    Cache(String),
}

impl From<crate::untrusted::Refused> for NoteError {
    fn from(e: crate::untrusted::Refused) -> NoteError {
        use crate::untrusted::Refused;
        match e {
            Refused::Unreadable(m) => NoteError::Unreadable(m),
            Refused::Kind { found, .. } => NoteError::NotABlob(found.str().to_string()),
            Refused::TooLarge { size, cap, .. } => NoteError::TooLarge { size, cap },
            // Only trees have entries: a note never gets here.
            e @ Refused::TooManyEntries(_) => NoteError::Unreadable(e.to_string()),
        }
    }
}

impl NoteError {
    /// Whether the note is encrypted and this device has no key for it.
    pub fn lacks_key(&self) -> bool {
        *self == NoteError::Encrypted(crate::crypt::OpenError::NoKey)
    }
}

/// What a read of the ref has to tell besides what it read: the entries it left out and the notes
/// this device could not decrypt. It travels with what was read ([`Listing`]); the hook or the
/// command that shows it takes it from there.
#[derive(Debug, Default, Clone)]
pub struct Warnings {
    pub skipped: Skipped,
    /// (device, why) of each note that could not be decrypted (always [`NoteError::Encrypted`]).
    pub unreadable: std::collections::BTreeSet<(String, NoteError)>,
}

impl Warnings {
    /// Take in what another read had to tell.
    pub fn extend(&mut self, other: Warnings) {
        self.skipped.extend(other.skipped);
        self.unreadable.extend(other.unreadable);
    }

    /// Record why `device`'s note could not be read, when it is that it could not be decrypted
    /// (the other reasons stay with the note itself).
    pub fn unreadable_note(&mut self, device: &str, why: &NoteError) {
        if let NoteError::Encrypted(_) = why {
            self.unreadable.insert((device.to_string(), why.clone()));
        }
    }
}

/// What a read of the ref found, with what it has to tell about it.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub warnings: Warnings,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            warnings: Warnings::default(),
        }
    }
}

/// One device's file on the ref, parsed when possible.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file name on the ref (a valid device id); the handoff's `device` is set to it.
    pub device: String,
    pub blob: Oid,
    pub handoff: Result<Handoff, NoteError>,
    /// Whether the note was decrypted with this device's key, which proves it was written with
    /// it (see [`crate::crypt`]). Known from how it was read, never from its text.
    pub proven: bool,
    /// The device named in the file's own `## Handoff from` header when it differs from the
    /// file name: reported, never believed.
    pub claimed: Option<String>,
}

/// Access to the handoff ref of one repository.
pub struct Store<'r> {
    repo: &'r Repository,
    refname: String,
}

impl<'r> Store<'r> {
    pub fn new(repo: &'r Repository, refname: &str) -> Store<'r> {
        Store {
            repo,
            refname: refname.to_string(),
        }
    }

    /// The ref's tip commit; `None` when the ref does not exist yet.
    pub fn tip(&self) -> Result<Option<Commit<'r>>> {
        tip_of(self.repo, &self.refname)
    }

    /// The id of the ref's tip commit, read from the ref alone; `None` when there is none.
    pub fn tip_id(&self) -> Option<Oid> {
        self.repo.refname_to_id(&self.refname).ok()
    }

    /// Every device file on the tip, newest handoff first (unparseable files last), with what
    /// the read skipped and could not decrypt.
    pub fn entries(&self) -> Result<Listing<Entry>> {
        let mut out = Listing::default();
        let Some(c) = self.tip()? else { return Ok(out) };
        if let Some(t) = commit_tree(self.repo, &c, &mut out.warnings.skipped) {
            out.items = entries_reusing(self.repo, &t, Default::default(), &mut out.warnings);
        }
        Ok(out)
    }

    /// The newest handoff of `device`, if any.
    pub fn get(&self, device: &str) -> Result<Option<Handoff>> {
        Ok(self.entry(device)?.and_then(|e| e.handoff.ok()))
    }

    /// `device`'s file on the tip, readable or not; `None` when there is none. A lookup: what
    /// the listing would skip is left to the listing to tell.
    pub fn entry(&self, device: &str) -> Result<Option<Entry>> {
        let Some(tip) = self.tip()? else { return Ok(None) };
        let skipped = &mut Skipped::default();
        let blob =
            commit_tree(self.repo, &tip, skipped).and_then(|t| device_file(self.repo, &t, device, skipped));
        Ok(blob.map(|blob| entry_from(device, blob, read_note(self.repo, blob))))
    }

    /// Commit `handoff` as its device's file. Returns the new tip. The caller holds the repo lock;
    /// the ref update is still a compare-and-swap so a writer that does not is never overwritten.
    /// A device with a key commits the note encrypted with it (and records its key id on the
    /// ref), with a message that names only the device, whatever the ref records.
    pub fn put(&self, handoff: &Handoff, message: &str) -> Result<Oid> {
        self.write(None, handoff, message, handoff.timestamp)
    }

    /// Move `old`'s file to `handoff.device`'s in one commit.
    pub fn rename(&self, old: &str, handoff: &Handoff, message: &str) -> Result<Oid> {
        self.write(Some(old), handoff, message, crate::timefmt::now())
    }

    /// Commit `handoff` (cleaned of control characters: drafts come from conversations) as its
    /// device's file, sealed with this device's key when it has one, in place of `old`'s.
    fn write(&self, old: Option<&str>, handoff: &Handoff, message: &str, when: DateTime<Utc>) -> Result<Oid> {
        let device = handoff.device.clone();
        valid_device(&device)?;
        old.map(valid_device).transpose()?;
        let handoff = crate::untrusted::handoff(handoff.clone());
        let (content, key) = crate::crypt::seal(format::render(&handoff).into_bytes())?;
        let message = match key {
            Some(_) => crate::crypt::sealed_message(&handoff.device),
            None => message.to_string(),
        };
        let blob = self.repo.blob(&content).with_context(|| {
            format!(
                "could not write the note of {} for {}",
                handoff.device, self.refname
            )
        })?;
        let key = key.map(|id| self.key_record(&id)).transpose()?;
        self.update(&message, when, |files, keys| {
            if let Some(old) = old {
                files.remove(old);
            }
            files.insert(device.clone(), blob);
            if let Some((id, record)) = &key {
                keys.entry(id.clone()).or_insert(*record);
            }
        })
    }

    /// The key id `id` and the blob that records it under `keys/`.
    fn key_record(&self, id: &str) -> Result<(String, Oid)> {
        if !crate::crypt::is_key_id(id) {
            bail!("invalid key id {id:?}");
        }
        let blob = self
            .repo
            .blob(format!("{id}\n").as_bytes())
            .with_context(|| format!("could not write the key record of {id} for {}", self.refname))?;
        Ok((id.to_string(), blob))
    }

    /// Record on the ref that notes are encrypted, with the key `id` among others.
    pub fn record_key(&self, id: &str) -> Result<Oid> {
        let (id, record) = self.key_record(id)?;
        self.update("encrypt handoffs", crate::timefmt::now(), |_, keys| {
            keys.entry(id.clone()).or_insert(record);
        })
    }

    /// Remove `device`'s file (its history stays in the ref's log).
    pub fn remove(&self, device: &str, message: &str) -> Result<Oid> {
        valid_device(device)?;
        self.update(message, crate::timefmt::now(), |files, _| {
            files.remove(device);
        })
    }

    /// Commit on top of the tip the tree `edit` makes of its device files and key ids, and move
    /// the ref with CAS. Retries a few times when another writer moved the ref in between. The
    /// tree is rebuilt from the valid entries only, so whatever invalid entries a hostile push
    /// left on the ref are gone from the next commit, and a remote that checks objects accepts it.
    fn update(
        &self,
        message: &str,
        when: DateTime<Utc>,
        edit: impl Fn(&mut Files, &mut Files),
    ) -> Result<Oid> {
        let sig = signature(self.repo, when)?;
        retry_cas(self.repo, &self.refname, message, || {
            let tip = self.tip()?;
            // A write keeps only valid entries; telling what it leaves out is for the reads.
            let skipped = &mut Skipped::default();
            // A tip whose tree cannot be read is rebuilt from nothing rather than blocking saves.
            let old_tree = tip.as_ref().and_then(|c| commit_tree(self.repo, c, skipped));
            let mut files = device_files(self.repo, old_tree.as_ref(), skipped);
            let mut keys = key_files(self.repo, old_tree.as_ref(), skipped);
            edit(&mut files, &mut keys);
            let tree = write_ref_tree(self.repo, &files, &keys)
                .with_context(|| format!("could not write the tree of {}", self.refname))?;
            if let Some(c) = tip.as_ref().filter(|c| c.tree_id() == tree.id()) {
                // Nothing changed: no empty commit.
                return Ok(Cas::Done(c.id()));
            }
            let parents: Vec<&Commit<'_>> = tip.iter().collect();
            let id = self
                .repo
                .commit(None, &sig, &sig, message, &tree, &parents)
                .with_context(|| format!("could not write a commit for {}", self.refname))?;
            crate::fsutil::failpoint("object-written");
            Ok(Cas::Move {
                from: tip.as_ref().map(|c| c.id()),
                to: id,
            })
        })
    }
}

/// Device files or key records of the ref's tree: name → blob.
pub type Files = std::collections::BTreeMap<String, Oid>;

/// An error unless `device` is a valid device id.
fn valid_device(device: &str) -> Result<()> {
    if !crate::device::is_valid(device) {
        bail!("invalid device name {device:?}");
    }
    Ok(())
}

/// The commit `refname` points at (read through [`crate::untrusted::commit`], so its size is
/// checked before it is inflated); `None` when the ref does not exist.
pub fn tip_of<'r>(repo: &'r Repository, refname: &str) -> Result<Option<Commit<'r>>> {
    let id = match repo.refname_to_id(refname) {
        Ok(id) => id,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not read {refname}")),
    };
    let commit = crate::untrusted::commit(repo, id).map_err(|e| match e {
        crate::untrusted::Refused::Kind { found, .. } => {
            anyhow!("{refname} points at a {} instead of a commit", found.str())
        }
        e => anyhow!("could not resolve {refname}: {e}"),
    })?;
    Ok(Some(commit))
}

/// The tree of a commit, read through [`crate::untrusted::tree`]; `None` (recorded in `skipped`)
/// when it cannot be read.
pub fn commit_tree<'r>(repo: &'r Repository, c: &Commit<'_>, skipped: &mut Skipped) -> Option<Tree<'r>> {
    let at = c.id();
    crate::untrusted::tree(repo, c.tree_id())
        .inspect_err(|e| match e {
            crate::untrusted::Refused::Unreadable(_) => skipped.note(format_args!(
                "skipped the unreadable tree of commit {at} on the handoff ref ({e})"
            )),
            e => skipped.refused(&format_args!("the tree of commit {at} on a convosync ref"), e),
        })
        .ok()
}

/// The `name` subtree (`devices`, `keys`) of a root tree of the ref; `None` when there is none or
/// it is not a readable tree (recorded in `skipped`).
pub fn subtree<'r>(
    repo: &'r Repository,
    root: &Tree<'_>,
    name: &str,
    skipped: &mut Skipped,
) -> Option<Tree<'r>> {
    // Iterate rather than look up by name: a hostile tree may hold the name twice, or unsorted.
    let mut found = None;
    for e in root.iter().filter(|e| e.name_bytes() == name.as_bytes()) {
        let tree = crate::untrusted::tree(repo, e.id());
        if let Err(r) = &tree {
            skipped.refused(&format_args!("{name}/ on the handoff ref"), r);
        }
        match (e.kind(), tree) {
            (Some(ObjectType::Tree), Ok(t)) if found.is_none() => found = Some(t),
            (Some(ObjectType::Tree), Ok(_)) => {
                skipped.note(format_args!("skipped a second `{name}` entry on the handoff ref"))
            }
            _ => skipped.note(format_args!(
                "skipped a `{name}` entry on the handoff ref that is not a readable directory ({})",
                e.id()
            )),
        }
    }
    found
}

/// Whether a `devices/` entry is a usable device file: a regular file named `<device id>.md`.
/// Returns the device, or records in `skipped` why the entry is left out.
pub fn device_entry(e: &git2::TreeEntry<'_>, skipped: &mut Skipped) -> Option<String> {
    let regular =
        e.kind() == Some(ObjectType::Blob) && matches!(e.filemode(), 0o100644 | 0o100755 | 0o100664);
    let name = std::str::from_utf8(e.name_bytes()).ok();
    let device = name.and_then(|n| n.strip_suffix(".md"));
    let device = device.filter(|d| regular && crate::device::is_valid(d));
    if device.is_none() {
        skipped.note(format_args!(
            "skipped devices/{} on the handoff ref (not a device file: a file named <device>.md, the device in lowercase letters, digits and dashes)",
            crate::untrusted::quoted(e.name_bytes())
        ));
    }
    device.map(str::to_string)
}

/// Whether a `keys/` entry is a key record: a file named like a key id (see [`crate::crypt`]).
/// Returns the key id, or records in `skipped` why the entry is left out, so a hostile entry
/// there never reaches a path or a message unchecked.
fn key_entry(e: &git2::TreeEntry<'_>, skipped: &mut Skipped) -> Option<String> {
    let name = std::str::from_utf8(e.name_bytes()).ok();
    let id = name.filter(|n| e.kind() == Some(ObjectType::Blob) && crate::crypt::is_key_id(n));
    if id.is_none() {
        let file = crate::untrusted::quoted(e.name_bytes());
        skipped.note(format_args!(
            "skipped keys/{file} on the handoff ref (not a key id)"
        ));
    }
    id.map(str::to_string)
}

/// The usable device files of a root tree of the ref: device → blob. Invalid entries (bad
/// names, non-files, duplicates) are left out and recorded in `skipped`; the first of duplicate
/// names wins, so every device reads the same thing.
pub fn device_files(repo: &Repository, root: Option<&Tree<'_>>, skipped: &mut Skipped) -> Files {
    files_of(repo, root, DEVICES_DIR, device_entry, skipped)
}

/// The key ids recorded under `keys/` of a root tree of the ref: id → blob, chosen as
/// [`device_files`] chooses device files.
pub fn key_files(repo: &Repository, root: Option<&Tree<'_>>, skipped: &mut Skipped) -> Files {
    files_of(repo, root, crate::crypt::KEYS_DIR, key_entry, skipped)
}

/// The entries of the `dir` subtree of a root tree that `usable` names, by name (none without a
/// tree).
fn files_of(
    repo: &Repository,
    root: Option<&Tree<'_>>,
    dir: &str,
    usable: fn(&git2::TreeEntry<'_>, &mut Skipped) -> Option<String>,
    skipped: &mut Skipped,
) -> Files {
    let mut out = Files::new();
    let Some(tree) = root.and_then(|root| subtree(repo, root, dir, skipped)) else {
        return out;
    };
    for e in tree.iter() {
        let Some(name) = usable(&e, skipped) else { continue };
        if out.contains_key(&name) {
            // `usable` took the name: it is UTF-8.
            let file = e.name().unwrap_or_default();
            skipped.note(format_args!("skipped a second {dir}/{file} on the handoff ref"));
            continue;
        }
        out.insert(name, e.id());
    }
    out
}

/// The blob of `device`'s file in a root tree of the ref, the one [`device_files`] would give
/// (the first usable entry of that name), without looking at the other devices' entries.
pub fn device_file(repo: &Repository, root: &Tree<'_>, device: &str, skipped: &mut Skipped) -> Option<Oid> {
    let name = format!("{device}.md");
    subtree(repo, root, DEVICES_DIR, skipped)?
        .iter()
        .filter(|e| e.name_bytes() == name.as_bytes())
        .find_map(|e| device_entry(&e, skipped).map(|_| e.id()))
}

/// The key ids recorded on `refname`'s tip (a lookup: entries left out are not told).
pub fn key_ids(repo: &Repository, refname: &str) -> Vec<String> {
    let skipped = &mut Skipped::default();
    let tip = tip_of(repo, refname).ok().flatten();
    let tree = tip.and_then(|c| commit_tree(repo, &c, skipped));
    key_files(repo, tree.as_ref(), skipped).into_keys().collect()
}

/// A root tree holding exactly `devices/<device>.md` for each pair: always valid for git and
/// libgit2, whatever the tree it was read from held.
#[cfg(test)]
pub fn write_device_files(repo: &Repository, files: &Files) -> Result<Oid> {
    write_ref_tree(repo, files, &Files::new()).map(|t| t.id())
}

/// A root tree of `devices/<device>.md` files and `keys/<key id>` records, nothing else.
pub fn write_ref_tree<'r>(repo: &'r Repository, files: &Files, keys: &Files) -> Result<Tree<'r>> {
    let mut root = repo.treebuilder(None).context("could not start a tree")?;
    for (name, entries, suffix) in [(DEVICES_DIR, files, ".md"), (crate::crypt::KEYS_DIR, keys, "")] {
        if entries.is_empty() {
            continue;
        }
        let mut dir = repo.treebuilder(None).context("could not start a tree")?;
        for (entry, id) in entries {
            dir.insert(format!("{entry}{suffix}"), *id, FileMode::Blob.into())
                .with_context(|| format!("could not add {name}/{entry}{suffix} ({id}) to a tree"))?;
        }
        let id = dir
            .write()
            .with_context(|| format!("could not write the {name} tree"))?;
        root.insert(name, id, FileMode::Tree.into())
            .with_context(|| format!("could not add {name} ({id}) to a tree"))?;
    }
    let id = root.write().context("could not write a root tree")?;
    repo.find_tree(id)
        .with_context(|| format!("could not read the tree {id} just written"))
}

/// All device files of `tree`, newest first. Each handoff shows the device of its file name;
/// a different name in its header is kept in [`Entry::claimed`].
#[cfg(test)]
pub fn entries_of(repo: &Repository, tree: &Tree<'_>) -> Vec<Entry> {
    entries_reusing(repo, tree, Default::default(), &mut Warnings::default())
}

/// Every entry of `tree`, taking entries from `known` (by device and blob id) instead of reading them,
/// and recording in `warnings` what was skipped and which notes could not be decrypted.
fn entries_reusing(
    repo: &Repository,
    tree: &Tree<'_>,
    mut known: std::collections::HashMap<(String, Oid), Entry>,
    warnings: &mut Warnings,
) -> Vec<Entry> {
    // Each distinct blob is read once, and all of them together up to `MAX_NOTES_BYTES`.
    let mut read: std::collections::HashMap<Oid, Result<(Handoff, bool), NoteError>> = Default::default();
    let mut budget = MAX_NOTES_BYTES;
    let skipped = &mut warnings.skipped;
    let mut out: Vec<Entry> = device_files(repo, Some(tree), skipped)
        .into_iter()
        .map(|(device, blob)| {
            if let Some(e) = known.remove(&(device.clone(), blob)) {
                return e;
            }
            let parsed = read
                .entry(blob)
                .or_insert_with(|| read_within(repo, blob, &device, &mut budget, skipped))
                .clone();
            entry_from(&device, blob, parsed)
        })
        .collect();
    for e in &out {
        if let Err(why) = &e.handoff {
            warnings.unreadable_note(&e.device, why);
        }
    }
    // Newest handoff first, unparseable files last, then by device.
    out.sort_by_cached_key(|e| {
        (
            std::cmp::Reverse(e.handoff.as_ref().ok().map(|h| h.timestamp)),
            e.device.clone(),
        )
    });
    out
}

/// `device`'s file `blob` as read (with whether it was decrypted with this device's key). The
/// handoff's device is set to `device` (its file name on the ref); the name its header claimed is
/// kept when that differs.
pub fn entry_from(device: &str, blob: Oid, read: Result<(Handoff, bool), NoteError>) -> Entry {
    let claimed = read
        .as_ref()
        .ok()
        .map(|(h, _)| &h.device)
        .filter(|d| *d != device);
    Entry {
        device: device.to_string(),
        blob,
        claimed: claimed.map(|d| crate::timefmt::truncate_chars(d, 60)),
        proven: read.as_ref().is_ok_and(|(_, proven)| *proven),
        handoff: read.map(|(h, _)| Handoff {
            device: device.to_string(),
            ..h
        }),
    }
}

/// [`read_note`] of `device`'s note while `budget` (bytes) lasts, taking its size from it.
fn read_within(
    repo: &Repository,
    id: Oid,
    device: &str,
    budget: &mut usize,
    skipped: &mut Skipped,
) -> Result<(Handoff, bool), NoteError> {
    let at = format_args!("devices/{device}.md on the handoff ref");
    let size = crate::untrusted::check(repo, id, crate::untrusted::Object::Note)
        .inspect_err(|e| skipped.refused(&at, e))?;
    if size > *budget {
        let why = NoteError::OverBudget;
        skipped.note(format_args!("skipped {at} ({why})"));
        return Err(why);
    }
    *budget -= size;
    read_note(repo, id)
}

/// Read and parse the device file `id` through [`crate::untrusted::blob`] (its size is checked
/// from the object header first, so an enormous blob is never loaded), and whether the note was
/// decrypted with this device's key (each blob is decrypted at most once per process).
pub fn read_note(repo: &Repository, id: Oid) -> Result<(Handoff, bool), NoteError> {
    // Its header is checked against the cap of a note, `MAX_HANDOFF_BYTES`.
    let blob = crate::untrusted::blob(repo, id, crate::untrusted::Object::Note)?;
    let opened = crate::crypt::open(Some(id), crate::crypt::Purpose::Note, blob.content())?;
    let text = std::str::from_utf8(&opened.text).map_err(|_| NoteError::NotUtf8)?;
    // The ref is untrusted: every field is cleaned here, once, for every reader.
    let h = format::parse(text)
        .map_err(|e| NoteError::BadFormat(crate::untrusted::line(&e.to_string()).into_owned()))?;
    Ok((crate::untrusted::handoff(h), opened.proven))
}

/// Move `refname` from `old` (`None`: must not exist) to `new`, failing if someone else moved it.
pub fn cas(
    repo: &Repository,
    refname: &str,
    old: Option<Oid>,
    new: Oid,
    msg: &str,
) -> Result<(), git2::Error> {
    let log = format!("convosync: {}", msg.lines().next().unwrap_or(""));
    match old {
        Some(old) => repo.reference_matching(refname, new, true, old, &log).map(|_| ()),
        None => repo.reference(refname, new, false, &log).map(|_| ()),
    }
}

/// What one round of a [`retry_cas`] loop found.
pub enum Cas {
    /// Nothing to write: the ref already is where it should be (this tip).
    Done(Oid),
    /// Move the ref from `from` (`None`: it must not exist yet) to `to`.
    Move { from: Option<Oid>, to: Oid },
}

/// Rounds of [`retry_cas`] before giving up.
const CAS_ROUNDS: usize = 5;

/// The one compare-and-swap loop: `round` reads the ref's tip and says where it should move;
/// when another writer moved it in between, the round runs again on the new tip (a few times).
/// Returns the ref's new tip.
pub fn retry_cas(
    repo: &Repository,
    refname: &str,
    msg: &str,
    mut round: impl FnMut() -> Result<Cas>,
) -> Result<Oid> {
    for _ in 0..CAS_ROUNDS {
        let (from, to) = match round()? {
            Cas::Done(tip) => return Ok(tip),
            Cas::Move { from, to } => (from, to),
        };
        match cas(repo, refname, from, to, msg) {
            Ok(()) => return Ok(to),
            Err(e) if is_race(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("could not update {refname}")),
        }
    }
    bail!("{refname} kept changing under us; try again")
}

/// Whether a ref update failed because another writer got there first.
pub fn is_race(e: &git2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
    )
}

/// The author of handoff commits: the user's git identity when configured, else "convosync".
/// The time is the handoff's own timestamp so history sorts by when notes were written.
pub fn signature(repo: &Repository, when: chrono::DateTime<chrono::Utc>) -> Result<Signature<'static>> {
    let time = git2::Time::new(when.timestamp(), 0);
    let (name, email) = repo
        .signature()
        .ok()
        .and_then(|s| Some((s.name().ok()?.to_string(), s.email().ok()?.to_string())))
        .unwrap_or_else(|| ("convosync".to_string(), "convosync@localhost".to_string()));
    Signature::new(&name, &email, &time)
        .with_context(|| format!("could not make a commit signature from {name:?} <{email:?}>"))
}

/// The commit message for a handoff: a summary line plus trailers that history and search read.
pub fn commit_message(h: &Handoff) -> String {
    let mut m = format!(
        "handoff from {}: {}\n\nConvosync-Device: {}\n",
        h.device,
        h.task_line(60),
        h.device
    );
    if let Some(s) = &h.session {
        m.push_str(&format!("Convosync-Session: {s}\n"));
    }
    m
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::handoff::Section;

    fn h(device: &str, n: i64) -> Handoff {
        Handoff {
            device: device.into(),
            timestamp: Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap(),
            commit: None,
            branch: Some("main".into()),
            session: None,
            author: None,
            agent: None,
            sections: vec![Section {
                title: "Current Task".into(),
                body: format!("{device} {n}"),
            }],
        }
    }

    fn summary(entries: &[Entry]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|e| (e.device.clone(), e.handoff.as_ref().unwrap().task_line(40)))
            .collect()
    }

    #[test]
    fn cached_entries_match_and_follow_the_tip() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let store = Store::new(&repo, "refs/convosync/handoffs");
        let state = dir.path().join("state");
        assert!(store.entries_cached(&state).unwrap().is_empty());
        store.put(&h("a", 1), "m").unwrap();
        store.put(&h("b", 2), "m").unwrap();
        let first = store.entries_cached(&state).unwrap();
        assert_eq!(summary(&first), summary(&store.entries().unwrap().items));
        assert!(state.join("tip-cache.json").exists());
        assert_eq!(
            summary(&store.entries_cached(&state).unwrap()),
            summary(&first),
            "served from the cache"
        );
        store.put(&h("a", 3), "m").unwrap();
        let after = store.entries_cached(&state).unwrap();
        assert_eq!(
            summary(&after),
            [
                ("a".to_string(), "a 3".to_string()),
                ("b".to_string(), "b 2".to_string())
            ]
        );
        // Heads whose notes lie outside the file, or a file cut short: read from the ref again.
        let text = std::fs::read_to_string(state.join("tip-cache.json")).unwrap();
        let (heads, bodies) = text.split_once('\n').unwrap();
        assert!(heads.contains("\"start\":0,\"end\":"), "{heads}");
        for broken in [
            format!(
                "{}\n{bodies}",
                heads.replace("\"start\":0,\"end\":", "\"start\":999999,\"end\":9999999")
            ),
            format!("{heads}\n{}", &bodies[..bodies.len() / 2]),
            heads.to_string(),
        ] {
            std::fs::write(state.join("tip-cache.json"), broken).unwrap();
            assert_eq!(summary(&store.entries_cached(&state).unwrap()), summary(&after));
        }
        // The notes' heads say what their bodies do.
        let notes = store.notes_cached(&state).unwrap().items;
        for n in &notes {
            let (head, h) = (n.head.as_ref().unwrap(), n.handoff().unwrap());
            assert_eq!(
                (head.timestamp, &head.branch, &h.device),
                (h.timestamp, &h.branch, &n.device)
            );
        }
        std::fs::write(state.join("tip-cache.json"), "garbage").unwrap();
        assert_eq!(
            summary(&store.entries_cached(&state).unwrap()),
            summary(&after),
            "a broken cache is ignored"
        );
    }

    #[test]
    fn reasons_keep_their_kind_through_the_cache_and_older_caches_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let store = Store::new(&repo, "refs/convosync/handoffs");
        let state = dir.path().join("state");
        store.put(&h("a", 1), "m").unwrap();
        // Files no note can be read from, next to `a`'s.
        let tip = store.tip().unwrap().unwrap();
        let mut files = device_files(&repo, Some(&tip.tree().unwrap()), &mut Skipped::default());
        files.insert("b".into(), repo.blob(b"\xff\xfe not text").unwrap());
        files.insert("c".into(), repo.blob(b"no header at all").unwrap());
        let tree = repo
            .find_tree(write_device_files(&repo, &files).unwrap())
            .unwrap();
        let sig = signature(&repo, crate::timefmt::now()).unwrap();
        let next = repo.commit(None, &sig, &sig, "m", &tree, &[&tip]).unwrap();
        cas(&repo, "refs/convosync/handoffs", Some(tip.id()), next, "m").unwrap();
        let reasons = |entries: Vec<Entry>| -> Vec<(String, Option<NoteError>)> {
            entries.into_iter().map(|e| (e.device, e.handoff.err())).collect()
        };
        let read = reasons(store.entries().unwrap().items);
        assert_eq!(read[1], ("b".to_string(), Some(NoteError::NotUtf8)));
        assert!(matches!(&read[2].1, Some(NoteError::BadFormat(_))), "{read:?}");
        assert_eq!(NoteError::NotUtf8.to_string(), "not UTF-8 text");
        assert_eq!(reasons(store.entries_cached(&state).unwrap()), read, "written");
        assert_eq!(reasons(store.entries_cached(&state).unwrap()), read, "read back");
        // A cache of the previous version, even one that names this very tip, is not read: its
        // reasons were text, and its notes might say anything.
        let text = std::fs::read_to_string(state.join("tip-cache.json")).unwrap();
        let old = text
            .replacen(&format!("\"version\":{}", cache::VERSION), "\"version\":6", 1)
            .replace("a 1", "from an old cache");
        assert_ne!(old, text);
        std::fs::write(state.join("tip-cache.json"), old).unwrap();
        assert_eq!(
            summary(&store.entries_cached(&state).unwrap()[..1]),
            [("a".to_string(), "a 1".to_string())]
        );
    }

    /// A raw tree object, entries in the order given (a hostile one may repeat a name).
    fn raw_tree(repo: &Repository, entries: &[(&str, &str, Oid)]) -> Oid {
        let mut bytes = Vec::new();
        for (mode, name, id) in entries {
            bytes.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            bytes.extend_from_slice(id.as_bytes());
        }
        repo.odb().unwrap().write(ObjectType::Tree, &bytes).unwrap()
    }

    #[test]
    fn one_device_file_is_the_one_all_of_them_give() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = |t: &str| repo.blob(format::render(&h(t, 1)).as_bytes()).unwrap();
        let (first, second, other) = (blob("a"), blob("a-again"), blob("b"));
        let sub = raw_tree(&repo, &[("100644", "x", other)]);
        let devices = raw_tree(
            &repo,
            &[
                ("40000", "a.md", sub),
                ("100644", "a.md", first),
                ("100644", "a.md", second),
                ("100644", "b.md", other),
                ("100644", "Bad Name.md", other),
            ],
        );
        let root = repo
            .find_tree(raw_tree(&repo, &[("40000", "devices", devices)]))
            .unwrap();
        let mut skipped = Skipped::default();
        let all = device_files(&repo, Some(&root), &mut skipped);
        for d in ["a", "b", "c", "Bad Name", ""] {
            let one = device_file(&repo, &root, d, &mut Skipped::default());
            assert_eq!(one, all.get(d).copied(), "{d:?}");
        }
        assert_eq!(
            device_file(&repo, &root, "a", &mut Skipped::default()),
            Some(first)
        );
        // What was left out comes back with what was read, one line each.
        assert_eq!(
            skipped.lines(),
            [
                "skipped devices/\"a.md\" on the handoff ref (not a device file: a file named <device>.md, the device in lowercase letters, digits and dashes)",
                "skipped a second devices/a.md on the handoff ref",
                "skipped devices/\"Bad Name.md\" on the handoff ref (not a device file: a file named <device>.md, the device in lowercase letters, digits and dashes)",
            ]
        );
    }
}
