//! A snapshot's trees, read only once they pass git's fsck tree checks ([`super::check`]) whole.

use std::collections::HashSet;

use anyhow::{anyhow, Context, Result};
use git2::{Oid, Repository, Tree};

use super::check;
use super::commit::{base_tree, diff, Snapshot};
use super::sealed;
use crate::repo::Repo;
use crate::untrusted::{self, Object, Refused};

/// Deepest tree nesting a snapshot may have.
const MAX_DEPTH: usize = 256;

/// Check every tree under `root` with [`check::check_entries`], reading raw objects so nothing
/// libgit2 would tolerate slips past. Trees in `seen` passed already (a snapshot shares most of
/// its trees with its base).
fn validate_tree(git: &Repository, root: Oid, seen: &mut HashSet<Oid>) -> Result<(), String> {
    let odb = git.odb().map_err(|e| e.message().to_string())?;
    let mut stack = vec![(root, 0usize, String::new())];
    while let Some((id, depth, at)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let place = if at.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {at}")
        };
        if depth > MAX_DEPTH {
            return Err(format!("trees nested deeper than {MAX_DEPTH} {place}"));
        }
        // The size from the header first: a tree over the cap is never inflated.
        untrusted::check(git, id, Object::Tree).map_err(|e| match e {
            Refused::Unreadable(_) => format!("a missing tree {id} {place}"),
            e => format!("{e} {place}"),
        })?;
        let obj = odb.read(id).map_err(|_| format!("a missing tree {id} {place}"))?;
        let entries = check::parse_tree(obj.data()).map_err(|e| format!("{e} {place}"))?;
        if entries.len() > untrusted::MAX_TREE_ENTRIES {
            return Err(format!("{} {place}", Refused::TooManyEntries(entries.len())));
        }
        check::check_entries(&entries).map_err(|e| format!("{e} {place}"))?;
        for e in entries {
            if e.mode == super::mode::MODE_TREE {
                let sub = Oid::from_bytes(&e.id).map_err(|e| e.message().to_string())?;
                let name = String::from_utf8_lossy(&e.name);
                let path = if at.is_empty() {
                    name.into_owned()
                } else {
                    format!("{at}/{name}")
                };
                stack.push((sub, depth + 1, path));
            }
        }
    }
    Ok(())
}

/// What a snapshot changes against its base (type changes included), once both trees passed the
/// checks of [`checked_trees`].
pub(super) fn snapshot_diff<'r>(repo: &'r Repo, snap: &Snapshot) -> Result<git2::Diff<'r>> {
    let (base, theirs) = checked_trees(repo, snap)?;
    diff(&repo.git, &base, &theirs, true)
}

/// The snapshot's base tree and its own, both checked whole (see [`validate_tree`]).
pub(super) fn checked_trees<'r>(repo: &'r Repo, snap: &Snapshot) -> Result<(Tree<'r>, Tree<'r>)> {
    let their_id = sealed::tree_id(repo, snap)?;
    let base = base_tree(repo, snap)?;
    let mut seen = HashSet::new();
    validate_tree(&repo.git, their_id, &mut seen).map_err(|e| {
        anyhow!(
            "refused: {}'s snapshot is not a valid git tree ({e})",
            snap.device
        )
    })?;
    validate_tree(&repo.git, base.id(), &mut seen).map_err(|e| {
        anyhow!(
            "refused: the base of {}'s snapshot is not a valid git tree ({e})",
            snap.device
        )
    })?;
    let theirs = repo
        .git
        .find_tree(their_id)
        .with_context(|| format!("could not read tree {their_id} of {}'s snapshot", snap.device))?;
    Ok((base, theirs))
}
