//! One module per subcommand; [`run`] dispatches. Each command opens the repository once and
//! hands it to a function that does the work, so tests and other commands can call that part.

mod device;
mod devices;
mod diff;
mod export;
mod handoff;
mod history;
mod install;
mod key;
mod migrate;
mod resume;
mod save;
mod status;
mod sync;
mod template;
mod wip;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::repo::Repo;
use crate::store::Listing;
use crate::untrusted::Skipped;

/// How long CLI commands wait for the repository lock.
pub(crate) const CLI_LOCK_WAIT: Duration = Duration::from_secs(10);

pub fn run(cli: Cli) -> Result<ExitCode> {
    let dir = match cli.dir.clone() {
        Some(d) => d,
        None => std::env::current_dir().context("could not read the current directory")?,
    };
    if !matches!(cli.command, Command::Hook { .. }) {
        // Once per run, on stderr (hooks print nothing but their JSON).
        if let Some(note) = crate::device::env_note() {
            eprintln!("note: {note}");
        }
        for bad in Repo::invalid_settings(&dir) {
            eprintln!("convosync: warning: {bad}");
        }
    }
    // Each command says what its reads skipped and could not decrypt ([`told`]); hooks log it.
    match cli.command {
        Command::Device(a) => device::run(a),
        Command::Save(a) => save::run(&dir, a),
        Command::GenerateHandoff => handoff::generate(&dir),
        Command::SaveHandoff(a) => handoff::save(&dir, a),
        Command::Sync(a) => sync::run(&dir, a),
        Command::Resume(a) => resume::run(&dir, a),
        Command::Migrate(a) => migrate::run(&dir, a),
        Command::Demo { keep } => crate::demo::run(cli.dir.as_deref(), keep),
        Command::Status => status::run(&dir),
        Command::Key(a) => key::run(&dir, a),
        Command::History(a) => history::run(&dir, a),
        Command::Search(a) => history::search(&dir, a),
        Command::Devices { action, json } => devices::run(&dir, action, json),
        Command::Template(a) => template::run(&dir, a),
        Command::Diff { a, b } => diff::run(&dir, a.as_deref(), b.as_deref()),
        Command::Export(a) => export::run(&dir, a),
        Command::Wip(a) => wip::run(&dir, a),
        Command::Install { run, agent } => install::run(run, agent.as_deref()),
        Command::Hook { event, agent } => Ok(run_hook(&event, agent.as_deref())),
    }
}

/// The items of a read, its warnings said on stderr ([`tell`]).
pub fn told<T>(read: Listing<T>) -> Vec<T> {
    tell(&read.warnings.skipped, &read.warnings.unreadable);
    read.items
}

/// [`told`] for a read that can only skip entries.
pub fn told_skipped<T>((items, skipped): (Vec<T>, Skipped)) -> Vec<T> {
    tell(&skipped, []);
    items
}

/// Say on stderr what a read left out: one warning line naming the entries it skipped, then the
/// notes it could not decrypt.
pub fn tell<'a>(skipped: &Skipped, unreadable: impl IntoIterator<Item = &'a crate::notes::Unreadable>) {
    if let Some(line) = skipped.warning() {
        eprintln!("{line}");
    }
    for line in crate::notes::unreadable_lines(unreadable, true) {
        eprintln!("convosync: {line}");
    }
}

/// A table's header line (bold when colouring), only when standard output is a terminal: piped
/// output stays one record per line for scripts.
fn header(line: &str) -> String {
    match crate::term::interactive() {
        true => crate::term::header(line, crate::term::color()),
        false => String::new(),
    }
}

/// `convosync hook <event>`: whatever happens, exit 0 with at most one JSON object on stdout.
pub fn run_hook(event: &str, agent: Option<&str>) -> ExitCode {
    use std::io::{IsTerminal, Write};
    let stdin = std::io::stdin();
    // Run by hand from a terminal there is no event to read: do not wait for one.
    let input: Box<dyn std::io::Read> = if stdin.is_terminal() {
        Box::new(std::io::empty())
    } else {
        Box::new(stdin.lock())
    };
    if let Some(out) = crate::hook::run::run(event, agent, input) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{out}").and_then(|()| stdout.flush());
    }
    ExitCode::SUCCESS
}

/// Resolve `--device/--branch/--since` into a history filter.
pub(crate) fn filter(args: &crate::cli::FilterArgs) -> Result<crate::history::Filter> {
    let since = args
        .since
        .as_deref()
        .map(|s| crate::history::parse_since(s, crate::timefmt::now()))
        .transpose()?;
    Ok(crate::history::Filter {
        device: args.device.clone(),
        branch: args.branch.clone(),
        since,
    })
}

/// A CLI network deadline from `--timeout` seconds.
pub(crate) fn deadline(secs: f64) -> crate::git::Deadline {
    let secs = if secs.is_finite() && secs > 0.0 {
        secs.min(3600.0)
    } else {
        30.0
    };
    crate::git::Deadline::after(Duration::from_secs_f64(secs))
}
