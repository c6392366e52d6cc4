//! Exchanging the handoff ref with a remote: fetch only that ref, merge by path, push, retry.
//!
//! The local ref is also the offline queue: when it is ahead of the remote-tracking copy
//! (`refs/convosync/remote/<remote>/…`), something is waiting to be pushed, and the next hook or
//! `convosync sync` pushes it. What each hook and command does with the remote is one
//! [`exchange`]: fetch, merge under the lock with the caller's local step, one push, retry on a
//! lost race, a [`Report`]. Merging itself is the store's ([`store::absorb`]); this is transport.

use std::time::Duration;

use anyhow::Result;
use git2::Oid;

use crate::git::{self, Deadline, GitOutput};
use crate::lock::RepoLock;
use crate::refs;
use crate::repo::Repo;
use crate::store::{self, tip_of};

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
    /// Why what the fetch brought could not be merged into the local ref (it is merged by the
    /// next exchange).
    pub unmerged: Option<String>,
}

impl Report {
    /// Whether the remote answered the fetch (or was not asked).
    pub fn reachable(&self) -> bool {
        matches!(self.fetched, Fetched::Ok | Fetched::NoRemoteRef)
    }

    /// One line for the user: `None` when everything went fine.
    pub fn problem(&self) -> Option<String> {
        let r = &self.remote;
        if let Some(m) = &self.unmerged {
            return Some(format!(
                "could not merge the handoffs fetched from {r} ({m}); the next sync tries again"
            ));
        }
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
fn fetch(repo: &Repo, remote: &str, deadline: Deadline) -> Fetched {
    fetch_refs(repo, remote, deadline).unwrap_or_else(|e| {
        crate::state::log(&repo.state_dir(), &format!("fetch: {e:#}"));
        Fetched::Failed("could not run git".to_string())
    })
}

fn fetch_refs(repo: &Repo, remote: &str, deadline: Deadline) -> Result<Fetched> {
    if let Err(e) = carry_over(repo, remote, deadline) {
        crate::state::log(&repo.state_dir(), &format!("carrying notes over: {e:#}"));
    }
    let refname = &repo.settings.refname;
    let spec = format!("+{refname}:{}", refs::tracking(refname, remote));
    // Other devices' snapshots of uncommitted work travel in the same round trip (in a notes
    // repository, from this project's namespace).
    let wip = refs::wip_fetch_refspec(repo.settings.notes_repo, &repo.settings.refname, remote);
    let out = git::fetch(repo.git.path(), remote, &[&spec, &wip], deadline)?;
    // The fetch may have added a pack: libgit2 sees it from now on even in lookups that do not
    // rescan the object directory for a missing object (see `context::code_notes`).
    if let Ok(odb) = repo.git.odb() {
        let _ = odb.refresh();
    }
    if out.timed_out() {
        return Ok(Fetched::TimedOut);
    }
    if !out.success() && !out.stderr.contains("couldn't find remote ref") {
        return Ok(Fetched::Failed(out.brief_error()));
    }
    // The one place that records a sync: every command and hook fetches through here.
    crate::state::record_sync(&repo.state_dir(), crate::timefmt::now());
    Ok(if out.success() {
        Fetched::Ok
    } else {
        Fetched::NoRemoteRef
    })
}

/// Push the local tip to the remote if it is ahead of what we last saw there, with `extra` refs
/// in the same invocation: one round trip for everything. The result is the handoff ref's (when
/// it had nothing to push, `UpToDate`); each ref the remote took is recorded in its tracking ref.
fn push(repo: &Repo, remote: &str, deadline: Deadline, extra: &[crate::git::Extra]) -> Pushed {
    push_refs(repo, remote, deadline, extra).unwrap_or_else(|e| {
        crate::state::log(&repo.state_dir(), &format!("push: {e:#}"));
        Pushed::Failed("could not run git".to_string())
    })
}

fn push_refs(repo: &Repo, remote: &str, deadline: Deadline, extra: &[crate::git::Extra]) -> Result<Pushed> {
    let refname = &repo.settings.refname;
    let tracking = refs::tracking(refname, remote);
    let local = tip_of(&repo.git, refname)?.map(|c| c.id());
    let ahead = local.filter(|&l| tip_id(repo, &tracking) != Some(l));
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
        .unwrap_or("");
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
        let reason = status
            .trim_start_matches("[remote rejected]")
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let words: Vec<_> = (out.stderr.lines())
            .filter_map(|l| l.trim().strip_prefix("remote:"))
            .chain([reason])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(crate::untrusted::line)
            .collect();
        return Pushed::Refused(match words.is_empty() {
            true => "no reason given".to_string(),
            false => words.join("; "),
        });
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
    let lock = repo.lock(deadline.remaining())?;
    for r in [&earlier, &tracking] {
        if let Some(tip) = tip_id(repo, r) {
            absorb(repo, tip, &lock)?;
        }
    }
    crate::namespace::settled(&repo.git, &ns.id)?;
    crate::state::log(
        &repo.state_dir(),
        &format!("notes of {earlier} carried over into {}", repo.settings.refname),
    );
    Ok(())
}

/// Bring the remote-tracking copy into the local ref: fast-forward, or merge by path (see
/// [`store::absorb`]). Key ids the remote had lost are restored, and the user is told once
/// ([`take_restored`]). Returns why it could not.
fn integrate(repo: &Repo, remote: &str, lock: &RepoLock) -> Option<String> {
    let tip = tip_of(&repo.git, &refs::tracking(&repo.settings.refname, remote));
    tip.and_then(|t| t.map_or(Ok(()), |t| absorb(repo, t.id(), lock)))
        .err()
        .map(|e| format!("{e:#}"))
}

/// [`store::absorb`] into this repository's ref, recording restored key ids for the user.
fn absorb(repo: &Repo, theirs: Oid, lock: &RepoLock) -> Result<()> {
    let mut skipped = crate::untrusted::Skipped::default();
    let lost = store::absorb(&repo.git, &repo.settings.refname, theirs, lock, &mut skipped);
    // What either side held that is not a device file was left out of the merge: logged.
    for line in skipped.lines() {
        crate::state::log(&repo.state_dir(), line);
    }
    let lost = lost?;
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

/// Whether the local ref holds commits the remote has not seen.
pub fn pending(repo: &Repo, remote: &str) -> bool {
    let refname = &repo.settings.refname;
    match (
        tip_id(repo, refname),
        tip_id(repo, &refs::tracking(refname, remote)),
    ) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(l), Some(r)) => l != r && !repo.git.graph_descendant_of(r, l).unwrap_or(false),
    }
}

/// One exchange with the remote, as its caller wants it.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub remote: &'a str,
    pub deadline: Deadline,
    /// How long the local step waits for the repository lock.
    pub lock_wait: Duration,
    /// Fetch before the local step. Without it the push goes out at once, and only a push the
    /// remote rejected (or one that failed: the fetch tells an unreachable remote from a broken
    /// push) fetches.
    pub fetch_first: bool,
    /// Push (false: fetch and merge only).
    pub push: bool,
    /// The device whose wip ref goes out in the same `git push` as the handoff ref.
    pub wip_of: Option<&'a str>,
}

/// What `convosync sync` and the commands that sync do: [`exchange`] with no local step, fetch,
/// merge, push the handoff ref.
pub fn sync(repo: &Repo, remote: &str, deadline: Deadline, lock_wait: Duration) -> Report {
    let plan = Plan {
        remote,
        deadline,
        lock_wait,
        fetch_first: true,
        push: true,
        wip_of: None,
    };
    exchange(repo, &plan, |_| Ok(())).1
}

/// The one exchange with the remote: fetch the handoff ref (and the other devices' wip refs),
/// then under one hold of the repository lock merge what came and run the caller's `local` step
/// (which gets the held lock), then push the handoff ref and this device's wip ref in one
/// `git push`; when another device pushed first, fetch, merge and push again (a bounded number of
/// rounds, with jitter so racing devices do not collide in lockstep). A remote that does not
/// answer costs one deadline, not one per step: nothing is pushed after a failed fetch. `local`
/// runs whatever the network does; a lock that could not be had is its error.
pub fn exchange<T>(
    repo: &Repo,
    plan: &Plan<'_>,
    local: impl FnOnce(&RepoLock) -> Result<T>,
) -> (Result<T>, Report) {
    let mut report = Report {
        remote: plan.remote.to_string(),
        fetched: Fetched::Ok,
        pushed: Pushed::UpToDate,
        pending: false,
        unmerged: None,
    };
    if plan.fetch_first {
        report.fetched = fetch(repo, plan.remote, plan.deadline);
    }
    let merge = plan.fetch_first && report.fetched == Fetched::Ok;
    let done = repo.lock(plan.lock_wait).and_then(|lock| {
        if merge {
            report.unmerged = integrate(repo, plan.remote, &lock);
        }
        local(&lock)
    });
    if plan.push && report.reachable() {
        push_rounds(repo, plan, &mut report);
    }
    report.pending = pending(repo, plan.remote);
    (done, report)
}

/// The push half of [`exchange`]: push, and while the remote rejects the push because it moved,
/// fetch, merge and push again.
fn push_rounds(repo: &Repo, plan: &Plan<'_>, report: &mut Report) {
    let (remote, deadline) = (plan.remote, plan.deadline);
    let extra = plan.wip_of.and_then(|me| {
        crate::wip::push_extra(repo, remote, me, false).unwrap_or_else(|e| {
            crate::state::log(&repo.state_dir(), &format!("wip push: {e:#}"));
            None
        })
    });
    for round in 0..PUSH_ROUNDS {
        report.pushed = push(repo, remote, deadline, extra.as_slice());
        let again = match report.pushed {
            Pushed::Rejected => true,
            Pushed::Failed(_) => round == 0 && !plan.fetch_first,
            // Not fetched first: the remote did not answer, as a fetch would have found it.
            Pushed::TimedOut if !plan.fetch_first => {
                report.fetched = Fetched::TimedOut;
                false
            }
            _ => false,
        };
        if !again || deadline.passed() {
            break;
        }
        if report.pushed == Pushed::Rejected {
            std::thread::sleep(jitter(round).min(deadline.remaining()));
        }
        report.fetched = fetch(repo, remote, deadline);
        if !report.reachable() {
            break;
        }
        if report.fetched == Fetched::Ok {
            let lock = repo.lock(plan.lock_wait);
            report.unmerged = lock.map_or_else(|e| Some(format!("{e:#}")), |l| integrate(repo, remote, &l));
        }
    }
    if let Some(e) = &extra {
        if tip_id(repo, &e.tracking) != Some(e.tip) {
            crate::state::log(
                &repo.state_dir(),
                &format!("wip push to {remote}: not taken ({:?})", report.pushed),
            );
        }
    }
}

/// The commit `refname` points at, if it can be read.
fn tip_id(repo: &Repo, refname: &str) -> Option<Oid> {
    tip_of(&repo.git, refname).ok().flatten().map(|c| c.id())
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
    use super::*;

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
            unmerged: None,
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
            unmerged: None,
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
            unmerged: None,
        };
        assert_eq!(ok.problem(), None);
    }
}
