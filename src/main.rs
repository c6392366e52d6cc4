use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    convosync::init();
    // Hooks run at every session start and every turn: `convosync hook <event>` goes straight to
    // the hook, without building the parser of the whole command line.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let (event, agent) = match args[..] {
        [Some("hook"), Some(event)] => (Some(event), None),
        [Some("hook"), Some("--agent"), Some(agent), Some(event)] => (Some(event), Some(agent)),
        _ => (None, None),
    };
    if let Some(event) = event.filter(|e| !e.starts_with('-')) {
        return convosync::cmd::run_hook(event, agent);
    }
    let cli = convosync::cli::Cli::parse();
    if !matches!(cli.command, convosync::cli::Command::Hook { .. }) {
        // `convosync history | head` should end quietly, as other command-line tools do. Hooks
        // keep SIGPIPE ignored so a closed pipe can never turn into a non-zero exit.
        // SAFETY: setting a signal disposition at start-up, before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match convosync::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("convosync: {e:#}");
            ExitCode::FAILURE
        }
    }
}
