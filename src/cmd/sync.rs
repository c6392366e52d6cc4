//! `convosync sync`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::NetArgs;
use crate::repo::Repo;
use crate::sync::{Fetched, Pushed};

pub fn run(dir: &Path, args: NetArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let remote = repo.remote_name().with_context(|| match &repo.settings.remote {
        Some(r) => format!("convosync.remote is {r:?} but this repository has no remote of that name (see `git remote -v`)"),
        None => "this repository has no remote named origin; add one with `git remote add origin <url>` (handoffs stay local until then)".to_string(),
    })?;
    let report = crate::sync::sync(&repo, &remote, deadline(args.timeout), CLI_LOCK_WAIT);
    let fetched = match &report.fetched {
        Fetched::Ok => format!("fetched handoffs from {remote}"),
        Fetched::NoRemoteRef => format!("{remote} has no handoffs yet"),
        Fetched::TimedOut => format!("{remote} did not answer within {}s", args.timeout),
        Fetched::Failed(m) => format!("could not fetch from {remote}: {}", crate::untrusted::line(m)),
    };
    println!("{fetched}");
    if let Some(m) = &report.unmerged {
        let (refname, why) = (&repo.settings.refname, crate::untrusted::line(m));
        println!("could not merge them into {refname}: {why}");
    }
    if let Some(line) = crate::sync::take_restored(&repo) {
        println!("{line}");
    }
    match &report.pushed {
        Pushed::Ok => println!("pushed handoffs to {remote}"),
        Pushed::UpToDate => println!("nothing to push"),
        Pushed::Rejected => println!("{remote} kept changing; run sync again"),
        Pushed::Refused(m) => println!(
            "{remote} refused the handoff ref: {m}\nThe server does not accept refs/convosync/*; ask its admin to allow them, or set convosync.remote to another remote"
        ),
        Pushed::TimedOut => println!("push to {remote} timed out"),
        Pushed::Failed(m) => println!("could not push to {remote}: {}", crate::untrusted::line(m)),
    }
    let failed = !report.reachable() || report.pending || report.unmerged.is_some();
    if report.pending && !matches!(report.pushed, Pushed::Refused(_)) {
        println!("handoffs are waiting to be pushed; they will go with the next sync");
    }
    Ok(ExitCode::from(u8::from(failed)))
}
