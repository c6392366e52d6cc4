//! SessionStart: put the other devices' newest handoffs into Claude's context, and the pure
//! decision of what to inject ([`decide`]) that UserPromptSubmit shares.

use std::collections::HashSet;

use super::state::SessionState;
use super::wire::Source;
use super::{net, Ctx};
use crate::agent::Reply;
use crate::config::StartMode;
use crate::notes::{Notes, Reader};

/// When notes are offered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// SessionStart, with its source.
    Start(Source),
    /// UserPromptSubmit: only what arrived since the session last received notes.
    Prompt,
}

/// What a hook adds to the session's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inject {
    /// Nothing: no notes, or the session already has exactly these.
    Skip,
    /// Every note.
    All,
    /// Only these keys (`device:blob`, or a wip line), which the session has not received.
    Only(Vec<String>),
}

/// The pure decision: what to inject at `moment`, given the keys of the notes on the local ref,
/// the keys this session already received, and (for a fork) whether the parent session had them.
pub fn decide(
    moment: Moment,
    keys: &[String],
    injected: &[String],
    fork_parent_has: impl FnOnce() -> bool,
) -> Inject {
    if keys.is_empty() {
        return Inject::Skip;
    }
    match moment {
        Moment::Start(source) if source.context_is_empty() => Inject::All,
        Moment::Start(Source::Fork) if injected == keys || fork_parent_has() => Inject::Skip,
        // `resume`, a fork whose parent did not have these, and sources this version does not
        // know: the session's own record decides.
        Moment::Start(_) if injected == keys => Inject::Skip,
        Moment::Start(_) => Inject::All,
        Moment::Prompt => {
            let had: HashSet<&String> = injected.iter().collect();
            let new: Vec<String> = keys.iter().filter(|k| !had.contains(k)).cloned().collect();
            Some(new)
                .filter(|n| !n.is_empty())
                .map_or(Inject::Skip, Inject::Only)
        }
    }
}

/// What [`offer`] found.
pub(super) enum Offer {
    /// No notes from other devices at all.
    Nothing,
    /// Notes, but the session already has them.
    AlreadyThere,
    /// What to add to the session's context (the notes) and the one line for the user; the
    /// session's state now records every note on the ref as received.
    Inject(Reply),
}

/// Read the local ref once and decide what to inject at `moment` into a session that already
/// received `state.injected`, through the one view of other devices' notes ([`crate::notes`]).
/// Every path that delivers notes (this start, synchronous or not, and the prompt after an
/// asynchronous one) says the same, including which notes could not be read.
pub(super) fn offer(ctx: &Ctx<'_>, moment: Moment, state: &mut SessionState) -> Result<Offer, String> {
    let read = ctx.notes().map_err(|e| {
        ctx.log(&format!("read handoffs: {e:#}"));
        format!("could not read handoffs ({e:#})")
    })?;
    let mut notes = Notes::gather(&ctx.repo, &ctx.who, &ctx.me, read, Vec::new(), false, ctx.now);
    for s in notes.skipped.lines() {
        ctx.log(s);
    }
    let keys = notes.keys.clone();
    if keys.is_empty() {
        return Ok(Offer::Nothing);
    }
    match decide(moment, &keys, &state.injected, || fork_parent_has(ctx, &keys)) {
        Inject::Skip => return Ok(Offer::AlreadyThere),
        Inject::All => {}
        Inject::Only(only) => notes.retain(&only),
    }
    if notes.is_empty() {
        return Ok(Offer::AlreadyThere);
    }
    // What to run on a device without the key: once per repository.
    let hint = crate::crypt::session_hint(&ctx.repo.state_dir(), &notes.lacking_key()).is_some();
    let view = notes.render(&ctx.repo, Reader::Session(ctx.agent), hint);
    state.injected = keys;
    ctx.save_state(state);
    Ok(Offer::Inject(Reply {
        context: Some(view.text()),
        message: Some(view.line),
        ..Reply::default()
    }))
}

pub fn run(ctx: &Ctx<'_>) -> Option<Reply> {
    let source = ctx.input.source;
    let mut state = ctx.session_state();
    // Kept with the next save of this state (no write of its own: the Stop hook falls back on
    // the transcript). Measured against file times: the machine's clock, not `CONVOSYNC_NOW`.
    state.started.get_or_insert_with(chrono::Utc::now);
    // After compact or clear the context is gone but the ref has not changed: no network.
    // Asynchronous start: the fetch runs detached and what it brings reaches Claude with the
    // next prompt (see `prompt`); the answer below uses the local ref only.
    let net_note = match (source.wants_network(), ctx.repo.settings.start) {
        (false, _) => None,
        (true, StartMode::Sync) => net::refresh(ctx),
        (true, StartMode::Async) => net::refresh_in_background(ctx),
    };
    let mut reply = match offer(ctx, Moment::Start(source), &mut state) {
        Err(e) => return Some(super::message(&e)),
        Ok(Offer::Inject(reply)) => reply,
        // Nothing from other devices: nothing at all, not even a network note.
        Ok(Offer::Nothing) => return None,
        // This session already has exactly these notes: only the network note.
        Ok(Offer::AlreadyThere) => return net_note.map(|n| super::message(&n)),
    };
    if let (Some(n), Some(line)) = (net_note, &mut reply.message) {
        line.push_str(&format!(" ({n})"));
    }
    Some(reply)
}

/// Transcripts of other sessions looked at when a session is forked; past this, inject.
const MAX_FORK_CANDIDATES: usize = 100;

/// Whether the session a fork came from already received exactly `keys`, so its transcript (which
/// the fork carries) holds them. Claude Code does not say which session was forked, and the new
/// transcript does not exist yet at SessionStart, so every other session of this project (its
/// transcripts sit in the same directory) must have received exactly these notes; any doubt means
/// "no", and the notes are injected (a second copy costs tokens, a missing one loses the thread).
fn fork_parent_has(ctx: &Ctx<'_>, keys: &[String]) -> bool {
    let path = ctx.input.transcript_path.as_deref().map(std::path::Path::new);
    let Some((entries, own)) =
        path.and_then(|p| Some((std::fs::read_dir(p.parent()?).ok()?, p.file_stem()?)))
    else {
        return false;
    };
    let others: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.file_stem() != Some(own))
        .take(MAX_FORK_CANDIDATES + 1)
        .collect();
    let had = |p: &std::path::PathBuf| {
        let key = p
            .file_stem()
            .and_then(|s| super::wire::session_key(&s.to_string_lossy()));
        key.is_some_and(|k| SessionState::load(&ctx.repo.state_dir(), &k).injected == keys)
    };
    (1..=MAX_FORK_CANDIDATES).contains(&others.len()) && others.iter().all(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Every moment against every relation between what is on the ref and what the session has.
    #[test]
    fn what_to_inject_matrix() {
        let ab = k(&["a:1", "b:1"]);
        let a2b = k(&["a:2", "b:1"]);
        let none: Vec<String> = Vec::new();
        let sources = [
            Source::Startup,
            Source::Resume,
            Source::Fork,
            Source::Clear,
            Source::Compact,
            Source::Unknown,
        ];
        for &src in &sources {
            let m = Moment::Start(src);
            // Nothing on the ref: nothing, whatever the session had.
            assert_eq!(decide(m, &none, &none, || true), Inject::Skip, "{src:?}");
            assert_eq!(decide(m, &none, &ab, || true), Inject::Skip, "{src:?}");
            // A session that has nothing yet gets everything.
            let fresh = decide(m, &ab, &none, || false);
            assert_eq!(fresh, Inject::All, "{src:?}");
            // Exactly these already received.
            let same = decide(m, &ab, &ab, || false);
            let expect = if src.context_is_empty() {
                Inject::All
            } else {
                Inject::Skip
            };
            assert_eq!(same, expect, "{src:?} with the same notes");
            // A newer note since: everything again at start (the context is rebuilt whole).
            assert_eq!(decide(m, &a2b, &ab, || false), Inject::All, "{src:?} newer");
        }
        // A fork whose parent session had exactly these carries them in its transcript.
        assert_eq!(
            decide(Moment::Start(Source::Fork), &ab, &none, || true),
            Inject::Skip
        );
        assert_eq!(
            decide(Moment::Start(Source::Fork), &ab, &none, || false),
            Inject::All
        );
        // The parent is only asked about for a fork.
        for src in [Source::Resume, Source::Unknown, Source::Startup] {
            let asked = std::cell::Cell::new(false);
            decide(Moment::Start(src), &ab, &none, || {
                asked.set(true);
                true
            });
            assert!(!asked.get(), "{src:?}");
        }
        // At a prompt: only what the session has not received, once.
        assert_eq!(decide(Moment::Prompt, &ab, &ab, || false), Inject::Skip);
        assert_eq!(
            decide(Moment::Prompt, &a2b, &ab, || false),
            Inject::Only(k(&["a:2"]))
        );
        assert_eq!(
            decide(Moment::Prompt, &ab, &none, || false),
            Inject::All.min_of(&ab)
        );
        assert_eq!(decide(Moment::Prompt, &none, &ab, || false), Inject::Skip);
        // A note gone from the ref is no reason to inject.
        assert_eq!(decide(Moment::Prompt, &k(&["b:1"]), &ab, || false), Inject::Skip);
        // A wip line that changed is new.
        let with_wip = k(&["a:1", "b:1", "laptop: 2 files"]);
        assert_eq!(
            decide(Moment::Prompt, &with_wip, &ab, || false),
            Inject::Only(k(&["laptop: 2 files"]))
        );
    }

    impl Inject {
        /// At a prompt "everything" is spelt as the list of all keys.
        fn min_of(self, keys: &[String]) -> Inject {
            match self {
                Inject::All => Inject::Only(keys.to_vec()),
                other => other,
            }
        }
    }
}
