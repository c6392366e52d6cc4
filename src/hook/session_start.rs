//! SessionStart: put the other devices' newest handoffs into Claude's context.

use serde_json::{json, Value};

use super::state::SessionState;
use super::Ctx;
use crate::context::{self, Shown};
use crate::store::Store;

pub fn run(ctx: &Ctx<'_>) -> Option<Value> {
    let source = ctx.input.source.as_deref().unwrap_or("startup");
    let (session, mut state) = ctx.session_state();
    let state_dir = ctx.repo.state_dir();
    let save = |state: &SessionState| {
        if let Some(k) = session.as_deref() {
            state.save(&state_dir, k);
        }
    };
    // Sources: `startup` (new), `resume`, `fork` (a new session id over an earlier transcript),
    // `clear` and `compact` (the context is gone). Unknown ones are treated like `resume`: notes
    // are injected unless this very session already received exactly these.
    // After compact or clear the context is gone but the ref has not changed: no network.
    let net_note = match source {
        "compact" | "clear" => None,
        _ => ctx.refresh(true),
    };
    let store = Store::new(&ctx.repo.git, &ctx.repo.settings.refname);
    let entries = match store.entries_cached(&state_dir) {
        Ok(e) => e,
        Err(e) => {
            ctx.log(&format!("read handoffs: {e:#}"));
            return Some(super::message(&format!("could not read handoffs ({e})")));
        }
    };
    let mut keys: Vec<String> = entries
        .iter()
        .filter(|e| e.device != ctx.me && e.handoff.is_ok())
        .map(|e| format!("{}:{}", e.device, e.blob))
        .collect();
    let (_, branch) = ctx.repo.head_info();
    let claims = context::claims(&entries);
    let handoffs = context::others(entries, &ctx.me, branch.as_deref());
    let (handoffs, teammates) = crate::team::split(handoffs, &crate::team::Me::load(&ctx.repo));
    let teammates = match ctx.repo.settings.team {
        crate::config::TeamMode::Show => teammates,
        crate::config::TeamMode::Hide => Vec::new(),
    };
    let teammates_line = teammates_message(&teammates);
    let teammates = crate::team::render_teammates(&teammates, ctx.now);
    let wip = crate::wip::others_summary(&ctx.repo, &ctx.me);
    let wip_devices = wip.len();
    keys.extend(wip.iter().cloned());
    let wip: String = wip.iter().map(|l| format!("- {l}\n")).collect();
    // Short blocks after the handoffs: other devices' uncommitted work, then teammates.
    let extra = if wip.is_empty() {
        teammates
    } else {
        format!("\n# Uncommitted work on other devices\n{wip}{teammates}")
    };
    if handoffs.is_empty() && extra.is_empty() {
        // Nothing from other devices: nothing at all, not even a network note.
        return None;
    }
    let already_there = match source {
        "startup" | "compact" | "clear" => false,
        // A fork starts a new session from an earlier one's transcript.
        "fork" => state.injected == keys || fork_parent_has(ctx, &keys),
        // `resume`, and sources this version does not know: the session's own record decides.
        _ => state.injected == keys,
    };
    if already_there {
        // This session already has exactly these notes in its context.
        return net_note.map(|n| super::message(&n));
    }

    let total = handoffs.len();
    let mut shown: Vec<Shown> = handoffs
        .into_iter()
        .take(context::MAX_SHOWN)
        .map(|h| Shown {
            notes: Vec::new(),
            handoff: h,
        })
        .collect();
    // The short blocks come first in the budget; the user's own devices get the rest.
    let limit = ctx
        .repo
        .settings
        .context_limit
        .saturating_sub(context::utf16_len(&extra));
    // Where-the-code-stands notes cost object lookups: only for the handoffs that fit.
    let fitting = context::render_counted(&shown, total, ctx.now, limit).map_or(0, |(_, n)| n);
    for s in shown.iter_mut().take(fitting + 1) {
        s.notes = context::code_notes(&ctx.repo, &s.handoff, branch.as_deref());
    }
    for s in shown.iter_mut() {
        if let Some(c) = claims.get(&s.handoff.device) {
            s.notes.insert(0, c.clone());
        }
    }
    if let (Some(first), Some(b)) = (shown.first_mut(), context::behind_upstream(&ctx.repo)) {
        first.notes.push(b);
    }
    let text = match context::render_of(&shown, total, ctx.now, limit) {
        Some(t) => t + &extra,
        None => format!("{}{extra}", context::PREAMBLE),
    };
    // Only the user's own notes make this a resumed session; say plainly when they are not there.
    let mut line = context::system_message(&shown, ctx.now)
        .or(teammates_line)
        .unwrap_or_else(|| {
            format!(
                "convosync: no notes from your other devices; uncommitted work on {wip_devices} other device{} noted",
                if wip_devices == 1 { "" } else { "s" }
            )
        });
    if let Some(n) = net_note {
        line.push_str(&format!(" ({n})"));
    }
    state.injected = keys;
    save(&state);
    Some(json!({
        "hookSpecificOutput": { "hookEventName": "SessionStart", "additionalContext": text },
        "systemMessage": line,
    }))
}

/// "convosync: teammates' notes loaded: Bob (laptop-bob), …" when only teammates wrote.
fn teammates_message(teammates: &[crate::handoff::Handoff]) -> Option<String> {
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
    if teammates.len() > 3 {
        names.push(format!("+{} more", teammates.len() - 3));
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
