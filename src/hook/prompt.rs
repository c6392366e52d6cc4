//! UserPromptSubmit: notes that reached the local ref after the session received its notes (the
//! detached fetch of an asynchronous SessionStart, or a `convosync sync` meanwhile) go to Claude
//! with the next prompt, once, saying what the synchronous start would have said (a note that
//! could not be read included). Local only: no network, no lock.

use crate::agent::Reply;

use super::session_start::{offer, Moment, Offer};
use super::Ctx;

/// The preface of notes added at a prompt: they supersede earlier notes of the same devices.
const NEWER: &str = "# convosync: newer notes arrived from other devices since this session started \
(they replace earlier notes from the same devices)\n\n";

pub fn run(ctx: &Ctx<'_>) -> Option<Reply> {
    // Without a session id there is no record of what the session has: never guess.
    ctx.input.session_key()?;
    super::net::wait_for_background_fetch(ctx);
    let Ok(Offer::Inject(reply)) = offer(ctx, Moment::Prompt, &mut ctx.session_state()) else {
        return None;
    };
    Some(Reply {
        context: reply.context.map(|text| format!("{NEWER}{text}")),
        message: reply
            .message
            .map(|line| line.replacen("convosync: ", "convosync: newer notes: ", 1)),
        ..reply
    })
}
