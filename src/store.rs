//! The handoff ref: a commit history whose tree holds one file per device,
//! `devices/<device>.md`, each the newest handoff of that device.
//!
//! Everything goes through git objects: blob → tree → commit → compare-and-swap of the ref. The
//! worktree, the index, HEAD and the user's branches are never touched, so this is safe while the
//! user is mid-rebase or another session is writing. Reading costs one tree walk of the tip, no
//! matter how long the history is.

use anyhow::{anyhow, bail, Context, Result};
use git2::{Commit, ErrorCode, FileMode, ObjectType, Oid, Repository, Signature, Tree};

use crate::handoff::{format, Handoff};

/// The directory in the ref's tree that holds one file per device.
pub const DEVICES_DIR: &str = "devices";

/// Files larger than this on the ref are not parsed (a hostile or broken ref must not make a
/// hook read megabytes into Claude's context).
pub const MAX_HANDOFF_BYTES: usize = 256 * 1024;

/// One device's file on the ref, parsed when possible.
#[derive(Debug, Clone)]
pub struct Entry {
    pub device: String,
    pub blob: Oid,
    pub handoff: Result<Handoff, String>,
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

    pub fn refname(&self) -> &str {
        &self.refname
    }

    /// The ref's tip commit; `None` when the ref does not exist yet.
    pub fn tip(&self) -> Result<Option<Commit<'r>>> {
        tip_of(self.repo, &self.refname)
    }

    /// Every device file on the tip, newest handoff first (unparseable files last).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        match self.tip()? {
            Some(c) => entries_of(self.repo, &c.tree()?),
            None => Ok(Vec::new()),
        }
    }

    /// [`Store::entries`] through a cache in `state_dir` keyed by the tip's tree id: a session
    /// start in a repository whose handoffs did not change reads one small file instead of one
    /// object per device. The key is content-addressed, so the cache can never be stale.
    pub fn entries_cached(&self, state_dir: &std::path::Path) -> Result<Vec<Entry>> {
        let Some(tip) = self.tip()? else {
            return Ok(Vec::new());
        };
        let tree = tip.tree_id();
        let path = state_dir.join("tip-cache.json");
        if let Some(cached) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cache>(&b).ok())
        {
            // Notes cached as unreadable for want of a key are read again once a key is added.
            let keyless = || {
                cached
                    .entries
                    .iter()
                    .any(|e| e.handoff.as_ref().is_err_and(|r| r == crate::crypt::NO_KEY))
                    && crate::crypt::key_file_exists()
            };
            if cached.version == CACHE_VERSION && cached.tree == tree.to_string() && !keyless() {
                return Ok(cached
                    .entries
                    .into_iter()
                    .filter_map(CachedEntry::into_entry)
                    .collect());
            }
        }
        let entries = entries_of(self.repo, &tip.tree()?)?;
        let cache = Cache {
            version: CACHE_VERSION,
            tree: tree.to_string(),
            entries: entries.iter().map(CachedEntry::from_entry).collect(),
        };
        if let Ok(bytes) = serde_json::to_vec(&cache) {
            let _ = crate::fsutil::replace_file(&path, &bytes);
        }
        Ok(entries)
    }

    /// The newest handoff of `device`, if any.
    pub fn get(&self, device: &str) -> Result<Option<Handoff>> {
        let Some(tip) = self.tip()? else { return Ok(None) };
        let tree = tip.tree()?;
        match tree.get_path(std::path::Path::new(&device_path(device))) {
            Ok(e) => Ok(read_handoff(self.repo, e.id()).ok()),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Commit `handoff` as its device's file. Returns the new tip. The caller holds the repo lock;
    /// the ref update is still a compare-and-swap so a writer that does not is never overwritten.
    /// On a ref that records encrypted notes, a device with a key commits the note encrypted to
    /// its key (and records its key on the ref), with a message that names only the device.
    pub fn put(&self, handoff: &Handoff, message: &str) -> Result<Oid> {
        let (blob, key, message) = self.seal(handoff, message)?;
        let path = device_path(&handoff.device);
        let sig = signature(self.repo, handoff.timestamp)?;
        self.update(&message, &sig, |tree| {
            let root = upsert(self.repo, tree, &path, Some(blob))?;
            self.with_key(root, key.as_deref())
        })
    }

    /// The blob for `handoff`, the recipient it was encrypted to, and the commit message to use.
    fn seal(&self, handoff: &Handoff, message: &str) -> Result<(Oid, Option<String>, String)> {
        let text = format::render(handoff).into_bytes();
        let (content, key) = crate::crypt::seal(self.repo, &self.refname, text)?;
        let message = match key {
            Some(_) => crate::crypt::sealed_message(&handoff.device),
            None => message.to_string(),
        };
        Ok((self.repo.blob(&content)?, key, message))
    }

    /// `root` with `keys/<recipient>` added when `recipient` is given.
    fn with_key(&self, root: Oid, recipient: Option<&str>) -> Result<Oid> {
        let Some(r) = recipient else { return Ok(root) };
        let blob = self.repo.blob(format!("{r}\n").as_bytes())?;
        let tree = self.repo.find_tree(root)?;
        upsert(self.repo, Some(&tree), &crate::crypt::key_entry(r), Some(blob))
    }

    /// Record on the ref that notes are encrypted, to `recipient` among others.
    pub fn record_key(&self, recipient: &str) -> Result<Oid> {
        let sig = signature(self.repo, crate::timefmt::now())?;
        self.update("encrypt handoffs", &sig, |tree| {
            let root = match tree {
                Some(t) => t.id(),
                None => self.repo.treebuilder(None)?.write()?,
            };
            self.with_key(root, Some(recipient))
        })
    }

    /// Remove `device`'s file (its history stays in the ref's log).
    pub fn remove(&self, device: &str, message: &str) -> Result<Oid> {
        let path = device_path(device);
        let sig = signature(self.repo, crate::timefmt::now())?;
        self.update(message, &sig, |tree| upsert(self.repo, tree, &path, None))
    }

    /// Move `old`'s file to `handoff.device`'s in one commit.
    pub fn rename(&self, old: &str, handoff: &Handoff, message: &str) -> Result<Oid> {
        let (blob, key, message) = self.seal(handoff, message)?;
        let (from, to) = (device_path(old), device_path(&handoff.device));
        let sig = signature(self.repo, crate::timefmt::now())?;
        self.update(&message, &sig, |tree| {
            let without = upsert(self.repo, tree, &from, None)?;
            let without = self.repo.find_tree(without)?;
            let root = upsert(self.repo, Some(&without), &to, Some(blob))?;
            self.with_key(root, key.as_deref())
        })
    }

    /// Build a new tree from the tip with `edit`, commit it on top and move the ref with CAS.
    /// Retries a few times when another writer moved the ref in between.
    fn update(
        &self,
        message: &str,
        sig: &Signature<'_>,
        edit: impl Fn(Option<&Tree<'_>>) -> Result<Oid>,
    ) -> Result<Oid> {
        for _ in 0..5 {
            let tip = self.tip()?;
            let old_tree = tip.as_ref().map(|c| c.tree()).transpose()?;
            let tree_id = edit(old_tree.as_ref())?;
            if let (Some(t), Some(c)) = (&old_tree, &tip) {
                if t.id() == tree_id {
                    // Nothing changed: no empty commit.
                    return Ok(c.id());
                }
            }
            let tree = self.repo.find_tree(tree_id)?;
            let parents: Vec<&Commit<'_>> = tip.iter().collect();
            let id = self.repo.commit(None, sig, sig, message, &tree, &parents)?;
            crate::fsutil::failpoint("object-written");
            match cas(
                self.repo,
                &self.refname,
                tip.as_ref().map(|c| c.id()),
                id,
                message,
            ) {
                Ok(()) => return Ok(id),
                Err(e) if is_race(&e) => continue,
                Err(e) => return Err(e).with_context(|| format!("could not update {}", self.refname)),
            }
        }
        bail!("{} kept changing under us; try again", self.refname)
    }
}

const CACHE_VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Cache {
    version: u32,
    tree: String,
    entries: Vec<CachedEntry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedEntry {
    device: String,
    blob: String,
    handoff: Result<Handoff, String>,
}

impl CachedEntry {
    fn from_entry(e: &Entry) -> CachedEntry {
        CachedEntry {
            device: e.device.clone(),
            blob: e.blob.to_string(),
            handoff: e.handoff.clone(),
        }
    }

    fn into_entry(self) -> Option<Entry> {
        Some(Entry {
            device: self.device,
            blob: Oid::from_str(&self.blob).ok()?,
            handoff: self.handoff,
        })
    }
}

/// `devices/<device>.md`
pub fn device_path(device: &str) -> String {
    format!("{DEVICES_DIR}/{device}.md")
}

pub fn tip_of<'r>(repo: &'r Repository, refname: &str) -> Result<Option<Commit<'r>>> {
    match repo.find_reference(refname) {
        Ok(r) => {
            let obj = r
                .resolve()
                .and_then(|r| r.peel(ObjectType::Any))
                .with_context(|| format!("could not resolve {refname}"))?;
            let commit = obj.into_commit().map_err(|o| {
                anyhow!(
                    "{refname} points at a {} instead of a commit",
                    kind_name(o.kind())
                )
            })?;
            Ok(Some(commit))
        }
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {refname}")),
    }
}

fn kind_name(k: Option<ObjectType>) -> &'static str {
    match k {
        Some(ObjectType::Blob) => "blob",
        Some(ObjectType::Tree) => "tree",
        Some(ObjectType::Tag) => "tag",
        _ => "non-commit object",
    }
}

/// All device files of `tree`, newest first.
pub fn entries_of(repo: &Repository, tree: &Tree<'_>) -> Result<Vec<Entry>> {
    let Some(dir) = tree.get_name(DEVICES_DIR) else {
        return Ok(Vec::new());
    };
    let Ok(dir) = repo.find_tree(dir.id()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in dir.iter() {
        let Ok(name) = e.name() else { continue };
        let Some(device) = name.strip_suffix(".md") else {
            continue;
        };
        if e.kind() != Some(ObjectType::Blob) || crate::device::sanitize(device).as_deref() != Some(device) {
            continue;
        }
        let handoff = read_handoff(repo, e.id());
        if let Err(r) = &handoff {
            crate::crypt::note_unreadable(device, r);
        }
        out.push(Entry {
            device: device.to_string(),
            blob: e.id(),
            handoff,
        });
    }
    sort_newest_first(&mut out);
    Ok(out)
}

fn sort_newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| match (&a.handoff, &b.handoff) {
        (Ok(x), Ok(y)) => y
            .timestamp
            .cmp(&x.timestamp)
            .then_with(|| a.device.cmp(&b.device)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.device.cmp(&b.device),
    });
}

/// Read and parse the device file `id`, checking its size from the object header first so an
/// enormous blob is never loaded.
pub fn read_handoff(repo: &Repository, id: Oid) -> Result<Handoff, String> {
    let odb = repo.odb().map_err(|e| format!("unreadable: {e}"))?;
    let (size, kind) = odb.read_header(id).map_err(|e| format!("unreadable: {e}"))?;
    if kind != ObjectType::Blob {
        return Err("not a file".to_string());
    }
    if size > MAX_HANDOFF_BYTES {
        return Err(format!("too large ({size} bytes)"));
    }
    let blob = repo.find_blob(id).map_err(|e| format!("unreadable: {e}"))?;
    parse_blob(blob.content())
}

/// Parse a device file, refusing enormous or non-UTF-8 content with a reason.
pub fn parse_blob(bytes: &[u8]) -> Result<Handoff, String> {
    if bytes.len() > MAX_HANDOFF_BYTES {
        return Err(format!("too large ({} bytes)", bytes.len()));
    }
    let bytes = crate::crypt::open(bytes)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
    format::parse(text).map_err(|e| e.to_string())
}

/// Replace (or with `None`, remove) the blob at `path` (`dir/file`) in `tree`, returning the new
/// root tree id.
fn upsert(repo: &Repository, tree: Option<&Tree<'_>>, path: &str, blob: Option<Oid>) -> Result<Oid> {
    let (dir, file) = path.split_once('/').context("handoff paths are dir/file")?;
    let subtree = tree
        .and_then(|t| t.get_name(dir))
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .map(|e| repo.find_tree(e.id()))
        .transpose()?;
    let mut sub = repo.treebuilder(subtree.as_ref())?;
    match blob {
        Some(b) => {
            sub.insert(file, b, FileMode::Blob.into())?;
        }
        None => {
            if sub.get(file)?.is_some() {
                sub.remove(file)?;
            }
        }
    }
    let mut root = repo.treebuilder(tree)?;
    if sub.is_empty() {
        if root.get(dir)?.is_some() {
            root.remove(dir)?;
        }
    } else {
        root.insert(dir, sub.write()?, FileMode::Tree.into())?;
    }
    Ok(root.write()?)
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
    Ok(Signature::new(&name, &email, &time)?)
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
        assert_eq!(summary(&first), summary(&store.entries().unwrap()));
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
        std::fs::write(state.join("tip-cache.json"), "garbage").unwrap();
        assert_eq!(
            summary(&store.entries_cached(&state).unwrap()),
            summary(&after),
            "a broken cache is ignored"
        );
    }
}
