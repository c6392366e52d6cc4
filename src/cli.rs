//! The command line: every subcommand, its arguments and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Device(Sub<DeviceAction>),
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
    Demo {
        /// Keep the temporary repositories and print where they are.
        #[arg(long)]
        keep: bool,
    },
    /// List past handoffs from the handoff ref's history, newest first.
    History(HistoryArgs),
    /// Every device that ever wrote a handoff; rename or forget one.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the active handoff template or create one to customise.
    Template(Sub<TemplateAction>),
    /// Full-text search over every handoff in history.
    Search(SearchArgs),
    /// What changed between two handoffs, section by section.
    Diff {
        /// A handoff id or a device name (its newest handoff). Default: this device's last
        /// handoff, or with one device name only, that device's previous handoff.
        a: Option<String>,
        /// A handoff id or a device name. Default: the newest handoff of another device.
        b: Option<String>,
    },
    /// Export handoffs as markdown, JSON or a self-contained HTML page.
    Export(ExportArgs),
    /// Carry uncommitted work between devices without touching branches.
    Wip(Sub<WipAction>),
    /// Your encryption key: create it, carry it to another device, see whether notes here are
    /// encrypted.
    Key(Sub<KeyAction>),
    /// Say whether convosync is set up here: device, remote, last sync, pending pushes, hooks.
    Status,
    /// Register the plugin with Claude Code, Codex and Gemini CLI (prints the commands, or runs them).
    Install {
        /// Run the agents' plugin commands instead of printing them.
        #[arg(long)]
        run: bool,
        /// Install for this agent only: claude, codex or gemini (default: every one found on
        /// PATH).
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
    },
    /// Run an agent's hook: reads the event's JSON on stdin, prints at most one JSON object.
    #[command(hide = true)]
    Hook {
        /// session-start, user-prompt-submit, stop or session-end.
        event: String,
        /// The agent running the hook (claude, codex, gemini); told from its input when not given.
        #[arg(long)]
        agent: Option<String>,
    },
}

/// A command whose subcommand may be left out (each command says which it then runs).
#[derive(Debug, Args)]
pub struct Sub<A: Subcommand> {
    #[command(subcommand)]
    pub action: Option<A>,
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

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Whether this device has a key and whether this repository's notes are encrypted.
    Status,
    /// Create your key (once; later runs reuse it) and encrypt this repository's notes.
    Init,
    /// Print your secret key as one line, to carry to another of your devices.
    Show,
    /// Store your key on this device (the line `convosync key show` printed; `-` reads stdin).
    Add {
        /// CONVOSYNC-KEY-1… (or an earlier AGE-SECRET-KEY-1…), or `-` to read it from standard
        /// input.
        key: String,
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
    /// Also bring the current branch up to date with its upstream, as the original plugin did:
    /// fast-forward only, and only when the worktree has no uncommitted changes.
    #[arg(long)]
    pub pull: bool,
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
    /// Also move this device's entries when their author line does not name you (the first
    /// release wrote none): you vouch for them (repeatable).
    #[arg(long = "device", value_name = "NAME")]
    pub devices: Vec<String>,
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
    /// Also snapshot uncommitted work for your other devices (see `convosync wip`); with
    /// --wip and no MESSAGE, no code is committed.
    #[arg(long)]
    pub wip: bool,
    /// Commit locally only; do not push.
    #[arg(long)]
    pub no_push: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Filters shared by history, search and export.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only handoffs from this device.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Only handoffs written on this branch.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Only handoffs since a date (2026-11-20) or an age (3 days, 2h).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub action: Option<HistoryAction>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many handoffs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Print one handoff whole.
    Show {
        /// The id `convosync history` shows (optionally `id:device`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// Move a device's newest handoff to a new name (history is kept).
    Rename { old: String, new: String },
    /// Remove a device's handoff from the ref (history is kept).
    Forget { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TemplateAction {
    /// Print the template in force and where it comes from.
    Show,
    /// Write the default template to .convosync/template.md (shared with the team) to edit.
    Init {
        /// Write it to your config dir instead (only for you, all repositories).
        #[arg(long)]
        user: bool,
        /// Overwrite an existing template.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find (all must appear; case-insensitive).
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many results.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Md)]
    pub format: ExportFormat,
    /// Write here instead of standard output (a folder with --split).
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// One file per handoff in the --output folder, each in --format (.md, .json or .html).
    #[arg(long, requires = "output")]
    pub split: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Markdown, as the handoffs are written.
    Md,
    /// A JSON array (one object per handoff with --split), as `history --json` prints.
    Json,
    /// A self-contained HTML page.
    Html,
}

#[derive(Debug, Subcommand)]
pub enum WipAction {
    /// Every device's latest snapshot of uncommitted work.
    List,
    /// Snapshot this worktree's uncommitted changes now; pushed when encrypted or when
    /// `convosync.wipPush` is true.
    Save {
        /// Push the snapshot even when it is not encrypted and `convosync.wipPush` is unset.
        #[arg(long)]
        push: bool,
    },
    /// The files in a device's snapshot, each with A (added), M (modified) or D (deleted).
    Show {
        /// Whose snapshot; by default the one other device that has one.
        device: Option<String>,
    },
    /// A device's snapshot as a patch against its base commit.
    Diff {
        /// Whose snapshot; by default the one other device that has one.
        device: Option<String>,
    },
    /// Bring a device's uncommitted changes into this worktree (a three-way merge; refuses on
    /// conflicts). Checks nothing out; never touches the index or HEAD.
    Apply {
        /// Whose snapshot; by default the one other device that has one.
        device: Option<String>,
        /// Write conflict markers instead of refusing (files that cannot hold markers keep
        /// their local version).
        #[arg(long)]
        force: bool,
        /// Also apply files that steer tools (`.claude/`, `.git*` files, `.envrc`, CI and editor
        /// configuration, symlinks leaving the worktree); without it such a snapshot is refused.
        #[arg(long)]
        allow_steering: bool,
    },
}
