//! Planning an apply: what applying a snapshot would write, delete, merge or refuse, worked out
//! from the snapshot, its base and the worktree before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::Delta;

use super::check;
use super::checked::snapshot_diff;
use super::commit::Snapshot;
use super::merge::{merge3, Merged, Side};
use super::mode::{self, Mode};
use crate::repo::Repo;

/// What is at a path in this worktree: a file or symlink, or nothing (`Some(None)`); `None` when a
/// directory (or something unreadable) is in the way.
fn here(path: &Path) -> Option<Side> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Some(None),
        Ok(m) => mode::read_file(path, &m).ok().map(Some),
    }
}

/// What apply will do with one path: write the content with the mode, or (`None`) delete it.
pub(super) type Action = (String, Side);

/// A path the snapshot and this worktree both changed, in ways that do not combine cleanly.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub path: String,
    pub reason: &'static str,
    /// Whether `--force` writes the file with conflict markers; otherwise the local version stays.
    pub markers: bool,
}

/// Why `rel`, a path from a snapshot, would leave the worktree or enter `.git` (a snapshot is
/// data from a shared remote: such a path refuses the whole apply), or `None`.
pub(super) fn unsafe_path(rel: &str) -> Option<&'static str> {
    rel.split('/').find_map(|p| check::bad_name(p.as_bytes()))
}

/// Why the path `rel` cannot be applied as it stands, or `None` when it can: nothing is ever
/// written through a symlinked directory, or where a file stands for a directory (unless the
/// apply deletes it).
fn blocked(workdir: &Path, rel: &str, deleting: &[PathBuf]) -> Option<&'static str> {
    let mut prefix = PathBuf::new();
    for c in Path::new(rel).parent()?.components() {
        prefix.push(c);
        match std::fs::symlink_metadata(workdir.join(&prefix)) {
            Err(_) => break,
            Ok(m) if m.file_type().is_symlink() => return Some("a symlink is in the way here"),
            Ok(m) if m.is_dir() => {}
            Ok(_) if deleting.contains(&prefix) => break,
            Ok(_) => return Some("a file is in the way here"),
        }
    }
    None
}

/// Whether every file under `dir` is about to be deleted, so the directory goes with them.
fn emptied_by(dir: &Path, workdir: &Path, deleting: &[PathBuf]) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().all(|e| match e.file_type() {
            Ok(t) if t.is_dir() => emptied_by(&e.path(), workdir, deleting),
            Ok(_) => e
                .path()
                .strip_prefix(workdir)
                .is_ok_and(|rel| deleting.iter().any(|d| d == rel)),
            Err(_) => false,
        })
    })
}

/// What applying a snapshot would do, worked out by [`plan`] before anything is written and
/// carried out by [`execute`](super::apply::execute).
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) workdir: PathBuf,
    pub(super) device: String,
    /// Files to write (the snapshot's version, a clean merge, or one with conflict markers) and
    /// files to delete, in path order.
    pub(super) actions: Vec<Action>,
    /// Paths that do not combine cleanly or cannot be applied here. Those with `markers` are
    /// also in `actions`; the others keep the local version.
    pub(super) conflicts: Vec<Conflict>,
    /// Why the whole apply is refused, for the user, the first reason first; empty when it can
    /// go ahead.
    pub(super) refused: Vec<String>,
}

/// One path the snapshot changes: the path, its base's side and the snapshot's.
type Sides = (String, Side, Side);

/// Plan the apply of `snap` (readable here) onto this worktree from the snapshot, its base and the
/// worktree as they are: files the user has not touched take the snapshot's version, files both
/// sides changed are merged, and every reason to refuse is listed. Nothing is written to the
/// worktree, the index or any ref (reading an encrypted snapshot may leave its decrypted tree in
/// the object database, unreferenced, as [`super::sealed::tree_id`] says). `force`: write conflict
/// markers instead of refusing; `allow_steering`: also apply files that steer tools
/// ([`check::steering`]).
pub(super) fn plan(repo: &Repo, snap: &Snapshot, force: bool, allow_steering: bool) -> Result<Plan> {
    let device = &snap.device;
    let workdir = repo
        .workdir()
        .context("bare repository: no worktree to apply to")?
        .to_path_buf();
    if snap.files.is_empty() {
        bail!("{device} has no uncommitted changes in its latest snapshot");
    }
    let mut plan = Plan {
        workdir,
        device: device.to_string(),
        ..Plan::default()
    };
    let sides = plan.changed_sides(repo, snap)?;
    let steering: Vec<String> = sides
        .iter()
        .filter_map(|(rel, _, theirs)| {
            let target = match theirs {
                Some((d, Mode::Symlink)) => Some(d.as_slice()),
                _ => None,
            };
            check::steering(rel, target).map(|why| format!("{rel} ({why})"))
        })
        .collect();
    if !steering.is_empty() && !allow_steering {
        plan.refused.push(format!(
            "not applied: {device}'s snapshot changes files that steer tools (run code or change how git, Claude Code, CI or an editor behave):\n  {}\n(read them with `convosync wip diff {device}`, then apply with --allow-steering)",
            steering.join("\n  ")
        ));
    }
    let deleting = deleting(&plan.workdir, &sides);
    for s in &sides {
        plan.path(s, &deleting)?;
    }
    if let Some((path, link)) = below_symlink(&plan.actions) {
        plan.refused.push(format!(
            "refused: {device}'s snapshot writes {path} below a symlink it also writes ({link})"
        ));
    }
    if !plan.conflicts.is_empty() && !force {
        let list: Vec<String> = plan
            .conflicts
            .iter()
            .map(|c| format!("{} ({})", c.path, c.reason))
            .collect();
        plan.refused.push(format!(
            "not applied: these files changed here and in {device}'s snapshot and do not combine cleanly:\n  {}\n(commit or stash your changes first, or use --force to write conflict markers and keep the local version of the rest)",
            list.join("\n  ")
        ));
    }
    Ok(plan)
}

/// Paths the snapshot deletes and this worktree still has as the base had them.
fn deleting(workdir: &Path, sides: &[Sides]) -> Vec<PathBuf> {
    sides
        .iter()
        .filter(|(rel, base, theirs)| theirs.is_none() && here(&workdir.join(rel)).as_ref() == Some(base))
        .map(|(rel, ..)| PathBuf::from(rel))
        .collect()
}

/// A symlink the plan writes is in the way of every path below it, as a case-insensitive
/// filesystem sees names: the first path of `actions` below one (and that symlink) refuses the
/// snapshot rather than be written through it.
fn below_symlink(actions: &[Action]) -> Option<(String, String)> {
    let links: Vec<String> = actions
        .iter()
        .filter(|(_, to)| matches!(to, Some((_, Mode::Symlink))))
        .map(|(rel, _)| check::fold_path(rel))
        .collect();
    actions.iter().find_map(|(rel, _)| {
        let folded = check::fold_path(rel);
        links
            .iter()
            .find(|l| folded.starts_with(&format!("{l}/")))
            .map(|l| (rel.clone(), l.clone()))
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

    /// The base's and the snapshot's side of every path the snapshot changes, in the diff's
    /// (path) order; a path where a submodule commit changed is a conflict instead.
    fn changed_sides(&mut self, repo: &Repo, snap: &Snapshot) -> Result<Vec<Sides>> {
        let diff = snapshot_diff(repo, snap)?;
        let side = |f: git2::DiffFile<'_>| -> Result<Side> {
            let id = f.id();
            let blob = crate::untrusted::blob(&repo.git, id, crate::untrusted::Object::WipFile)
                .map_err(|e| anyhow!("could not read blob {id} of {}'s snapshot: {e}", snap.device))?;
            Ok(Some((blob.content().to_vec(), Mode::of(f.mode())?)))
        };
        let mut sides = Vec::new();
        for d in diff.deltas() {
            let Some(path) = d.new_file().path().or(d.old_file().path()) else {
                continue;
            };
            let rel = path
                .to_str()
                .context("the snapshot holds a path that is not UTF-8")?
                .to_string();
            if mode::is(d.old_file().mode(), Mode::Submodule)
                || mode::is(d.new_file().mode(), Mode::Submodule)
            {
                self.conflict(&rel, "a submodule commit changed; not applied", false);
                continue;
            }
            let base = (d.status() != Delta::Added)
                .then(|| side(d.old_file()))
                .transpose()?;
            let theirs = (d.status() != Delta::Deleted)
                .then(|| side(d.new_file()))
                .transpose()?;
            sides.push((rel, base.flatten(), theirs.flatten()));
        }
        Ok(sides)
    }

    /// Plan one path against what this worktree has there. `deleting`: see [`deleting`].
    fn path(&mut self, (rel, base, theirs): &Sides, deleting: &[PathBuf]) -> Result<()> {
        if unsafe_path(rel).is_some() {
            self.refused
                .push(format!("not applied: the snapshot holds an unsafe path {rel:?}"));
            return Ok(());
        }
        if let Some(reason) = blocked(&self.workdir, rel, deleting) {
            self.conflict(rel, reason, false);
            return Ok(());
        }
        let full = self.workdir.join(rel);
        let ours = match here(&full) {
            Some(ours) => ours,
            None if theirs.is_none() => return Ok(()),
            None if full.is_dir() && emptied_by(&full, &self.workdir, deleting) => None,
            None => {
                self.conflict(rel, "a directory is in the way here", false);
                return Ok(());
            }
        };
        if ours == *theirs {
            return Ok(());
        }
        if ours == *base {
            self.actions.push((rel.clone(), theirs.clone()));
            return Ok(());
        }
        match merge3(rel, &self.device, base, &ours, theirs)? {
            Merged::Clean(to) => self.actions.push((rel.clone(), to)),
            Merged::Conflict(reason, markers) => {
                self.conflict(rel, reason, markers.is_some());
                if markers.is_some() {
                    self.actions.push((rel.clone(), markers));
                }
            }
        }
        Ok(())
    }
}
