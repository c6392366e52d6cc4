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
    let found = Repo::discover(dir)?;
    let project = found.as_ref().and_then(|r| r.workdir().map(Path::to_path_buf));
    println!("hooks:     {}", hooks_state(project.as_deref()));
    let Some(repo) = found else {
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
                    b.last_error.unwrap_or_default()
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

/// The plugin's state as Claude Code sees it: installed (`plugins/installed_plugins.json` under
/// its config dir, `CLAUDE_CONFIG_DIR` or `~/.claude`) and enabled (`enabledPlugins` in the user's
/// `settings.json`, then the project's `.claude/settings.json` and `.claude/settings.local.json`,
/// the later overriding the earlier).
fn hooks_state(project: Option<&Path>) -> String {
    let config = std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".claude")));
    let Some(config) = config else {
        return "unknown (no home directory)".into();
    };
    let read = |p: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let ours = |k: &str| k.starts_with("convosync@");
    let installed = read(config.join("plugins/installed_plugins.json")).is_some_and(|v| {
        v["plugins"].as_object().is_some_and(|m| {
            m.iter().filter(|(k, _)| ours(k)).any(|(_, installs)| {
                // Project-scoped installs count only in their project.
                installs.as_array().is_none_or(|list| {
                    list.iter().any(|i| match i["projectPath"].as_str() {
                        Some(p) => project.is_some_and(|here| here.starts_with(p)),
                        None => true,
                    })
                })
            })
        })
    });
    let mut files = vec![config.join("settings.json")];
    if let Some(p) = project {
        files.push(p.join(".claude/settings.json"));
        files.push(p.join(".claude/settings.local.json"));
    }
    let mut enabled = None;
    for f in files {
        if let Some(v) = read(f) {
            if let Some(m) = v["enabledPlugins"].as_object() {
                for (_, on) in m.iter().filter(|(k, _)| ours(k)) {
                    if let Some(on) = on.as_bool() {
                        enabled = Some(on);
                    }
                }
            }
        }
    }
    match (installed, enabled) {
        (true, Some(true)) => "installed, enabled in Claude Code".into(),
        (true, _) => {
            "installed, disabled in Claude Code (enable it: `claude plugin enable convosync@convosync`)"
                .into()
        }
        (false, _) => "not installed in Claude Code (run `convosync install`)".into(),
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
