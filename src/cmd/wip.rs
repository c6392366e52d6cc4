//! `convosync wip list|save|show|diff|apply`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::{WipAction, WipArgs};
use crate::repo::Repo;
use crate::wip::{self, Outcome};

pub fn run(dir: &Path, args: WipArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let remote = repo.remote_name();
    let net = || deadline(30.0);
    match args.action.unwrap_or(WipAction::List) {
        WipAction::Save => return save(&repo),
        WipAction::List => {
            if let Some(r) = &remote {
                wip::fetch(&repo, r, net())?;
            }
            let now = crate::timefmt::now();
            let snaps = wip::list(&repo)?;
            if snaps.is_empty() {
                println!("No device has shared uncommitted work yet (`convosync wip save` does).");
            }
            for s in snaps {
                println!(
                    "{:<20} {:>3} file(s)  {:<20} base {}  {}",
                    s.device,
                    s.files.len(),
                    s.branch.as_deref().unwrap_or("(detached)"),
                    s.base
                        .map(|b| b.to_string()[..7].to_string())
                        .unwrap_or_else(|| "?".into()),
                    crate::timefmt::ago(s.time, now)
                );
            }
        }
        WipAction::Show { device } => {
            let s = find(&repo, &device)?;
            for f in &s.files {
                println!("{f}");
            }
        }
        WipAction::Diff { device } => {
            let s = find(&repo, &device)?;
            crate::term::page(&wip::patch(&repo, &s)?);
        }
        WipAction::Apply { device, force } => {
            if let Some(r) = &remote {
                wip::fetch(&repo, r, net())?;
            }
            let _lock = repo.lock(CLI_LOCK_WAIT)?;
            let applied = wip::apply(&repo, &device, force)?;
            for f in &applied.written {
                if !applied.conflicts.iter().any(|c| &c.path == f) {
                    println!("updated {f}");
                }
            }
            for f in &applied.deleted {
                println!("deleted {f}");
            }
            for c in &applied.conflicts {
                if c.markers {
                    println!("CONFLICT {} ({}; conflict markers written)", c.path, c.reason);
                } else {
                    println!("CONFLICT {} ({}; kept the local version)", c.path, c.reason);
                }
            }
            if applied.written.is_empty() && applied.deleted.is_empty() && applied.conflicts.is_empty() {
                println!("nothing to apply: this worktree already has {device}'s changes");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn find(repo: &Repo, device: &str) -> Result<wip::Snapshot> {
    wip::list(repo)?
        .into_iter()
        .find(|s| s.device == device)
        .with_context(|| format!("no snapshot from {device} (see `convosync wip list`)"))
}

/// Snapshot and push; shared with `save --wip`.
pub fn save(repo: &Repo) -> Result<ExitCode> {
    let me = crate::team::my_device(repo)?;
    let outcome = {
        let _lock = repo.lock(CLI_LOCK_WAIT)?;
        wip::snapshot(repo, &me, repo.settings.wip_limit)?
    };
    match &outcome {
        Outcome::Saved { files, skipped } => {
            println!(
                "✓ snapshot of {} uncommitted file(s) saved for your other devices",
                files.len()
            );
            for s in skipped {
                println!("  skipped {s} (looks like a secret)");
            }
        }
        Outcome::Clean => println!("✓ no uncommitted changes to share"),
        Outcome::Unchanged => println!("✓ snapshot already up to date"),
        Outcome::TooLarge { bytes, limit } => {
            println!(
                "skipped: {:.1} MB of changes exceed the {:.1} MB limit (git config convosync.wipLimit)",
                *bytes as f64 / 1048576.0,
                *limit as f64 / 1048576.0
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some(r) = repo.remote_name() {
        if wip::push(repo, &r, &me, deadline(30.0))? {
            println!("✓ pushed to {r}");
        } else {
            println!("could not push the snapshot to {r}; `convosync wip save` again later");
        }
    }
    Ok(ExitCode::SUCCESS)
}
