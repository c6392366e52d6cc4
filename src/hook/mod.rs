//! `convosync hook <event>`: what runs inside every Claude Code session.
//!
//! Each event reads Claude Code's JSON on stdin and prints at most one JSON object on stdout.
//! Nothing here may break or slow a session: every failure becomes at most one short line for the
//! user (`systemMessage`) or a line in `<git dir>/convosync/convosync.log`, the exit code is always
//! 0, and all network work shares one hard deadline.

pub mod session_start;
pub mod state;
pub mod stop;
pub mod transcript;
pub mod wire;

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::git::Deadline;
use crate::repo::Repo;
use crate::sync::{self, Fetched, Pushed};
use state::{Backoff, Channel};
use wire::HookInput;

/// Read stdin (bounded) and run the hook for `event`; returns what to print, if anything.
/// Input that cannot be read whole (over [`wire::MAX_INPUT`], truncated, not JSON) does nothing.
pub fn run(event: &str, stdin: impl Read) -> Option<String> {
    let input = HookInput::read(stdin)?;
    // A bug must not take a session down with it: a panic becomes "no output".
    let out = std::panic::catch_unwind(|| dispatch(event, &input))
        .ok()
        .flatten()?;
    serde_json::to_string(&crate::untrusted::json(out)).ok()
}

fn dispatch(event: &str, input: &HookInput) -> Option<Value> {
    let mut ctx = Ctx::new(input)?;
    if event == "push" {
        ctx.deadline = Deadline::after(std::time::Duration::from_secs(stop::BACKGROUND_PUSH_SECS));
    }
    let out = match event {
        "session-start" | "SessionStart" => session_start::run(&ctx),
        "stop" | "Stop" => stop::run(&ctx),
        "session-end" | "SessionEnd" => stop::session_end(&ctx),
        // Internal: the detached push SessionEnd starts.
        "push" => stop::background_push(&ctx),
        _ => None,
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
    pub repo: Repo,
    pub me: String,
    pub now: DateTime<Utc>,
    pub deadline: Deadline,
}

impl<'a> Ctx<'a> {
    /// `None` (print nothing) outside a repository or when the device id cannot be had.
    fn new(input: &'a HookInput) -> Option<Ctx<'a>> {
        let cwd = input
            .cwd
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())?;
        let repo = Repo::discover(&cwd).ok().flatten()?;
        let me = match crate::team::my_device(&repo) {
            Ok(me) => me,
            Err(e) => {
                state::log(&repo.state_dir(), &format!("no device id: {e:#}"));
                return None;
            }
        };
        let deadline = Deadline::after(repo.settings.timeout);
        Some(Ctx {
            input,
            repo,
            me,
            now: crate::timefmt::now(),
            deadline,
        })
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
            return self.push_pending(&remote);
        }
        None
    }

    /// Push queued handoffs (fetching and merging again if the remote moved), within the deadline.
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
        let report = match sync::sync(&self.repo, remote, self.deadline, self.deadline.remaining()) {
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

/// `{"systemMessage": "convosync: …"}`
pub fn message(text: &str) -> Value {
    json!({ "systemMessage": format!("convosync: {text}") })
}
