//! `convosync resume`: the other devices' newest handoffs, after a sync.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::ResumeArgs;
use crate::context::{self, Shown};
use crate::handoff::legacy;
use crate::handoff::Handoff;
use crate::repo::{Repo, LEGACY_PATH};
use crate::store::Store;

pub fn run(dir: &Path, args: ResumeArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    if !args.offline {
        match repo.remote_name() {
            Some(remote) => {
                let report = crate::sync::sync(&repo, &remote, deadline(args.net.timeout), CLI_LOCK_WAIT)?;
                if let Some(p) = report.problem() {
                    eprintln!("convosync: {p}");
                }
            }
            None => eprintln!("convosync: no remote; showing local handoffs only"),
        }
    }
    let me = crate::team::my_device(&repo)?;
    let (_, branch) = repo.head_info();
    let handoffs = gather(&repo, &me, branch.as_deref(), args.all)?;
    if handoffs.is_empty() {
        println!("No handoffs from other devices yet. They appear here after a session on another machine saves one.");
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::timefmt::now();
    let shown: Vec<Shown> = handoffs
        .into_iter()
        .map(|h| Shown {
            notes: context::code_notes(&repo, &h, branch.as_deref()),
            handoff: h,
        })
        .collect();
    println!(
        "convosync: {} handoff(s) from other devices (you are {me})",
        shown.len()
    );
    if let Some(b) = context::behind_upstream(&repo) {
        println!("Note: {b}");
    }
    for s in &shown {
        print!("{}", context::render_one(s, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// Handoffs to show: the ref's, plus the original plugin's file for devices the ref lacks.
pub fn gather(repo: &Repo, me: &str, branch: Option<&str>, include_me: bool) -> Result<Vec<Handoff>> {
    let store = Store::new(&repo.git, &repo.settings.refname);
    let entries = store.entries()?;
    let mut devices: Vec<String> = entries.iter().map(|e| e.device.clone()).collect();
    let mut handoffs = context::others(entries, if include_me { "" } else { me }, branch);
    if let Some(w) = repo.workdir() {
        if let Ok(text) = std::fs::read_to_string(w.join(LEGACY_PATH)) {
            for h in legacy::newest_per_device(&legacy::parse_legacy(&text)) {
                if (include_me || h.device != me) && !devices.contains(&h.device) {
                    devices.push(h.device.clone());
                    handoffs.push(h);
                }
            }
        }
    }
    handoffs.sort_by(|a, b| {
        let same = |h: &Handoff| branch.is_some() && h.branch.as_deref() == branch;
        same(b).cmp(&same(a)).then(b.timestamp.cmp(&a.timestamp))
    });
    Ok(handoffs)
}
