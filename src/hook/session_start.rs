//! SessionStart: put the other devices' newest handoffs into Claude's context, and the pure
//! decision of what to inject ([`decide`]) that UserPromptSubmit shares.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::state::SessionState;
use super::wire::Source;
use super::Ctx;
use crate::config::StartMode;
use crate::context::{self, Shown};
use crate::handoff::Handoff;
use crate::store::{Head, Note};

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
            if new.is_empty() {
                Inject::Skip
            } else {
                Inject::Only(new)
            }
        }
    }
}

/// Other devices' notes on the local ref, with the key of each, in the order they are offered;
/// a note's body is parsed only when it is rendered.
pub(super) struct Notes {
    pub keys: Vec<String>,
    key_of: HashMap<String, String>,
    /// The user's own other devices.
    own: Vec<Note>,
    teammates: Vec<Note>,
    wip: Vec<String>,
    claims: HashMap<String, String>,
    /// Other devices whose notes this device cannot decrypt for want of the key.
    locked: Vec<String>,
    branch: Option<String>,
}

impl Notes {
    /// Read from the local ref only (no network).
    pub fn load(ctx: &Ctx<'_>) -> Result<Notes, String> {
        let notes = ctx.notes().map_err(|e| {
            ctx.log(&format!("read handoffs: {e:#}"));
            format!("could not read handoffs ({e:#})")
        })?;
        let key_of: HashMap<String, String> = notes
            .iter()
            .filter(|n| n.device != ctx.me && n.head.is_ok())
            .map(|n| (n.device.clone(), format!("{}:{}", n.device, n.blob)))
            .collect();
        let mut keys: Vec<String> = notes
            .iter()
            .filter_map(|n| key_of.get(&n.device).filter(|_| n.head.is_ok()).cloned())
            .collect();
        let (_, branch) = ctx.repo.head_info();
        let claims = context::claims(notes.iter().map(|n| (n.device.as_str(), n.claimed.as_deref())));
        let locked: Vec<String> = notes
            .iter()
            .filter(|n| n.device != ctx.me && n.lacks_key())
            .map(|n| n.device.clone())
            .collect();
        let mut others: Vec<(Note, Head)> = notes
            .into_iter()
            .filter(|n| n.device != ctx.me)
            .filter_map(|n| {
                let head = n.head.clone().ok()?;
                Some((n, head))
            })
            .collect();
        others.sort_by(|(a, ah), (b, bh)| {
            context::offer_order(
                branch.as_deref(),
                (ah.branch.as_deref(), ah.timestamp, &a.device),
                (bh.branch.as_deref(), bh.timestamp, &b.device),
            )
        });
        let (own, teammates): (Vec<_>, Vec<_>) = others
            .into_iter()
            .partition(|(_, h)| ctx.who.owns(h.author.as_deref()));
        let teammates = match ctx.repo.settings.team {
            crate::config::TeamMode::Show => teammates,
            crate::config::TeamMode::Hide => Vec::new(),
        };
        let wip = crate::wip::others_summary(&ctx.repo, &ctx.me);
        keys.extend(wip.iter().cloned());
        Ok(Notes {
            keys,
            key_of,
            own: own.into_iter().map(|(n, _)| n).collect(),
            teammates: teammates.into_iter().map(|(n, _)| n).collect(),
            wip,
            claims,
            locked,
            branch,
        })
    }

    /// Keep only the notes whose keys are in `only`.
    fn retain(&mut self, only: &[String]) {
        let only: HashSet<&String> = only.iter().collect();
        let key_of = &self.key_of;
        let keep = |n: &Note| key_of.get(&n.device).is_some_and(|k| only.contains(k));
        self.own.retain(keep);
        self.teammates.retain(keep);
        self.wip.retain(|l| only.contains(l));
    }

    fn is_empty(&self) -> bool {
        self.own.is_empty() && self.teammates.is_empty() && self.wip.is_empty()
    }

    /// The context text and the one line for the user.
    fn render(self, ctx: &Ctx<'_>) -> (String, String) {
        let parsed = |notes: &[Note], n: usize| -> Vec<Handoff> {
            notes.iter().take(n).filter_map(|n| n.handoff().ok()).collect()
        };
        let mates = parsed(&self.teammates, crate::team::TEAMMATES_SHOWN);
        let teammates_line = teammates_message(&mates, self.teammates.len());
        let teammates = crate::team::render_teammates(&mates, ctx.now);
        let wip_devices = self.wip.len();
        let wip: String = self.wip.iter().map(|l| format!("- {l}\n")).collect();
        // Short blocks after the handoffs: other devices' uncommitted work, then teammates.
        let extra = if wip.is_empty() {
            teammates
        } else {
            format!("\n# Uncommitted work on other devices\n{wip}{teammates}")
        };
        let total = self.own.len();
        // Parsed one at a time, as the rendering reaches them.
        let shown = self
            .own
            .iter()
            .take(context::MAX_SHOWN)
            .filter_map(|n| n.handoff().ok())
            .map(|h| Shown {
                notes: Vec::new(),
                handoff: h,
            });
        // The short blocks come first in the budget; the user's own devices get the rest.
        let limit = ctx
            .repo
            .settings
            .context_limit
            .saturating_sub(context::utf16_len(&extra));
        let branch = self.branch.as_deref();
        let mut first = true;
        // Where the code stands costs object lookups: only for the handoffs rendered.
        let rendered = context::render_counted(shown, total, ctx.now, limit, |s| {
            if let Some(c) = self.claims.get(&s.handoff.device) {
                s.notes.push(c.clone());
            }
            s.notes.extend(context::code_notes(&ctx.repo, &s.handoff, branch));
            if std::mem::take(&mut first) {
                s.notes.extend(context::behind_upstream(&ctx.repo));
            }
        });
        let first = rendered.as_ref().and_then(|(_, shown)| shown.first());
        let text = match &rendered {
            Some((t, _)) => format!("{t}{extra}"),
            None => format!("{}{extra}", context::PREAMBLE),
        };
        // Only the user's own notes make this a resumed session; say plainly when they are not there.
        let line = first
            .map(|s| context::system_message(&s.handoff, total, ctx.now))
            .or(teammates_line)
            .unwrap_or_else(|| {
                format!(
                    "convosync: no notes from your other devices; uncommitted work on {wip_devices} other device{} noted",
                    if wip_devices == 1 { "" } else { "s" }
                )
            });
        (text, line)
    }
}

/// What [`offer`] found.
pub(super) enum Offer {
    /// No notes from other devices at all.
    Nothing,
    /// Notes, but the session already has them.
    AlreadyThere,
    /// The context text, the line for the user, and the keys the session now has.
    Inject(String, String, Vec<String>),
}

/// Read the local ref and decide what to inject at `moment` into a session that already
/// received `injected`; also the devices whose notes could not be decrypted here.
pub(super) fn offer(
    ctx: &Ctx<'_>,
    moment: Moment,
    injected: &[String],
) -> Result<(Offer, Vec<String>), String> {
    let mut notes = Notes::load(ctx)?;
    let locked = std::mem::take(&mut notes.locked);
    let keys = notes.keys.clone();
    if keys.is_empty() {
        return Ok((Offer::Nothing, locked));
    }
    match decide(moment, &keys, injected, || fork_parent_has(ctx, &keys)) {
        Inject::Skip => return Ok((Offer::AlreadyThere, locked)),
        Inject::All => {}
        Inject::Only(only) => notes.retain(&only),
    }
    if notes.is_empty() {
        return Ok((Offer::AlreadyThere, locked));
    }
    let (text, line) = notes.render(ctx);
    Ok((Offer::Inject(text, line, keys), locked))
}

pub fn run(ctx: &Ctx<'_>) -> Option<Value> {
    let source = ctx.input.source();
    let (session, mut state) = ctx.session_state();
    let state_dir = ctx.repo.state_dir();
    let save = |state: &SessionState| {
        if let Some(k) = session.as_deref() {
            state.save(&state_dir, k);
        }
    };
    if state.started.is_none() {
        // Kept with the next save of this state (no write of its own: the Stop hook falls back
        // on the transcript). Measured against file times: the machine's clock, not
        // `CONVOSYNC_NOW`.
        state.started = Some(chrono::Utc::now());
    }
    // After compact or clear the context is gone but the ref has not changed: no network.
    // Asynchronous start: the fetch runs detached and what it brings reaches Claude with the
    // next prompt (see `prompt`); the answer below uses the local ref only.
    let net_note = match (source.wants_network(), ctx.repo.settings.start) {
        (false, _) => None,
        (true, StartMode::Sync) => ctx.refresh(true),
        (true, StartMode::Async) => ctx.refresh_in_background(),
    };
    let (offered, locked) = match offer(ctx, Moment::Start(source), &state.injected) {
        Ok(o) => o,
        Err(e) => return Some(super::message(&e)),
    };
    // Notes this device cannot decrypt for want of the key: once per repository, what to run.
    let key_hint = crate::crypt::session_hint(&ctx.repo.state_dir(), &locked);
    let (text, mut line, keys) = match offered {
        Offer::Inject(text, line, keys) => (text, line, keys),
        other => {
            // Nothing from other devices: nothing at all, not even a network note. When this
            // session already has exactly these notes: only the network note.
            return match other {
                Offer::AlreadyThere => key_hint.or(net_note).map(|n| super::message(&n)),
                _ => key_hint.map(|h| super::message(&h)),
            };
        }
    };
    if let Some(n) = net_note {
        line.push_str(&format!(" ({n})"));
    }
    if let Some(h) = key_hint {
        line = format!("{line}; {h}");
    }
    state.injected = keys;
    save(&state);
    Some(json!({
        "hookSpecificOutput": { "hookEventName": "SessionStart", "additionalContext": text },
        "systemMessage": line,
    }))
}

/// "convosync: teammates' notes loaded: Bob (laptop-bob), …" when only teammates wrote.
fn teammates_message(teammates: &[crate::handoff::Handoff], total: usize) -> Option<String> {
    if teammates.is_empty() {
        return None;
    }
    let mut names: Vec<String> = teammates
        .iter()
        .take(3)
        .map(|h| {
            let name = crate::timefmt::truncate_chars(&crate::team::teammate_name(h), 40);
            format!("{name} ({})", h.device)
        })
        .collect();
    if total > 3 {
        names.push(format!("+{} more", total - 3));
    }
    Some(format!(
        "convosync: teammates' notes loaded: {}; none from your other devices",
        names.join(", ")
    ))
}

/// Transcripts of other sessions looked at when a session is forked; past this, inject.
const MAX_FORK_CANDIDATES: usize = 100;

/// Whether the session a fork came from already received exactly `keys`, so its transcript (which
/// the fork carries) holds them. Claude Code does not say which session was forked, and the new
/// transcript does not exist yet at SessionStart, so every other session of this project (its
/// transcripts sit in the same directory) must have received exactly these notes; any doubt means
/// "no", and the notes are injected (a second copy costs tokens, a missing one loses the thread).
fn fork_parent_has(ctx: &Ctx<'_>, keys: &[String]) -> bool {
    let Some(path) = ctx.input.transcript_path.as_deref().map(std::path::Path::new) else {
        return false;
    };
    let (Some(dir), Some(own)) = (path.parent(), path.file_stem()) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let state_dir = ctx.repo.state_dir();
    let mut seen = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "jsonl") || p.file_stem() == Some(own) {
            continue;
        }
        seen += 1;
        if seen > MAX_FORK_CANDIDATES {
            return false;
        }
        let input = super::wire::HookInput {
            session_id: p.file_stem().map(|s| s.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let Some(key) = input.session_key() else {
            return false;
        };
        if SessionState::load(&state_dir, &key).injected != keys {
            return false;
        }
    }
    seen > 0
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
