//! Carrying uncommitted work to the next machine without touching branches.
//!
//! A snapshot of the worktree's uncommitted changes (tracked edits and deletions, untracked files
//! that are not ignored) is written as a commit on `refs/convosync/wip/<device>`: its tree is
//! HEAD's tree with the changes applied, built in memory, so the index and worktree are never
//! touched (like `git stash create`). Its message records the base commit and branch. Each new
//! snapshot replaces the last (the ref moves; history stays as the parent chain). Secret-looking
//! files and convosync's own files are never included.
//!
//! `apply` brings a snapshot into another worktree as a three-way merge from its base: files the
//! user has not touched take the snapshot's version, files both sides changed are merged, and any
//! conflict refuses the whole apply (unless forced) so local work is never overwritten silently.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use git2::{Commit, Delta, DiffOptions, FileMode, Index, IndexEntry, IndexTime, Oid, Status, StatusOptions};

use crate::git::Deadline;
use crate::repo::Repo;
use crate::store::{cas, is_race, tip_of};

pub const WIP_PREFIX: &str = "refs/convosync/wip/";

pub fn wip_ref(device: &str) -> String {
    format!("{WIP_PREFIX}{device}")
}

fn tracking_prefix(remote: &str) -> String {
    format!("refs/convosync/remote/{remote}/wip/")
}

/// A snapshot commit, read back.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub device: String,
    pub commit: Oid,
    pub base: Option<Oid>,
    pub branch: Option<String>,
    pub files: Vec<String>,
    pub time: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug)]
pub enum Outcome {
    Saved {
        files: Vec<String>,
        skipped: Vec<String>,
    },
    /// Nothing uncommitted (an empty snapshot now tells other devices there is nothing to take).
    Clean,
    /// Unchanged since the last snapshot.
    Unchanged,
    TooLarge {
        bytes: u64,
        limit: u64,
    },
}

/// Whether a path must never leave this machine in a snapshot.
fn excluded(path: &str, full: &Path) -> bool {
    path.starts_with(".convosync/") || crate::redact::is_secret_file(full)
}

fn entry(path: &str, id: Oid, mode: u32, size: u32) -> IndexEntry {
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

/// One changed path of the worktree, as found by the status walk.
enum Change {
    /// Deleted from the worktree.
    Gone(String),
    /// A regular file or symlink to store; `size` is what it adds to the snapshot.
    Put {
        path: String,
        full: PathBuf,
        link: bool,
        exec: bool,
        size: u64,
    },
}

/// Snapshot this worktree's uncommitted changes onto `refs/convosync/wip/<device>`.
///
/// The changed files are first only looked at (`lstat`), so a worktree over `limit` is refused
/// before anything is read or written to the object database.
pub fn snapshot(repo: &Repo, device: &str, limit: u64) -> Result<Outcome> {
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
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .renames_head_to_index(false);
    let statuses = repo
        .git
        .statuses(Some(&mut opts))
        .context("could not read the worktree status")?;
    let (mut changes, mut skipped, mut bytes) = (Vec::new(), Vec::new(), 0u64);
    for e in statuses.iter() {
        let Ok(path) = e.path() else { continue };
        let s = e.status();
        if s.is_empty() || s.contains(Status::IGNORED) || path.ends_with('/') {
            // A path ending in `/` is a nested repository or an unreadable directory.
            continue;
        }
        let full = workdir.join(path);
        if excluded(path, &full) {
            if !path.starts_with(".convosync/") {
                skipped.push(path.to_string());
            }
            continue;
        }
        match std::fs::symlink_metadata(&full) {
            Err(_) => changes.push(Change::Gone(path.to_string())),
            Ok(m) if m.file_type().is_symlink() || m.is_file() => {
                let exec = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0;
                bytes += m.len();
                changes.push(Change::Put {
                    path: path.to_string(),
                    full,
                    link: m.file_type().is_symlink(),
                    exec,
                    size: m.len(),
                });
            }
            // Sockets, fifos, devices: not content git can carry.
            Ok(_) => {}
        }
    }
    if bytes > limit {
        return Ok(Outcome::TooLarge { bytes, limit });
    }
    let mut index = Index::new()?;
    index.read_tree(&head.tree()?)?;
    // Removals first, so a file that becomes a directory (or the reverse) never meets its old self.
    let mut files = Vec::with_capacity(changes.len());
    for c in &changes {
        if let Change::Gone(path) = c {
            index.remove_path(Path::new(path))?;
            files.push(path.clone());
        }
    }
    for c in &changes {
        let Change::Put {
            path,
            full,
            link,
            exec,
            size,
        } = c
        else {
            continue;
        };
        let (data, mode) = if *link {
            let target =
                std::fs::read_link(full).with_context(|| format!("could not read the link {path}"))?;
            (target.as_os_str().as_bytes().to_vec(), FileMode::Link)
        } else {
            let data = std::fs::read(full).with_context(|| format!("could not read {path}"))?;
            (
                data,
                if *exec {
                    FileMode::BlobExecutable
                } else {
                    FileMode::Blob
                },
            )
        };
        if data.len() as u64 > *size {
            // Grew since we looked: count it again so the limit holds.
            bytes += data.len() as u64 - size;
            if bytes > limit {
                return Ok(Outcome::TooLarge { bytes, limit });
            }
        }
        let id = repo.git.blob(&data)?;
        index.add(&entry(path, id, u32::from(mode), data.len() as u32))?;
        files.push(path.clone());
    }
    files.sort();
    let refname = wip_ref(device);
    let previous = tip_of(&repo.git, &refname).ok().flatten();
    let previous_files = previous.as_ref().map(|p| read(device, p).files.len());
    if files.is_empty() && previous_files.unwrap_or(0) == 0 {
        // Clean, and nothing (or an empty marker) was offered before: nothing to say again.
        return Ok(Outcome::Clean);
    }
    let tree_id = index.write_tree_to(&repo.git)?;
    if let Some(p) = &previous {
        if p.tree_id() == tree_id && read(device, p).base == Some(head.id()) {
            return Ok(Outcome::Unchanged);
        }
    }
    let tree = repo.git.find_tree(tree_id)?;
    let sig = crate::store::signature(&repo.git, crate::timefmt::now())?;
    let msg = message(device, head.id(), branch.as_deref(), &files);
    let parents: Vec<&Commit<'_>> = previous.iter().collect();
    let id = repo.git.commit(None, &sig, &sig, &msg, &tree, &parents)?;
    match cas(
        &repo.git,
        &refname,
        previous.as_ref().map(|c| c.id()),
        id,
        "wip snapshot",
    ) {
        Ok(()) => {}
        Err(e) if is_race(&e) => bail!("another snapshot was written at the same time; try again"),
        Err(e) => return Err(e).context("could not update the wip ref"),
    }
    if files.is_empty() {
        // The worktree is clean again: the empty snapshot just written withdraws the last one,
        // so no other device is offered changes that were since committed or thrown away.
        return Ok(Outcome::Clean);
    }
    Ok(Outcome::Saved { files, skipped })
}

/// The snapshot commit's message: a subject for `git log`, then trailers that [`read`] parses.
fn message(device: &str, base: Oid, branch: Option<&str>, files: &[String]) -> String {
    let mut msg = format!(
        "wip from {device} on {} ({} file{})\n\nConvosync-Device: {device}\nConvosync-Base: {base}\nConvosync-Branch: {}\nConvosync-Files: {}\n",
        branch.unwrap_or("detached HEAD"),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
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

fn read(device: &str, c: &Commit<'_>) -> Snapshot {
    let msg = c.message().unwrap_or_default();
    Snapshot {
        device: device.to_string(),
        commit: c.id(),
        base: trailer(msg, "Convosync-Base")
            .next()
            .and_then(|s| Oid::from_str(s).ok()),
        branch: trailer(msg, "Convosync-Branch")
            .next()
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        files: trailer(msg, "Convosync-File").map(str::to_string).collect(),
        time: chrono::DateTime::from_timestamp(c.time().seconds(), 0).unwrap_or_default(),
    }
}

/// Every device's newest snapshot: remote-tracking copies, and local ones not fetched from there.
pub fn list(repo: &Repo) -> Result<Vec<Snapshot>> {
    let mut out: Vec<Snapshot> = Vec::new();
    let mut prefixes = vec![WIP_PREFIX.to_string()];
    if let Some(r) = repo.remote_name() {
        prefixes.insert(0, tracking_prefix(&r));
    }
    for prefix in prefixes {
        for r in repo.git.references_glob(&format!("{prefix}*"))?.flatten() {
            let Ok(name) = r.name() else { continue };
            let device = name.trim_start_matches(&prefix).to_string();
            let Ok(c) = r.peel_to_commit() else { continue };
            let snap = read(&device, &c);
            match out.iter_mut().find(|s| s.device == device) {
                Some(existing) if existing.time < snap.time => *existing = snap,
                Some(_) => {}
                None => out.push(snap),
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.time));
    Ok(out)
}

/// Lines for the session-start context about other devices' uncommitted work.
pub fn others_summary(repo: &Repo, me: &str) -> Vec<String> {
    list(repo)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.device != me && !s.files.is_empty())
        .map(|s| {
            format!(
                "{} left uncommitted changes in {} file{} on {} (base {}): run /convosync:wip apply {} to bring them here",
                s.device,
                s.files.len(),
                if s.files.len() == 1 { "" } else { "s" },
                s.branch.as_deref().unwrap_or("a detached HEAD"),
                s.base.map(|b| b.to_string()[..7].to_string()).unwrap_or_else(|| "?".into()),
                s.device
            )
        })
        .collect()
}

/// The refspec that fetches every device's wip ref into remote-tracking refs.
pub fn fetch_refspec(remote: &str) -> String {
    format!("+{WIP_PREFIX}*:{}*", tracking_prefix(remote))
}

/// Fetch every device's wip ref.
pub fn fetch(repo: &Repo, remote: &str, deadline: Deadline) -> Result<bool> {
    let out = crate::git::fetch(repo.git.path(), remote, &[&fetch_refspec(remote)], deadline)?;
    Ok(out.success())
}

/// Push this device's wip ref (each device owns its own, so a forced update is safe).
pub fn push(repo: &Repo, remote: &str, device: &str, deadline: Deadline) -> Result<bool> {
    let refname = wip_ref(device);
    if tip_of(&repo.git, &refname)?.is_none() {
        return Ok(true);
    }
    let spec = format!("+{refname}:{refname}");
    let out = crate::git::run(
        repo.git.path(),
        ["push", "--porcelain", "--no-verify", "--quiet", remote, &spec],
        deadline,
    )?;
    Ok(out.success())
}

/// A file as it is in the worktree: content and mode, or absent.
fn worktree_file(path: &Path) -> Option<(Vec<u8>, u32)> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if m.file_type().is_symlink() {
        let t = std::fs::read_link(path).ok()?;
        return Some((
            t.to_string_lossy().into_owned().into_bytes(),
            FileMode::Link.into(),
        ));
    }
    let exec = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0;
    let mode = if exec {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    };
    Some((std::fs::read(path).ok()?, mode.into()))
}

/// What apply will do with one path.
#[derive(Debug)]
enum Action {
    Write(PathBuf, Vec<u8>, u32),
    Delete(PathBuf),
}

/// Result of an apply.
#[derive(Debug, Default)]
pub struct Applied {
    pub written: Vec<String>,
    pub deleted: Vec<String>,
    pub conflicts: Vec<String>,
}

/// Apply `device`'s snapshot onto this worktree (see the module doc).
pub fn apply(repo: &Repo, device: &str, force: bool) -> Result<Applied> {
    let workdir = repo
        .workdir()
        .context("bare repository: no worktree to apply to")?
        .to_path_buf();
    let snap = list(repo)?
        .into_iter()
        .find(|s| s.device == device)
        .with_context(|| format!("no snapshot from {device} (see `convosync wip list`)"))?;
    if snap.files.is_empty() {
        bail!("{device} has no uncommitted changes in its latest snapshot");
    }
    let base_id = snap
        .base
        .context("the snapshot does not record its base commit")?;
    let base = repo.git.find_commit(base_id).map_err(|_| {
        anyhow::anyhow!(
            "the snapshot's base commit {} is not in this checkout: fetch or pull {} first",
            &base_id.to_string()[..7],
            snap.branch.as_deref().unwrap_or("its branch")
        )
    })?;
    let theirs = repo.git.find_commit(snap.commit)?;
    let mut dopts = DiffOptions::new();
    dopts.include_typechange(true);
    let diff = repo
        .git
        .diff_tree_to_tree(Some(&base.tree()?), Some(&theirs.tree()?), Some(&mut dopts))?;
    let mut actions = Vec::new();
    let mut result = Applied::default();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or(d.old_file().path()).map(Path::to_path_buf) else {
            continue;
        };
        let rel = path.to_string_lossy().into_owned();
        let full = workdir.join(&path);
        let blob = |id: Oid| repo.git.find_blob(id).map(|b| b.content().to_vec());
        let base_side = if d.status() == Delta::Added {
            None
        } else {
            Some((blob(d.old_file().id())?, u32::from(d.old_file().mode())))
        };
        let their_side = if d.status() == Delta::Deleted {
            None
        } else {
            Some((blob(d.new_file().id())?, u32::from(d.new_file().mode())))
        };
        let ours = worktree_file(&full);
        let same = |a: &Option<(Vec<u8>, u32)>, b: &Option<(Vec<u8>, u32)>| {
            a.as_ref().map(|x| &x.0) == b.as_ref().map(|x| &x.0)
        };
        if same(&ours, &their_side) {
            continue;
        }
        if same(&ours, &base_side) {
            actions.push(match their_side {
                Some((data, mode)) => Action::Write(full, data, mode),
                None => Action::Delete(full),
            });
            continue;
        }
        match (&base_side, &ours, &their_side) {
            (Some((b, _)), Some((o, _)), Some((t, mode)))
                if !is_binary(b) && !is_binary(o) && !is_binary(t) =>
            {
                let mut bi = git2::MergeFileInput::new();
                bi.content(b);
                let mut oi = git2::MergeFileInput::new();
                oi.content(o).path(rel.as_str());
                let mut ti = git2::MergeFileInput::new();
                ti.content(t).path(rel.as_str());
                let mut mopts = git2::MergeFileOptions::new();
                mopts.our_label("local").their_label(device);
                let merged = git2::merge_file(&bi, &oi, &ti, Some(&mut mopts))?;
                if !merged.is_automergeable() {
                    result.conflicts.push(rel.clone());
                }
                actions.push(Action::Write(full, merged.content().to_vec(), *mode));
            }
            _ => {
                // Both sides changed it and it cannot be merged line by line (binary, or deleted
                // on one side): never pick one silently.
                result.conflicts.push(rel.clone());
            }
        }
    }
    if !result.conflicts.is_empty() && !force {
        bail!(
            "not applied: these files changed here and in {device}'s snapshot and do not merge cleanly:\n  {}\n(commit or stash your changes first, or use --force to write conflict markers)",
            result.conflicts.join("\n  ")
        );
    }
    for a in actions {
        match a {
            Action::Write(path, data, mode) => {
                write_file(&path, &data, mode)?;
                result
                    .written
                    .push(path.strip_prefix(&workdir).unwrap_or(&path).display().to_string());
            }
            Action::Delete(path) => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("could not delete {}", path.display()))?;
                result
                    .deleted
                    .push(path.strip_prefix(&workdir).unwrap_or(&path).display().to_string());
            }
        }
    }
    Ok(result)
}

fn is_binary(b: &[u8]) -> bool {
    b.iter().take(8000).any(|&c| c == 0)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if mode == u32::from(FileMode::Link) {
        let _ = std::fs::remove_file(path);
        let target = String::from_utf8_lossy(data).into_owned();
        std::os::unix::fs::symlink(target, path)
            .with_context(|| format!("could not create symlink {}", path.display()))?;
        return Ok(());
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path)?;
    }
    crate::fsutil::atomic_write(path, data)?;
    let perm = if mode == u32::from(FileMode::BlobExecutable) {
        0o755
    } else {
        0o644
    };
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(perm))?;
    Ok(())
}

/// The snapshot as a patch against its base, for `wip diff`.
pub fn patch(repo: &Repo, snap: &Snapshot) -> Result<String> {
    let theirs = repo.git.find_commit(snap.commit)?;
    let base_tree = snap
        .base
        .and_then(|b| repo.git.find_commit(b).ok())
        .map(|c| c.tree())
        .transpose()?;
    let diff = repo
        .git
        .diff_tree_to_tree(base_tree.as_ref(), Some(&theirs.tree()?), None)?;
    let mut out = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        let prefix = match line.origin() {
            '+' | '-' | ' ' => line.origin().to_string(),
            _ => String::new(),
        };
        out.push_str(&prefix);
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    Ok(out)
}
