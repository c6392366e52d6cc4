//! Running one hook: read the agent's input, build the context, dispatch the event, shape the
//! answer for the agent.

use std::io::Read;

use super::wire::{Event, HookInput};
use super::{net, prompt, session_start, stop, Ctx};
use crate::agent::{Agent, Reply};

/// Read stdin (bounded) and run the hook for `event`; returns what to print, if anything.
/// An event this version does not answer does nothing, before reading stdin or looking for a
/// repository. Input that cannot be read whole (over [`wire::MAX_INPUT`], truncated, not JSON)
/// does nothing. `agent` names the agent that runs the hook (`--agent`, as each agent's hooks
/// file passes it); without it the agent is told from the input.
pub fn run(event: &str, agent: Option<&str>, stdin: impl Read) -> Option<String> {
    let event = Event::parse(event)?;
    let input = HookInput::read(stdin)?;
    let agent = agent
        .and_then(Agent::parse)
        .unwrap_or_else(|| Agent::detect(&input, |k| std::env::var(k).ok().filter(|v| !v.is_empty())));
    // A bug must not take a session down with it: a panic becomes "no output".
    let out = std::panic::catch_unwind(|| dispatch(event, agent, &input))
        .ok()
        .flatten()?;
    let out = agent.render(event, &out)?;
    serde_json::to_string(&crate::untrusted::json(out)).ok()
}

fn dispatch(event: Event, agent: Agent, input: &HookInput) -> Option<Reply> {
    let ctx = Ctx::new(input, event, agent)?;
    match event {
        Event::SessionStart => session_start::run(&ctx),
        Event::UserPromptSubmit => prompt::run(&ctx),
        Event::Stop => stop::run(&ctx),
        Event::SessionEnd => stop::session_end(&ctx),
        // The detached halves of SessionEnd and of an asynchronous SessionStart, with
        // [`super::BACKGROUND_SECS`] as their deadline: nobody is there to tell, so they print
        // nothing (problems are logged where the exchange is settled).
        Event::Push => {
            let _ = net::exchange(&ctx, net::Want::Queued, |_| Ok(()));
            None
        }
        Event::Fetch => {
            let _ = net::refresh(&ctx);
            let _ = std::fs::remove_file(ctx.repo.state_dir().join(net::FETCHING));
            None
        }
    }
}
