//! When and how a hook uses the remote: the one gate (backoffs, queue, deadline), the one
//! exchange ([`crate::sync::exchange`]) and what its outcome leaves in the backoffs, and the
//! detached processes that do the network work a hook must not wait for.

use super::Ctx;
use crate::lock::RepoLock;
use crate::state::{self, Backoff, Channel};
use crate::sync::{self, Pushed};
use serde_json::json;

/// Fetch and merge the handoff ref, and push what is queued, within the deadline. Returns a
/// one-line note for the user when the remote could not be used, once per distinct problem
/// (the same failure at the next session start stays in the log).
pub fn refresh(ctx: &Ctx<'_>) -> Option<String> {
    let (_, exchanged) = exchange(ctx, Want::Notes, |_| Ok(()));
    let note = exchanged
        .and_then(|x| x.problem)
        .or_else(|| sync::take_restored(&ctx.repo))?;
    once(ctx, note)
}

/// `note`, unless the same note was the last one shown (then only logged).
fn once(ctx: &Ctx<'_>, note: String) -> Option<String> {
    let new = state::note_is_new(&ctx.repo.state_dir(), &note);
    if !new {
        ctx.log(&format!("not repeated: {note}"));
    }
    new.then_some(note)
}

/// Asynchronous session start: start `convosync hook fetch` detached (one [`Want::Notes`]
/// exchange with a longer deadline of its own) and return at once. Returns the note of an
/// earlier failure while its backoff is in force (once per distinct problem), as the
/// synchronous start would. At most one such fetch runs at a time.
pub fn refresh_in_background(ctx: &Ctx<'_>) -> Option<String> {
    if let Err(note) = gate(ctx, Want::Notes) {
        return once(ctx, note?);
    }
    if fetching_for(ctx).is_some_and(|age| age.as_secs() < super::BACKGROUND_SECS) {
        return None;
    }
    let marker = ctx.repo.state_dir().join(FETCHING);
    if crate::fsutil::replace_file(&marker, b"").is_ok() && !spawn_hook(ctx, "fetch") {
        let _ = std::fs::remove_file(&marker);
    }
    // Key ids an earlier hook restored.
    sync::take_restored(&ctx.repo)
}

/// Wait for a detached fetch in flight, but no longer than a synchronous start would have
/// waited from when it began (the network timeout, at most 5 s). A prompt typed by a person
/// comes long after the fetch ended and never waits; `claude -p`, whose prompt follows the
/// session start at once, gets what the fetch brought whenever a synchronous start would
/// have.
pub fn wait_for_background_fetch(ctx: &Ctx<'_>) {
    let budget = ctx.repo.settings.timeout.min(std::time::Duration::from_secs(5));
    while fetching_for(ctx).is_some_and(|age| age < budget) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How long a detached fetch has been running: the age of its marker, while there is one.
fn fetching_for(ctx: &Ctx<'_>) -> Option<std::time::Duration> {
    let marker = std::fs::metadata(ctx.repo.state_dir().join(FETCHING));
    marker.and_then(|m| m.modified()).ok()?.elapsed().ok()
}

/// `local` under the repository lock, without the network.
pub fn locked<T>(ctx: &Ctx<'_>, local: impl FnOnce(&RepoLock) -> anyhow::Result<T>) -> anyhow::Result<T> {
    ctx.repo.lock(HOOK_LOCK_WAIT).and_then(|l| local(&l))
}

/// Whether a hook may use the network for `want` now: the remote, or why not (with the line
/// for the user, if there is one). The one place that says when hooks try: never without a
/// remote or past the deadline; while a fetch backoff from an earlier failure is in force no
/// network for notes or queued handoffs (nothing is retried in a tight loop); while a push
/// backoff is in force no push of handoffs; queued handoffs only when there are some. A new
/// handoff is always worth one try. With the remote comes a push backoff in force (only notes
/// get this far with one): fetch, do not push.
pub fn gate(ctx: &Ctx<'_>, want: Want) -> Result<(String, Option<Backoff>), Option<String>> {
    let remote = ctx.repo.remote_name().ok_or(None)?;
    let dir = ctx.repo.state_dir();
    let fetch = Backoff::load(&dir, Channel::Fetch);
    let push = Backoff::load(&dir, Channel::Push);
    if want != Want::Handoff && fetch.active(ctx.now) {
        let note = (want == Want::Notes).then(|| {
            fetch
                .last_error
                .unwrap_or_else(|| format!("{remote} unreachable recently; using cached handoffs"))
        });
        return Err(note);
    }
    if want != Want::Notes && push.active(ctx.now) {
        return Err(Some(push.last_error.unwrap_or_else(|| {
            format!("push to {remote} failed recently; handoff queued")
        })));
    }
    if (want == Want::Queued && !sync::pending(&ctx.repo, &remote)) || ctx.deadline.passed() {
        return Err(None);
    }
    let push_held = push.active(ctx.now).then_some(push);
    Ok((remote, push_held))
}

/// The one exchange of a hook with the remote ([`sync::exchange`]), for `want`, with `local`
/// run under the repository lock (also without a remote, or when [`gate`] keeps the
/// network out). Records how it went in the backoffs; the second value is `None` when the
/// remote was not used.
pub fn exchange<T>(
    ctx: &Ctx<'_>,
    want: Want,
    local: impl FnOnce(&RepoLock) -> anyhow::Result<T>,
) -> (anyhow::Result<T>, Option<Exchanged>) {
    let (remote, push_held) = match gate(ctx, want) {
        Ok(open) => open,
        Err(note) => {
            let done = locked(ctx, local);
            let held = note.map(|n| Exchanged {
                problem: Some(n),
                pushed: false,
            });
            return (done, held);
        }
    };
    let plan = sync::Plan {
        remote: &remote,
        deadline: ctx.deadline,
        lock_wait: HOOK_LOCK_WAIT,
        fetch_first: want != Want::Queued,
        push: push_held.is_none(),
        wip_of: Some(&ctx.me),
    };
    let (done, report) = sync::exchange(&ctx.repo, &plan, local);
    let mut problem = settle(ctx, &report);
    if !plan.push && report.pending {
        problem = problem.or(push_held.and_then(|b| b.last_error));
    }
    let pushed = report.pushed == Pushed::Ok;
    (done, Some(Exchanged { problem, pushed }))
}

/// Record how an exchange went in the backoffs; returns the problem, if any.
fn settle(ctx: &Ctx<'_>, report: &sync::Report) -> Option<String> {
    let dir = ctx.repo.state_dir();
    let problem = report.problem();
    if let Some(p) = &problem {
        ctx.log(&format!("{}: {p}", report.remote));
    }
    let said = problem.clone().unwrap_or_default();
    if !report.reachable() {
        Backoff::failed(&dir, Channel::Fetch, ctx.now, &said);
        return problem;
    }
    Backoff::succeeded(&dir, Channel::Fetch);
    match &report.pushed {
        Pushed::TimedOut | Pushed::Failed(_) | Pushed::Refused(_) => {
            Backoff::failed(&dir, Channel::Push, ctx.now, &said)
        }
        Pushed::Ok | Pushed::UpToDate => Backoff::succeeded(&dir, Channel::Push),
        Pushed::Rejected => {}
    }
    problem
}

/// What a hook's exchange with the remote is for ([`exchange`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Other devices' notes (session start, the detached fetch): fetch and merge, then push what
    /// is queued.
    Notes,
    /// A handoff the local step writes: fetch, merge and write under one lock, push it with this
    /// device's wip ref.
    Handoff,
    /// Only what an earlier run queued: push at once, fetch only when the push is rejected.
    Queued,
}

/// How a hook's exchange with the remote went.
pub struct Exchanged {
    /// What went wrong, for the user.
    pub problem: Option<String>,
    /// Whether the handoff ref went out.
    pub pushed: bool,
}

/// Hooks wait at most this long for the repository lock; a busy lock leaves the draft for later.
pub const HOOK_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Marker of a detached fetch in flight (under the state directory).
pub(super) const FETCHING: &str = "fetching";

/// Start `convosync hook <event>` detached: its own session (setsid), stdin a pipe closed right
/// after the one line it needs, stdout to /dev/null, stderr to the log, so Claude Code waits on
/// none of it.
pub(super) fn spawn_hook(ctx: &Ctx<'_>, event: &str) -> bool {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let (Some(dir), Ok(exe)) = (ctx.repo.workdir(), std::env::current_exe()) else {
        return false;
    };
    let log = crate::state::log_file(&ctx.repo.state_dir()).map_or_else(|_| Stdio::null(), Stdio::from);
    let mut cmd = Command::new(exe);
    cmd.args(["hook", event])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let Ok(mut child) = cmd
        .spawn()
        .map_err(|e| ctx.log(&format!("background {event}: {e}")))
    else {
        return false;
    };
    let input = json!({ "cwd": dir, "session_id": ctx.input.session_id }).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    // Not waited for: it outlives this hook, and init reaps it.
    drop(child);
    true
}
