//! `convosync install`: registers the Claude Code plugin without build output.
//!
//! Adding a checkout as a marketplace makes Claude Code copy the whole directory, `target/`
//! included, into its plugin cache. Instead, this assembles a clean plugin directory (manifest,
//! hooks, commands: the files compiled into this binary, so any build can install itself) under
//! the user's data dir, and copies the running binary into the plugin's persistent data dir
//! (`${CLAUDE_PLUGIN_DATA}`), where the hook shims look first and which survives plugin updates.
//! That directory is then added as a local marketplace and the plugin installed from it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::agent::{codex, Agent};

/// Marketplace and plugin name (`convosync@convosync`), as in `.claude-plugin/marketplace.json`.
pub const PLUGIN_ID: &str = "convosync@convosync";

/// Embeds each named file of the checkout as `(path, contents)`.
macro_rules! embed {
    ($($path:literal),* $(,)?) => { &[$(($path, include_bytes!(concat!("../../", $path)))),*] };
}

/// The plugin's files, relative to its root, with their contents.
pub const FILES: &[(&str, &[u8])] = embed![
    ".claude-plugin/plugin.json",
    ".claude-plugin/icon.png",
    ".claude-plugin/marketplace.json",
    ".codex-plugin/plugin.json",
    "hooks/hooks.json",
    "hooks/codex.json",
    "gemini-extension/gemini-extension.json",
    "gemini-extension/hooks/hooks.json",
    "hooks/convosync-hook",
    "hooks/convosync-run",
    "hooks/find-convosync",
    "commands/device.md",
    "commands/devices.md",
    "commands/diff.md",
    "commands/export.md",
    "commands/generate-handoff.md",
    "commands/history.md",
    "commands/migrate.md",
    "commands/resume.md",
    "commands/save.md",
    "commands/search.md",
    "commands/status.md",
    "commands/sync.md",
    "commands/template.md",
    "commands/wip.md",
];

/// The files of [`FILES`] that are executable.
const EXECUTABLE: &[&str] = &["hooks/convosync-hook", "hooks/convosync-run"];

/// Directories of the plugin that [`FILES`] fills completely (anything else in them is stale).
const OWNED_DIRS: &[&str] = &[
    ".claude-plugin",
    ".codex-plugin",
    "hooks",
    "commands",
    "gemini-extension",
    "gemini-extension/hooks",
];

/// Claude Code's config dir: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
pub fn claude_config_dir() -> Option<PathBuf> {
    let set = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty());
    set.map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".claude")))
}

/// The installed plugin's persistent data dir, as Claude Code names it for hooks
/// (`${CLAUDE_PLUGIN_DATA}`): `<plugins>/data/<id with every other character than
/// [A-Za-z0-9_-] replaced by ->`, where `<plugins>` is `$CLAUDE_CODE_PLUGIN_CACHE_DIR`, else
/// `$CLAUDE_CONFIG_DIR/plugins`, else `~/.claude/plugins`.
fn plugin_data_dir() -> Result<PathBuf> {
    let plugins = match std::env::var_os("CLAUDE_CODE_PLUGIN_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => claude_config_dir()
            .context("could not find your home directory (is HOME set?)")?
            .join("plugins"),
    };
    let id = PLUGIN_ID.replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "-",
    );
    Ok(plugins.join("data").join(id))
}

/// Write the plugin's files into `dir` and remove files left there by an older version.
pub fn assemble(dir: &Path) -> Result<()> {
    for (rel, contents) in FILES {
        let mode = if EXECUTABLE.contains(rel) { 0o755 } else { 0o644 };
        crate::fsutil::atomic_write_mode(&dir.join(rel), contents, mode)?;
    }
    for sub in OWNED_DIRS {
        for entry in std::fs::read_dir(dir.join(sub)).into_iter().flatten().flatten() {
            let rel = format!("{sub}/{}", entry.file_name().to_string_lossy());
            if !FILES.iter().any(|(f, _)| *f == rel) && entry.path().is_file() {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("could not remove {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Copy the running binary to `dest` (temp file + rename, so a running hook keeps its copy).
fn copy_self(dest: &Path) -> Result<()> {
    let me = std::env::current_exe().context("could not find the running convosync binary")?;
    if matches!((me.canonicalize(), dest.canonicalize()), (Ok(a), Ok(b)) if a == b) {
        return Ok(());
    }
    let bytes = std::fs::read(&me).with_context(|| format!("could not read {}", me.display()))?;
    crate::fsutil::atomic_write_mode(dest, &bytes, 0o755)
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn run(run: bool, agent: Option<&str>) -> Result<ExitCode> {
    let agents = match agent {
        Some(name) => vec![Agent::parse(name)
            .with_context(|| format!("unknown agent {name:?}: use claude, codex or gemini"))?],
        None => {
            let found: Vec<Agent> = Agent::ALL
                .into_iter()
                .filter(|a| which(a.id()).is_some())
                .collect();
            if found.is_empty() {
                vec![Agent::Claude]
            } else {
                found
            }
        }
    };
    // The clean plugin directory: `<data dir>/convosync/plugin`.
    let data = dirs::data_dir().context("could not find your data directory (is HOME set?)")?;
    let dir = data.join("convosync/plugin");
    assemble(&dir)?;
    for (i, agent) in agents.iter().enumerate() {
        if agents.len() > 1 {
            println!("{}== {} ==", if i > 0 { "\n" } else { "" }, agent.name());
        }
        match agent {
            Agent::Claude => install_claude(&dir, run)?,
            Agent::Codex => install_codex(&dir, run)?,
            Agent::Gemini => install_gemini(&dir, run)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Gemini CLI: the plugin's `gemini-extension/` linked as an extension (`gemini extensions link`,
/// so its hooks run from there and find the shims next to it), and the binary into Gemini's own
/// directory of the extension, where the shim looks when Gemini runs it.
fn install_gemini(dir: &Path, run: bool) -> Result<()> {
    let ext = dir.join("gemini-extension");
    let home = dirs::home_dir().context("could not find your home directory (is HOME set?)")?;
    let bin = home.join(".gemini/extensions/convosync/bin/convosync");
    println!("extension: {}", ext.display());
    let ext_s = ext.display().to_string();
    if !run {
        println!("\nFrom a shell:\n");
        println!("  gemini extensions link {} --consent", shell_quote(&ext_s));
        println!("  convosync install --agent gemini --run   # also puts the binary where the hooks look");
        return Ok(());
    }
    run_step("gemini", &["extensions", "link", &ext_s, "--consent"])?;
    copy_self(&bin)?;
    let bin = bin.display();
    println!("binary:    {bin} (run `convosync install` again after upgrading)");
    println!("convosync is installed; new Gemini CLI sessions will resume and save handoffs automatically.");
    Ok(())
}

/// The path of `cmd` when it is an executable on `PATH`.
pub fn which(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Run `cli args…`, failing with what to do by hand.
fn run_step(cli: &str, args: &[&str]) -> Result<()> {
    match Command::new(cli).args(args).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`{cli} {}` failed ({s})", args.join(" ")),
        Err(e) => bail!("could not run `{cli}` ({e}); is it installed and on PATH?"),
    }
}

/// Codex: a local marketplace offering the plugin directory, the binary into the plugin's data
/// dir, `codex plugin marketplace add` + `codex plugin add`, then the hooks trusted at the hashes
/// Codex computes (`codex app-server`'s `hooks/list`), written to `$CODEX_HOME/config.toml` as
/// its `/hooks` review would: untrusted hooks never run, and any change to the plugin's files
/// (an upgrade) needs this again.
fn install_codex(dir: &Path, run: bool) -> Result<()> {
    let home = codex::home().context("could not find Codex's home (set CODEX_HOME or HOME)")?;
    let market = dir.with_file_name("codex-marketplace");
    codex::write_marketplace(&market, dir)?;
    let bin = codex::plugin_data_dir()
        .context("could not find Codex's home")?
        .join("bin/convosync");
    copy_self(&bin)?;
    println!("plugin:  {} (marketplace {})", dir.display(), market.display());
    let bin = bin.display();
    println!("binary:  {bin} (run `convosync install` again after upgrading)");
    let market_s = market.display().to_string();
    if !run {
        println!("\nFrom a shell:\n");
        println!("  codex plugin marketplace add {}", shell_quote(&market_s));
        println!("  codex plugin add {}", codex::PLUGIN_ID);
        println!("\nthen trust its hooks in Codex (`/hooks`), or run `convosync install --agent codex --run`, which does all of it.");
        return Ok(());
    }
    let codex_bin = which("codex").context("could not find `codex` on PATH; is Codex installed?")?;
    run_step("codex", &["plugin", "marketplace", "add", &market_s])?;
    run_step("codex", &["plugin", "add", codex::PLUGIN_ID])?;
    let cwd = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
    let hooks = codex::list_hooks(&codex_bin, &cwd, std::time::Duration::from_secs(30))?;
    if hooks.is_empty() {
        bail!(
            "Codex lists no hooks of {}; is the plugin enabled?",
            codex::PLUGIN_ID
        );
    }
    let config = home.join("config.toml");
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", config.display())),
    };
    crate::fsutil::atomic_write(&config, codex::trust(&text, &hooks).as_bytes())?;
    println!(
        "{} hooks trusted in {}; new Codex sessions will resume and save handoffs automatically.",
        hooks.len(),
        config.display()
    );
    Ok(())
}

/// Claude Code: the binary into the plugin's data dir, then `claude plugin marketplace add` and
/// `claude plugin install` (printed, or run with `--run`).
fn install_claude(dir: &Path, run: bool) -> Result<()> {
    let bin = plugin_data_dir()?.join("bin/convosync");
    copy_self(&bin)?;
    println!("plugin:  {} (manifest, hooks, commands)", dir.display());
    let bin = bin.display();
    println!("binary:  {bin} (the hooks use this copy; run `convosync install` again after upgrading)");
    let dir_s = dir.display().to_string();
    let steps = [
        &["plugin", "marketplace", "add", &dir_s][..],
        &["plugin", "install", PLUGIN_ID],
    ];
    let print_steps = || {
        println!("\nIn Claude Code, run:\n");
        println!("  /plugin marketplace add {dir_s}");
        println!("  /plugin install {PLUGIN_ID}\n");
        println!(
            "or from a shell: claude plugin marketplace add {} && claude plugin install {PLUGIN_ID}",
            shell_quote(&dir_s)
        );
    };
    if !run {
        print_steps();
        println!("(`convosync install --run` does the latter for you)");
        return Ok(());
    }
    for step in steps {
        match Command::new("claude").args(step).status() {
            Ok(s) if s.success() => {}
            Ok(s) => bail!("`claude {}` failed ({s})", step.join(" ")),
            Err(e) => {
                print_steps();
                bail!("could not run `claude` ({e}); is Claude Code installed and on PATH? The commands above do the same by hand")
            }
        }
    }
    println!("convosync is installed; new Claude Code sessions will resume and save handoffs automatically.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Every file of the plugin in the checkout is compiled in, and nothing else.
    #[test]
    fn embedded_files_match_the_checkout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for sub in OWNED_DIRS {
            for entry in std::fs::read_dir(root.join(sub)).unwrap() {
                let entry = entry.unwrap();
                if entry.path().is_file() {
                    on_disk.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "update FILES in src/cmd/install.rs");
        for (rel, contents) in FILES {
            let meta = std::fs::metadata(root.join(rel)).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o111 != 0,
                EXECUTABLE.contains(rel),
                "{rel}: executable bit"
            );
            assert_eq!(std::fs::read(root.join(rel)).unwrap(), *contents);
        }
    }

    #[test]
    fn assemble_writes_modes_and_removes_stale_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plugin");
        std::fs::create_dir_all(dir.join("commands")).unwrap();
        std::fs::write(dir.join("commands/gone.md"), "old").unwrap();
        std::fs::write(dir.join("keep.txt"), "not ours").unwrap();
        assemble(&dir).unwrap();
        assert!(!dir.join("commands/gone.md").exists());
        assert!(dir.join("keep.txt").exists());
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("hooks/convosync-hook"), 0o755);
        assert_eq!(mode("commands/save.md"), 0o644);
        let market: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(".claude-plugin/marketplace.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            market["plugins"][0]["source"], "./",
            "the plugin is the directory itself"
        );
    }

    #[test]
    fn shell_quote_leaves_plain_paths_alone() {
        assert_eq!(shell_quote("/home/a/.local/share"), "/home/a/.local/share");
        assert_eq!(
            shell_quote("/Users/a/Library/Application Support/x"),
            "'/Users/a/Library/Application Support/x'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
