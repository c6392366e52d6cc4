//! `convosync status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::refs;
use crate::repo::Repo;
use crate::state::{last_sync, Backoff};
use crate::store::Store;
use crate::sync::pending;

pub fn run(dir: &Path) -> Result<ExitCode> {
    let now = crate::timefmt::now();
    let id = crate::device::current()?;
    println!("device:    {id} (from {})", crate::device::source());
    let found = Repo::discover(dir)?;
    let project = found.as_ref().and_then(|r| r.workdir().map(Path::to_path_buf));
    println!("hooks:     {}", hooks_state(project.as_deref()));
    println!("           {}", codex_state());
    println!("           {}", gemini_state());
    let Some(repo) = found else {
        let dir = dir.display();
        println!("repo:      none here ({dir} is not inside a git repository)");
        return Ok(ExitCode::SUCCESS);
    };
    let shown = repo.workdir().unwrap_or(repo.git.path()).display();
    println!("repo:      {shown}");
    print_you(&repo);
    let me = crate::team::my_device(&repo)?;
    if me != id {
        println!("           writes as {me} here ({id} belongs to another author on this ref)");
    }
    print_ref(&repo, &me, now)?;
    match repo.remote_name() {
        Some(r) => print_remote(&repo, &r, now)?,
        None => println!("remote:    none (add one with `git remote add origin <url>`)"),
    }
    println!("stop mode: {} (git config convosync.stop)", repo.settings.stop);
    Ok(ExitCode::SUCCESS)
}

/// The handoff ref and this device's last save on it.
fn print_ref(repo: &Repo, me: &str, now: DateTime<Utc>) -> Result<()> {
    let refname = &repo.settings.refname;
    let entries = super::told(Store::new(&repo.git, refname).entries()?);
    println!("ref:       {refname} ({} device file(s))", entries.len());
    let mine = entries.iter().find(|e| e.device == me);
    match mine.and_then(|e| e.handoff.as_ref().ok()) {
        Some(h) => println!(
            "last save: {} ({})",
            crate::timefmt::ago(h.timestamp, now),
            h.task_line(60)
        ),
        None => println!("last save: none from this device yet"),
    }
    Ok(())
}

/// The remote, when this device last synced with it, what waits to be pushed, and a backoff.
fn print_remote(repo: &Repo, r: &str, now: DateTime<Utc>) -> Result<()> {
    let refname = &repo.settings.refname;
    let remote = repo.git.find_remote(r);
    println!(
        "remote:    {r} ({})",
        remote.as_ref().map_or("", |x| x.url().unwrap_or_default())
    );
    let synced = last_sync(&repo.state_dir())
        .map(|t| crate::timefmt::ago(t, now))
        .unwrap_or_else(|| "never".into());
    println!("last sync: {synced}");
    let queued = if pending(repo, r) {
        let tip = |name: &str| repo.git.refname_to_id(name).ok();
        let n = match (tip(refname), tip(&refs::tracking(refname, r))) {
            (Some(l), Some(t)) => repo.git.graph_ahead_behind(l, t).map_or(1, |(a, _)| a),
            _ => 1,
        };
        format!("{n} commit(s) waiting to be pushed (run `convosync sync`)")
    } else {
        "nothing".to_string()
    };
    println!("pending:   {queued}");
    let b = Backoff::load(&repo.state_dir(), crate::state::Channel::Fetch);
    if b.active(now) {
        println!(
            "network:   backing off after an error ({})",
            crate::untrusted::line(&b.last_error.unwrap_or_default())
        );
    }
    Ok(())
}

/// Who counts as "you" for this repository, and how to add another identity.
fn print_you(repo: &Repo) {
    let who = crate::team::Me::load(repo);
    match who.identity.render() {
        Some(id) => println!("you:       {id} (git user.name / user.email)"),
        None => println!("you:       no git user.name or user.email here"),
    }
    let aliases: Vec<String> = who.aliases.iter().filter_map(|a| a.render()).collect();
    if !aliases.is_empty() {
        println!(
            "           also you: {} (git config convosync.me)",
            aliases.join(", ")
        );
    }
    if who.is_unknown() {
        println!("           every handoff counts as yours until you set one");
    } else {
        println!("           handoffs by the same name or email are yours; anyone else's are teammates'");
    }
    println!("           another identity of yours: git config --add convosync.me \"Name or email\"");
}

/// The plugin's state as Codex sees it: installed (its copy under `$CODEX_HOME/plugins/cache`),
/// and whether its hooks would run (trusted at their current hashes, as `codex app-server`
/// reports them when `codex` is on PATH; else the trust entries in `config.toml`).
fn codex_state() -> String {
    use crate::agent::codex;
    let again = "run `convosync install --agent codex --run`";
    let bin = crate::cmd::install::which("codex");
    if !codex::plugin_cache_dir().is_some_and(|d| d.is_dir()) {
        return match bin {
            Some(_) => format!("Codex: not installed ({again})"),
            None => "Codex: not found on PATH".into(),
        };
    }
    let cwd = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
    if let Some(Ok(hooks)) = bin.map(|b| codex::list_hooks(&b, &cwd, std::time::Duration::from_secs(10))) {
        let trusted = hooks
            .iter()
            .filter(|h| h.trust == "trusted" || h.trust == "managed")
            .count();
        return match (trusted, hooks.len()) {
            (0, 0) => format!("Codex: installed, but Codex lists none of its hooks (disabled?); {again}"),
            (t, n) if t == n => format!("Codex: installed, {n} hooks trusted (they run)"),
            (t, n) => format!(
                "Codex: installed, {t} of {n} hooks trusted; the others do not run until trusted ({again}, or `/hooks` in Codex)"
            ),
        };
    }
    let config = codex::home()
        .and_then(|h| std::fs::read_to_string(h.join("config.toml")).ok())
        .unwrap_or_default();
    let ours = format!("[hooks.state.\"{}:", codex::PLUGIN_ID);
    let entries = config
        .lines()
        .filter(|l| l.trim_start().starts_with(&ours))
        .count();
    match entries {
        0 => format!("Codex: installed, hooks not trusted (they do not run; {again})"),
        n => format!("Codex: installed, {n} hooks trusted in config.toml (not checked against the files: codex is not on PATH)"),
    }
}

/// The extension's state as Gemini CLI sees it: linked or installed under `~/.gemini/extensions`.
fn gemini_state() -> String {
    let dir = dirs::home_dir().map(|h| h.join(".gemini/extensions/convosync"));
    let installed = dir.as_ref().is_some_and(|d| {
        d.join(".gemini-extension-install.json").is_file() || d.join("gemini-extension.json").is_file()
    });
    match (installed, crate::cmd::install::which("gemini")) {
        (true, _) if dir.is_some_and(|d| d.join("bin/convosync").is_file()) => {
            "Gemini CLI: extension installed (its hooks run)".into()
        }
        (true, _) => "Gemini CLI: extension installed; the hooks use convosync from PATH".into(),
        (false, Some(_)) => "Gemini CLI: not installed (run `convosync install --agent gemini --run`)".into(),
        (false, None) => "Gemini CLI: not found on PATH".into(),
    }
}

/// The plugin's state as Claude Code sees it: installed (`plugins/installed_plugins.json` under
/// its config dir, `CLAUDE_CONFIG_DIR` or `~/.claude`) and enabled (`enabledPlugins` in the user's
/// `settings.json`, then the project's `.claude/settings.json` and `.claude/settings.local.json`,
/// the later overriding the earlier).
fn hooks_state(project: Option<&Path>) -> String {
    let Some(config) = crate::cmd::install::claude_config_dir() else {
        return "unknown (no home directory)".into();
    };
    let read = |p: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let ours = |k: &str| k.starts_with("convosync@");
    let plugins = read(config.join("plugins/installed_plugins.json")).unwrap_or_default();
    // Project-scoped installs count only in their project.
    let here = |i: &serde_json::Value| {
        i["projectPath"]
            .as_str()
            .is_none_or(|p| project.is_some_and(|here| here.starts_with(p)))
    };
    let installed = (plugins["plugins"].as_object().into_iter().flatten())
        .filter(|(k, _)| ours(k))
        .any(|(_, installs)| installs.as_array().is_none_or(|list| list.iter().any(here)));
    // The later files override the earlier.
    let local = project
        .into_iter()
        .flat_map(|p| [".claude/settings.json", ".claude/settings.local.json"].map(|f| p.join(f)));
    let enabled = std::iter::once(config.join("settings.json"))
        .chain(local)
        .filter_map(read)
        .flat_map(|v| {
            let m = v["enabledPlugins"].as_object().cloned().unwrap_or_default();
            m.into_iter()
                .filter(|(k, _)| ours(k))
                .filter_map(|(_, on)| on.as_bool())
        })
        .last();
    match (installed, enabled) {
        (true, Some(true)) => "installed, enabled in Claude Code".into(),
        (true, _) => {
            "installed, disabled in Claude Code (enable it: `claude plugin enable convosync@convosync`)"
                .into()
        }
        (false, _) => "not installed in Claude Code (run `convosync install`)".into(),
    }
}
