//! Stop and SessionEnd: commit the draft Claude wrote, or ask for one when there was work worth
//! handing off (rarely: once per interval, never twice in a row, never without new work), or in
//! `auto` mode derive one from the transcript without asking the model.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::net::{self, Exchanged, Want};
use super::state::{HeadMark, SessionState, RECENT_PROMPTS};
use super::Ctx;
use crate::agent::Reply;
use crate::config::StopMode;
use crate::draft::{self, Outcome};
use crate::handoff::Handoff;
use crate::store::{commit_message, Store};
use crate::transcript::{Activity, Summary};

/// User prompts since the last handoff that count as work even without edits.
const TURNS_FOR_WORK: usize = 6;

/// What a Stop decides to do (see [`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not the time to ask (Claude goes on because of us, we asked at the last Stop, Stop mode
    /// is off, or background work still runs): only push what an earlier run queued.
    PushQueued,
    /// Nothing: asked within the interval, or no new work.
    Nothing,
    /// Ask Claude for a handoff.
    Ask,
    /// Write a handoff from the transcript (`auto` mode).
    Auto,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Situation {
    pub mode: StopMode,
    pub stop_hook_active: bool,
    /// The previous Stop of this session asked.
    pub asked_before: bool,
    /// Background tasks or scheduled prompts still running.
    pub running_work: bool,
    /// When this session last asked.
    pub last_block: Option<DateTime<Utc>>,
    pub interval: chrono::Duration,
    pub now: DateTime<Utc>,
    pub evidence: Evidence,
}

/// What tells whether there was work: cheap and certain, never the worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// HEAD's commit or branch moved since the session last looked (or, before it ever looked,
    /// HEAD is not the commit of this device's last handoff).
    pub head_moved: bool,
    /// When this device last wrote a handoff.
    pub last_handoff: Option<DateTime<Utc>>,
    /// The latest edit or shell command in the transcript.
    pub last_work: Option<DateTime<Utc>>,
    /// Times of the latest prompts.
    pub recent_prompts: Vec<DateTime<Utc>>,
}

impl Evidence {
    /// New commits or a branch switch, an edit or command, or enough conversation since this
    /// device's last handoff and the session's last request.
    pub fn work_since(&self, last_block: Option<DateTime<Utc>>) -> bool {
        if self.head_moved {
            return true;
        }
        let since = self.last_handoff.max(last_block);
        let after = |t: &DateTime<Utc>| since.is_none_or(|s| *t > s);
        self.last_work.as_ref().is_some_and(after)
            || self.recent_prompts.iter().filter(|t| after(t)).count() >= TURNS_FOR_WORK
    }
}

/// When to ask for a handoff: rarely (once per interval), never twice in a row, never while
/// Claude goes on because of us or background work runs, never without new work.
pub fn decide(s: &Situation) -> Decision {
    if s.stop_hook_active || s.mode == StopMode::Off || s.asked_before || s.running_work {
        return Decision::PushQueued;
    }
    if s.last_block.is_some_and(|t| s.now - t < s.interval) || !s.evidence.work_since(s.last_block) {
        return Decision::Nothing;
    }
    match s.mode {
        StopMode::Auto => Decision::Auto,
        _ => Decision::Ask,
    }
}

pub fn run(ctx: &Ctx<'_>) -> Option<Reply> {
    let mut state = ctx.session_state();
    // What is at the draft's path may be the repository's (tracked, or a symlink) or older than
    // the session: then it is neither committed nor deleted, Claude is not asked to write there,
    // and the user hears of it once per session.
    let foreign = draft::foreign(&ctx.repo, || session_start(ctx, &state));
    let (mut changed, mut notice) = (false, None);
    if let Some(f) = &foreign {
        ctx.log(&format!("draft: {f}"));
        if !std::mem::replace(&mut state.told_foreign_draft, true) {
            changed = true;
            notice = Some(super::message(&f.to_string()));
        }
    } else if let Some(reply) = commit_draft(ctx, true, Push::Now) {
        observe(ctx, &mut state);
        state.blocked_last_stop = false;
        state.head = Some(head_now(ctx));
        ctx.save_state(&state);
        return reply;
    }
    changed |= observe(ctx, &mut state);
    let head = head_now(ctx);
    let evidence = evidence(ctx, &state, &head);
    if state.head.is_none() && !evidence.head_moved {
        // The first look: later moves are measured from here.
        state.head = Some(head.clone());
        changed = true;
    }
    let decision = decide(&Situation {
        mode: ctx.repo.settings.stop,
        stop_hook_active: ctx.input.stop_hook_active,
        asked_before: state.blocked_last_stop,
        running_work: ctx.input.running_work > 0,
        last_block: state.last_block,
        interval: chrono::Duration::from_std(ctx.repo.settings.stop_interval).unwrap_or_default(),
        now: ctx.now,
        evidence,
    });
    changed |= std::mem::take(&mut state.blocked_last_stop);
    // Claude is asked only where a draft of this session can be written.
    let ask = match decision {
        Decision::Ask if foreign.is_none() => ctx.repo.draft_path().ok().and_then(|path| {
            let template = draft::template(&ctx.repo).ok()?;
            Some(draft::instructions(&template, &path))
        }),
        _ => None,
    };
    if decision == Decision::Auto || ask.is_some() {
        state.head = Some(head);
        changed = true;
    }
    if ask.is_some() {
        state.last_block = Some(ctx.now);
        state.blocked_last_stop = true;
    }
    if changed {
        ctx.save_state(&state);
    }
    match (decision, ask) {
        (Decision::Auto, _) => auto_handoff(ctx, Push::Now),
        (Decision::PushQueued, _) => queued_pushed(net::exchange(ctx, Want::Queued, |_| Ok(())).1).or(notice),
        (_, Some(instructions)) => {
            let _ = ctx.repo.ensure_excluded();
            // The routine request for a handoff (each agent's adapter says how it reaches the model).
            let instructions = instructions.trim_end();
            let request = format!("convosync: {instructions}\nThen stop: convosync commits and pushes it.");
            Some(Reply {
                request: Some(request),
                ..Reply::default()
            })
        }
        _ => notice,
    }
}

/// When the session began: as its session start recorded it, else as its transcript's first
/// line says (a session whose start this version did not see).
fn session_start(ctx: &Ctx<'_>, state: &SessionState) -> Option<std::time::SystemTime> {
    state
        .started
        .or_else(|| crate::transcript::started(Path::new(ctx.input.transcript_path.as_deref()?)))
        .map(std::time::SystemTime::from)
}

/// Read the transcript lines not read before into `state`; whether `state` changed.
fn observe(ctx: &Ctx<'_>, state: &mut SessionState) -> bool {
    let path = ctx.input.transcript_path.as_deref().map(Path::new);
    let read = path.and_then(|p| Activity::read_new(p, ctx.agent, state.transcript.as_ref(), ctx.now));
    let Some((activity, mark)) = read.filter(|(_, mark)| state.transcript.as_ref() != Some(mark)) else {
        return false;
    };
    state.transcript = Some(mark);
    state.recent_prompts.extend(activity.prompts);
    let extra = state.recent_prompts.len().saturating_sub(RECENT_PROMPTS);
    state.recent_prompts.drain(..extra);
    state.last_work = state.last_work.max(activity.last_work);
    true
}

fn head_now(ctx: &Ctx<'_>) -> HeadMark {
    let (commit, branch) = ctx.repo.head_info();
    HeadMark {
        commit: commit.map(|c| c.sha),
        branch,
    }
}

/// The evidence of work: the session's memory of the transcript and HEAD, and this device's last
/// handoff (one blob of the handoff ref).
fn evidence(ctx: &Ctx<'_>, state: &SessionState, head: &HeadMark) -> Evidence {
    let last: Option<Handoff> = Store::new(&ctx.repo.git, &ctx.repo.settings.refname)
        .get(&ctx.me)
        .ok()
        .flatten();
    let head_moved = match &state.head {
        Some(seen) => seen != head,
        None => match (last.as_ref().and_then(|l| l.commit.as_ref()), &head.commit) {
            (Some(c), Some(h)) => !(h.starts_with(&c.sha) || c.sha.starts_with(h.as_str())),
            _ => false,
        },
    };
    Evidence {
        head_moved,
        last_handoff: last.map(|h| h.timestamp),
        last_work: state.last_work,
        recent_prompts: state.recent_prompts.clone(),
    }
}

/// SessionEnd: no one to ask any more; commit a leftover draft, or derive one in `auto` mode.
/// Claude Code cancels a plugin's SessionEnd hook after about 1.5 s whatever its `timeout`, so
/// everything here is local and the push goes to a detached process (`convosync hook push`).
pub fn session_end(ctx: &Ctx<'_>) -> Option<Reply> {
    if let Some(f) = draft::foreign(&ctx.repo, || session_start(ctx, &ctx.session_state())) {
        ctx.log(&format!("draft: {f}"));
    } else if let Some(reply) = commit_draft(ctx, false, Push::Background) {
        return reply;
    }
    if ctx.repo.settings.stop == StopMode::Auto {
        let mut state = ctx.session_state();
        observe(ctx, &mut state);
        let head = head_now(ctx);
        if evidence(ctx, &state, &head).work_since(state.last_block) {
            state.head = Some(head);
            ctx.save_state(&state);
            return auto_handoff(ctx, Push::Background);
        }
    }
    if net::gate(ctx, Want::Queued).is_ok() {
        net::spawn_hook(ctx, "push");
    }
    None
}

/// Where the push after a commit happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    /// In this hook, within its deadline.
    Now,
    /// In a detached process, so the hook returns at once (SessionEnd): `convosync hook push`
    /// ([`net::spawn_hook`]) pushes what is queued (and the wip snapshot) within its own deadline.
    Background,
}

/// `step` under the repository lock; with [`Push::Now`], inside one exchange with the remote
/// ([`net::exchange`]) that pushes what it wrote.
fn write<T>(
    ctx: &Ctx<'_>,
    push: Push,
    step: impl FnOnce(&crate::lock::RepoLock) -> anyhow::Result<T>,
) -> (anyhow::Result<T>, Option<Exchanged>) {
    match push {
        Push::Now => net::exchange(ctx, Want::Handoff, step),
        Push::Background => (net::locked(ctx, step), None),
    }
}

/// What the user hears after a new handoff was written (`what`): where it went.
fn written(ctx: &Ctx<'_>, what: &str, push: Push, exchanged: Option<Exchanged>) -> String {
    match (push, ctx.repo.remote_name(), exchanged) {
        (_, None, _) => format!("{what} (no remote to push to)"),
        (Push::Background, Some(_), _) if net::spawn_hook(ctx, "push") => {
            format!("{what}; pushing it in the background")
        }
        (Push::Background, Some(_), _) | (Push::Now, Some(_), None) => {
            format!("{what}; it will be pushed later")
        }
        (Push::Now, Some(_), Some(Exchanged { problem: None, .. })) => format!("{what} and pushed"),
        (Push::Now, Some(_), Some(Exchanged { problem: Some(p), .. })) => format!("{what}; {p}"),
    }
}

/// "queued handoff pushed" when an exchange pushed handoffs an earlier run left queued.
fn queued_pushed(exchanged: Option<Exchanged>) -> Option<Reply> {
    exchanged
        .filter(|x| x.pushed)
        .map(|_| super::message("queued handoff pushed"))
}

/// `Some(reply)` when a draft was there (committed, or refused with a reason). The draft commit,
/// the wip snapshot and the merge of what the fetch brought share one lock; the handoff and the
/// snapshot go out in one push ([`net::exchange`]), or from a detached process
/// ([`Push::Background`]).
fn commit_draft(ctx: &Ctx<'_>, may_block: bool, push: Push) -> Option<Option<Reply>> {
    let path = ctx.repo.draft_path().ok()?;
    std::fs::symlink_metadata(&path).ok()?;
    let (done, exchanged) = write(ctx, push, |lock| {
        let outcome = draft::commit(&ctx.repo, &origin(ctx), lock)?;
        // Only with a new handoff does anything look at the worktree.
        let wip = matches!(outcome, Outcome::Committed { .. }).then(|| snapshot_wip(ctx, lock));
        Ok((outcome, wip.flatten()))
    });
    match done {
        Ok((Outcome::NoDraft, _)) => None,
        Ok((Outcome::AlreadyCommitted { .. }, _)) if push == Push::Background => {
            net::spawn_hook(ctx, "push");
            Some(None)
        }
        Ok((Outcome::AlreadyCommitted { .. }, _)) => Some(queued_pushed(exchanged)),
        Ok((Outcome::Committed { redacted, .. }, wip_note)) => {
            let mut text = written(ctx, "handoff saved", push, exchanged);
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
            let blocks = may_block && !ctx.input.stop_hook_active && ctx.repo.settings.stop != StopMode::Off;
            Some(Some(match blocks {
                true => Reply {
                    problem: Some(format!(
                        "convosync: the handoff draft could not be saved: {e:#}. Fix {} and stop again.",
                        path.display()
                    )),
                    ..Reply::default()
                },
                false => super::message(&format!("handoff draft kept, not saved: {e:#}")),
            }))
        }
    }
}

/// The session and the agent (with its version, from the transcript) that write a handoff.
fn origin(ctx: &Ctx<'_>) -> draft::Origin {
    let transcript = ctx.input.transcript_path.as_deref().map(Path::new);
    draft::Origin {
        session: ctx.input.session_id.clone(),
        agent: Some(
            ctx.agent
                .label(transcript.and_then(|p| crate::transcript::agent_version(p, ctx.agent))),
        ),
    }
}

/// With a handoff, a snapshot of uncommitted work for the other devices (see [`crate::wip`]).
/// Runs under the repository lock (`_lock`).
fn snapshot_wip(ctx: &Ctx<'_>, _lock: &crate::lock::RepoLock) -> Option<String> {
    use crate::wip::Outcome;
    let (outcome, skipped) = crate::wip::snapshot(&ctx.repo, &ctx.me)
        .map_err(|e| ctx.log(&format!("wip snapshot: {e:#}")))
        .ok()?;
    let names: Vec<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
    let list = names.join(", ");
    match &outcome {
        Outcome::Saved(files) => {
            let local =
                ctx.repo.remote_name().is_some() && crate::wip::stays_local(&ctx.repo, &ctx.me) == Some(true);
            // The hint is looked at (and remembered as shown) only for a snapshot kept here.
            let n = files.len();
            let mut note = match local.then(|| wip_push_hint(ctx)) {
                None => format!("uncommitted changes in {n} file(s) shared"),
                Some(Some(hint)) => hint,
                Some(None) if names.is_empty() => return None,
                Some(None) => format!("uncommitted changes in {n} file(s) kept on this device"),
            };
            if !names.is_empty() {
                note.push_str(&format!(" (credential files left out: {list})"));
            }
            Some(note)
        }
        _ if !names.is_empty() => Some(format!("uncommitted credential files not shared: {list}")),
        Outcome::TooLarge(bytes) => Some(format!(
            "uncommitted changes not shared ({:.1} MB over the {:.1} MB limit)",
            *bytes as f64 / 1_048_576.0,
            ctx.repo.settings.wip_limit as f64 / 1_048_576.0
        )),
        _ => None,
    }
}

/// Once per repository (remembered in the state dir), when a snapshot stays local because it is
/// neither encrypted nor allowed to be pushed: how to share snapshots.
fn wip_push_hint(ctx: &Ctx<'_>) -> Option<String> {
    let marker = ctx.repo.state_dir().join("wip-push-hint-shown");
    if ctx.repo.settings.wip_push == Some(false) || marker.exists() {
        return None;
    }
    let _ = crate::fsutil::replace_file(&marker, b"1\n");
    Some(
        "uncommitted changes kept on this device, not pushed: to share them with your other devices, `convosync key init` (encrypted) or `git config convosync.wipPush true`".to_string(),
    )
}

/// `auto` mode: a handoff derived from the transcript, redacted, committed and pushed.
fn auto_handoff(ctx: &Ctx<'_>, push: Push) -> Option<Reply> {
    let path = ctx.input.transcript_path.as_deref().map(Path::new);
    let summary = path.map(|p| Summary::read(p, ctx.agent)).unwrap_or_default();
    // Redacted before it is cut to section length: a secret cut in half is not recognised.
    let sections = draft::redact_summary(&ctx.repo, &summary).sections(ctx.repo.workdir());
    if sections.is_empty() {
        return None;
    }
    let (result, exchanged) = write(ctx, push, |_lock| {
        let (handoff, _) = draft::build(&ctx.repo, sections, &origin(ctx))?;
        Store::new(&ctx.repo.git, &ctx.repo.settings.refname).put(&handoff, &commit_message(&handoff))
    });
    Some(super::message(&match result {
        Ok(_) => written(ctx, "handoff written from this session", push, exchanged),
        Err(e) => {
            ctx.log(&format!("auto handoff: {e:#}"));
            format!("could not write the automatic handoff: {e:#}")
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    /// A Stop at minute 100 with a 20-minute interval, nothing asked before, no evidence.
    fn base() -> Situation {
        Situation {
            mode: StopMode::Prompt,
            stop_hook_active: false,
            asked_before: false,
            running_work: false,
            last_block: None,
            interval: chrono::Duration::minutes(20),
            now: at(100),
            evidence: Evidence::default(),
        }
    }

    fn with(f: impl FnOnce(&mut Situation)) -> Situation {
        let mut s = base();
        f(&mut s);
        s
    }

    #[test]
    fn when_to_ask_for_a_handoff() {
        let edit = |s: &mut Situation| s.evidence.last_work = Some(at(90));
        let cases: Vec<(&str, Situation, Decision)> = vec![
            ("no evidence", base(), Decision::Nothing),
            ("an edit", with(edit), Decision::Ask),
            (
                "an edit, auto mode",
                with(|s| {
                    edit(s);
                    s.mode = StopMode::Auto
                }),
                Decision::Auto,
            ),
            (
                "an edit, off mode",
                with(|s| {
                    edit(s);
                    s.mode = StopMode::Off
                }),
                Decision::PushQueued,
            ),
            (
                "an edit while Claude goes on because of us",
                with(|s| {
                    edit(s);
                    s.stop_hook_active = true
                }),
                Decision::PushQueued,
            ),
            (
                "an edit, asked at the last Stop",
                with(|s| {
                    edit(s);
                    s.asked_before = true
                }),
                Decision::PushQueued,
            ),
            (
                "an edit, background work running",
                with(|s| {
                    edit(s);
                    s.running_work = true
                }),
                Decision::PushQueued,
            ),
            (
                "an edit, asked 10 minutes ago",
                with(|s| {
                    edit(s);
                    s.last_block = Some(at(90))
                }),
                Decision::Nothing,
            ),
            (
                "an edit before the request 30 minutes ago",
                with(|s| {
                    edit(s);
                    s.last_block = Some(at(70));
                    s.evidence.last_work = Some(at(60))
                }),
                Decision::Nothing,
            ),
            (
                "an edit after the request 30 minutes ago",
                with(|s| {
                    s.last_block = Some(at(70));
                    s.evidence.last_work = Some(at(80))
                }),
                Decision::Ask,
            ),
            (
                "an edit before the last handoff",
                with(|s| {
                    edit(s);
                    s.evidence.last_handoff = Some(at(95))
                }),
                Decision::Nothing,
            ),
            (
                "an edit after the last handoff",
                with(|s| {
                    edit(s);
                    s.evidence.last_handoff = Some(at(85))
                }),
                Decision::Ask,
            ),
            (
                "HEAD moved",
                with(|s| s.evidence.head_moved = true),
                Decision::Ask,
            ),
            (
                "HEAD moved, just after a handoff",
                with(|s| {
                    s.evidence.head_moved = true;
                    s.evidence.last_handoff = Some(at(99))
                }),
                Decision::Ask,
            ),
            (
                "HEAD moved, asked 19 minutes ago",
                with(|s| {
                    s.evidence.head_moved = true;
                    s.last_block = Some(at(81))
                }),
                Decision::Nothing,
            ),
            (
                "HEAD moved, asked exactly 20 minutes ago",
                with(|s| {
                    s.evidence.head_moved = true;
                    s.last_block = Some(at(80))
                }),
                Decision::Ask,
            ),
            (
                "5 prompts",
                with(|s| s.evidence.recent_prompts = (0..5).map(at).collect()),
                Decision::Nothing,
            ),
            (
                "6 prompts",
                with(|s| s.evidence.recent_prompts = (0..6).map(at).collect()),
                Decision::Ask,
            ),
            (
                "6 prompts, 3 before the last handoff",
                with(|s| {
                    s.evidence.recent_prompts = (0..6).map(at).collect();
                    s.evidence.last_handoff = Some(at(2))
                }),
                Decision::Nothing,
            ),
            (
                "8 prompts, 2 before the request",
                with(|s| {
                    s.evidence.recent_prompts = (0..8).map(|m| at(m * 10)).collect();
                    s.last_block = Some(at(15))
                }),
                Decision::Ask,
            ),
            (
                "6 prompts, auto mode",
                with(|s| {
                    s.evidence.recent_prompts = (0..6).map(at).collect();
                    s.mode = StopMode::Auto
                }),
                Decision::Auto,
            ),
        ];
        for (name, situation, want) in cases {
            assert_eq!(decide(&situation), want, "{name}");
        }
    }

    #[test]
    fn evidence_is_measured_from_the_later_of_handoff_and_request() {
        let e = Evidence {
            last_work: Some(at(50)),
            last_handoff: Some(at(40)),
            ..Default::default()
        };
        assert!(e.work_since(None) && e.work_since(Some(at(45))));
        assert!(!e.work_since(Some(at(50))) && !e.work_since(Some(at(60))));
        assert!(!Evidence::default().work_since(None));
    }
}
