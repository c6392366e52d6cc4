//! The command line: every subcommand, its arguments and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Carry a Claude Code session's thread from one machine to the next, through your project's own
/// git remote.
#[derive(Debug, Parser)]
#[command(name = "convosync", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or set this machine's device name (stored outside every repository).
    Device(DeviceArgs),
    /// Save the session: commit the handoff draft, commit your code changes with MESSAGE on the
    /// current branch (never secret-looking files), and push both.
    Save(SaveArgs),
    /// Print the handoff template and where to write the draft.
    GenerateHandoff,
    /// Commit the handoff draft to the handoff ref and push it.
    SaveHandoff(SaveHandoffArgs),
    /// Fetch the handoff ref, merge it with ours and push it back.
    Sync(NetArgs),
    /// Show the newest handoffs of the other devices, newest first.
    Resume(ResumeArgs),
    /// Move the original plugin's .convosync/session-handoff.md onto the handoff ref.
    Migrate(MigrateArgs),
    /// Run a complete two-device round trip on throwaway repositories.
    Demo(DemoArgs),
    /// Say whether convosync is set up here: device, remote, last sync, pending pushes, hooks.
    Status,
    /// Register the Claude Code plugin for this user (prints the commands, or runs them).
    Install(InstallArgs),
    /// Run a Claude Code hook: reads the event's JSON on stdin, prints at most one JSON object.
    #[command(hide = true)]
    Hook {
        /// session-start, stop or session-end.
        event: String,
    },
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    pub action: Option<DeviceAction>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Print the device name and where it comes from.
    Show,
    /// Set the device name for this machine (lowercase letters, digits and dashes).
    Set {
        /// The new name, for example `laptop`.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct NetArgs {
    /// Seconds allowed for network work.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct SaveHandoffArgs {
    /// Claude Code session id to record with the handoff.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Commit locally only; the next sync pushes it.
    #[arg(long)]
    pub no_push: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Do not contact the remote; show what is cached locally.
    #[arg(long)]
    pub offline: bool,
    /// Include this device's own newest handoff too.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Show what would be moved without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Read this file instead of .convosync/session-handoff.md.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the temporary repositories and print where they are.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Commit message for your code changes.
    #[arg(value_name = "MESSAGE", num_args = 0.., trailing_var_arg = true)]
    pub message: Vec<String>,
    /// Commit this file even though it looks like a secret (repeatable).
    #[arg(long = "include", value_name = "PATH")]
    pub include: Vec<PathBuf>,
    /// Save without a handoff when there is no draft.
    #[arg(long)]
    pub skip_handoff: bool,
    /// Commit locally only; do not push.
    #[arg(long)]
    pub no_push: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Run the `claude plugin` commands instead of printing them.
    #[arg(long)]
    pub run: bool,
}
