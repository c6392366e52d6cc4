//! Taking a snapshot: the worktree's uncommitted changes (and unpushed commits' changes) as a
//! commit on `refs/convosync/wip/<device>`, credential files left out.

use std::fs::Metadata;
use std::path::Path;

use anyhow::{bail, Context, Result};
use git2::{Commit, Delta, Index, ObjectType, Oid, Tree};

use super::commit::{diff, empty_tree, entry, message, Sealed};
use super::mode::{self, Mode};
use super::publish::{remote_tips, unpublished};
use super::{sealed, status};
use crate::refs;
use crate::repo::Repo;
use crate::store::{cas, is_race, tip_of};

/// A file left out of a snapshot, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: String,
    pub reason: &'static str,
}

/// What [`snapshot`] did (the files it left out come beside it).
#[derive(Debug)]
pub enum Outcome {
    /// Saved, with the files it holds.
    Saved(Vec<String>),
    /// Nothing uncommitted (an empty snapshot now tells other devices there is nothing to take).
    Clean,
    /// Unchanged since the last snapshot.
    Unchanged,
    /// Over the size limit (`convosync.wipLimit`) with this many bytes; nothing left out is told.
    TooLarge(u64),
}

/// A changed path of the worktree, with its `lstat` (`None`: deleted).
type Change = (String, Option<Metadata>);

/// The commit to base a snapshot on: one `remote` already has, so the snapshot never carries a
/// commit that exists only here. HEAD when a remote-tracking branch contains it, else the nearest
/// merge-base of HEAD with them; `None` when HEAD shares no history with the remote. Without a
/// remote, HEAD (nothing is pushed; [`super::push`] checks again).
fn remote_base(repo: &Repo, head: Oid) -> Result<Option<Oid>> {
    let Some(remote) = repo.code_remote() else {
        return Ok(Some(head));
    };
    let tips = remote_tips(&repo.git, &remote)?;
    let descends = |a, b| repo.git.graph_descendant_of(a, b).unwrap_or(false);
    if tips.iter().any(|&t| t == head || descends(t, head)) {
        return Ok(Some(head));
    }
    Ok(tips
        .into_iter()
        .filter_map(|t| repo.git.merge_base(head, t).ok())
        .reduce(|best, mb| if descends(mb, best) { mb } else { best }))
}

/// The worktree's uncommitted changes (what `git status` lists, untracked files included, read
/// as [`status`] says), with credential files set aside by name and the total size of what would
/// be stored.
fn worktree_changes(repo: &Repo, workdir: &Path) -> Result<(Vec<Change>, Vec<Skipped>, u64)> {
    let (mut changes, mut skipped, mut bytes) = (Vec::new(), Vec::new(), 0u64);
    for path in status::changed_paths(&repo.git, workdir)? {
        if path.ends_with('/') || path.starts_with(".convosync/") {
            // A path ending in `/` is a nested repository or an unreadable directory.
            continue;
        }
        match std::fs::symlink_metadata(workdir.join(&path)) {
            Err(_) => changes.push((path, None)),
            Ok(m) if m.file_type().is_symlink() || m.is_file() => {
                if let Some(reason) = crate::secrets::file(&path, None) {
                    skipped.push(Skipped { path, reason });
                    continue;
                }
                bytes += m.len();
                changes.push((path, Some(m)));
            }
            // Sockets, fifos, devices: not content git can carry.
            Ok(_) => {}
        }
    }
    Ok((changes, skipped, bytes))
}

/// Files of the snapshot that must not travel (the worktree's skipped credential files, and those
/// that unpushed commits added) take the base's version, or none.
fn keep_base_for_secrets(
    repo: &Repo,
    index: &mut Index,
    base_tree: &Tree<'_>,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let draft = write_tree(repo, index)?;
    for d in diff(&repo.git, base_tree, &draft, false)?.deltas() {
        let Some(p) = d.new_file().path().and_then(Path::to_str) else {
            continue;
        };
        if !skipped.iter().any(|s| s.path == p) {
            if d.status() == Delta::Deleted || mode::is(d.new_file().mode(), Mode::Symlink) {
                continue;
            }
            let blob = repo.git.find_blob(d.new_file().id()).ok();
            let Some(reason) = crate::secrets::file(p, blob.as_ref().map(|b| b.content())) else {
                continue;
            };
            skipped.push(Skipped {
                path: p.to_string(),
                reason,
            });
        }
        match base_tree.get_path(Path::new(p)) {
            Ok(e) if e.kind() == Some(ObjectType::Blob) => index
                .add(&entry(p, e.id(), e.filemode() as u32, 0))
                .with_context(|| format!("could not put back the base's {p}"))?,
            _ => {
                let _ = index.remove_path(Path::new(p));
            }
        }
    }
    Ok(())
}

/// The tree of `index`, written to the object database.
fn write_tree<'r>(repo: &'r Repo, index: &mut Index) -> Result<Tree<'r>> {
    index
        .write_tree_to(&repo.git)
        .and_then(|id| repo.git.find_tree(id))
        .context("could not write the tree of the snapshot")
}

/// Snapshot this worktree's uncommitted changes (and unpushed commits' changes) onto
/// `refs/convosync/wip/<device>` (encrypted when this device has a key), unless it says nothing
/// the last snapshot did not.
///
/// The changed files are first only looked at (`lstat`), so a worktree over the size limit
/// (`convosync.wipLimit`) is refused
/// before anything is read or written to the object database. A credential file is left out by
/// name before it is read, or by content before it is stored.
pub fn snapshot(repo: &Repo, device: &str) -> Result<(Outcome, Vec<Skipped>)> {
    let limit = repo.settings.wip_limit;
    let workdir = repo
        .workdir()
        .context("bare repository: no worktree to snapshot")?
        .to_path_buf();
    let head = repo
        .git
        .head()
        .and_then(|h| h.peel_to_commit())
        .context("no commits yet: nothing to base a snapshot on")?;
    let (_, branch) = repo.head_info();
    let (changes, mut skipped, bytes) = worktree_changes(repo, &workdir)?;
    if bytes > limit {
        return Ok((Outcome::TooLarge(bytes), Vec::new()));
    }
    let mut index = match stage_changes(repo, &workdir, &head, changes, &mut skipped, bytes)? {
        Ok(index) => index,
        Err(bytes) => return Ok((Outcome::TooLarge(bytes), Vec::new())),
    };
    let base = remote_base(repo, head.id())?;
    let base_tree = match base {
        Some(b) => repo
            .git
            .find_commit(b)
            .and_then(|c| c.tree())
            .with_context(|| format!("could not read the tree of base commit {b}"))?,
        None => empty_tree(&repo.git)?,
    };
    // Unpushed commits' changes travel too: leave out their credential files, and the worktree's
    // skipped ones, by taking the base's version (or none).
    keep_base_for_secrets(repo, &mut index, &base_tree, &mut skipped)?;
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.dedup_by(|a, b| a.path == b.path);
    let tree = write_tree(repo, &mut index)?;
    let mut files: Vec<String> = diff(&repo.git, &base_tree, &tree, false)?
        .deltas()
        .filter_map(|d| Some(d.new_file().path().or(d.old_file().path())?.to_str()?.to_string()))
        .collect();
    files.sort();

    let refname = refs::wip(device);
    let previous = tip_of(&repo.git, &refname).ok().flatten();
    let last = previous
        .as_ref()
        .map(|p| sealed::read(repo, device, p, &mut Default::default()));
    if files.is_empty() && last.as_ref().map_or(0, |l| l.files.len()) == 0 {
        // Clean, and nothing (or an empty marker) was offered before: nothing to say again.
        return Ok((Outcome::Clean, skipped));
    }
    let key = crate::crypt::key();
    if let Some(last) = &last {
        if sealed::tree_id(repo, last).ok() == Some(tree.id())
            && last.base == base
            && last.whole == base.is_none()
            && (last.sealed == Sealed::Plain) == key.is_none()
        {
            return Ok((Outcome::Unchanged, skipped));
        }
    }
    let sig = crate::store::signature(&repo.git, crate::timefmt::now())?;
    // Encrypted when this device has a key: the committed tree then holds only sealed files.
    let (commit_tree, msg) = match key {
        Some(k) => match sealed::seal(repo, k, &base_tree, &tree, branch.as_deref(), &files, limit)? {
            Ok(t) => (
                repo.git
                    .find_tree(t)
                    .with_context(|| format!("could not read the sealed tree {t} for {refname}"))?,
                sealed::message(device, base, files.is_empty()),
            ),
            Err(bytes) => return Ok((Outcome::TooLarge(bytes), Vec::new())),
        },
        None => (tree.clone(), message(device, base, branch.as_deref(), &files)),
    };
    let parents = parents(repo, base, previous.as_ref(), key.is_some())?;
    let parents: Vec<&Commit<'_>> = parents.iter().collect();
    let id = repo
        .git
        .commit(None, &sig, &sig, &msg, &commit_tree, &parents)
        .with_context(|| format!("could not write a commit for {refname}"))?;
    if key.is_some() {
        sealed::remember(repo, id, tree.id());
    }
    let old = previous.as_ref().map(|c| c.id());
    match cas(&repo.git, &refname, old, id, "wip snapshot") {
        Ok(()) => {}
        Err(e) if is_race(&e) => bail!("another snapshot was written at the same time; try again"),
        Err(e) => return Err(e).with_context(|| format!("could not update {refname}")),
    }
    if files.is_empty() {
        // The worktree is clean again: the empty snapshot just written withdraws the last one,
        // so no other device is offered changes that were since committed or thrown away.
        return Ok((Outcome::Clean, skipped));
    }
    Ok((Outcome::Saved(files), skipped))
}

/// HEAD's tree with the worktree's `changes` applied, in an in-memory index: each file read,
/// checked for credentials by content (those go to `skipped`, not stored) and written as a blob.
/// `Err` with the new total when files grew past the size limit since they were looked at.
fn stage_changes(
    repo: &Repo,
    workdir: &Path,
    head: &Commit<'_>,
    mut changes: Vec<Change>,
    skipped: &mut Vec<Skipped>,
    mut bytes: u64,
) -> Result<Result<Index, u64>> {
    let mut index = Index::new()?;
    head.tree()
        .and_then(|t| index.read_tree(&t))
        .with_context(|| format!("could not read the tree of HEAD commit {}", head.id()))?;
    // Removals first, so a file that becomes a directory (or the reverse) never meets its old self.
    changes.sort_by_key(|(_, m)| m.is_some());
    for (path, m) in changes {
        let Some(m) = m else {
            index
                .remove_path(Path::new(&path))
                .with_context(|| format!("could not leave out {path}"))?;
            continue;
        };
        let (data, mode) =
            mode::read_file(&workdir.join(&path), &m).with_context(|| format!("could not read {path}"))?;
        if data.len() as u64 > m.len() {
            // Grew since we looked: count it again so the limit holds.
            bytes += data.len() as u64 - m.len();
            if bytes > repo.settings.wip_limit {
                return Ok(Err(bytes));
            }
        }
        if mode != Mode::Symlink {
            if let Some(reason) = crate::secrets::file(&path, Some(&data)) {
                // Not stored, and whatever HEAD had there stays as the base has it (see
                // [`keep_base_for_secrets`]).
                skipped.push(Skipped { path, reason });
                continue;
            }
        }
        let id = repo
            .git
            .blob(&data)
            .with_context(|| format!("could not store {path}"))?;
        index
            .add(&entry(&path, id, mode.raw(), data.len() as u32))
            .with_context(|| format!("could not add {path} ({id})"))?;
    }
    Ok(Ok(index))
}

/// The parents of a new snapshot commit: the previous snapshot only when pushing it publishes
/// nothing else (a snapshot made before there was a remote starts a new chain, and an encrypted
/// one never chains to a plain one, which would publish it), then the base when the remote has
/// it (never in a notes repository: the project's commits do not go there).
fn parents<'r>(
    repo: &'r Repo,
    base: Option<Oid>,
    previous: Option<&Commit<'r>>,
    encrypted: bool,
) -> Result<Vec<Commit<'r>>> {
    let remote = repo.remote_name();
    let base_commit = base
        .filter(|_| remote.is_some() && !repo.settings.notes_repo)
        .map(|b| {
            repo.git
                .find_commit(b)
                .with_context(|| format!("could not read base commit {b}"))
        })
        .transpose()?;
    let chained = previous.filter(|p| {
        (!encrypted || sealed::is_sealed(p))
            && remote
                .as_ref()
                .is_none_or(|r| matches!(unpublished(&repo.git, r, p.id()), Ok(None)))
    });
    Ok(chained.cloned().into_iter().chain(base_commit).collect())
}
