//! Planning an apply: what applying a snapshot would write, delete, merge or refuse, worked out
//! from the snapshot, its base and the worktree before anything is written.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::{Delta, Oid};

use super::check;
use super::checked::snapshot_diff;
use super::commit::Snapshot;
use super::merge::{merge3, Merged, Side};
use super::mode::{self, Mode};
use super::publish::list;
use super::sealed;
use crate::repo::Repo;

/// What is at a path in this worktree.
enum Here {
    File(Vec<u8>, Mode),
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
            Ok(t) => Here::File(t.as_os_str().as_bytes().to_vec(), Mode::Symlink),
            Err(_) => Here::InTheWay,
        };
    }
    if !m.is_file() {
        return Here::InTheWay;
    }
    match std::fs::read(path) {
        Ok(data) => Here::File(data, Mode::of_file(&m)),
        Err(_) => Here::InTheWay,
    }
}

/// What apply will do with one path.
#[derive(Debug, PartialEq)]
pub(super) enum Action {
    Write { path: String, data: Vec<u8>, mode: Mode },
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

/// Whether `rel`, a path from a snapshot, would leave the worktree or enter `.git` (a snapshot is
/// data from a shared remote: such a path refuses the whole apply).
fn unsafe_path(rel: &str) -> bool {
    rel.is_empty()
        || Path::new(rel).components().any(|c| match c {
            Component::Normal(n) => check::bad_name(n.as_bytes()).is_some(),
            _ => true,
        })
}

/// Why the path `rel` cannot be applied as it stands, or `None` when it can: nothing is ever
/// written through a symlinked directory, or where a file stands for a directory (unless the
/// apply deletes it).
fn blocked(workdir: &Path, rel: &str, deleting: &[String]) -> Option<&'static str> {
    let mut prefix = PathBuf::new();
    let parents: Vec<_> = Path::new(rel).components().collect();
    let (_, dirs) = parents.split_last()?;
    for c in dirs {
        prefix.push(c);
        match std::fs::symlink_metadata(workdir.join(&prefix)) {
            Err(_) => break,
            Ok(m) if m.file_type().is_symlink() => return Some("a symlink is in the way here"),
            Ok(m) if m.is_dir() => {}
            Ok(_) if deleting.iter().any(|d| Path::new(d) == prefix) => break,
            Ok(_) => return Some("a file is in the way here"),
        }
    }
    None
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

/// Options of [`apply`](super::apply()).
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyOptions {
    /// Write conflict markers instead of refusing.
    pub force: bool,
    /// Also apply files that steer tools ([`check::steering`]).
    pub allow_steering: bool,
}

/// What applying a snapshot would do, worked out by [`plan`] before anything is written and
/// carried out by [`execute`](super::apply::execute).
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) workdir: PathBuf,
    pub(super) device: String,
    /// Files to write (the snapshot's version, a clean merge, or one with conflict markers) and
    /// files to delete, in path order.
    pub(super) actions: Vec<Action>,
    /// Paths that do not combine cleanly or cannot be applied here. Those with `markers` are
    /// also in `actions`; the others keep the local version.
    pub(super) conflicts: Vec<Conflict>,
    /// Why the whole apply is refused, the first reason first; empty when it can go ahead.
    pub(super) refused: Vec<Refusal>,
}

/// A reason to refuse a whole apply.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// Paths that steer tools, each with why, without `allow_steering`.
    Steering(Vec<String>),
    /// A path that would leave the worktree or enter `.git`.
    UnsafePath(String),
    /// A path written or deleted below a symlink the same apply writes.
    BelowSymlink { path: String, link: String },
    /// The plan's conflicts, without `force`.
    Conflicts,
}

/// One path the snapshot changes: its base's side and the snapshot's.
struct Sides {
    rel: String,
    base: Side,
    theirs: Side,
}

/// Plan the apply of `device`'s snapshot onto this worktree from the snapshot, its base and the
/// worktree as they are: files the user has not touched take the snapshot's version, files both
/// sides changed are merged, and every reason to refuse is listed. Nothing is written to the
/// worktree, the index or any ref (reading an encrypted snapshot may leave its decrypted tree in
/// the object database, unreferenced, as [`sealed::tree_id`] says).
pub(super) fn plan(repo: &Repo, device: &str, opts: ApplyOptions) -> Result<Plan> {
    let workdir = repo
        .workdir()
        .context("bare repository: no worktree to apply to")?
        .to_path_buf();
    let snap = applicable(repo, device)?;
    let (sides, submodules) = changed_sides(repo, &snap)?;
    let mut plan = Plan {
        workdir,
        device: device.to_string(),
        actions: Vec::new(),
        conflicts: Vec::new(),
        refused: Vec::new(),
    };
    let steering = steering_paths(&sides);
    if !steering.is_empty() && !opts.allow_steering {
        plan.refused.push(Refusal::Steering(steering));
    }
    for rel in &submodules {
        plan.conflict(rel, "a submodule commit changed; not applied", false);
    }
    let deleting = deleting(&plan.workdir, &sides);
    for s in &sides {
        plan.path(s, &deleting)?;
    }
    if let Some(r) = below_symlink(&plan.actions) {
        plan.refused.push(r);
    }
    if !plan.conflicts.is_empty() && !opts.force {
        plan.refused.push(Refusal::Conflicts);
    }
    Ok(plan)
}

/// `device`'s snapshot, when it can be applied: readable here and not empty.
fn applicable(repo: &Repo, device: &str) -> Result<Snapshot> {
    let snap = list(repo)?
        .0
        .into_iter()
        .find(|s| s.device == device)
        .with_context(|| format!("no snapshot from {device} (see `convosync wip list`)"))?;
    if let Some(reason) = sealed::locked_reason(&snap) {
        bail!("{reason}");
    }
    if snap.files.is_empty() {
        bail!("{device} has no uncommitted changes in its latest snapshot");
    }
    Ok(snap)
}

/// The base's and the snapshot's side of every path the snapshot changes, in the diff's (path)
/// order, and apart from them the paths where a submodule commit changed.
fn changed_sides(repo: &Repo, snap: &Snapshot) -> Result<(Vec<Sides>, Vec<String>)> {
    let diff = snapshot_diff(repo, snap)?;
    let blob = |id: Oid| {
        crate::untrusted::blob(&repo.git, id, crate::untrusted::Object::WipFile)
            .map(|b| b.content().to_vec())
            .map_err(|e| anyhow!("could not read blob {id} of {}'s snapshot: {e}", snap.device))
    };
    let mut sides = Vec::new();
    let mut submodules = Vec::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or(d.old_file().path()) else {
            continue;
        };
        let rel = path
            .to_str()
            .context("the snapshot holds a path that is not UTF-8")?
            .to_string();
        if mode::is(d.old_file().mode(), Mode::Submodule) || mode::is(d.new_file().mode(), Mode::Submodule) {
            submodules.push(rel);
            continue;
        }
        let base = match d.status() {
            Delta::Added => None,
            _ => Some((blob(d.old_file().id())?, Mode::of(d.old_file().mode())?)),
        };
        let theirs = match d.status() {
            Delta::Deleted => None,
            _ => Some((blob(d.new_file().id())?, Mode::of(d.new_file().mode())?)),
        };
        sides.push(Sides { rel, base, theirs });
    }
    Ok((sides, submodules))
}

/// The paths among `sides` that steer tools, each with why.
fn steering_paths(sides: &[Sides]) -> Vec<String> {
    sides
        .iter()
        .filter_map(|s| {
            let target = s
                .theirs
                .as_ref()
                .filter(|(_, m)| *m == Mode::Symlink)
                .map(|(d, _)| d.as_slice());
            check::steering(&s.rel, target).map(|why| format!("{} ({why})", s.rel))
        })
        .collect()
}

/// Paths the snapshot deletes and this worktree still has as the base had them.
fn deleting(workdir: &Path, sides: &[Sides]) -> Vec<String> {
    sides
        .iter()
        .filter(|s| {
            s.theirs.is_none() && matches!(here(&workdir.join(&s.rel)), Here::File(d, m) if s.base.as_ref().is_some_and(|(bd, bm)| *bd == d && *bm == m))
        })
        .map(|s| s.rel.clone())
        .collect()
}

/// A symlink the plan writes is in the way of every path below it, as a case-insensitive
/// filesystem sees names: the first path of `actions` below one refuses the snapshot rather than
/// be written through it.
fn below_symlink(actions: &[Action]) -> Option<Refusal> {
    let links: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Write {
                path: rel,
                mode: Mode::Symlink,
                ..
            } => Some(check::fold_path(rel)),
            _ => None,
        })
        .collect();
    actions.iter().find_map(|a| {
        let (Action::Write { path: rel, .. } | Action::Delete(rel)) = a;
        let folded = check::fold_path(rel);
        links
            .iter()
            .find(|l| folded.starts_with(&format!("{l}/")))
            .map(|l| Refusal::BelowSymlink {
                path: rel.clone(),
                link: l.clone(),
            })
    })
}

impl Plan {
    fn conflict(&mut self, path: &str, reason: &'static str, markers: bool) {
        self.conflicts.push(Conflict {
            path: path.to_string(),
            reason,
            markers,
        })
    }

    /// Plan one path against what this worktree has there. `deleting`: see [`deleting`].
    fn path(&mut self, s: &Sides, deleting: &[String]) -> Result<()> {
        let Sides { rel, base, theirs } = s;
        if unsafe_path(rel) {
            self.refused.push(Refusal::UnsafePath(rel.clone()));
            return Ok(());
        }
        if let Some(reason) = blocked(&self.workdir, rel, deleting) {
            self.conflict(rel, reason, false);
            return Ok(());
        }
        let full = self.workdir.join(rel);
        let ours = match here(&full) {
            Here::File(d, m) => Some((d, m)),
            Here::Absent => None,
            Here::InTheWay if theirs.is_none() => return Ok(()),
            Here::InTheWay if full.is_dir() && emptied_by(&full, &self.workdir, deleting) => None,
            Here::InTheWay => {
                self.conflict(rel, "a directory is in the way here", false);
                return Ok(());
            }
        };
        if ours == *theirs {
            return Ok(());
        }
        if ours == *base {
            self.actions.push(match theirs {
                Some((data, mode)) => Action::Write {
                    path: rel.clone(),
                    data: data.clone(),
                    mode: *mode,
                },
                None => Action::Delete(rel.clone()),
            });
            return Ok(());
        }
        match merge3(rel, &self.device, base, &ours, theirs)? {
            Merged::Clean(Some((data, mode))) => self.actions.push(Action::Write {
                path: rel.clone(),
                data,
                mode,
            }),
            Merged::Clean(None) => self.actions.push(Action::Delete(rel.clone())),
            Merged::Conflict(reason, Some((data, mode))) => {
                self.conflict(rel, reason, true);
                self.actions.push(Action::Write {
                    path: rel.clone(),
                    data,
                    mode,
                });
            }
            Merged::Conflict(reason, None) => self.conflict(rel, reason, false),
        }
        Ok(())
    }

    /// Why the apply is refused, for the user (the first reason); `None` when it can go ahead.
    pub(super) fn refusal(&self) -> Option<String> {
        let device = &self.device;
        Some(match self.refused.first()? {
            Refusal::Steering(paths) => format!(
                "not applied: {device}'s snapshot changes files that steer tools (run code or change how git, Claude Code, CI or an editor behave):\n  {}\n(read them with `convosync wip diff {device}`, then apply with --allow-steering)",
                paths.join("\n  ")
            ),
            Refusal::UnsafePath(rel) => format!("not applied: the snapshot holds an unsafe path {rel:?}"),
            Refusal::BelowSymlink { path, link } => {
                format!("refused: {device}'s snapshot writes {path} below a symlink it also writes ({link})")
            }
            Refusal::Conflicts => {
                let list: Vec<String> = self
                    .conflicts
                    .iter()
                    .map(|c| format!("{} ({})", c.path, c.reason))
                    .collect();
                format!(
                    "not applied: these files changed here and in {device}'s snapshot and do not combine cleanly:\n  {}\n(commit or stash your changes first, or use --force to write conflict markers and keep the local version of the rest)",
                    list.join("\n  ")
                )
            }
        })
    }
}
