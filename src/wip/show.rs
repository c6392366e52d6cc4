//! What a snapshot holds, for `wip show` and `wip diff`: its files against its base, and the patch.

use anyhow::{anyhow, Result};
use git2::Delta;

use super::check;
use super::checked::{checked_trees, snapshot_diff};
use super::commit::{base_commit, diff, Snapshot};
use super::mode::{self, Mode};
use crate::repo::Repo;
use crate::untrusted::{self, Object};

/// One path of a snapshot for `wip show`: `A`, `M` or `D` (`?` when the base is not here and
/// only the recorded list is known), the path, and why it steers tools, if it does.
#[derive(Debug, Clone)]
pub struct Shown {
    pub kind: char,
    pub path: String,
    pub steering: Option<&'static str>,
}

/// The snapshot's files against its base, for `wip show`. A snapshot whose trees fail the
/// checks is an error. Without the base here, the recorded file list with `?`.
pub fn changes(repo: &Repo, snap: &Snapshot) -> Result<Vec<Shown>> {
    if !snap.whole && base_commit(repo, snap).is_err() {
        return Ok(snap
            .files
            .iter()
            .map(|f| Shown {
                kind: '?',
                path: f.clone(),
                steering: check::steering(f, None),
            })
            .collect());
    }
    let diff = snapshot_diff(repo, snap)?;
    Ok(diff
        .deltas()
        .filter_map(|d| {
            let (new, old) = (d.new_file(), d.old_file());
            let path = new.path().or(old.path())?.to_string_lossy().into_owned();
            let kind = match d.status() {
                Delta::Added => 'A',
                Delta::Deleted => 'D',
                _ => 'M',
            };
            let link = mode::is(new.mode(), Mode::Symlink);
            let target = link.then(|| untrusted::blob(&repo.git, new.id(), Object::WipFile).ok());
            let steering = check::steering(&path, target.flatten().as_ref().map(|b| b.content()));
            Some(Shown { kind, path, steering })
        })
        .collect())
}

/// The snapshot as a patch against its base, for `wip diff`, safe to print.
pub fn patch(repo: &Repo, snap: &Snapshot) -> Result<String> {
    let (base, theirs) = checked_trees(repo, snap)?;
    let diff = diff(&repo.git, &base, &theirs, false)?;
    // Every file the patch shows is size-checked before the patch reads it.
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if f.id().is_zero() || mode::is(f.mode(), Mode::Submodule) {
                continue;
            }
            let (id, device) = (f.id(), &snap.device);
            untrusted::check(&repo.git, id, Object::WipFile)
                .map_err(|e| anyhow!("could not read blob {id} of {device}'s snapshot: {e}"))?;
        }
    }
    let mut out = String::new();
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        let prefix = match line.origin() {
            '+' | '-' | ' ' => line.origin().to_string(),
            _ => String::new(),
        };
        out.push_str(&prefix);
        out.push_str(&crate::untrusted::shown(&String::from_utf8_lossy(line.content())));
        true
    })?;
    Ok(out)
}
