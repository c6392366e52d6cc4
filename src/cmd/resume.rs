//! `convosync resume`: the other devices' newest handoffs, after a sync.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::ResumeArgs;
use crate::handoff::legacy;
use crate::handoff::Handoff;
use crate::notes::{Notes, Reader};
use crate::repo::{Repo, LEGACY_PATH};
use crate::store::{Note, Store};

pub fn run(dir: &Path, args: ResumeArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    if !args.offline {
        match repo.remote_name() {
            Some(remote) => {
                let report = crate::sync::sync(&repo, &remote, deadline(args.net.timeout), CLI_LOCK_WAIT);
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
    // Read once, from the ref itself (so invalid entries are named every time): this device's id
    // and the view both come from these notes.
    let read = Store::new(&repo.git, &repo.settings.refname).entries()?;
    let (entries, mut skipped) = (read.items, read.warnings.skipped);
    let notes: Vec<Note> = entries.iter().filter_map(Note::of).collect();
    let me = crate::team::my_device_among(&who, &notes)?;
    let legacy = legacy_notes(&repo);
    let now = crate::timefmt::now();
    // The same view as at session start: the user's own devices in full, teammates in brief.
    let view =
        Notes::gather(&repo, &who, &me, notes, legacy, args.all, now).render(&repo, Reader::Command, true);
    if view.own > 0 {
        println!(
            "convosync: {} handoff(s) from other devices (you are {me})",
            view.own
        );
        print!("{}", view.handoffs);
    } else if view.unreadable.is_empty() {
        println!("No handoffs from your other devices yet. They appear here after a session on another machine saves one.");
    } else {
        println!("No handoff from your other devices could be read here.");
    }
    print!("{}", view.blocks);
    if view.teammates > 0 {
        println!("(Not yours: `convosync history --device NAME` shows a teammate's note in full; `convosync status` shows who counts as you.)");
    }
    // On stderr, as every command names the entries it skipped and the notes it could not read.
    skipped.extend(view.skipped);
    super::tell(&skipped, &view.unreadable);
    Ok(ExitCode::SUCCESS)
}

/// The original plugin's file in the worktree: the newest note of each device it holds. It
/// arrives with the branch, so it is as untrusted as the ref, and read as the repository's
/// content (no symlinks, bounded); whose each note is, the one view decides as for the ref's.
fn legacy_notes(repo: &Repo) -> Vec<Handoff> {
    let text = match repo.workdir().map(legacy::read_from).transpose() {
        Ok(text) => text.flatten().unwrap_or_default(),
        Err(e) => {
            let why = crate::untrusted::line(&format!("{e:#}")).into_owned();
            eprintln!("convosync: {LEGACY_PATH} not read: {why}");
            return Vec::new();
        }
    };
    legacy::newest_per_device(&legacy::parse_legacy(&text))
        .into_iter()
        .filter_map(|h| {
            let mut h = crate::untrusted::handoff(h);
            h.device = crate::device::sanitize(&h.device)?;
            Some(h)
        })
        .collect()
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
    let refname = head.name().context("branch name is not UTF-8")?;
    let name = head.shorthand().context("branch name is not UTF-8")?;
    // What `git pull` would read: the upstream's remote, its branch there, its tracking ref.
    let upstream = |b: Result<git2::Buf, git2::Error>| -> Result<String> {
        let b = b.with_context(|| format!("{name} has no upstream; not pulling"))?;
        Ok(b.as_str().context("upstream name is not UTF-8")?.to_string())
    };
    let remote = upstream(repo.git.branch_upstream_remote(refname))?;
    let src = upstream(repo.git.branch_upstream_merge(refname))?;
    let up_ref = upstream(repo.git.branch_upstream_name(refname))?;
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
        false,
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
