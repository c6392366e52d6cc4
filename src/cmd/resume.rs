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
                    eprintln!("convosync: {}", crate::untrusted::line(&p));
                }
            }
            None => eprintln!("convosync: no remote; showing local handoffs only"),
        }
    }
    if args.pull && !args.offline {
        match fast_forward(&repo, args.net.timeout) {
            Ok(msg) => println!("{msg}"),
            Err(e) => eprintln!("convosync: {e:#}"),
        }
    }
    let who = crate::team::Me::load(&repo);
    let me = crate::team::my_device_as(&repo, &who)?;
    let (_, branch) = repo.head_info();
    let handoffs = gather(&repo, &me, branch.as_deref(), args.all)?;
    // The same split as at session start: the user's own devices in full, teammates in brief.
    let (handoffs, teammates) = crate::team::split(handoffs, &who);
    let entries = Store::new(&repo.git, &repo.settings.refname).entries()?;
    let claims = context::claims(entries.iter().map(|e| (e.device.as_str(), e.claimed.as_deref())));
    let now = crate::timefmt::now();
    if handoffs.is_empty() {
        println!("No handoffs from your other devices yet. They appear here after a session on another machine saves one.");
    } else {
        let shown: Vec<Shown> = handoffs
            .into_iter()
            .map(|h| Shown {
                notes: claims
                    .get(&h.device)
                    .cloned()
                    .into_iter()
                    .chain(context::code_notes(&repo, &h, branch.as_deref()))
                    .collect(),
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
    }
    if !teammates.is_empty() {
        print!("{}", crate::team::render_teammates(&teammates, now));
        println!("(Not yours: `convosync history --device NAME` shows a teammate's note in full; `convosync status` shows who counts as you.)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Handoffs to show: the ref's, plus the original plugin's file for devices the ref lacks.
pub fn gather(repo: &Repo, me: &str, branch: Option<&str>, include_me: bool) -> Result<Vec<Handoff>> {
    let store = Store::new(&repo.git, &repo.settings.refname);
    let entries = store.entries()?;
    let mut devices: Vec<String> = entries.iter().map(|e| e.device.clone()).collect();
    let mut handoffs = context::others(entries, if include_me { "" } else { me }, branch);
    // The legacy file arrives with the branch: as untrusted as the ref, and read as the
    // repository's content. Whose each note is, `team::split` decides as for the ref's notes.
    let legacy_text = match repo.workdir().map(legacy::read_from).transpose() {
        Ok(text) => text.flatten().unwrap_or_default(),
        Err(e) => {
            eprintln!(
                "convosync: {LEGACY_PATH} not read: {}",
                crate::untrusted::line(&format!("{e:#}"))
            );
            String::new()
        }
    };
    for h in legacy::newest_per_device(&legacy::parse_legacy(&legacy_text))
        .into_iter()
        .filter_map(|h| {
            let mut h = crate::untrusted::handoff(h);
            h.device = crate::device::sanitize(&h.device)?;
            Some(h)
        })
    {
        if (include_me || h.device != me) && !devices.contains(&h.device) {
            devices.push(h.device.clone());
            handoffs.push(h);
        }
    }
    handoffs.sort_by(|a, b| {
        let same = |h: &Handoff| branch.is_some() && h.branch.as_deref() == branch;
        same(b).cmp(&same(a)).then(b.timestamp.cmp(&a.timestamp))
    });
    Ok(handoffs)
}

/// Fetch the current branch's upstream and fast-forward to it when that is safe: a clean
/// worktree and no local commits the upstream lacks. Anything else is left to the user.
fn fast_forward(repo: &Repo, timeout: f64) -> Result<String> {
    use anyhow::{bail, Context};
    let workdir = repo.workdir().context("bare repository: nothing to pull into")?;
    let head = repo.git.head().context("no commits yet")?;
    if !head.is_branch() {
        bail!("HEAD is detached; not pulling");
    }
    let name = head.shorthand().context("branch name is not UTF-8")?.to_string();
    let branch = repo
        .git
        .find_branch(&name, git2::BranchType::Local)
        .with_context(|| format!("could not read branch {name}"))?;
    let upstream = branch
        .upstream()
        .with_context(|| format!("{name} has no upstream; not pulling"))?;
    let remote = repo
        .git
        .branch_upstream_remote(head.name().context("branch name is not UTF-8")?)?;
    let remote = remote.as_str().context("remote name is not UTF-8")?.to_string();
    let up_ref = upstream
        .get()
        .name()
        .context("upstream name is not UTF-8")?
        .to_string();
    let src = repo
        .git
        .config()?
        .get_string(&format!("branch.{name}.merge"))
        .context("no branch.<name>.merge")?;
    let out = crate::git::fetch(
        repo.git.path(),
        &remote,
        &[&format!("+{src}:{up_ref}")],
        deadline(timeout),
    )?;
    if !out.success() {
        bail!("could not fetch {name} from {remote}: {}", out.brief_error());
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false);
    if !repo.git.statuses(Some(&mut opts))?.is_empty() {
        bail!("the worktree has uncommitted changes; not pulling {name}");
    }
    let local = head.target().context("no commit")?;
    let target = repo
        .git
        .refname_to_id(&up_ref)
        .with_context(|| format!("could not resolve {up_ref}"))?;
    let (ahead, behind) = repo
        .git
        .graph_ahead_behind(local, target)
        .with_context(|| format!("could not compare {name} at {local} with {up_ref} at {target}"))?;
    if behind == 0 {
        return Ok(format!("{name} is up to date with {remote}"));
    }
    if ahead > 0 {
        bail!("{name} and {remote}/{name} have diverged; merge or rebase yourself");
    }
    // The user asked for this: `git merge --ff-only` moves the branch and the worktree together,
    // through the one runner (its deadline, `LC_ALL=C`, none of the user's git hooks).
    let out = crate::git::run_in(
        workdir,
        ["merge", "--ff-only", "--quiet", &up_ref],
        deadline(timeout),
    )
    .context("could not run git merge")?;
    if out.timed_out() {
        bail!("git merge --ff-only did not finish in time and was stopped; check `git status` on {name}");
    }
    if !out.success() {
        bail!("git merge --ff-only failed: {}", out.brief_error());
    }
    Ok(format!(
        "✓ {name} fast-forwarded {behind} commit(s) from {remote}"
    ))
}
