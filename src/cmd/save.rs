//! `convosync save [MESSAGE]`: the original plugin's primary command, made safe.
//!
//! It ensures a handoff (commits the draft, or asks for one), commits the user's code changes on
//! the current branch with MESSAGE, and pushes the branch and the handoff ref. Unlike the original
//! (`git add .`), it stages only tracked changes and new files that `.gitignore` does not exclude,
//! never convosync's own drafts and state, and refuses the files that the one secret-file policy
//! names ([`crate::secrets`], as wip snapshots do) unless named with `--include`. The commit goes through `git commit`, so the user's hooks (pre-commit) run; the
//! push is never forced.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use git2::{Status, StatusOptions};

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::SaveArgs;
use crate::draft::{self, Outcome};
use crate::git::GitOutput;
use crate::repo::Repo;
use crate::sync::Pushed;

/// Push the handoff ref (or queue it), saying that it was the handoff that went out.
fn push_handoff(repo: &Repo, args: &SaveArgs) {
    super::handoff::push_or_queue(repo, deadline(args.net.timeout), "✓ pushed the handoff to");
}

/// Exit code when a handoff draft must be written first (the slash command reacts to it).
pub const NEEDS_DRAFT: u8 = 3;

pub fn run(dir: &Path, args: SaveArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let workdir = repo
        .workdir()
        .context("this is a bare repository: there is no code to save")?
        .to_path_buf();
    let message = args.message.join(" ");

    // 1. The handoff.
    repo.ensure_excluded()?;
    if !commit_handoff(&repo, args.skip_handoff)? {
        return Ok(ExitCode::from(NEEDS_DRAFT));
    }

    // 1b. Uncommitted work for the other devices, when asked.
    if args.wip {
        super::wip::save(&repo, false)?;
        if message.trim().is_empty() {
            if !args.no_push {
                push_handoff(&repo, &args);
            }
            return Ok(ExitCode::SUCCESS);
        }
    }

    // 2. The code.
    let (branch_commit, branch) = repo.head_info();
    let detached = branch.is_none() && branch_commit.is_some();
    let committed = commit_code(&repo, &workdir, &args, &message, detached)?;
    if args.no_push {
        return Ok(ExitCode::SUCCESS);
    }

    // 3. Push the branch (never forced), then the handoff ref.
    let mut ok = true;
    if let (Some(branch), Some(remote)) = (&branch, repo.code_remote()) {
        if committed || ahead_of_upstream(&repo) {
            ok = push_branch(&repo, &workdir, branch, &remote)?;
        }
    }
    push_handoff(&repo, &args);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Commit the draft to the handoff ref and say so. `false` when there is no draft and one is
/// needed: at a terminal the person is told what to do; otherwise (Claude, through the slash
/// command) the template and where to write the draft are printed.
fn commit_handoff(repo: &Repo, skip_handoff: bool) -> Result<bool> {
    if skip_handoff {
        if let Some(f) = draft::foreign(repo, || None) {
            println!("→ {f}; saving code only");
            return Ok(true);
        }
    }
    // The lock is held for the commit alone.
    let outcome = draft::commit(repo, &draft::Origin::of_command(None), &repo.lock(CLI_LOCK_WAIT)?)?;
    match outcome {
        Outcome::Committed {
            handoff, redacted, ..
        } => {
            let (device, refname) = (&handoff.device, &repo.settings.refname);
            println!("✓ handoff from {device} saved to {refname}");
            if redacted > 0 {
                println!("  redacted {redacted} secret-looking value(s) from it");
            }
        }
        Outcome::AlreadyCommitted { .. } => println!("✓ handoff already saved"),
        Outcome::NoDraft if skip_handoff => println!("→ no handoff draft; saving code only"),
        Outcome::NoDraft if crate::term::interactive() => {
            let path = repo.draft_path()?;
            println!("No handoff draft at {}.", path.display());
            println!("  In Claude Code, run /convosync:save: Claude writes the draft, then saves.");
            println!(
                "  Or write it yourself (`convosync generate-handoff` shows the sections), then run save again."
            );
            println!("  Or save the code without a handoff: convosync save --skip-handoff \"message\"");
            return Ok(false);
        }
        Outcome::NoDraft => {
            println!("No handoff draft yet. Write one, then run save again.\n");
            println!(
                "{}",
                draft::instructions(&draft::template(repo)?, &repo.draft_path()?)
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// Stage what the plan allows and commit it with `message`; `false` when there was nothing to
/// commit.
fn commit_code(repo: &Repo, workdir: &Path, args: &SaveArgs, message: &str, detached: bool) -> Result<bool> {
    let plan = plan(repo, workdir, &args.include)?;
    for (p, why) in &plan.refused {
        let p = p.display();
        println!("  skipped {p} ({why}; pass --include {p} to commit it)");
    }
    if plan.stage.is_empty() && !plan.index_has_changes {
        println!("✓ no code changes to commit");
        return Ok(false);
    }
    if message.trim().is_empty() {
        bail!("give a commit message for your code changes: convosync save \"what you did\"");
    }
    if detached {
        bail!("HEAD is detached; check out a branch before saving code (the handoff is saved)");
    }
    stage(workdir, &plan.stage)?;
    let out = git_output(workdir, &["commit", "--quiet", "-m", message], true)?;
    if !out.success() {
        bail!(
            "git commit failed (a pre-commit hook may have refused it): {}",
            last_line(&out.stderr).unwrap_or_else(|| last_line(&out.stdout).unwrap_or_default())
        );
    }
    let head = git(workdir, &["log", "-1", "--format=%h %s"])?;
    println!("✓ committed {head}");
    for p in git(workdir, &["show", "--name-status", "--format=", "HEAD"])?.lines() {
        println!("    {p}");
    }
    Ok(true)
}

/// Push `branch` to `remote` (setting its upstream the first time); `false` when the push failed,
/// with the reason said.
fn push_branch(repo: &Repo, workdir: &Path, branch: &str, remote: &str) -> Result<bool> {
    let mut push = vec!["push", "--quiet"];
    if repo.git.revparse_single("@{upstream}").is_err() {
        push.extend(["--set-upstream", remote, branch]);
    }
    let out = git_output(workdir, &push, true)?;
    if out.success() {
        println!("✓ pushed {branch} to {remote}");
        return Ok(true);
    }
    match crate::sync::classify_push(&out) {
        Pushed::Rejected => println!(
            "✗ {remote} has commits on {branch} that you don't have: run `git pull --rebase`, then save again"
        ),
        Pushed::Refused(words) => println!("✗ {remote} refused {branch}: {words}"),
        _ => println!(
            "✗ could not push {branch}: {}",
            last_line(&out.stderr).unwrap_or_default()
        ),
    }
    Ok(false)
}

/// What to stage.
#[derive(Default)]
struct Plan {
    stage: Vec<PathBuf>,
    /// Secret files left out, each with why ([`crate::secrets`]).
    refused: Vec<(PathBuf, &'static str)>,
    /// Changes already staged by the user (committed as they are).
    index_has_changes: bool,
}

fn plan(repo: &Repo, workdir: &Path, include: &[PathBuf]) -> Result<Plan> {
    let include: Vec<PathBuf> = include.iter().map(|p| normalize(workdir, p)).collect();
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .renames_head_to_index(false);
    let statuses = repo
        .git
        .statuses(Some(&mut opts))
        .context("could not read the worktree status")?;
    let mut plan = Plan::default();
    for e in statuses.iter() {
        let Ok(path) = e.path() else { continue };
        let path = PathBuf::from(path);
        let s = e.status();
        if path.starts_with(".convosync") && path != Path::new(".convosync/template.md") {
            continue;
        }
        let staged = s.intersects(
            Status::INDEX_NEW
                | Status::INDEX_MODIFIED
                | Status::INDEX_DELETED
                | Status::INDEX_RENAMED
                | Status::INDEX_TYPECHANGE,
        );
        let unstaged = s.intersects(
            Status::WT_NEW
                | Status::WT_MODIFIED
                | Status::WT_DELETED
                | Status::WT_RENAMED
                | Status::WT_TYPECHANGE,
        );
        let secret = (!s.contains(Status::WT_DELETED) && !include.contains(&path))
            .then(|| crate::secrets::worktree_file(workdir, &path))
            .flatten();
        if let Some(why) = secret {
            if staged && !s.contains(Status::INDEX_DELETED) {
                let p = path.display();
                bail!("{p} is staged and looks like a secret ({why}); unstage it (git restore --staged {p}) or pass --include {p}");
            }
            plan.refused.push((path, why));
            continue;
        }
        plan.index_has_changes |= staged;
        if unstaged {
            plan.stage.push(path);
        }
    }
    Ok(plan)
}

fn normalize(workdir: &Path, p: &Path) -> PathBuf {
    // A relative path is the shell's, from the current directory (an absolute one stays as is).
    let abs = std::env::current_dir().map_or_else(|_| p.to_path_buf(), |c| c.join(p));
    abs.strip_prefix(workdir)
        .map_or_else(|_| p.to_path_buf(), Path::to_path_buf)
}

/// Whether HEAD has commits its upstream lacks (all of them when it has none).
fn ahead_of_upstream(repo: &Repo) -> bool {
    let Some(local) = repo.git.head().ok().and_then(|h| h.target()) else {
        return false;
    };
    match repo.git.revparse_single("@{upstream}") {
        Ok(up) => repo
            .git
            .graph_ahead_behind(local, up.id())
            .is_ok_and(|(a, _)| a > 0),
        Err(_) => true,
    }
}

/// `git add --all -- <paths>`; never called without paths (that would add everything).
fn stage(workdir: &Path, paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut args = ["--literal-pathspecs", "add", "--all", "--"]
        .map(std::ffi::OsStr::new)
        .to_vec();
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let out = git_output(workdir, &args, false)?;
    if !out.success() {
        bail!("git add failed: {}", last_line(&out.stderr).unwrap_or_default());
    }
    Ok(())
}

/// `git -C <dir> <args>` through [`crate::git`]'s runner (no prompts, `LC_ALL=C`, a deadline);
/// with `hooks`, a commit runs the user's pre-commit hook and a push their pre-push hook, as from
/// their shell. A run killed at the deadline says so on stderr.
fn git_output(dir: &Path, args: &[impl AsRef<std::ffi::OsStr>], hooks: bool) -> Result<GitOutput> {
    // Generous: a pre-commit hook may run a formatter or tests, a push may be large.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(10 * 60);
    let deadline = crate::git::Deadline::after(WAIT);
    let mut out = crate::git::run_in(dir, hooks, args, deadline)?;
    if out.timed_out() {
        let minutes = WAIT.as_secs() / 60;
        out.stderr
            .push_str(&format!("\ngit did not finish within {minutes} minutes\n"));
    }
    Ok(out)
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = git_output(dir, args, true)?;
    if !out.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            last_line(&out.stderr).unwrap_or_default()
        );
    }
    Ok(out.stdout.trim_end().to_string())
}

/// The last non-blank line of git's output, cleaned: a server's hooks and the user's write it.
fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| crate::untrusted::line(l).into_owned())
}
