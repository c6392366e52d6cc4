//! `convosync hook <event>`: what runs inside every session of a coding agent.
//!
//! Each event reads the agent's JSON on stdin and prints at most one JSON object on stdout, in
//! the shape that agent accepts ([`crate::agent`]); the decisions here are the same for all.
//! Nothing here may break or slow a session: every failure becomes at most one short line for the
//! user (`systemMessage`) or a line in `<git dir>/convosync/convosync.log`, the exit code is always
//! 0, and all network work shares one hard deadline.

pub mod project;
pub mod prompt;
pub mod session_start;
use crate::state;
pub mod stop;
pub mod wire;

use std::io::Read;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::agent::{Agent, Reply};
use crate::git::Deadline;
use crate::lock::RepoLock;
use crate::repo::Repo;
use crate::store::{Note, Store};
use crate::sync::{self, Pushed};
use state::{Backoff, Channel};
use wire::{Event, HookInput};

/// Read stdin (bounded) and run the hook for `event`; returns what to print, if anything.
/// An event this version does not answer does nothing, before reading stdin or looking for a
/// repository. Input that cannot be read whole (over [`wire::MAX_INPUT`], truncated, not JSON)
/// does nothing. `agent` names the agent that runs the hook (`--agent`, as each agent's hooks
/// file passes it); without it the agent is told from the input.
pub fn run(event: &str, agent: Option<&str>, stdin: impl Read) -> Option<String> {
    let event = Agent::event(event)?;
    let input = HookInput::read(stdin)?;
    let agent = agent
        .and_then(Agent::parse)
        .unwrap_or_else(|| Agent::detect(&input, |k| std::env::var(k).ok().filter(|v| !v.is_empty())));
    // A bug must not take a session down with it: a panic becomes "no output".
    let out = std::panic::catch_unwind(|| dispatch(event, agent, &input))
        .ok()
        .flatten()?;
    let out = agent.render(event, &Reply::from_core(event, &out))?;
    serde_json::to_string(&crate::untrusted::json(out)).ok()
}

fn dispatch(event: Event, agent: Agent, input: &HookInput) -> Option<Value> {
    let mut ctx = Ctx::new(input, event)?;
    ctx.agent = agent;
    if event.is_background() {
        ctx.deadline = Deadline::after(std::time::Duration::from_secs(stop::BACKGROUND_PUSH_SECS));
    }
    let out = match event {
        Event::SessionStart => session_start::run(&ctx),
        Event::UserPromptSubmit => prompt::run(&ctx),
        Event::Stop => stop::run(&ctx),
        Event::SessionEnd => stop::session_end(&ctx),
        Event::Push => stop::background_push(&ctx),
        Event::Fetch => {
            let note = ctx.refresh();
            let _ = std::fs::remove_file(ctx.repo.state_dir().join(FETCHING));
            if let Some(n) = note {
                ctx.log(&format!("background fetch: {n}"));
            }
            None
        }
    };
    // Invalid entries met on the ref: one log line each.
    for s in crate::untrusted::take_skipped() {
        ctx.log(&s);
    }
    out
}

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
    notes: std::cell::RefCell<Option<(Option<git2::Oid>, Vec<Note>)>>,
}

impl<'a> Ctx<'a> {
    /// `None` (print nothing) outside a repository or when the device id cannot be had.
    fn new(input: &'a HookInput, event: Event) -> Option<Ctx<'a>> {
        let env = |k: &str| std::env::var_os(k);
        project::remember_start(input, event, &env);
        let dir = project::dir(input, &env).or_else(|| std::env::current_dir().ok())?;
        let repo = Repo::discover(&dir).ok().flatten()?;
        let who = crate::team::Me::load(&repo);
        // The events that show notes read them all anyway: this device's id comes from them.
        let mut notes = None;
        if event.reads_notes() {
            let store = Store::new(&repo.git, &repo.settings.refname);
            let tip = store.tip_id();
            if let Ok(n) = store.notes_cached(&repo.state_dir()) {
                notes = Some((tip, n));
            }
        }
        let me = match &notes {
            Some((_, e)) => crate::team::my_device_among(&who, e),
            None => crate::team::my_device_as(&repo, &who),
        };
        let me = match me {
            Ok(me) => me,
            Err(e) => {
                state::log(&repo.state_dir(), &format!("no device id: {e:#}"));
                return None;
            }
        };
        let deadline = Deadline::after(repo.settings.timeout);
        Some(Ctx {
            input,
            agent: Agent::Claude,
            repo,
            me,
            who,
            now: crate::timefmt::now(),
            deadline,
            notes: std::cell::RefCell::new(notes),
        })
    }

    /// Every note on the local ref, through the tip cache; those read by [`Ctx::new`] when the
    /// ref has not moved since (a fetch may have moved it).
    pub fn notes(&self) -> anyhow::Result<Vec<Note>> {
        let store = Store::new(&self.repo.git, &self.repo.settings.refname);
        if let Some((tip, notes)) = self.notes.borrow_mut().take() {
            if tip == store.tip_id() {
                return Ok(notes);
            }
        }
        store.notes_cached(&self.repo.state_dir())
    }

    /// This session's key (when Claude Code sent an id) and its remembered state.
    pub fn session_state(&self) -> (Option<String>, state::SessionState) {
        let key = self.input.session_key();
        let state = key
            .as_deref()
            .map(|k| state::SessionState::load(&self.repo.state_dir(), k))
            .unwrap_or_default();
        (key, state)
    }

    pub fn log(&self, msg: &str) {
        state::log(&self.repo.state_dir(), msg);
    }

    /// Fetch and merge the handoff ref, and push what is queued, within the deadline. Returns a
    /// one-line note for the user when the remote could not be used, once per distinct problem
    /// (the same failure at the next session start stays in the log).
    pub fn refresh(&self) -> Option<String> {
        let (_, exchanged) = self.exchange(Want::Notes, |_| Ok(()));
        let note = exchanged
            .and_then(|x| x.problem)
            .or_else(|| sync::take_restored(&self.repo))?;
        self.once(note)
    }

    /// `note`, unless the same note was the last one shown (then only logged).
    fn once(&self, note: String) -> Option<String> {
        if state::note_is_new(&self.repo.state_dir(), &note) {
            Some(note)
        } else {
            self.log(&format!("not repeated: {note}"));
            None
        }
    }

    /// Asynchronous session start: start `convosync hook fetch` detached (one [`Want::Notes`]
    /// exchange with a longer deadline of its own) and return at once. Returns the note of an
    /// earlier failure while its backoff is in force (once per distinct problem), as the
    /// synchronous start would. At most one such fetch runs at a time.
    pub fn refresh_in_background(&self) -> Option<String> {
        if let Err(note) = self.gate(Want::Notes) {
            return self.once(note?);
        }
        let marker = self.repo.state_dir().join(FETCHING);
        let running = std::fs::metadata(&marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() < stop::BACKGROUND_PUSH_SECS);
        if running {
            return None;
        }
        if crate::fsutil::replace_file(&marker, b"").is_ok() && !spawn_hook(self, "fetch") {
            let _ = std::fs::remove_file(&marker);
        }
        // Key ids an earlier hook restored.
        sync::take_restored(&self.repo)
    }

    /// Wait for a detached fetch in flight, but no longer than a synchronous start would have
    /// waited from when it began (the network timeout, at most 5 s). A prompt typed by a person
    /// comes long after the fetch ended and never waits; `claude -p`, whose prompt follows the
    /// session start at once, gets what the fetch brought whenever a synchronous start would
    /// have.
    pub fn wait_for_background_fetch(&self) {
        let marker = self.repo.state_dir().join(FETCHING);
        let budget = self.repo.settings.timeout.min(std::time::Duration::from_secs(5));
        loop {
            let age = std::fs::metadata(&marker)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            match age {
                Some(a) if a < budget => std::thread::sleep(std::time::Duration::from_millis(10)),
                _ => return,
            }
        }
    }

    /// `local` under the repository lock, without the network.
    pub fn locked<T>(&self, local: impl FnOnce(&RepoLock) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.repo.lock(HOOK_LOCK_WAIT).and_then(|l| local(&l))
    }

    /// Whether a hook may use the network for `want` now: the remote, or why not (with the line
    /// for the user, if there is one). The one place that says when hooks try: never without a
    /// remote or past the deadline; while a fetch backoff from an earlier failure is in force no
    /// network for notes or queued handoffs (nothing is retried in a tight loop); while a push
    /// backoff is in force no push of handoffs; queued handoffs only when there are some. A new
    /// handoff is always worth one try.
    pub fn gate(&self, want: Want) -> Result<String, Option<String>> {
        let remote = self.repo.remote_name().ok_or(None)?;
        let dir = self.repo.state_dir();
        let fetch = Backoff::load(&dir, Channel::Fetch);
        let push = Backoff::load(&dir, Channel::Push);
        if want != Want::Handoff && fetch.active(self.now) {
            let note = (want == Want::Notes).then(|| {
                fetch
                    .last_error
                    .unwrap_or_else(|| format!("{remote} unreachable recently; using cached handoffs"))
            });
            return Err(note);
        }
        if want != Want::Notes && push.active(self.now) {
            return Err(Some(push.last_error.unwrap_or_else(|| {
                format!("push to {remote} failed recently; handoff queued")
            })));
        }
        if (want == Want::Queued && !sync::pending(&self.repo, &remote)) || self.deadline.passed() {
            return Err(None);
        }
        Ok(remote)
    }

    /// The one exchange of a hook with the remote ([`sync::exchange`]), for `want`, with `local`
    /// run under the repository lock (also without a remote, or when [`Ctx::gate`] keeps the
    /// network out). Records how it went in the backoffs; the second value is `None` when the
    /// remote was not used.
    pub fn exchange<T>(
        &self,
        want: Want,
        local: impl FnOnce(&RepoLock) -> anyhow::Result<T>,
    ) -> (anyhow::Result<T>, Option<Exchanged>) {
        let remote = match self.gate(want) {
            Ok(r) => r,
            Err(note) => {
                let done = self.locked(local);
                let held = note.map(|n| Exchanged {
                    problem: Some(n),
                    pushed: false,
                });
                return (done, held);
            }
        };
        let push_held = Backoff::load(&self.repo.state_dir(), Channel::Push);
        let plan = sync::Plan {
            remote: &remote,
            deadline: self.deadline,
            lock_wait: HOOK_LOCK_WAIT,
            fetch_first: want != Want::Queued,
            push: !push_held.active(self.now),
            wip_of: Some(&self.me),
        };
        let (done, report) = sync::exchange(&self.repo, &plan, local);
        let mut problem = self.settle(&report);
        if !plan.push && report.pending {
            problem = problem.or(push_held.last_error);
        }
        let pushed = report.pushed == Pushed::Ok;
        (done, Some(Exchanged { problem, pushed }))
    }

    /// Record how an exchange went in the backoffs; returns the problem, if any.
    fn settle(&self, report: &sync::Report) -> Option<String> {
        let dir = self.repo.state_dir();
        let problem = report.problem();
        if let Some(p) = &problem {
            self.log(&format!("{}: {p}", report.remote));
        }
        let said = problem.clone().unwrap_or_default();
        if !report.reachable() {
            Backoff::failed(&dir, Channel::Fetch, self.now, &said);
            return problem;
        }
        Backoff::succeeded(&dir, Channel::Fetch);
        match &report.pushed {
            Pushed::TimedOut | Pushed::Failed(_) | Pushed::Refused(_) => {
                Backoff::failed(&dir, Channel::Push, self.now, &said)
            }
            Pushed::Ok | Pushed::UpToDate => Backoff::succeeded(&dir, Channel::Push),
            Pushed::Rejected => {}
        }
        problem
    }
}

/// What a hook's exchange with the remote is for ([`Ctx::exchange`]).
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
const FETCHING: &str = "fetching";

/// Start `convosync hook <event>` detached: its own session (setsid), stdin a pipe closed right
/// after the one line it needs, stdout to /dev/null, stderr to the log, so Claude Code waits on
/// none of it.
pub(crate) fn spawn_hook(ctx: &Ctx<'_>, event: &str) -> bool {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let Some(dir) = ctx.repo.workdir().map(std::path::Path::to_path_buf) else {
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
        .map_or_else(|_| std::process::Stdio::null(), Stdio::from);
    let mut cmd = Command::new(exe);
    cmd.args(["hook", event])
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
            ctx.log(&format!("background {event}: {e}"));
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

/// `{"systemMessage": "convosync: …"}`
pub fn message(text: &str) -> Value {
    json!({ "systemMessage": format!("convosync: {text}") })
}
