//! Stop and SessionEnd: commit the draft Claude wrote, or ask for one when there was work worth
//! handing off (rarely: once per interval, never twice in a row, never without new work), or in
//! `auto` mode derive one from the transcript without asking the model.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::state::SessionState;
use super::transcript::Summary;
use super::Ctx;
use crate::config::StopMode;
use crate::draft::{self, Outcome};
use crate::handoff::Handoff;
use crate::store::{commit_message, Store};

/// User prompts since the last handoff that count as work even without file changes.
const TURNS_FOR_WORK: usize = 6;
/// Hooks wait at most this long for the repository lock; a busy lock leaves the draft for later.
const HOOK_LOCK_WAIT: Duration = Duration::from_secs(1);
/// Worktrees with more index entries than this are not fingerprinted (too slow for a hook).
const MAX_FINGERPRINT_ENTRIES: usize = 20_000;

pub fn run(ctx: &Ctx<'_>) -> Option<Value> {
    let (key, mut state) = ctx.session_state();
    let state_dir = ctx.repo.state_dir();
    let save = |state: &SessionState| {
        if let Some(k) = key.as_deref() {
            state.save(&state_dir, k);
        }
    };

    if let Some(reply) = commit_draft(ctx, true, Push::Now) {
        state.blocked_last_stop = false;
        state.worktree_fingerprint = fingerprint(&ctx.repo);
        save(&state);
        return reply;
    }
    let mode = ctx.repo.settings.stop;
    let asked_before = std::mem::take(&mut state.blocked_last_stop);
    if ctx.input.stop_hook_active || mode == StopMode::Off || asked_before {
        if asked_before {
            save(&state);
        }
        return push_queued(ctx);
    }
    if ctx.input.running_work > 0 {
        // Background tasks or scheduled prompts are still going: the work is not done yet, and
        // the request would interrupt it. Ask at a later Stop.
        return push_queued(ctx);
    }
    if state.last_block.is_some_and(|t| {
        ctx.now - t < chrono::Duration::from_std(ctx.repo.settings.stop_interval).unwrap_or_default()
    }) {
        return None;
    }
    let (last, summary) = evidence(ctx);
    let fp = fingerprint(&ctx.repo);
    if !work_happened(ctx, &state, last.as_ref(), &summary, fp) {
        return None;
    }
    state.worktree_fingerprint = fp;
    match mode {
        StopMode::Auto => {
            save(&state);
            auto_handoff(ctx, &summary, Push::Now)
        }
        _ => {
            let Ok(path) = ctx.repo.draft_path() else {
                return None;
            };
            let Ok(template) = draft::template(&ctx.repo) else {
                return None;
            };
            let _ = ctx.repo.ensure_excluded();
            state.last_block = Some(ctx.now);
            state.blocked_last_stop = true;
            save(&state);
            Some(request(&draft::instructions(&template, &path)))
        }
    }
}

/// The routine request for a handoff: Stop `additionalContext`, which Claude Code 2.1.331 feeds
/// to the model as hook context (the turn goes on, and the next Stop has `stop_hook_active`) and
/// shows the user as "Stop hook says: …", whereas `decision: block` is shown as "Stop hook
/// reported a problem" and sent to the model as a "blocking error".
pub fn request(instructions: &str) -> Value {
    let text = format!(
        "convosync: {}\nThen stop: convosync commits and pushes it.",
        instructions.trim_end()
    );
    json!({
        "hookSpecificOutput": { "hookEventName": "Stop", "additionalContext": text }
    })
}

/// SessionEnd: no one to ask any more; commit a leftover draft, or derive one in `auto` mode.
/// Claude Code cancels a plugin's SessionEnd hook after about 1.5 s whatever its `timeout`, so
/// everything here is local and the push goes to a detached process ([`spawn_push`]).
pub fn session_end(ctx: &Ctx<'_>) -> Option<Value> {
    if let Some(reply) = commit_draft(ctx, false, Push::Background) {
        return reply;
    }
    if ctx.repo.settings.stop == StopMode::Auto {
        let (_, state) = ctx.session_state();
        let (last, summary) = evidence(ctx);
        if work_happened(ctx, &state, last.as_ref(), &summary, fingerprint(&ctx.repo)) {
            return auto_handoff(ctx, &summary, Push::Background);
        }
    }
    if let Some(remote) = ctx.repo.remote_name() {
        if crate::sync::pending(&ctx.repo, &remote)
            && !super::state::Backoff::load(&ctx.repo.state_dir()).active(ctx.now)
        {
            spawn_push(ctx);
        }
    }
    None
}

/// Where the push after a commit happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    /// In this hook, within its deadline.
    Now,
    /// In a detached process, so the hook returns at once (SessionEnd).
    Background,
}

/// How long the detached push of [`spawn_push`] may take.
pub const BACKGROUND_PUSH_SECS: u64 = 60;

/// Start `convosync hook push` detached: its own session (setsid), stdin a pipe closed right after
/// the one line it needs, stdout to /dev/null, stderr to the log, so Claude Code waits on none of
/// it. It pushes what is queued (and the wip snapshot) within its own deadline.
fn spawn_push(ctx: &Ctx<'_>) -> bool {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let Some(dir) = ctx.repo.workdir().map(Path::to_path_buf) else {
        return false;
    };
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let state_dir = ctx.repo.state_dir();
    let log = std::fs::create_dir_all(&state_dir)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(state_dir.join("convosync.log"))
        })
        .map_or_else(|_| Stdio::null(), Stdio::from);
    let mut cmd = Command::new(exe);
    cmd.args(["hook", "push"])
        .current_dir(&dir)
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
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            ctx.log(&format!("background push: {e}"));
            return false;
        }
    };
    let input = json!({ "cwd": dir, "session_id": ctx.input.session_id }).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    // Not waited for: it outlives this hook, and init reaps it.
    drop(child);
    true
}

/// `convosync hook push`: the detached half of SessionEnd. Pushes the queued handoffs, then the
/// wip snapshot, with [`BACKGROUND_PUSH_SECS`] as its deadline; prints nothing.
pub fn background_push(ctx: &Ctx<'_>) -> Option<Value> {
    let remote = ctx.repo.remote_name()?;
    if super::state::Backoff::load(&ctx.repo.state_dir()).active(ctx.now) {
        return None;
    }
    let problem = if crate::sync::pending(&ctx.repo, &remote) {
        ctx.push_pending(&remote)
    } else {
        None
    };
    match problem {
        None if !ctx.deadline.passed() => {
            if let Err(e) = crate::wip::push(&ctx.repo, &remote, &ctx.me, ctx.deadline) {
                ctx.log(&format!("background wip push: {e:#}"));
            }
        }
        None => {}
        Some(p) => ctx.log(&format!("background push: {p}")),
    }
    None
}

/// What tells whether there was work: this device's last handoff and the session's transcript.
fn evidence(ctx: &Ctx<'_>) -> (Option<Handoff>, Summary) {
    let last = Store::new(&ctx.repo.git, &ctx.repo.settings.refname)
        .get(&ctx.me)
        .ok()
        .flatten();
    let summary = ctx
        .input
        .transcript_path
        .as_deref()
        .map(|p| Summary::read(Path::new(p)))
        .unwrap_or_default();
    (last, summary)
}

/// `Some(reply)` when a draft was there (committed, or refused with a reason).
fn commit_draft(ctx: &Ctx<'_>, may_block: bool, push: Push) -> Option<Option<Value>> {
    let path = ctx.repo.draft_path().ok()?;
    std::fs::symlink_metadata(&path).ok()?;
    match draft::commit(&ctx.repo, ctx.input.session_id.as_deref(), HOOK_LOCK_WAIT) {
        Ok(Outcome::NoDraft) => None,
        Ok(Outcome::AlreadyCommitted { .. }) if push == Push::Background => {
            spawn_push(ctx);
            Some(None)
        }
        Ok(Outcome::AlreadyCommitted { .. }) => Some(push_queued(ctx)),
        Ok(Outcome::Committed { redacted, .. }) if push == Push::Background => {
            let wip_note = snapshot_wip(ctx);
            let mut text = match ctx.repo.remote_name() {
                Some(_) if spawn_push(ctx) => "handoff saved; pushing it in the background".to_string(),
                Some(_) => "handoff saved; it will be pushed later".to_string(),
                None => "handoff saved (no remote to push to)".to_string(),
            };
            if redacted > 0 {
                text.push_str(&format!("; {redacted} secret-looking value(s) redacted"));
            }
            if let Some(n) = wip_note {
                text.push_str(&format!("; {n}"));
            }
            Some(Some(super::message(&text)))
        }
        Ok(Outcome::Committed { redacted, .. }) => {
            let wip_note = snapshot_wip(ctx);
            let pushed = ctx.repo.remote_name().map(|r| {
                let problem = ctx.push_pending(&r);
                if problem.is_none() && !ctx.deadline.passed() {
                    let _ = crate::wip::push(&ctx.repo, &r, &ctx.me, ctx.deadline);
                }
                problem
            });
            let mut text = match pushed {
                Some(None) => "handoff saved and pushed".to_string(),
                Some(Some(problem)) => format!("handoff saved; {problem}"),
                None => "handoff saved (no remote to push to)".to_string(),
            };
            if redacted > 0 {
                text.push_str(&format!("; {redacted} secret-looking value(s) redacted"));
            }
            if let Some(n) = wip_note {
                text.push_str(&format!("; {n}"));
            }
            Some(Some(super::message(&text)))
        }
        Err(e) => {
            ctx.log(&format!("draft: {e:#}"));
            if may_block && !ctx.input.stop_hook_active && ctx.repo.settings.stop != StopMode::Off {
                let reason = format!(
                    "convosync: the handoff draft could not be saved: {e:#}. Fix {} and stop again.",
                    path.display()
                );
                Some(Some(json!({ "decision": "block", "reason": reason })))
            } else {
                Some(Some(super::message(&format!(
                    "handoff draft kept, not saved: {e:#}"
                ))))
            }
        }
    }
}

/// With a handoff, a snapshot of uncommitted work for the other devices (see [`crate::wip`]).
fn snapshot_wip(ctx: &Ctx<'_>) -> Option<String> {
    let lock = ctx.repo.lock(HOOK_LOCK_WAIT).ok()?;
    let outcome = crate::wip::snapshot(&ctx.repo, &ctx.me, ctx.repo.settings.wip_limit);
    drop(lock);
    match outcome {
        Ok(crate::wip::Outcome::Saved { files, skipped }) => {
            let local =
                ctx.repo.remote_name().is_some() && crate::wip::stays_local(&ctx.repo, &ctx.me) == Some(true);
            let mut note = if !local {
                format!("uncommitted changes in {} file(s) shared", files.len())
            } else {
                match wip_push_hint(ctx) {
                    Some(hint) => hint,
                    None if skipped.is_empty() => return None,
                    None => format!(
                        "uncommitted changes in {} file(s) kept on this device",
                        files.len()
                    ),
                }
            };
            if !skipped.is_empty() {
                let names: Vec<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
                note.push_str(&format!(" (credential files left out: {})", names.join(", ")));
            }
            Some(note)
        }
        Ok(o) if !o.skipped().is_empty() => {
            let names: Vec<&str> = o.skipped().iter().map(|s| s.path.as_str()).collect();
            Some(format!(
                "uncommitted credential files not shared: {}",
                names.join(", ")
            ))
        }
        Ok(crate::wip::Outcome::TooLarge { bytes, limit }) => Some(format!(
            "uncommitted changes not shared ({:.1} MB over the {:.1} MB limit)",
            bytes as f64 / 1_048_576.0,
            limit as f64 / 1_048_576.0
        )),
        Ok(_) => None,
        Err(e) => {
            ctx.log(&format!("wip snapshot: {e:#}"));
            None
        }
    }
}

/// Once per repository (remembered in the state dir), when a snapshot stays local because it is
/// neither encrypted nor allowed to be pushed: how to share snapshots.
fn wip_push_hint(ctx: &Ctx<'_>) -> Option<String> {
    if ctx.repo.settings.wip_push == Some(false) {
        return None;
    }
    let marker = ctx.repo.state_dir().join("wip-push-hint-shown");
    if marker.exists() {
        return None;
    }
    let _ = crate::fsutil::replace_file(&marker, b"1\n");
    Some(
        "uncommitted changes kept on this device, not pushed: to share them with your other devices, `convosync key init` (encrypted) or `git config convosync.wipPush true`".to_string(),
    )
}

/// Push handoffs an earlier offline run left queued; silent when there are none.
fn push_queued(ctx: &Ctx<'_>) -> Option<Value> {
    let remote = ctx.repo.remote_name()?;
    if !crate::sync::pending(&ctx.repo, &remote) {
        return None;
    }
    if super::state::Backoff::load(&ctx.repo.state_dir()).active(ctx.now) {
        return None;
    }
    match ctx.push_pending(&remote) {
        None => Some(super::message("queued handoff pushed")),
        Some(_) => None,
    }
}

/// New commits since this device's last handoff, a worktree that changed since we last looked,
/// or enough conversation.
fn work_happened(
    ctx: &Ctx<'_>,
    state: &SessionState,
    last: Option<&Handoff>,
    summary: &Summary,
    fp: Option<u64>,
) -> bool {
    let (head, _) = ctx.repo.head_info();
    if let (Some(last), Some(head)) = (last, &head) {
        let same = last
            .commit
            .as_ref()
            .is_some_and(|c| head.sha.starts_with(&c.sha) || c.sha.starts_with(&head.sha));
        if !same {
            return true;
        }
    }
    if fp.is_some() && fp != state.worktree_fingerprint {
        return true;
    }
    let since = match (last.map(|h| h.timestamp), state.last_block) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    summary.prompts_since(since) >= TURNS_FOR_WORK
}

/// A hash of the worktree's changes (paths, kinds, sizes, mtimes); `None` when clean or too big
/// to check quickly. Read-only: git2 `statuses` never writes the index.
pub fn fingerprint(repo: &crate::repo::Repo) -> Option<u64> {
    if repo.workdir().is_none() || repo.git.index().ok()?.len() > MAX_FINGERPRINT_ENTRIES {
        return None;
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.git.statuses(Some(&mut opts)).ok()?;
    let workdir = repo.workdir()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut any = false;
    for e in statuses.iter() {
        let Ok(path) = e.path() else { continue };
        if path.starts_with(".convosync/") {
            continue;
        }
        any = true;
        path.hash(&mut h);
        e.status().bits().hash(&mut h);
        if let Ok(m) = std::fs::symlink_metadata(workdir.join(path)) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    any.then(|| h.finish())
}

/// `auto` mode: a handoff derived from the transcript, redacted, committed and pushed.
fn auto_handoff(ctx: &Ctx<'_>, summary: &Summary, push: Push) -> Option<Value> {
    let sections = draft::redact_summary(&ctx.repo, summary).sections(ctx.repo.workdir());
    if sections.is_empty() {
        return None;
    }
    let result = (|| -> anyhow::Result<()> {
        let (handoff, _) = draft::build(&ctx.repo, sections, ctx.input.session_id.as_deref())?;
        let _lock = ctx.repo.lock(HOOK_LOCK_WAIT)?;
        Store::new(&ctx.repo.git, &ctx.repo.settings.refname).put(&handoff, &commit_message(&handoff))?;
        Ok(())
    })();
    if let Err(e) = result {
        ctx.log(&format!("auto handoff: {e:#}"));
        return Some(super::message(&format!(
            "could not write the automatic handoff: {e:#}"
        )));
    }
    if push == Push::Background {
        spawn_push(ctx);
        return Some(super::message("handoff written from this session"));
    }
    let note = ctx.repo.remote_name().and_then(|r| ctx.push_pending(&r));
    Some(super::message(&match note {
        None => "handoff written from this session and pushed".to_string(),
        Some(p) => format!("handoff written from this session; {p}"),
    }))
}
