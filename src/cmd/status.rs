//! `convosync status` and `convosync install`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Result};

use crate::cli::InstallArgs;
use crate::hook::state::{last_sync, Backoff};
use crate::repo::Repo;
use crate::store::Store;
use crate::sync::{pending, tracking_ref};

pub fn run(dir: &Path) -> Result<ExitCode> {
    let now = crate::timefmt::now();
    let id = crate::device::current()?;
    println!("device:    {id} (from {})", crate::device::source());
    println!("hooks:     {}", hooks_state());
    let Some(repo) = Repo::discover(dir)? else {
        println!(
            "repo:      none here ({} is not inside a git repository)",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "repo:      {}",
        repo.workdir().unwrap_or(repo.git.path()).display()
    );
    let me = crate::team::my_device(&repo)?;
    if me != id {
        println!("           writes as {me} here ({id} belongs to another author on this ref)");
    }
    let refname = &repo.settings.refname;
    let store = Store::new(&repo.git, refname);
    let entries = store.entries()?;
    println!("ref:       {refname} ({} device file(s))", entries.len());
    match entries
        .iter()
        .find(|e| e.device == me)
        .and_then(|e| e.handoff.as_ref().ok())
    {
        Some(h) => println!(
            "last save: {} ({})",
            crate::timefmt::ago(h.timestamp, now),
            h.task_line(60)
        ),
        None => println!("last save: none from this device yet"),
    }
    match repo.remote_name() {
        Some(r) => {
            let url = repo
                .git
                .find_remote(&r)
                .ok()
                .and_then(|x| x.url().ok().map(str::to_string))
                .unwrap_or_default();
            println!("remote:    {r} ({url})");
            let synced = last_sync(&repo.state_dir())
                .map(|t| crate::timefmt::ago(t, now))
                .unwrap_or_else(|| "never".into());
            println!("last sync: {synced}");
            let tracking = crate::store::tip_of(&repo.git, &tracking_ref(refname, &r))
                .ok()
                .flatten();
            let queued = if pending(&repo, &r) {
                let local = crate::store::tip_of(&repo.git, refname)?.map(|c| c.id());
                let n = match (local, tracking.map(|c| c.id())) {
                    (Some(l), Some(t)) => repo.git.graph_ahead_behind(l, t).map(|(a, _)| a).unwrap_or(1),
                    _ => 1,
                };
                format!("{n} commit(s) waiting to be pushed (run `convosync sync`)")
            } else {
                "nothing".to_string()
            };
            println!("pending:   {queued}");
            let b = Backoff::load(&repo.state_dir());
            if b.active(now) {
                println!(
                    "network:   backing off after an error ({})",
                    crate::untrusted::line(&b.last_error.unwrap_or_default())
                );
            }
        }
        None => println!("remote:    none (add one with `git remote add origin <url>`)"),
    }
    let stop = match repo.settings.stop {
        crate::config::StopMode::Prompt => "prompt",
        crate::config::StopMode::Auto => "auto",
        crate::config::StopMode::Off => "off",
    };
    println!("stop mode: {stop} (git config convosync.stop)");
    Ok(ExitCode::SUCCESS)
}

/// Whether Claude Code has the plugin enabled, from its settings files.
fn hooks_state() -> String {
    let Some(home) = dirs::home_dir() else {
        return "unknown".into();
    };
    let config = std::env::var_os("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".claude"));
    let files = [
        config.join("plugins/installed_plugins.json"),
        config.join("settings.json"),
    ];
    let found = files
        .iter()
        .any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("convosync@")));
    if found {
        "active (the convosync plugin is installed in Claude Code)".into()
    } else {
        "not installed in Claude Code (run `convosync install`)".into()
    }
}

fn plugin_root() -> PathBuf {
    std::env::var_os("CLAUDE_PLUGIN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn install(args: InstallArgs) -> Result<ExitCode> {
    let root = plugin_root();
    if !root.join(".claude-plugin/plugin.json").exists() {
        bail!(
            "no plugin manifest under {}; run install from a checkout of convosync",
            root.display()
        );
    }
    let root_s = root.display().to_string();
    let steps: [Vec<&str>; 2] = [
        vec!["plugin", "marketplace", "add", &root_s],
        vec!["plugin", "install", "convosync@convosync"],
    ];
    if !args.run {
        println!("In Claude Code, run:\n");
        println!("  /plugin marketplace add {root_s}");
        println!("  /plugin install convosync@convosync\n");
        println!("or from a shell: claude plugin marketplace add {root_s} && claude plugin install convosync@convosync");
        println!("(`convosync install --run` does the latter for you)");
        return Ok(ExitCode::SUCCESS);
    }
    for step in steps {
        let status = Command::new("claude").args(&step).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => bail!("`claude {}` failed ({s})", step.join(" ")),
            Err(e) => bail!("could not run `claude` ({e}); is Claude Code installed and on PATH?"),
        }
    }
    println!("convosync is installed; new Claude Code sessions will resume and save handoffs automatically.");
    Ok(ExitCode::SUCCESS)
}
