//! Merging two tips of the handoff ref by path. Merges never conflict: each device writes only
//! its own file, and when the same device wrote on both sides (two sessions), the newer timestamp
//! wins while the other version stays in history. Recorded key ids (`keys/`) are only ever added.

use anyhow::{Context, Result};
use git2::{Oid, Repository, Tree};

use super::{
    commit_tree, device_files, key_files, read_note, retry_cas, signature, tip_of, write_ref_tree, Cas,
};
use crate::lock::RepoLock;
use crate::team::Author;
use crate::untrusted::Skipped;

/// Bring the commit `theirs` into `refname`: fast-forward, or merge by path, under the
/// repository lock. A tip of theirs that lost key ids this ref had recorded (someone pushed a tree
/// without them) is not fast-forwarded to but merged, so the key ids are put back: those ids are
/// returned, for the user to be told.
///
/// Entries either side holds that are not valid device files are left out and recorded in
/// `skipped`.
pub fn absorb(
    repo: &Repository,
    refname: &str,
    theirs: Oid,
    _lock: &RepoLock,
    skipped: &mut Skipped,
) -> Result<Vec<String>> {
    let mut lost = Vec::new();
    retry_cas(repo, refname, "merge handoffs from remote", || {
        let ours = tip_of(repo, refname)?.map(|c| c.id());
        let next = match ours {
            None => theirs,
            Some(o) if o == theirs || descends(repo, refname, o, theirs)? => return Ok(Cas::Done(o)),
            Some(o) => {
                // Theirs is ahead: fast-forward, unless it lost key ids (then merged, to keep them).
                let ahead = descends(repo, refname, theirs, o)?;
                let base = ahead.then_some(o).or_else(|| repo.merge_base(o, theirs).ok());
                lost = lost_keys(repo, base, theirs, skipped);
                if ahead && lost.is_empty() {
                    theirs
                } else {
                    let message = if ahead { RESTORED } else { MERGED };
                    merge_commit(repo, o, theirs, message, skipped).with_context(|| {
                        format!("could not merge the remote's {theirs} into {refname} at {o}")
                    })?
                }
            }
        };
        Ok(Cas::Move { from: ours, to: next })
    })?;
    Ok(lost)
}

const MERGED: &str = "merge handoffs\n\nEach device owns its own file; the newest handoff wins where a device wrote on both sides.\n";
const RESTORED: &str = "restore recorded keys\n\nRecorded key ids are only ever added.\n";

/// The key ids recorded at `base` (a commit of the ref) that `theirs` no longer records.
fn lost_keys(repo: &Repository, base: Option<Oid>, theirs: Oid, skipped: &mut Skipped) -> Vec<String> {
    let Some(base) = base else { return Vec::new() };
    let mut keys = |id: Oid| {
        let tree = repo
            .find_commit(id)
            .ok()
            .and_then(|c| commit_tree(repo, &c, skipped));
        key_files(repo, tree.as_ref(), skipped)
    };
    let now = keys(theirs);
    keys(base).into_keys().filter(|k| !now.contains_key(k)).collect()
}

/// Whether `commit` descends from `ancestor`, two commits of the history of `refname`.
fn descends(repo: &Repository, refname: &str, commit: Oid, ancestor: Oid) -> Result<bool> {
    repo.graph_descendant_of(commit, ancestor)
        .with_context(|| format!("could not compare commits {commit} and {ancestor} of {refname}"))
}

/// A commit with both tips as parents whose tree is the path-wise merge of theirs and ours.
/// Trees git cannot read count as empty (and are recorded), so one hostile commit never stops a
/// merge; the merged tree holds only valid device files.
pub fn merge_commit(
    repo: &Repository,
    ours: Oid,
    theirs: Oid,
    message: &str,
    skipped: &mut Skipped,
) -> Result<Oid> {
    let o = repo
        .find_commit(ours)
        .with_context(|| format!("could not read our handoff commit {ours}"))?;
    let t = repo
        .find_commit(theirs)
        .with_context(|| format!("could not read the remote's handoff commit {theirs}"))?;
    let base = repo
        .merge_base(ours, theirs)
        .ok()
        .and_then(|b| repo.find_commit(b).ok());
    let trees = [base.as_ref(), Some(&o), Some(&t)].map(|c| c.and_then(|c| commit_tree(repo, c, skipped)));
    let tree = merge_trees(repo, trees.each_ref(), skipped)?;
    let sig = signature(repo, crate::timefmt::now())?;
    repo.commit(None, &sig, &sig, message, &tree, &[&o, &t])
        .with_context(|| format!("could not write a commit of tree {}", tree.id()))
}

/// Three-way merge of device files. A device changed on one side only takes that side
/// (deletions included); changed on both, the handoff with the newer timestamp wins; a deletion
/// on one side loses to a modification on the other. Only valid device files
/// ([`device_files`]) take part: anything else on either side is skipped and recorded, and
/// the result is always a tree git accepts.
fn merge_trees<'r>(
    repo: &'r Repository,
    trees: [&Option<Tree<'_>>; 3],
    skipped: &mut Skipped,
) -> Result<Tree<'r>> {
    let [b, o, t] = trees.map(|t| device_files(repo, t.as_ref(), skipped));
    let devices: std::collections::BTreeSet<&String> = o.keys().chain(t.keys()).collect();
    let mut merged = std::collections::BTreeMap::new();
    let mut moved = Vec::new();
    for d in devices {
        let (bo, oo, to) = (b.get(d).copied(), o.get(d).copied(), t.get(d).copied());
        let pick = if oo == to {
            oo
        } else if oo == bo {
            to
        } else if to == bo {
            oo
        } else {
            match (oo, to) {
                (Some(x), Some(y)) => match two_authors(repo, d, x, y)? {
                    // Two people's devices with the same name wrote at once: the first keeps
                    // the name, the other moves to its author-qualified name (as it would have
                    // had it seen the first).
                    Some((keep, other)) => {
                        moved.push(other);
                        Some(keep)
                    }
                    None => Some(newer(repo, x, y)),
                },
                (x, y) => x.or(y),
            }
        };
        if let Some(id) = pick {
            merged.insert(d.clone(), id);
        }
    }
    for (device, id) in moved {
        // A newer handoff already at the qualified name wins over the moved one.
        let keep = match merged.get(&device) {
            Some(&existing) => newer(repo, existing, id),
            None => id,
        };
        merged.insert(device, keep);
    }
    // Recorded keys are only ever added: the union of both sides' (ours' blob for an id both record).
    let ours = key_files(repo, trees[1].as_ref(), skipped);
    let mut all = key_files(repo, trees[2].as_ref(), skipped);
    all.extend(ours);
    write_ref_tree(repo, &merged, &all)
}

/// When `a` and `b` are handoffs of device `device` by two different authors: the blob to keep
/// (the older one) and the other rewritten under its author-qualified device name.
fn two_authors(repo: &Repository, device: &str, a: Oid, b: Oid) -> Result<Option<(Oid, (String, Oid))>> {
    let parse = |id: Oid| read_note(repo, id).ok().map(|(h, _)| h);
    let (Some(x), Some(y)) = (parse(a), parse(b)) else {
        return Ok(None);
    };
    let (Some(ax), Some(ay)) = (&x.author, &y.author) else {
        return Ok(None);
    };
    let (px, py) = (Author::parse(ax), Author::parse(ay));
    if px.same_person(&py) {
        return Ok(None);
    }
    // The older note keeps the name. Times are kept to the second, so two saves can tie: then
    // `b`, the side already on the remote (theirs in a merge), was there first and keeps it.
    let (keep, moved, mut other, who) = if x.timestamp < y.timestamp {
        (a, b, y, py)
    } else {
        (b, a, x, px)
    };
    let user = who.handle().unwrap_or_else(|| "other".into());
    // The file name, not the header, says whose device this is.
    let Some(qualified) = crate::device::sanitize(&format!("{device}-{user}")) else {
        return Ok(None);
    };
    other.device = qualified;
    let mut text = crate::handoff::format::render(&other).into_bytes();
    let sealed = crate::untrusted::blob(repo, moved, crate::untrusted::Object::Note)
        .is_ok_and(|old| crate::crypt::is_encrypted(old.content()));
    // It was readable, so encrypted to our key: it stays encrypted under its new name.
    if let Some(k) = crate::crypt::key().filter(|_| sealed) {
        text = k.encrypt(crate::crypt::Purpose::Note, &text)?;
    }
    let blob = repo
        .blob(&text)
        .with_context(|| format!("could not write the note of {device} moved to {}", other.device))?;
    Ok(Some((keep, (other.device, blob))))
}

/// The blob whose handoff is newer; ties and unparseable files fall back to the larger id so
/// every device picks the same one.
fn newer(repo: &Repository, a: Oid, b: Oid) -> Oid {
    std::cmp::max_by_key(a, b, |&id| {
        (read_note(repo, id).ok().map(|(h, _)| h.timestamp), id)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::handoff::{Handoff, Section};

    /// A tree of `devices/<name>.md` files, one handoff per (device, timestamp).
    fn tree(repo: &Repository, files: &BTreeMap<u8, i64>) -> Oid {
        let entries: BTreeMap<String, Oid> = files
            .iter()
            .map(|(d, ts)| {
                let h = Handoff {
                    device: format!("d{d}"),
                    timestamp: Utc.timestamp_opt(*ts, 0).unwrap(),
                    commit: None,
                    branch: None,
                    session: None,
                    author: None,
                    agent: None,
                    sections: vec![Section {
                        title: "Current Task".into(),
                        body: format!("at {ts}"),
                    }],
                };
                let blob = repo.blob(crate::handoff::format::render(&h).as_bytes()).unwrap();
                (format!("d{d}"), blob)
            })
            .collect();
        crate::store::write_device_files(repo, &entries).unwrap()
    }

    fn side() -> impl Strategy<Value = BTreeMap<u8, i64>> {
        prop::collection::btree_map(0u8..8, 0i64..1_000_000, 0..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn merge_keeps_every_device_and_the_newest(base in side(), ours in side(), theirs in side()) {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            let (b, o, t) = (tree(&repo, &base), tree(&repo, &ours), tree(&repo, &theirs));
            let (bt, ot, tt) = (repo.find_tree(b).unwrap(), repo.find_tree(o).unwrap(), repo.find_tree(t).unwrap());
            let (bt, ot, tt) = (Some(bt), Some(ot), Some(tt));
            let merged = merge_trees(&repo, [&bt, &ot, &tt], &mut Skipped::default()).unwrap();
            let got: BTreeMap<String, i64> = crate::store::entries_of(&repo, &merged)
                .into_iter()
                .map(|e| (e.device, e.handoff.unwrap().timestamp.timestamp()))
                .collect();
            for d in 0u8..8 {
                let name = format!("d{d}");
                let (bv, ov, tv) = (base.get(&d), ours.get(&d), theirs.get(&d));
                let expected = if ov == tv {
                    ov.copied()
                } else if ov == bv {
                    tv.copied()
                } else if tv == bv {
                    ov.copied()
                } else {
                    match (ov, tv) {
                        (Some(x), Some(y)) => Some(*x.max(y)),
                        (x, y) => x.or(y).copied(),
                    }
                };
                prop_assert_eq!(got.get(&name).copied(), expected, "device {}", name);
            }
            // The same result whichever side merges, so every device converges on one tree.
            let swapped = merge_trees(&repo, [&bt, &tt, &ot], &mut Skipped::default()).unwrap().id();
            prop_assert_eq!(swapped, merged.id());
        }
    }
}
