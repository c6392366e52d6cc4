//! Carrying uncommitted work to the next machine without touching branches.
//!
//! A snapshot of the worktree's uncommitted changes (tracked edits and deletions, untracked files
//! that are not ignored) is written as a commit on `refs/convosync/wip/<device>`: its tree is
//! HEAD's tree with the changes applied, built in memory, so the index and worktree are never
//! touched (like `git stash create`). Its message records the base commit and branch. Each new
//! snapshot replaces the last (the ref moves; history stays as the parent chain). Secret-looking
//! files and convosync's own files are never included. When the worktree is clean again, one
//! empty snapshot withdraws the last, so other devices are not offered work that was since
//! committed or thrown away.
//!
//! `apply` brings a snapshot into another worktree as a three-way merge from its base: files the
//! user has not touched take the snapshot's version, files both sides changed are merged, and any
//! conflict refuses the whole apply (unless forced) so local work is never overwritten silently.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

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
            // A ref name pushed by anyone: only a valid device id is ever shown or used.
            if !crate::device::is_valid(&device) {
                crate::untrusted::skipped(format_args!(
                    "skipped the snapshot ref {} (not a device name)",
                    crate::untrusted::quoted(name.as_bytes())
                ));
                continue;
            }
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

/// One side of a three-way merge: a file's content and git mode, or `None` when absent.
type Side = Option<(Vec<u8>, u32)>;

/// What is at a path in this worktree.
enum Here {
    File(Vec<u8>, u32),
    Absent,
    /// A directory (or something unreadable) where the snapshot has a file.
    InTheWay,
}

fn here(path: &Path) -> Here {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return Here::Absent;
    };
    if m.file_type().is_symlink() {
        return match std::fs::read_link(path) {
            Ok(t) => Here::File(t.as_os_str().as_bytes().to_vec(), FileMode::Link.into()),
            Err(_) => Here::InTheWay,
        };
    }
    if !m.is_file() {
        return Here::InTheWay;
    }
    let exec = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0;
    let mode = if exec {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    };
    match std::fs::read(path) {
        Ok(data) => Here::File(data, mode.into()),
        Err(_) => Here::InTheWay,
    }
}

/// What apply will do with one path.
#[derive(Debug)]
enum Action {
    Write(String, Vec<u8>, u32),
    Delete(String),
}

/// A path the snapshot and this worktree both changed, in ways that do not combine cleanly.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub path: String,
    pub reason: &'static str,
    /// Whether `--force` writes the file with conflict markers; otherwise the local version stays.
    pub markers: bool,
}

/// Result of an apply.
#[derive(Debug, Default)]
pub struct Applied {
    pub written: Vec<String>,
    pub deleted: Vec<String>,
    pub conflicts: Vec<Conflict>,
}

/// Why a path cannot be applied as it stands, or `Ok(None)` when it can. A snapshot is data
/// from a shared remote: a path that would leave the worktree or enter `.git` refuses the
/// whole apply, and nothing is ever written through a symlinked directory.
fn blocked(workdir: &Path, rel: &str, deleting: &[String]) -> Result<Option<&'static str>> {
    let path = Path::new(rel);
    let unsafe_path = path.components().any(|c| match c {
        Component::Normal(n) => n.eq_ignore_ascii_case(".git"),
        _ => true,
    });
    if unsafe_path || rel.is_empty() {
        bail!("not applied: the snapshot holds an unsafe path {rel:?}");
    }
    let mut prefix = PathBuf::new();
    let parents: Vec<_> = path.components().collect();
    for c in &parents[..parents.len() - 1] {
        prefix.push(c);
        match std::fs::symlink_metadata(workdir.join(&prefix)) {
            Err(_) => break,
            Ok(m) if m.file_type().is_symlink() => return Ok(Some("a symlink is in the way here")),
            Ok(m) if m.is_dir() => {}
            Ok(_) if deleting.iter().any(|d| Path::new(d) == prefix) => break,
            Ok(_) => return Ok(Some("a file is in the way here")),
        }
    }
    Ok(None)
}

/// Whether every file under `dir` is about to be deleted, so the directory goes with them.
fn emptied_by(dir: &Path, workdir: &Path, deleting: &[String]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => emptied_by(&p, workdir, deleting),
            Ok(_) => p
                .strip_prefix(workdir)
                .is_ok_and(|rel| deleting.iter().any(|d| Path::new(d) == rel)),
            Err(_) => false,
        }
    })
}

/// The outcome of merging one path.
enum Merged {
    /// The result: content and mode, or deleted.
    Clean(Side),
    /// A conflict, with the content holding conflict markers when markers can stand for it.
    Conflict(&'static str, Side),
}

/// Merge one path three ways.
fn merge3(rel: &str, device: &str, base: &Side, ours: &Side, theirs: &Side) -> Result<Merged> {
    let (Some((o, om)), Some((t, tm))) = (ours, theirs) else {
        let reason = if ours.is_some() {
            "deleted in the snapshot, changed here"
        } else {
            "changed in the snapshot, deleted here"
        };
        return Ok(Merged::Conflict(reason, None));
    };
    let (b, bm) = match base {
        Some((b, m)) => (b.as_slice(), Some(*m)),
        None => (&[][..], None),
    };
    let mode = if om == tm || Some(*om) != bm {
        // Same on both sides, or only this side changed it.
        if om != tm && Some(*tm) != bm {
            return Ok(Merged::Conflict(
                "its mode or type changed differently on each side",
                None,
            ));
        }
        *om
    } else {
        *tm
    };
    let link = u32::from(FileMode::Link);
    if o == t {
        return Ok(Merged::Clean(Some((o.clone(), mode))));
    }
    if base.is_some() && o.as_slice() == b {
        return Ok(Merged::Clean(Some((t.clone(), mode))));
    }
    if base.is_some() && t.as_slice() == b {
        return Ok(Merged::Clean(Some((o.clone(), mode))));
    }
    if *om == link || *tm == link || bm == Some(link) {
        return Ok(Merged::Conflict("a symlink changed on both sides", None));
    }
    if is_binary(b) || is_binary(o) || is_binary(t) {
        return Ok(Merged::Conflict("a binary file changed on both sides", None));
    }
    let mut bi = git2::MergeFileInput::new();
    bi.content(b);
    let mut oi = git2::MergeFileInput::new();
    oi.content(o).path(rel);
    let mut ti = git2::MergeFileInput::new();
    ti.content(t).path(rel);
    let mut mopts = git2::MergeFileOptions::new();
    mopts.our_label("local").their_label(device);
    let merged = git2::merge_file(&bi, &oi, &ti, Some(&mut mopts))?;
    let content = merged.content().to_vec();
    if merged.is_automergeable() {
        Ok(Merged::Clean(Some((content, mode))))
    } else if base.is_none() {
        Ok(Merged::Conflict(
            "added on both sides with different content",
            Some((content, mode)),
        ))
    } else {
        Ok(Merged::Conflict(
            "both sides changed the same lines",
            Some((content, mode)),
        ))
    }
}

/// Apply `device`'s snapshot onto this worktree (see the module doc). Every path is planned
/// before anything is written, so a refused apply writes nothing.
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
    let base = base_commit(repo, &snap)?;
    let theirs = repo.git.find_commit(snap.commit)?;
    let mut dopts = DiffOptions::new();
    dopts.include_typechange(true);
    let diff = repo
        .git
        .diff_tree_to_tree(Some(&base.tree()?), Some(&theirs.tree()?), Some(&mut dopts))?;
    let blob = |id: Oid| repo.git.find_blob(id).map(|b| b.content().to_vec());
    // Three sides of every changed path, in the diff's (path) order.
    let mut sides = Vec::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or(d.old_file().path()) else {
            continue;
        };
        let rel = path
            .to_str()
            .context("the snapshot holds a path that is not UTF-8")?
            .to_string();
        let base_side = match d.status() {
            Delta::Added => None,
            _ => Some((blob(d.old_file().id())?, u32::from(d.old_file().mode()))),
        };
        let their_side = match d.status() {
            Delta::Deleted => None,
            _ => Some((blob(d.new_file().id())?, u32::from(d.new_file().mode()))),
        };
        sides.push((rel, base_side, their_side));
    }
    // Paths the snapshot deletes and this worktree still has as the base had them.
    let deleting: Vec<String> = sides
        .iter()
        .filter(|(rel, b, t)| {
            t.is_none() && matches!(here(&workdir.join(rel)), Here::File(d, m) if b.as_ref().is_some_and(|(bd, bm)| *bd == d && *bm == m))
        })
        .map(|(rel, _, _)| rel.clone())
        .collect();
    let mut actions = Vec::new();
    let mut result = Applied::default();
    let mut conflict = |path: &str, reason, markers| {
        result.conflicts.push(Conflict {
            path: path.to_string(),
            reason,
            markers,
        })
    };
    for (rel, base_side, their_side) in &sides {
        let full = workdir.join(rel);
        if let Some(reason) = blocked(&workdir, rel, &deleting)? {
            conflict(rel, reason, false);
            continue;
        }
        let ours = match here(&full) {
            Here::File(d, m) => Some((d, m)),
            Here::Absent => None,
            Here::InTheWay if their_side.is_none() => continue,
            Here::InTheWay if full.is_dir() && emptied_by(&full, &workdir, &deleting) => None,
            Here::InTheWay => {
                conflict(rel, "a directory is in the way here", false);
                continue;
            }
        };
        if ours == *their_side {
            continue;
        }
        if ours == *base_side {
            actions.push(match their_side {
                Some((data, mode)) => Action::Write(rel.clone(), data.clone(), *mode),
                None => Action::Delete(rel.clone()),
            });
            continue;
        }
        match merge3(rel, device, base_side, &ours, their_side)? {
            Merged::Clean(Some((data, mode))) => actions.push(Action::Write(rel.clone(), data, mode)),
            Merged::Clean(None) => actions.push(Action::Delete(rel.clone())),
            Merged::Conflict(reason, Some((data, mode))) => {
                conflict(rel, reason, true);
                actions.push(Action::Write(rel.clone(), data, mode));
            }
            Merged::Conflict(reason, None) => conflict(rel, reason, false),
        }
    }
    if !result.conflicts.is_empty() && !force {
        let list: Vec<String> = result
            .conflicts
            .iter()
            .map(|c| format!("{} ({})", c.path, c.reason))
            .collect();
        bail!(
            "not applied: these files changed here and in {device}'s snapshot and do not combine cleanly:\n  {}\n(commit or stash your changes first, or use --force to write conflict markers and keep the local version of the rest)",
            list.join("\n  ")
        );
    }
    // Deletions first: a directory the snapshot turns into a file must be gone before the file.
    actions.sort_by_key(|a| matches!(a, Action::Write(..)));
    for a in actions {
        match a {
            Action::Write(rel, data, mode) => {
                write_file(&workdir.join(&rel), &data, mode)?;
                result.written.push(rel);
            }
            Action::Delete(rel) => {
                let full = workdir.join(&rel);
                std::fs::remove_file(&full).with_context(|| format!("could not delete {rel}"))?;
                remove_empty_parents(&full, &workdir);
                result.deleted.push(rel);
            }
        }
    }
    Ok(result)
}

/// After a deletion, remove the directories it left empty, as `git checkout` does.
fn remove_empty_parents(path: &Path, workdir: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == workdir || !d.starts_with(workdir) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn is_binary(b: &[u8]) -> bool {
    b.iter().take(8000).any(|&c| c == 0)
}

/// Write a file or symlink with the given git mode. An existing file keeps its permission bits
/// apart from the executable ones, which follow the mode, as git does on checkout.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let existing = std::fs::symlink_metadata(path).ok();
    if existing.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path).with_context(|| format!("could not replace {}", path.display()))?;
    }
    if mode == u32::from(FileMode::Link) {
        let _ = std::fs::remove_file(path);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(data), path)
            .with_context(|| format!("could not create symlink {}", path.display()))?;
        return Ok(());
    }
    let rw = existing
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o666)
        .unwrap_or(0o644);
    let perm = if mode == u32::from(FileMode::BlobExecutable) {
        rw | (rw & 0o444) >> 2
    } else {
        rw
    };
    crate::fsutil::atomic_write(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
        .with_context(|| format!("could not set the mode of {}", path.display()))?;
    Ok(())
}

/// The snapshot's base commit, which must be here: the snapshot is a set of changes to it.
fn base_commit<'r>(repo: &'r Repo, snap: &Snapshot) -> Result<Commit<'r>> {
    let base_id = snap
        .base
        .context("the snapshot does not record its base commit")?;
    repo.git.find_commit(base_id).map_err(|_| {
        anyhow::anyhow!(
            "the snapshot's base commit {} is not in this clone: fetch or pull {} first",
            &base_id.to_string()[..7],
            snap.branch.as_deref().unwrap_or("the branch it was on")
        )
    })
}

/// The snapshot's files against its base, each with `A`, `M` or `D`, for `wip show`. Without
/// the base here, the recorded file list with `?`.
pub fn changes(repo: &Repo, snap: &Snapshot) -> Result<Vec<(char, String)>> {
    let Ok(base) = base_commit(repo, snap) else {
        return Ok(snap.files.iter().map(|f| ('?', f.clone())).collect());
    };
    let theirs = repo.git.find_commit(snap.commit)?;
    let mut dopts = DiffOptions::new();
    dopts.include_typechange(true);
    let diff = repo
        .git
        .diff_tree_to_tree(Some(&base.tree()?), Some(&theirs.tree()?), Some(&mut dopts))?;
    Ok(diff
        .deltas()
        .filter_map(|d| {
            let path = d.new_file().path().or(d.old_file().path())?;
            let kind = match d.status() {
                Delta::Added => 'A',
                Delta::Deleted => 'D',
                _ => 'M',
            };
            Some((kind, path.to_string_lossy().into_owned()))
        })
        .collect())
}

/// The snapshot as a patch against its base, for `wip diff`.
pub fn patch(repo: &Repo, snap: &Snapshot) -> Result<String> {
    let theirs = repo.git.find_commit(snap.commit)?;
    let base = base_commit(repo, snap)?;
    let diff = repo
        .git
        .diff_tree_to_tree(Some(&base.tree()?), Some(&theirs.tree()?), None)?;
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
