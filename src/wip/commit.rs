//! A snapshot commit: the trailers its message carries, read back as a [`Snapshot`], and the
//! trees a snapshot is made against.

use anyhow::{Context, Result};
use git2::{Commit, Diff, DiffOptions, IndexEntry, IndexTime, Oid, Repository, Tree};

use crate::repo::Repo;

/// Whether a snapshot was encrypted and, if so, whether this device could read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sealed {
    #[default]
    Plain,
    /// Encrypted, and this device has the key.
    Open,
    /// Encrypted, and this device could not read it: why, as a message for the user.
    Locked(String),
}

/// A snapshot commit, read back.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub device: String,
    pub commit: Oid,
    /// The commit the snapshot is a set of changes to.
    pub base: Option<Oid>,
    /// Made against nothing (no commit of the branch was on the remote): the whole tree.
    pub whole: bool,
    pub branch: Option<String>,
    pub files: Vec<String>,
    pub time: chrono::DateTime<chrono::Utc>,
    /// Whether it was encrypted, and whether this device could read it.
    pub sealed: Sealed,
}

impl Snapshot {
    /// Why this device cannot read it (encrypted, and not to its key), as a message for the user;
    /// `None` when it can.
    pub fn locked(&self) -> Option<&str> {
        match &self.sealed {
            Sealed::Locked(why) => Some(why),
            _ => None,
        }
    }

    /// Set the branch and files the snapshot records: text anyone could push, so each is cleaned
    /// to one safe line.
    pub(super) fn recorded<'a>(&mut self, branch: Option<&str>, files: impl Iterator<Item = &'a str>) {
        self.branch = branch.map(crate::untrusted::line_owned).filter(|b| !b.is_empty());
        self.files = files.map(crate::untrusted::line_owned).collect();
    }

    /// Whether a device other than `me` is offered this snapshot: it holds changes, or this
    /// device cannot read it.
    pub fn offered_to(&self, me: &str) -> bool {
        self.device != me && (!self.files.is_empty() || self.locked().is_some())
    }

    /// The base as shown to people: a short id, `none` for a whole-tree snapshot, `?` unknown.
    pub fn base_label(&self) -> String {
        match self.base {
            Some(b) => crate::refs::short_id(&b.to_string()).to_string(),
            None if self.whole => "none".into(),
            None => "?".into(),
        }
    }
}

pub(super) fn entry(path: &str, id: Oid, mode: u32, size: u32) -> IndexEntry {
    let t = IndexTime::new(0, 0);
    IndexEntry {
        ctime: t,
        mtime: t,
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: size,
        id,
        flags: (path.len().min(0xfff)) as u16,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// The snapshot commit's message: a subject for `git log`, then trailers that [`read`] parses.
pub(super) fn message(device: &str, base: Option<Oid>, branch: Option<&str>, files: &[String]) -> String {
    let mut msg = format!(
        "wip from {device} on {} ({} file{})\n\nConvosync-Device: {device}\nConvosync-Base: {}\nConvosync-Branch: {}\nConvosync-Files: {}\n",
        branch.unwrap_or("detached HEAD"),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        base.map(|b| b.to_string()).unwrap_or_else(|| "none".into()),
        branch.unwrap_or(""),
        files.len()
    );
    for f in files {
        msg.push_str(&format!("Convosync-File: {f}\n"));
    }
    msg
}

fn trailer<'a>(msg: &'a str, key: &str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = format!("{key}: ");
    msg.lines()
        .filter_map(move |l| l.strip_prefix(prefix.as_str()).map(str::trim))
}

pub(super) fn read(device: &str, c: &Commit<'_>) -> Snapshot {
    let msg = c.message().unwrap_or_default();
    let base = trailer(msg, "Convosync-Base").next();
    let mut snap = Snapshot {
        device: device.to_string(),
        commit: c.id(),
        base: base.and_then(|s| Oid::from_str(s).ok()),
        whole: base == Some("none"),
        branch: None,
        files: Vec::new(),
        time: chrono::DateTime::from_timestamp(c.time().seconds(), 0).unwrap_or_default(),
        sealed: Sealed::Plain,
    };
    snap.recorded(
        trailer(msg, "Convosync-Branch").next(),
        trailer(msg, "Convosync-File"),
    );
    snap
}

/// The changes from `base` to `tree`, a change of type as one when `typechange`.
pub(super) fn diff<'r>(
    git: &'r Repository,
    base: &Tree<'_>,
    tree: &Tree<'_>,
    typechange: bool,
) -> Result<Diff<'r>> {
    let mut opts = DiffOptions::new();
    opts.include_typechange(typechange);
    let (t, b) = (tree.id(), base.id());
    git.diff_tree_to_tree(Some(base), Some(tree), Some(&mut opts))
        .with_context(|| format!("could not compare tree {t} with base tree {b}"))
}

/// The empty tree, written to the object database.
pub(super) fn empty_tree(git: &Repository) -> Result<Tree<'_>> {
    git.treebuilder(None)
        .and_then(|b| b.write())
        .and_then(|id| git.find_tree(id))
        .context("could not write an empty tree")
}

/// The tree of the snapshot's base commit (the empty tree for a whole-tree snapshot).
pub(super) fn base_tree<'r>(repo: &'r Repo, snap: &Snapshot) -> Result<Tree<'r>> {
    if snap.whole {
        return empty_tree(&repo.git);
    }
    let (c, device) = (base_commit(repo, snap)?, &snap.device);
    let id = c.id();
    c.tree()
        .with_context(|| format!("could not read the tree of {device}'s snapshot base {id}"))
}

/// The snapshot's base commit, which must be here: the snapshot is a set of changes to it.
pub(super) fn base_commit<'r>(repo: &'r Repo, snap: &Snapshot) -> Result<Commit<'r>> {
    let base_id = snap
        .base
        .context("the snapshot does not record its base commit")?;
    repo.git.find_commit(base_id).map_err(|_| {
        anyhow::anyhow!(
            "the snapshot's base commit {} is not in this clone: fetch or pull {} first",
            crate::refs::short_id(&base_id.to_string()),
            snap.branch.as_deref().unwrap_or("the branch it was on")
        )
    })
}
