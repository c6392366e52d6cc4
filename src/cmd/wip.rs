//! `convosync wip list|save|show|diff|apply`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::{Sub, WipAction};
use crate::repo::Repo;
use crate::wip::{self, Outcome};

/// Time allowed for fetching or pushing wip refs from the command line.
const NET_SECS: f64 = 30.0;

pub fn run(dir: &Path, args: Sub<WipAction>) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    match args.action.unwrap_or(WipAction::List) {
        WipAction::Save { push } => return save(&repo, push),
        WipAction::List => list(&repo)?,
        WipAction::Show { device } => show(&repo, device.as_deref())?,
        WipAction::Diff { device } => diff(&repo, device.as_deref())?,
        WipAction::Apply {
            device,
            force,
            allow_steering,
        } => apply(&repo, device.as_deref(), force, allow_steering)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `wip list`: every device's latest snapshot.
fn list(repo: &Repo) -> Result<()> {
    refresh(repo);
    let me = crate::team::my_device(repo).unwrap_or_default();
    let now = crate::timefmt::now();
    let snaps = super::told_skipped(wip::list(repo)?);
    if snaps.is_empty() {
        println!("No device has shared uncommitted work yet (`convosync wip save` does).");
    } else {
        print!(
            "{}",
            super::header(&format!(
                "{:<20} {:>11}  {:<20} {}",
                "DEVICE", "FILES", "BRANCH", "BASE, SAVED"
            ))
        );
    }
    for s in snaps {
        if s.locked().is_some() {
            println!("encrypted snapshot from {}", s.device);
            continue;
        }
        let this = if s.device == me { " (this device)" } else { "" };
        let who = format!("{}{this}", s.device);
        println!(
            "{:<20} {:>3} file(s)  {:<20} base {}  {}",
            who,
            s.files.len(),
            crate::untrusted::line(s.branch.as_deref().unwrap_or("(detached)")),
            s.base_label(),
            crate::timefmt::ago(s.time, now)
        );
    }
    Ok(())
}

/// `wip show`: the files of a snapshot, and which of them steer tools.
fn show(repo: &Repo, device: Option<&str>) -> Result<()> {
    refresh(repo);
    let s = find(repo, device)?;
    let changes = wip::changes(repo, &s)?;
    if changes.is_empty() {
        println!("{} has no uncommitted changes in its latest snapshot", s.device);
    }
    for c in &changes {
        // Paths come from a tree anyone could push.
        let (kind, path) = (c.kind, crate::untrusted::line(&c.path));
        match c.steering {
            Some(why) => println!("{kind} {path}  [steers tools: {why}; applied only with --allow-steering]"),
            None => println!("{kind} {path}"),
        }
    }
    Ok(())
}

/// `wip diff`: a snapshot as a patch against its base.
fn diff(repo: &Repo, device: Option<&str>) -> Result<()> {
    refresh(repo);
    let s = find(repo, device)?;
    crate::term::page(&wip::patch(repo, &s)?);
    Ok(())
}

/// `wip apply`: bring a snapshot into this worktree and say what changed.
fn apply(repo: &Repo, device: Option<&str>, force: bool, allow_steering: bool) -> Result<()> {
    refresh(repo);
    let _lock = repo.lock(CLI_LOCK_WAIT)?;
    let snap = find(repo, device)?;
    let device = &snap.device;
    let applied = wip::apply(repo, &snap, force, allow_steering)?;
    for (verb, f) in &applied.done {
        println!("{verb} {f}");
    }
    for c in &applied.conflicts {
        let kept = if c.markers {
            "conflict markers written"
        } else {
            "kept the local version"
        };
        println!("CONFLICT {} ({}; {kept})", c.path, c.reason);
    }
    if applied.done.is_empty() && applied.conflicts.is_empty() {
        println!("nothing to apply: this worktree already has {device}'s changes");
    }
    Ok(())
}

/// Fetch every device's snapshot within the time limit; offline, say so and use the last copy.
fn refresh(repo: &Repo) {
    let Some(r) = repo.remote_name() else { return };
    match wip::fetch(repo, &r, deadline(NET_SECS)) {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            eprintln!("note: could not fetch snapshots from {r}; using the last fetched copies")
        }
    }
}

/// The named device's snapshot, or without a name the one other device with changes to offer;
/// an error when this device cannot read it.
fn find(repo: &Repo, device: Option<&str>) -> Result<wip::Snapshot> {
    let snaps = super::told_skipped(wip::list(repo)?);
    let snap = match device {
        Some(d) => snaps
            .into_iter()
            .find(|s| s.device == d)
            .with_context(|| format!("no snapshot from {d} (see `convosync wip list`)"))?,
        None => {
            let me = crate::team::my_device(repo)?;
            let mut offered: Vec<_> = snaps.into_iter().filter(|s| s.offered_to(&me)).collect();
            match offered.len() {
                0 => bail!("no other device has shared uncommitted work (see `convosync wip list`)"),
                1 => offered.remove(0),
                _ => {
                    let names: Vec<&str> = offered.iter().map(|s| s.device.as_str()).collect();
                    let names = names.join(", ");
                    bail!("several devices have shared uncommitted work; name one: {names}")
                }
            }
        }
    };
    if let Some(reason) = snap.locked() {
        bail!("{reason}");
    }
    Ok(snap)
}

/// Snapshot, and push when the snapshot pushes itself (encrypted, or `convosync.wipPush`) or
/// `push` asks; shared with `save --wip`.
pub fn save(repo: &Repo, push: bool) -> Result<ExitCode> {
    let me = crate::team::my_device(repo)?;
    let (outcome, skipped) = {
        let _lock = repo.lock(CLI_LOCK_WAIT)?;
        wip::snapshot(repo, &me)?
    };
    match outcome {
        Outcome::Saved(files) => println!(
            "✓ snapshot of {} uncommitted file(s) saved for your other devices",
            files.len()
        ),
        Outcome::Clean => println!("✓ no uncommitted changes to share"),
        Outcome::Unchanged => println!("✓ snapshot already up to date"),
        Outcome::TooLarge(bytes) => {
            let (mb, max) = (
                bytes as f64 / 1048576.0,
                repo.settings.wip_limit as f64 / 1048576.0,
            );
            println!(
                "skipped: {mb:.1} MB of changes exceed the {max:.1} MB limit (git config convosync.wipLimit)"
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    for s in skipped {
        println!("  left out {} ({})", s.path, s.reason);
    }
    if let Some(r) = repo.remote_name() {
        if !push && wip::stays_local(repo, &me) == Some(true) {
            println!("  kept on this device, not pushed (it is not encrypted): `convosync wip save --push` pushes it, `git config convosync.wipPush true` always, `convosync key init` encrypts it");
            return Ok(ExitCode::SUCCESS);
        }
        if wip::push(repo, &r, &me, push, deadline(NET_SECS))? {
            println!("✓ pushed the snapshot to {r}");
        } else {
            println!("could not push the snapshot to {r}; `convosync wip save` again later");
        }
    }
    Ok(ExitCode::SUCCESS)
}
