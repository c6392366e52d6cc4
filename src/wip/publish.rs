//! What is published and listed: every device's latest snapshot as this clone sees it, fetching
//! them, and pushing this device's own when the push setting says so and it would publish no
//! commit the remote lacks.

use anyhow::{bail, Context, Result};
use git2::{Commit, Oid, Repository};

use super::commit::Snapshot;
use super::sealed;
use crate::git::Deadline;
use crate::refs;
use crate::repo::Repo;
use crate::store::tip_of;
use crate::untrusted::Skipped;

/// Every device's newest snapshot: remote-tracking copies, and local ones not fetched from there,
/// with the refs and objects that were skipped.
pub fn list(repo: &Repo) -> Result<(Vec<Snapshot>, Skipped)> {
    let mut out: Vec<Snapshot> = Vec::new();
    let mut skipped = Skipped::default();
    let tracking = repo.remote_name().map(|r| refs::wip_tracking_prefix(&r));
    for prefix in tracking.into_iter().chain([refs::WIP_PREFIX.to_string()]) {
        let refs = repo
            .git
            .references_glob(&format!("{prefix}*"))
            .with_context(|| format!("could not list {prefix}*"))?;
        for r in refs.flatten() {
            let Ok(name) = r.name() else { continue };
            let device = name.trim_start_matches(&prefix).to_string();
            // A ref name pushed by anyone: only a valid device id is ever shown or used.
            if !crate::device::is_valid(&device) {
                skipped.note(format_args!(
                    "skipped the snapshot ref {} (not a device name)",
                    crate::untrusted::quoted(name.as_bytes())
                ));
                continue;
            }
            let Some(id) = r.resolve().ok().and_then(|r| r.target()) else {
                continue;
            };
            let c = match crate::untrusted::commit(&repo.git, id) {
                Ok(c) => c,
                Err(e) => {
                    let at = format_args!("the snapshot ref {}", crate::untrusted::quoted(name.as_bytes()));
                    skipped.refused(&at, &e);
                    continue;
                }
            };
            let snap = sealed::read(repo, &device, &c, &mut skipped);
            match out.iter_mut().find(|s| s.device == device) {
                Some(existing) if existing.time < snap.time => *existing = snap,
                Some(_) => {}
                None => out.push(snap),
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.time));
    Ok((out, skipped))
}

/// Lines for the session-start context about other devices' uncommitted work, each with the
/// device whose snapshot `wip apply` would bring here (the reader's way to say the command is
/// added where the line is shown), and the refs and objects skipped while reading them.
pub fn others_summary(repo: &Repo, me: &str) -> (Vec<(String, Option<String>)>, Skipped) {
    let (snaps, skipped) = list(repo).unwrap_or_default();
    let lines = snaps
        .into_iter()
        .filter(|s| s.offered_to(me))
        .map(|s| {
            let device = &s.device;
            if s.locked().is_some() {
                return (format!("{device} left an encrypted snapshot of uncommitted work that this device cannot read"), None);
            }
            let (n, base) = (s.files.len(), s.base_label());
            let plural = if n == 1 { "" } else { "s" };
            let branch = s.branch.as_deref().unwrap_or("a detached HEAD");
            let line =
                format!("{device} left uncommitted changes in {n} file{plural} on {branch} (base {base})");
            (line, Some(s.device))
        })
        .collect();
    (lines, skipped)
}

/// Fetch every device's wip ref.
pub fn fetch(repo: &Repo, remote: &str, deadline: Deadline) -> Result<bool> {
    let spec = refs::wip_fetch_refspec(repo.settings.notes_repo, &repo.settings.refname, remote);
    Ok(crate::git::fetch(repo.git.path(), remote, &[&spec], deadline)?.success())
}

/// Whether this device's snapshot `tip` goes to the remote without being asked: when it is
/// encrypted (unless `convosync.wipPush` is false), or when `convosync.wipPush` is true.
fn pushes_itself(repo: &Repo, tip: &Commit<'_>) -> bool {
    repo.settings.wip_push.unwrap_or_else(|| sealed::is_sealed(tip))
}

/// Whether this device's latest snapshot stays local under the push setting (`None`: there is
/// none).
pub fn stays_local(repo: &Repo, device: &str) -> Option<bool> {
    let tip = tip_of(&repo.git, &refs::wip(device)).ok().flatten()?;
    Some(!pushes_itself(repo, &tip))
}

/// This device's wip ref as one more ref for the handoff push ([`crate::sync::exchange`]): `None`
/// when there is none, the push setting keeps it local (unless `asked`: the user asked for it,
/// `wip save --push`), or `remote` has it already (as last seen here). An error when the
/// snapshot would publish a commit the remote does not have.
pub fn push_extra(repo: &Repo, remote: &str, device: &str, asked: bool) -> Result<Option<crate::git::Extra>> {
    let Some(tip) = tip_of(&repo.git, &refs::wip(device))? else {
        return Ok(None);
    };
    if !asked && !pushes_itself(repo, &tip) {
        return Ok(None);
    }
    let tracking = format!("{}{device}", refs::wip_tracking_prefix(remote));
    if tip_of(&repo.git, &tracking).ok().flatten().map(|c| c.id()) == Some(tip.id()) {
        return Ok(None);
    }
    if let Some(local) = unpublished(&repo.git, remote, tip.id())? {
        bail!(
            "not pushed: the snapshot would publish commit {} that {remote} does not have (`convosync wip save` makes a new one)",
            crate::refs::short_id(&local.to_string())
        );
    }
    Ok(Some(crate::git::Extra {
        refname: refs::wip_remote_prefix(repo.settings.notes_repo, &repo.settings.refname) + device,
        tip: tip.id(),
        tracking,
    }))
}

/// Push this device's wip ref (each device owns its own, so a forced update is safe), when
/// [`pushes_itself`] says so or `asked` (the user asked for it: `wip save --push`).
pub fn push(repo: &Repo, remote: &str, device: &str, asked: bool, deadline: Deadline) -> Result<bool> {
    let Some(e) = push_extra(repo, remote, device, asked)? else {
        return Ok(true);
    };
    let spec = format!("+{}:{}", e.tip, e.refname);
    let out = crate::git::run(
        repo.git.path(),
        ["push", "--porcelain", "--no-verify", "--quiet", remote, &spec],
        deadline,
    )?;
    if out.success() {
        // Remember that the remote has it, so the next push skips it.
        let _ = repo
            .git
            .reference(&e.tracking, e.tip, true, "convosync: wip pushed");
    }
    Ok(out.success())
}

/// A commit other than a snapshot that pushing `tip` would send to `remote`: one reachable from
/// it but from none of the remote's branches or wip refs as last seen here.
pub(super) fn unpublished(git: &Repository, remote: &str, tip: Oid) -> Result<Option<Oid>> {
    let walking = || format!("could not walk the history of snapshot {tip}");
    let mut walk = git.revwalk().with_context(walking)?;
    walk.push(tip).with_context(walking)?;
    let mut hidden = remote_tips(git, remote)?;
    hidden.extend(tips(git, &format!("{}*", refs::wip_tracking_prefix(remote)))?);
    for t in hidden {
        walk.hide(t)
            .with_context(|| format!("could not walk the history of snapshot {tip} past {t}"))?;
    }
    for id in walk {
        let id = id.with_context(walking)?;
        let c = git
            .find_commit(id)
            .with_context(|| format!("could not read commit {id} in the history of snapshot {tip}"))?;
        if !c.message_bytes().windows(18).any(|w| w == b"\nConvosync-Device:") {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Tips of `remote`'s branches as this clone last saw them.
pub(super) fn remote_tips(git: &Repository, remote: &str) -> Result<Vec<Oid>> {
    tips(git, &format!("refs/remotes/{remote}/*"))
}

/// The commits the refs matching `glob` point to.
fn tips(git: &Repository, glob: &str) -> Result<Vec<Oid>> {
    Ok(git
        .references_glob(glob)
        .with_context(|| format!("could not list {glob}"))?
        .flatten()
        .filter_map(|r| r.peel_to_commit().ok())
        .map(|c| c.id())
        .collect())
}
