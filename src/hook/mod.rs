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
use crate::repo::Repo;
use crate::store::{Note, Store};
use crate::sync::{self, Fetched, Pushed};
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
            let note = ctx.refresh(true);
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
    /// (the same failure at the next session start stays in the log). Skips the network while a
    /// backoff from an earlier failure is in force, so nothing is retried in a tight loop.
    pub fn refresh(&self, push: bool) -> Option<String> {
        let note = self.refresh_inner(push)?;
        if state::note_is_new(&self.repo.state_dir(), &note) {
            Some(note)
        } else {
            self.log(&format!("not repeated: {note}"));
            None
        }
    }

    fn refresh_inner(&self, push: bool) -> Option<String> {
        let remote = self.repo.remote_name()?;
        let state_dir = self.repo.state_dir();
        let backoff = Backoff::load(&state_dir);
        if backoff.active(self.now) {
            return Some(
                backoff
                    .last_error
                    .unwrap_or_else(|| format!("{remote} unreachable recently; using cached handoffs")),
            );
        }
        if self.deadline.passed() {
            return None;
        }
        let fetched = match sync::fetch(&self.repo, &remote, self.deadline) {
            Ok(f) => f,
            Err(e) => {
                self.log(&format!("fetch: {e:#}"));
                return Some("could not run git; using cached handoffs".to_string());
            }
        };
        let failure = match &fetched {
            Fetched::Ok | Fetched::NoRemoteRef => None,
            Fetched::TimedOut => Some(format!("{remote} did not answer in time; using cached handoffs")),
            Fetched::Failed(m) => {
                self.log(&format!("fetch from {remote}: {m}"));
                Some(format!("could not reach {remote} ({m}); using cached handoffs"))
            }
        };
        if let Some(note) = failure {
            Backoff::failed(&state_dir, self.now, &note);
            return Some(note);
        }
        Backoff::succeeded(&state_dir, self.now);
        if fetched == Fetched::Ok {
            if let Err(e) = sync::integrate(&self.repo, &remote, self.deadline.remaining()) {
                self.log(&format!("merge: {e:#}"));
            }
        }
        if push && sync::pending(&self.repo, &remote) {
            // No second fetch: the push goes out at once, and only a rejection fetches again.
            return self
                .push_pending(&remote)
                .or_else(|| sync::take_restored(&self.repo));
        }
        // Key ids restored by this merge or an earlier one (a Stop hook has no line for it).
        sync::take_restored(&self.repo)
    }

    /// Asynchronous session start: start `convosync hook fetch` detached (one fetch, merge and
    /// push of what is queued, with a longer deadline of its own) and return at once. Returns the
    /// note of an earlier failure while its backoff is in force (once per distinct problem), as
    /// the synchronous start would. At most one such fetch runs at a time.
    pub fn refresh_in_background(&self) -> Option<String> {
        let remote = self.repo.remote_name()?;
        let state_dir = self.repo.state_dir();
        let backoff = Backoff::load(&state_dir);
        if backoff.active(self.now) {
            let note = backoff
                .last_error
                .unwrap_or_else(|| format!("{remote} unreachable recently; using cached handoffs"));
            if state::note_is_new(&state_dir, &note) {
                return Some(note);
            }
            self.log(&format!("not repeated: {note}"));
            return None;
        }
        let marker = state_dir.join(FETCHING);
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

    /// Push queued handoffs and this device's wip snapshot in one `git push`, within the
    /// deadline; only when the remote moved meanwhile (rejected) fetch, merge and go round again.
    /// Returns the problem when they did not go out. A failed or refused push backs off pushing
    /// only; fetching goes on.
    pub fn push_pending(&self, remote: &str) -> Option<String> {
        let state_dir = self.repo.state_dir();
        let push_backoff = Backoff::load_for(&state_dir, Channel::Push);
        if push_backoff.active(self.now) {
            return Some(
                push_backoff
                    .last_error
                    .unwrap_or_else(|| format!("push to {remote} failed recently; handoff queued")),
            );
        }
        let extra: Vec<crate::git::Extra> = match crate::wip::push_extra(&self.repo, remote, &self.me) {
            Ok(e) => e.into_iter().collect(),
            Err(e) => {
                self.log(&format!("wip push: {e:#}"));
                Vec::new()
            }
        };
        let report = (|| -> anyhow::Result<sync::Report> {
            let pushed = sync::push_with(&self.repo, remote, self.deadline, &extra)?;
            if matches!(pushed, Pushed::Rejected | Pushed::Failed(_)) && !self.deadline.passed() {
                // Another device pushed first, or the remote may be out of reach: fetch (which
                // tells the two apart and backs off as it should), merge, and go round again.
                return sync::sync_with(
                    &self.repo,
                    remote,
                    &extra,
                    self.deadline,
                    self.deadline.remaining(),
                );
            }
            let fetched = match &pushed {
                // The remote did not answer: as a fetch would have found it.
                Pushed::TimedOut => Fetched::TimedOut,
                _ => Fetched::Ok,
            };
            Ok(sync::Report {
                remote: remote.to_string(),
                fetched,
                pushed,
                pending: sync::pending(&self.repo, remote),
            })
        })();
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                self.log(&format!("sync: {e:#}"));
                return Some("handoff queued; it will be pushed later".to_string());
            }
        };
        self.settle(remote, &report)
    }

    /// Record how an exchange with `remote` went in the backoffs; returns the problem, if any.
    pub fn settle(&self, remote: &str, report: &sync::Report) -> Option<String> {
        let state_dir = self.repo.state_dir();
        let problem = report.problem();
        match &report.fetched {
            Fetched::TimedOut | Fetched::Failed(_) => {
                Backoff::failed(&state_dir, self.now, &problem.clone().unwrap_or_default())
            }
            Fetched::Ok | Fetched::NoRemoteRef => {
                Backoff::succeeded(&state_dir, self.now);
                match &report.pushed {
                    Pushed::TimedOut | Pushed::Failed(_) | Pushed::Refused(_) => {
                        if let Some(p) = &problem {
                            self.log(&format!("push to {remote}: {p}"));
                        }
                        Backoff::failed_for(
                            &state_dir,
                            Channel::Push,
                            self.now,
                            &problem.clone().unwrap_or_default(),
                        )
                    }
                    Pushed::Ok | Pushed::UpToDate => Backoff::succeeded_for(&state_dir, Channel::Push),
                    Pushed::Rejected => {}
                }
            }
        }
        problem
    }
}

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
