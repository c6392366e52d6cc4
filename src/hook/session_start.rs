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
    let mut dirty = false;
    if session.is_some() && state.worktree_fingerprint.is_none() && source == "startup" {
        // Changes already in the worktree when the session opens are not this session's work.
        state.worktree_fingerprint = super::stop::fingerprint(&ctx.repo);
        dirty = state.worktree_fingerprint.is_some();
    }
    let save = |state: &SessionState| {
        if let Some(k) = session.as_deref() {
            state.save(&state_dir, k);
        }
    };
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
    // Notes this device cannot decrypt for want of the key: say once per repository what to run.
    let locked: Vec<String> = entries
        .iter()
        .filter(|e| e.device != ctx.me && e.handoff.as_ref().is_err_and(|r| r == crate::crypt::NO_KEY))
        .map(|e| e.device.clone())
        .collect();
    let key_hint = crate::crypt::session_hint(&state_dir, &locked);
    let mut keys: Vec<String> = entries
        .iter()
        .filter(|e| e.device != ctx.me && e.handoff.is_ok())
        .map(|e| format!("{}:{}", e.device, e.blob))
        .collect();
    let (_, branch) = ctx.repo.head_info();
    let handoffs = context::others(entries, &ctx.me, branch.as_deref());
    let (handoffs, teammates) = crate::team::split(handoffs, ctx.repo.user_email().as_deref());
    let teammates = match ctx.repo.settings.team {
        crate::config::TeamMode::Show => crate::team::render_teammates(&teammates, ctx.now),
        crate::config::TeamMode::Hide => String::new(),
    };
    let wip = crate::wip::others_summary(&ctx.repo, &ctx.me);
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
        if dirty {
            save(&state);
        }
        return key_hint.map(|h| super::message(&h));
    }
    if source == "resume" && state.injected == keys {
        // This session already has exactly these notes in its context.
        if dirty {
            save(&state);
        }
        return key_hint.or(net_note).map(|n| super::message(&n));
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
        .saturating_sub(extra.chars().count());
    // Where-the-code-stands notes cost object lookups: only for the handoffs that fit.
    let fitting = context::render_counted(&shown, total, ctx.now, limit).map_or(0, |(_, n)| n);
    for s in shown.iter_mut().take(fitting + 1) {
        s.notes = context::code_notes(&ctx.repo, &s.handoff, branch.as_deref());
    }
    if let (Some(first), Some(b)) = (shown.first_mut(), context::behind_upstream(&ctx.repo)) {
        first.notes.push(b);
    }
    let text = match context::render_of(&shown, total, ctx.now, limit) {
        Some(t) => t + &extra,
        None => format!("{}{extra}", context::PREAMBLE),
    };
    let mut line = context::system_message(&shown, ctx.now)
        .unwrap_or_else(|| "convosync: notes from other devices loaded".to_string());
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
