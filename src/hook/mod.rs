//! `convosync hook <event>`: what runs inside every session of a coding agent.
//!
//! Each event reads the agent's JSON on stdin and prints at most one JSON object on stdout, in
//! the shape that agent accepts ([`crate::agent`]); the decisions here are the same for all.
//! Nothing here may break or slow a session: every failure becomes at most one short line for the
//! user (`systemMessage`) or a line in `<git dir>/convosync/convosync.log`, the exit code is always
//! 0, and all network work shares one hard deadline.

pub mod net;
pub mod project;
pub mod prompt;
pub mod run;
pub mod session_start;
pub mod stop;
pub mod wire;

use chrono::{DateTime, Utc};

use crate::agent::{Agent, Reply};
use crate::git::Deadline;
use crate::repo::Repo;
use crate::state;
use crate::store::{Note, Store};
use wire::{Event, HookInput};

/// How long a detached fetch or push may take.
pub const BACKGROUND_SECS: u64 = 60;

/// What every hook needs: the repository of the session, this device, the clock.
pub struct Ctx<'a> {
    pub input: &'a HookInput,
    /// The agent that runs the hook: only its label for a note and its transcript's format are
    /// read here; its output is shaped in [`run`].
    pub agent: Agent,
    pub repo: Repo,
    pub me: String,
    /// The user's identity (name, email, aliases), to tell their notes from teammates'.
    pub who: crate::team::Me,
    pub now: DateTime<Utc>,
    pub deadline: Deadline,
    /// The ref's notes, when they were read to find this device's id, and the tip they were
    /// read at: read once per hook.
    pub notes: Option<(Option<git2::Oid>, Vec<Note>)>,
}

impl<'a> Ctx<'a> {
    /// `None` (print nothing) outside a repository or when the device id cannot be had.
    fn new(input: &'a HookInput, event: Event, agent: Agent) -> Option<Ctx<'a>> {
        let env = |k: &str| std::env::var_os(k);
        project::remember_start(input, event, &env);
        let dir = project::dir(input, &env).or_else(|| std::env::current_dir().ok())?;
        let repo = Repo::discover(&dir).ok().flatten()?;
        let who = crate::team::Me::load(&repo);
        // The events that show notes read them all anyway: this device's id comes from them.
        let store = Store::new(&repo.git, &repo.settings.refname);
        let notes = matches!(event, Event::SessionStart | Event::UserPromptSubmit)
            .then(|| Some((store.tip_id(), read_notes(&repo, &store).ok()?)));
        let notes = notes.flatten();
        let me = match &notes {
            Some((_, e)) => crate::team::my_device_among(&who, e),
            None => crate::team::my_device_as(&repo, &who),
        };
        let me = me
            .map_err(|e| state::log(&repo.state_dir(), &format!("no device id: {e:#}")))
            .ok()?;
        // The detached processes have a deadline of their own.
        let deadline = Deadline::after(match event.is_background() {
            true => std::time::Duration::from_secs(BACKGROUND_SECS),
            false => repo.settings.timeout,
        });
        Some(Ctx {
            input,
            agent,
            repo,
            me,
            who,
            now: crate::timefmt::now(),
            deadline,
            notes,
        })
    }

    /// Every note on the local ref, through the tip cache; those read by [`Ctx::new`] when the
    /// ref has not moved since (a fetch may have moved it).
    pub fn notes(&self) -> anyhow::Result<Vec<Note>> {
        let store = Store::new(&self.repo.git, &self.repo.settings.refname);
        match &self.notes {
            Some((tip, notes)) if *tip == store.tip_id() => Ok(notes.clone()),
            _ => read_notes(&self.repo, &store),
        }
    }

    /// This session's remembered state (empty without a session id).
    pub fn session_state(&self) -> state::SessionState {
        self.input
            .session_key()
            .map(|k| state::SessionState::load(&self.repo.state_dir(), &k))
            .unwrap_or_default()
    }

    /// Remember `state` as this session's (nothing without a session id).
    pub fn save_state(&self, state: &state::SessionState) {
        if let Some(k) = self.input.session_key() {
            state.save(&self.repo.state_dir(), &k);
        }
    }

    pub fn log(&self, msg: &str) {
        state::log(&self.repo.state_dir(), msg);
    }
}

/// Every note on the ref of `store`, through the tip cache; invalid entries met on the ref are
/// logged, one line each.
fn read_notes(repo: &Repo, store: &Store<'_>) -> anyhow::Result<Vec<Note>> {
    let read = store.notes_cached(&repo.state_dir())?;
    for s in read.warnings.skipped.lines() {
        state::log(&repo.state_dir(), s);
    }
    Ok(read.items)
}

/// One line for the user: `convosync: …`.
pub fn message(text: &str) -> Reply {
    Reply {
        message: Some(format!("convosync: {text}")),
        ..Reply::default()
    }
}
