//! `convosync generate-handoff` and `convosync save-handoff`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::SaveHandoffArgs;
use crate::draft::{self, Outcome};
use crate::repo::Repo;

/// Print what Claude needs to write a draft: where, and in which sections.
pub fn generate(dir: &Path) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let path = repo.draft_path()?;
    // No one is asked to write where the repository put a symlink or a file of its own.
    if let Some(f) = draft::foreign(&repo, || None) {
        return Err(f.into());
    }
    repo.ensure_excluded()?;
    println!("{}", draft::instructions(&draft::template(&repo)?, &path));
    Ok(ExitCode::SUCCESS)
}

pub fn save(dir: &Path, args: SaveHandoffArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    // The lock is held for the commit alone.
    let origin = draft::Origin::of_command(args.session.as_deref());
    let outcome = draft::commit(&repo, &origin, &repo.lock(CLI_LOCK_WAIT)?)?;
    match outcome {
        Outcome::NoDraft => anyhow::bail!(
            "no handoff draft at {}; run `convosync generate-handoff` to see what to write",
            repo.draft_path()?.display()
        ),
        Outcome::AlreadyCommitted { handoff } => println!(
            "handoff from {} was already committed; removed the leftover draft",
            handoff.device
        ),
        Outcome::Committed {
            handoff,
            commit,
            redacted,
        } => {
            let (device, refname) = (&handoff.device, &repo.settings.refname);
            let id = crate::refs::short_id(&commit.to_string()).to_string();
            println!("handoff from {device} committed to {refname} ({id})");
            if redacted > 0 {
                println!("redacted {redacted} secret-looking value(s)");
            }
        }
    }
    if !args.no_push {
        push_or_queue(&repo, deadline(args.net.timeout), "pushed to");
    }
    Ok(ExitCode::SUCCESS)
}

/// Sync after a local commit; an unreachable remote is not an error (the handoff is queued).
/// Says `{pushed} {remote}` on success (`save` names what it pushed, as it pushes more than one
/// thing).
pub fn push_or_queue(repo: &Repo, deadline: crate::git::Deadline, pushed: &str) {
    let Some(remote) = repo.remote_name() else {
        println!(
            "no remote to push to; the handoff stays local (add one with `git remote add origin <url>`)"
        );
        return;
    };
    let report = crate::sync::sync(repo, &remote, deadline, super::CLI_LOCK_WAIT);
    match report.problem() {
        Some(p) => println!("{}", crate::untrusted::line(&p)),
        None => println!("{pushed} {remote}"),
    }
}
