//! Exchanging the handoff ref with a remote: fetch only that ref, merge by path, push, retry.
//!
//! The local ref is also the offline queue: when it is ahead of the remote-tracking copy
//! (`refs/convosync/remote/<remote>/…`), something is waiting to be pushed, and the next hook or
//! `convosync sync` pushes it. Merges never conflict: each device writes only its own file, and
//! when the same device wrote on both sides (two sessions), the newer timestamp wins while the
//! other version stays in history.

use std::time::Duration;

use anyhow::{Context, Result};
use git2::{Oid, Repository, Tree};

use crate::git::{self, Deadline, GitOutput};
use crate::refs;
use crate::repo::Repo;
use crate::store::{self, retry_cas, tip_of, Cas};
use crate::team::Author;

/// Rounds of fetch → merge → push when a push is rejected because another device pushed first.
const PUSH_ROUNDS: usize = 5;

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The remote-tracking copy now matches the remote.
    Ok,
    /// The remote has no handoff ref yet.
    NoRemoteRef,
    /// Time ran out; the cached copy is used.
    TimedOut,
    /// The remote could not be reached or refused us; the cached copy is used.
    Failed(String),
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The remote now has our tip.
    Ok,
    /// Nothing to push.
    UpToDate,
    /// Someone else pushed first; fetch and merge, then try again.
    Rejected,
    /// The server refused the ref by policy (a hook, a protected namespace): retrying does not
    /// help. Holds the server's own words.
    Refused(String),
    TimedOut,
    Failed(String),
}

/// The outcome of a whole sync, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub remote: String,
    pub fetched: Fetched,
    pub pushed: Pushed,
    /// Whether local commits still wait to be pushed.
    pub pending: bool,
}

impl Report {
    /// One line for the user: `None` when everything went fine.
    pub fn problem(&self) -> Option<String> {
        let r = &self.remote;
        if let Pushed::Refused(m) = &self.pushed {
            return Some(format!(
                "{r} refused the handoff ref ({m}); handoffs stay on this machine until the server accepts refs/convosync/*"
            ));
        }
        let what = match (&self.fetched, &self.pushed) {
            (Fetched::TimedOut, _) => format!("{r} did not answer in time"),
            (Fetched::Failed(m), _) => format!("could not reach {r} ({m})"),
            (_, Pushed::TimedOut) => format!("push to {r} timed out"),
            (_, Pushed::Failed(m)) => format!("push to {r} failed ({m})"),
            (_, Pushed::Rejected) => format!("{r} kept moving"),
            _ => return None,
        };
        let then = if self.pending {
            "the handoff is queued and goes out with the next sync"
        } else {
            "using the cached handoffs"
        };
        Some(format!("{what}; {then}"))
    }
}

/// Fetch the remote's handoff ref into its tracking ref.
pub fn fetch(repo: &Repo, remote: &str, deadline: Deadline) -> Result<Fetched> {
    if let Err(e) = carry_over(repo, remote, deadline) {
        crate::state::log(&repo.state_dir(), &format!("carrying notes over: {e:#}"));
    }
    let refname = &repo.settings.refname;
    let spec = format!("+{refname}:{}", refs::tracking(refname, remote));
    // Other devices' snapshots of uncommitted work travel in the same round trip (in a notes
    // repository, from this project's namespace).
    let wip = refs::wip_fetch_refspec(repo.settings.notes_repo, &repo.settings.refname, remote);
    let specs: Vec<&str> = vec![&spec, &wip];
    let out = git::fetch(repo.git.path(), remote, &specs, deadline)?;
    // The fetch may have added a pack: libgit2 sees it from now on even in lookups that do not
    // rescan the object directory for a missing object (see `context::code_notes`).
    if let Ok(odb) = repo.git.odb() {
        let _ = odb.refresh();
    }
    let fetched = classify_fetch(&out);
    if matches!(fetched, Fetched::Ok | Fetched::NoRemoteRef) {
        // The one place that records a sync: every command and hook fetches through here.
        crate::state::record_sync(&repo.state_dir(), crate::timefmt::now());
    }
    Ok(fetched)
}

fn classify_fetch(out: &GitOutput) -> Fetched {
    if out.timed_out() {
        Fetched::TimedOut
    } else if out.success() {
        Fetched::Ok
    } else if out.stderr.contains("couldn't find remote ref") {
        Fetched::NoRemoteRef
    } else {
        Fetched::Failed(out.brief_error())
    }
}

/// Push the local tip to the remote if it is ahead of what we last saw there, with `extra` refs
/// in the same invocation: one round trip for everything. The result
/// is the handoff ref's (or, when it had nothing to push, the extras'); each ref the remote took
/// is recorded in its tracking ref.
pub fn push_with(
    repo: &Repo,
    remote: &str,
    deadline: Deadline,
    extra: &[crate::git::Extra],
) -> Result<Pushed> {
    let refname = &repo.settings.refname;
    let tracking = refs::tracking(refname, remote);
    let local = tip_of(&repo.git, refname)?.map(|c| c.id());
    let ahead = local.filter(|&l| tip_of(&repo.git, &tracking).ok().flatten().map(|c| c.id()) != Some(l));
    let mut specs: Vec<String> = ahead.iter().map(|l| format!("{l}:{refname}")).collect();
    specs.extend(extra.iter().map(|e| format!("+{}:{}", e.tip, e.refname)));
    if specs.is_empty() {
        return Ok(Pushed::UpToDate);
    }
    let mut args = vec!["push", "--porcelain", "--no-verify", "--quiet", remote];
    args.extend(specs.iter().map(String::as_str));
    let out = git::run(repo.git.path(), args, deadline)?;
    if out.timed_out() {
        return Ok(Pushed::TimedOut);
    }
    // `--porcelain`: one `<flag>\t<src>:<dst>\t<summary>` line per ref; `!` is a refusal.
    let taken = |dst: &str| {
        out.success()
            || out.stdout.lines().any(|l| {
                let mut f = l.split('\t');
                let (flag, pair) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                flag != "!" && !flag.is_empty() && pair.rsplit(':').next() == Some(dst)
            })
    };
    for e in extra.iter().filter(|e| taken(&e.refname)) {
        let _ = repo.git.reference(&e.tracking, e.tip, true, "convosync: pushed");
    }
    match ahead {
        Some(l) if taken(refname) => {
            // The remote has it now; remember that so `status` shows nothing pending.
            let _ = repo.git.reference(&tracking, l, true, "convosync: pushed");
            Ok(Pushed::Ok)
        }
        Some(_) => Ok(classify_push(&out)),
        // Only extras went: the handoff ref had nothing to push (the caller checks the extras).
        None => Ok(Pushed::UpToDate),
    }
}

/// How a `git push` ended, for any push (the handoff ref, or `save`'s push of the user's branch;
/// with or without `--porcelain`): done, timed out, another push got there first (fetch, then try
/// again), the server refused the ref by policy (with its words), or something else (git's reason).
pub fn classify_push(out: &GitOutput) -> Pushed {
    if out.timed_out() {
        return Pushed::TimedOut;
    }
    if out.success() {
        return Pushed::Ok;
    }
    // `--porcelain` reports each ref on stdout as `!<TAB>src:dst<TAB>[status] (reason)`.
    let status = out
        .stdout
        .lines()
        .find(|l| l.starts_with('!'))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap_or("")
        .to_string();
    let text = format!("{status}\n{}", out.stderr);
    let race = text.contains("[rejected]")
        || text.contains("non-fast-forward")
        || text.contains("fetch first")
        || (text.contains("[remote rejected]")
            && (text.contains("failed to update ref") || text.contains("cannot lock ref")));
    if race {
        return Pushed::Rejected;
    }
    if text.contains("[remote rejected]") {
        let mut words: Vec<String> = out
            .stderr
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("remote:"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| crate::untrusted::line(l).into_owned())
            .collect();
        let reason = status
            .trim_start_matches("[remote rejected]")
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        if !reason.is_empty() {
            words.push(crate::untrusted::line(reason).into_owned());
        }
        if words.is_empty() {
            words.push("no reason given".to_string());
        }
        return Pushed::Refused(words.join("; "));
    }
    Pushed::Failed(out.brief_error())
}

/// When this clone's namespace in a notes repository changed (see [`crate::namespace`]), bring
/// the notes of the earlier one into the current ref once: fetch the earlier ref (a pattern, so
/// that its absence is no error), merge it and the local copy into the current ref, and record
/// the change as done. Until then every fetch tries again.
fn carry_over(repo: &Repo, remote: &str, deadline: Deadline) -> Result<()> {
    let Some(ns) = &repo.settings.namespace else {
        return Ok(());
    };
    let Some(previous) = ns.previous.as_deref() else {
        return Ok(());
    };
    let earlier = crate::namespace::handoffs_ref(previous);
    let tracking = refs::tracking(&earlier, remote);
    let spec = format!("+{earlier}*:{tracking}*");
    let out = git::fetch(repo.git.path(), remote, &[&spec], deadline)?;
    if !out.success() {
        anyhow::bail!("could not fetch {earlier}: {}", out.brief_error());
    }
    for r in [&earlier, &tracking] {
        if let Some(tip) = tip_of(&repo.git, r).ok().flatten().map(|c| c.id()) {
            merge_into(repo, tip, deadline.remaining())?;
        }
    }
    crate::namespace::settled(&repo.git, &ns.id)?;
    crate::state::log(
        &repo.state_dir(),
        &format!("notes of {earlier} carried over into {}", repo.settings.refname),
    );
    Ok(())
}

/// Bring the remote-tracking copy into the local ref: fast-forward, or merge by path.
/// Takes the repository lock for the local ref update.
///
/// Recorded key ids (`keys/`) are only ever added, on every path: a remote whose tip lost some
/// that this ref had (someone pushed a tree without them) is not fast-forwarded to but built on,
/// with the key ids put back. The user is then told once ([`take_restored`]).
pub fn integrate(repo: &Repo, remote: &str, lock_wait: Duration) -> Result<()> {
    let refname = &repo.settings.refname;
    let Some(theirs) = tip_of(&repo.git, &refs::tracking(refname, remote))
        .ok()
        .flatten()
        .map(|c| c.id())
    else {
        return Ok(());
    };
    merge_into(repo, theirs, lock_wait)
}

/// Bring the commit `theirs` into the local ref: fast-forward, or merge by path.
fn merge_into(repo: &Repo, theirs: Oid, lock_wait: Duration) -> Result<()> {
    let refname = &repo.settings.refname;
    let _lock = repo.lock(lock_wait)?;
    let mut lost = Vec::new();
    retry_cas(&repo.git, refname, "merge handoffs from remote", || {
        let ours = tip_of(&repo.git, refname)?.map(|c| c.id());
        let next = match ours {
            None => theirs,
            Some(o) if o == theirs || descends(&repo.git, refname, o, theirs)? => return Ok(Cas::Done(o)),
            Some(o) if descends(&repo.git, refname, theirs, o)? => {
                lost = lost_keys(&repo.git, Some(o), theirs);
                if lost.is_empty() {
                    theirs
                } else {
                    restore_keys(&repo.git, o, theirs)
                        .with_context(|| format!("could not restore the key ids of {refname} on {theirs}"))?
                }
            }
            Some(o) => {
                lost = lost_keys(&repo.git, repo.git.merge_base(o, theirs).ok(), theirs);
                merge_commit(&repo.git, o, theirs)
                    .with_context(|| format!("could not merge the remote's {theirs} into {refname} at {o}"))?
            }
        };
        Ok(Cas::Move { from: ours, to: next })
    })?;
    if lost.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = lost.iter().map(|k| crate::crypt::fingerprint(k)).collect();
    let line = format!(
        "the remote's handoff ref had lost the record that notes are encrypted (key {}); it is restored, and notes from keyed devices stay encrypted",
        ids.join(", ")
    );
    crate::state::log(&repo.state_dir(), &line);
    let _ = crate::fsutil::replace_file(&repo.state_dir().join(RESTORED), line.as_bytes());
    Ok(())
}

/// The file holding the line about key ids restored by [`integrate`], until it is shown.
const RESTORED: &str = "keys-restored";

/// The line about key ids [`integrate`] restored, once: the caller shows it to the user.
pub fn take_restored(repo: &Repo) -> Option<String> {
    let path = repo.state_dir().join(RESTORED);
    let line = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(crate::untrusted::line(line.trim()).into_owned()).filter(|l| !l.is_empty())
}

/// The key ids recorded at `base` (a commit of the ref) that `theirs` no longer records.
fn lost_keys(repo: &Repository, base: Option<Oid>, theirs: Oid) -> Vec<String> {
    let keys = |id: Oid| {
        repo.find_commit(id)
            .ok()
            .and_then(|c| store::commit_tree(repo, &c))
            .map(|t| store::key_files(repo, &t))
            .unwrap_or_default()
    };
    let Some(base) = base else { return Vec::new() };
    let now = keys(theirs);
    keys(base).into_keys().filter(|k| !now.contains_key(k)).collect()
}

/// A commit on top of `theirs` whose tree is theirs with the key ids of `ours` recorded again.
fn restore_keys(repo: &Repository, ours: Oid, theirs: Oid) -> Result<Oid> {
    let read = |id: Oid| -> Result<(git2::Commit<'_>, Tree<'_>)> {
        let c = repo
            .find_commit(id)
            .with_context(|| format!("could not read handoff commit {id}"))?;
        let t = store::commit_tree(repo, &c).with_context(|| format!("could not read the tree of {id}"))?;
        Ok((c, t))
    };
    let (_, ours_tree) = read(ours)?;
    let (t, theirs_tree) = read(theirs)?;
    let mut keys = store::key_files(repo, &theirs_tree);
    for (k, id) in store::key_files(repo, &ours_tree) {
        keys.entry(k).or_insert(id);
    }
    let tree_id = store::write_ref_tree(repo, &store::device_files(repo, &theirs_tree), &keys)?;
    let tree = repo
        .find_tree(tree_id)
        .with_context(|| format!("could not read tree {tree_id}"))?;
    let sig = store::signature(repo, crate::timefmt::now())?;
    repo.commit(
        None,
        &sig,
        &sig,
        "restore recorded keys\n\nRecorded key ids are only ever added.\n",
        &tree,
        &[&t],
    )
    .with_context(|| format!("could not write a commit of tree {tree_id}"))
}

/// Whether `commit` descends from `ancestor`, two commits of the history of `refname`.
fn descends(repo: &Repository, refname: &str, commit: Oid, ancestor: Oid) -> Result<bool> {
    repo.graph_descendant_of(commit, ancestor)
        .with_context(|| format!("could not compare commits {commit} and {ancestor} of {refname}"))
}

/// A commit with both tips as parents whose tree is the path-wise merge of theirs and ours.
/// Trees git cannot read count as empty (and are recorded), so one hostile commit never stops a
/// merge; the merged tree holds only valid device files.
fn merge_commit(repo: &Repository, ours: Oid, theirs: Oid) -> Result<Oid> {
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
    let base_tree = base.as_ref().and_then(|c| store::commit_tree(repo, c));
    let empty = repo
        .treebuilder(None)
        .and_then(|b| b.write())
        .and_then(|id| repo.find_tree(id))
        .context("could not write an empty tree")?;
    let ours_tree = store::commit_tree(repo, &o).unwrap_or_else(|| empty.clone());
    let theirs_tree = store::commit_tree(repo, &t).unwrap_or(empty);
    let tree_id = merge_trees(repo, base_tree.as_ref(), &ours_tree, &theirs_tree)?;
    let tree = repo
        .find_tree(tree_id)
        .with_context(|| format!("could not read the merged tree {tree_id}"))?;
    let sig = store::signature(repo, crate::timefmt::now())?;
    let msg = "merge handoffs\n\nEach device owns its own file; the newest handoff wins where a device wrote on both sides.\n";
    repo.commit(None, &sig, &sig, msg, &tree, &[&o, &t])
        .with_context(|| format!("could not write the merge commit of tree {tree_id}"))
}

/// Three-way merge of device files. A device changed on one side only takes that side
/// (deletions included); changed on both, the handoff with the newer timestamp wins; a deletion
/// on one side loses to a modification on the other. Only valid device files
/// ([`store::device_files`]) take part: anything else on either side is skipped and recorded, and
/// the result is always a tree git accepts.
pub fn merge_trees(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    ours: &Tree<'_>,
    theirs: &Tree<'_>,
) -> Result<Oid> {
    let b = base.map(|t| store::device_files(repo, t)).unwrap_or_default();
    let o = store::device_files(repo, ours);
    let t = store::device_files(repo, theirs);
    let mut devices: Vec<&String> = o.keys().chain(t.keys()).collect();
    devices.sort();
    devices.dedup();
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
    // Recorded keys are only ever added: the union of both sides.
    let mut keys = store::key_files(repo, ours);
    for (k, id) in store::key_files(repo, theirs) {
        keys.entry(k).or_insert(id);
    }
    store::write_ref_tree(repo, &merged, &keys)
}

/// When `a` and `b` are handoffs of device `device` by two different authors: the blob to keep
/// (the older one) and the other rewritten under its author-qualified device name.
fn two_authors(repo: &Repository, device: &str, a: Oid, b: Oid) -> Result<Option<(Oid, (String, Oid))>> {
    let parse = |id: Oid| store::read_handoff(repo, id).ok();
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
    let x_first = x.timestamp < y.timestamp;
    let (keep, mut other, who) = if x_first { (a, y, py) } else { (b, x, px) };
    let user = who.handle().unwrap_or_else(|| "other".into());
    // The file name, not the header, says whose device this is.
    let Some(qualified) = crate::device::sanitize(&format!("{device}-{user}")) else {
        return Ok(None);
    };
    other.device = qualified;
    let mut text = crate::handoff::format::render(&other).into_bytes();
    if let (Some(k), Ok(old)) = (
        crate::crypt::key(),
        crate::untrusted::blob(
            repo,
            if x_first { b } else { a },
            crate::untrusted::Object::Note,
            &format_args!("the note of {device}"),
        ),
    ) {
        // It was readable, so encrypted to our key: it stays encrypted under its new name.
        if crate::crypt::is_encrypted(old.content()) {
            text = k.encrypt(crate::crypt::Purpose::Note, &text)?;
        }
    }
    let blob = repo
        .blob(&text)
        .with_context(|| format!("could not write the note of {device} moved to {}", other.device))?;
    Ok(Some((keep, (other.device, blob))))
}

/// The blob whose handoff is newer; ties and unparseable files fall back to the larger id so
/// every device picks the same one.
fn newer(repo: &Repository, a: Oid, b: Oid) -> Oid {
    let ts = |id: Oid| store::read_handoff(repo, id).ok().map(|h| h.timestamp);
    match (ts(a), ts(b)) {
        (Some(x), Some(y)) if x != y => {
            if x > y {
                a
            } else {
                b
            }
        }
        (Some(_), None) => a,
        (None, Some(_)) => b,
        _ => a.max(b),
    }
}

/// Whether the local ref holds commits the remote has not seen.
pub fn pending(repo: &Repo, remote: &str) -> bool {
    let refname = &repo.settings.refname;
    let local = tip_of(&repo.git, refname).ok().flatten().map(|c| c.id());
    let remote_tip = tip_of(&repo.git, &refs::tracking(refname, remote))
        .ok()
        .flatten()
        .map(|c| c.id());
    match (local, remote_tip) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(l), Some(r)) => l != r && !repo.git.graph_descendant_of(r, l).unwrap_or(false),
    }
}

/// Fetch, merge, push, and on rejection go round again (a bounded number of times, with a
/// little jitter so racing devices do not collide in lockstep). Stops at the first step that
/// cannot reach the remote: a hung remote costs one deadline, not one per step.
pub fn sync(repo: &Repo, remote: &str, deadline: Deadline, lock_wait: Duration) -> Result<Report> {
    sync_with(repo, remote, &[], deadline, lock_wait)
}

/// [`sync`], pushing `extra` refs in the same `git push` as the handoff ref.
pub fn sync_with(
    repo: &Repo,
    remote: &str,
    extra: &[crate::git::Extra],
    deadline: Deadline,
    lock_wait: Duration,
) -> Result<Report> {
    let mut report = Report {
        remote: remote.to_string(),
        fetched: Fetched::Ok,
        pushed: Pushed::UpToDate,
        pending: false,
    };
    for round in 0..PUSH_ROUNDS {
        report.fetched = fetch(repo, remote, deadline)?;
        match report.fetched {
            Fetched::Ok => integrate(repo, remote, lock_wait)?,
            Fetched::NoRemoteRef => {}
            Fetched::TimedOut | Fetched::Failed(_) => break,
        }
        report.pushed = push_with(repo, remote, deadline, extra)?;
        if report.pushed != Pushed::Rejected || deadline.passed() {
            break;
        }
        std::thread::sleep(jitter(round).min(deadline.remaining()));
    }
    report.pending = pending(repo, remote);
    Ok(report)
}

/// 10–80 ms, growing with the round; the low bits of the clock are randomness enough here.
fn jitter(round: usize) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(10 + u64::from(nanos % 40) + 10 * round as u64)
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
            let merged = repo.find_tree(merge_trees(&repo, Some(&bt), &ot, &tt).unwrap()).unwrap();
            let got: BTreeMap<String, i64> = crate::store::entries_of(&repo, &merged)
                .unwrap()
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
            let swapped = merge_trees(&repo, Some(&bt), &tt, &ot).unwrap();
            prop_assert_eq!(swapped, merged.id());
        }
    }

    fn failed(stdout: &str, stderr: &str) -> GitOutput {
        use std::os::unix::process::ExitStatusExt;
        GitOutput {
            status: Some(std::process::ExitStatus::from_raw(1 << 8)),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn push_failures_are_told_apart() {
        let hook = failed(
            "To /r.git\n!\tabc:refs/convosync/handoffs\t[remote rejected] (pre-receive hook declined)\nDone\n",
            "remote: refs/convosync/* is not allowed on this server\nerror: failed to push some refs to '/r.git'\n",
        );
        assert_eq!(
            classify_push(&hook),
            Pushed::Refused(
                "refs/convosync/* is not allowed on this server; pre-receive hook declined".into()
            )
        );
        let behind = failed(
            "To /r.git\n!\tabc:refs/convosync/handoffs\t[rejected] (fetch first)\nDone\n",
            "error: failed to push some refs to '/r.git'\nhint: Updates were rejected because the remote contains work\n",
        );
        assert_eq!(classify_push(&behind), Pushed::Rejected);
        let race = failed(
            "!\tabc:refs/convosync/handoffs\t[remote rejected] (failed to update ref)\n",
            "",
        );
        assert_eq!(classify_push(&race), Pushed::Rejected);
        let gone = failed("", "fatal: '/gone.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n");
        assert!(
            matches!(classify_push(&gone), Pushed::Failed(m) if m.contains("does not appear to be a git repository"))
        );
        // `save` pushes the user's branch without --porcelain: the same words, on stderr only.
        let branch_behind = failed(
            "",
            "To /r.git\n ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs to '/r.git'\n",
        );
        assert_eq!(classify_push(&branch_behind), Pushed::Rejected);
        let r = Report {
            remote: "origin".into(),
            fetched: Fetched::Ok,
            pushed: classify_push(&hook),
            pending: true,
        };
        let p = r.problem().unwrap();
        assert!(
            p.contains("refused") && p.contains("not allowed on this server") && !p.contains("queued"),
            "{p}"
        );
    }

    #[test]
    fn report_lines() {
        let r = Report {
            remote: "origin".into(),
            fetched: Fetched::TimedOut,
            pushed: Pushed::UpToDate,
            pending: true,
        };
        assert_eq!(
            r.problem().unwrap(),
            "origin did not answer in time; the handoff is queued and goes out with the next sync"
        );
        let ok = Report {
            remote: "origin".into(),
            fetched: Fetched::Ok,
            pushed: Pushed::Ok,
            pending: false,
        };
        assert_eq!(ok.problem(), None);
    }
}
