//! Codex CLI (0.169): the plugin loads from a local marketplace (`.codex-plugin/plugin.json`,
//! hooks in `hooks/codex.json`, each run with `--agent codex`), Claude Code's event names, and
//! closed output schemas: any key it does not list fails the hook ("hook returned invalid … JSON
//! output") and drops its context. What each event accepts (from the schemas in the binary):
//!
//! | event | keys |
//! | --- | --- |
//! | SessionStart, UserPromptSubmit | `continue`, `stopReason`, `suppressOutput`, `systemMessage`, `hookSpecificOutput{hookEventName, additionalContext}` |
//! | Stop | `continue`, `stopReason`, `suppressOutput`, `systemMessage`, `decision: "block"`, `reason` |
//! | SessionEnd | no output schema: nothing is printed |
//!
//! A Stop `decision: block` reaches the model as a user message `<hook_prompt …>reason
//! </hook_prompt>` and the turn goes on; that is how the handoff request is delivered. SessionEnd
//! is clamped to 3 s (1 s by default); no `CLAUDE_PROJECT_DIR` (stdin's `cwd` is the project).
//! Hooks run only once trusted by hash (see [`crate::cmd::install`]). The transcript is the
//! rollout `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl` (see
//! [`crate::transcript`]).

use serde_json::Value;

/// The marketplace and plugin name: the plugin is `convosync@convosync`.
pub const PLUGIN_ID: &str = "convosync@convosync";

/// Codex's home: `$CODEX_HOME`, else `~/.codex`.
pub fn home() -> Option<std::path::PathBuf> {
    std::env::var_os("CODEX_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".codex")))
}

/// The installed plugin's data dir, as Codex names it for hooks (`PLUGIN_DATA`, also set as
/// `CLAUDE_PLUGIN_DATA`): `$CODEX_HOME/plugins/data/<plugin>-<marketplace>`.
pub fn plugin_data_dir() -> Option<std::path::PathBuf> {
    Some(home()?.join("plugins/data/convosync-convosync"))
}

/// Where Codex keeps the installed copy of the plugin.
pub fn plugin_cache_dir() -> Option<std::path::PathBuf> {
    Some(home()?.join("plugins/cache/convosync/convosync"))
}

/// A local marketplace in `dir` (`.agents/plugins/marketplace.json`) offering the plugin at
/// `plugin` (linked as `plugins/convosync`), as `codex plugin marketplace add` reads it.
pub fn write_marketplace(dir: &std::path::Path, plugin: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let manifest = serde_json::json!({
        "name": "convosync",
        "plugins": [{ "name": "convosync", "source": { "source": "local", "path": "./plugins/convosync" } }]
    });
    let manifest = serde_json::to_string_pretty(&manifest)?;
    crate::fsutil::atomic_write(&dir.join(".agents/plugins/marketplace.json"), manifest.as_bytes())?;
    let link = dir.join("plugins/convosync");
    std::fs::create_dir_all(dir.join("plugins"))?;
    if std::fs::read_link(&link).ok().as_deref() != Some(plugin) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(plugin, &link)
            .with_context(|| format!("could not link {} to {}", link.display(), plugin.display()))?;
    }
    Ok(())
}

/// One hook as Codex's `hooks/list` reports it.
#[derive(Debug, Clone)]
pub struct Hook {
    /// `convosync@convosync:hooks/codex.json:stop:0:0`
    pub key: String,
    /// `trusted`, `untrusted`, `modified`, …
    pub trust: String,
    /// `sha256:<hook>/sha256:<plugin content>` for a plugin's hook.
    pub current_hash: String,
}

/// The plugin's hooks as Codex sees them from `cwd`, asked of `codex app-server` (JSON-RPC over
/// stdio: `initialize`, `initialized`, `hooks/list`), which computes the hashes itself; at most
/// `budget` long.
pub fn list_hooks(
    codex: &std::path::Path,
    cwd: &std::path::Path,
    budget: std::time::Duration,
) -> anyhow::Result<Vec<Hook>> {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};

    use anyhow::{bail, Context};
    let mut child = Command::new(codex)
        .arg("app-server")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not run {} app-server", codex.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        let lines = std::io::BufReader::new(stdout).lines().map_while(Result::ok);
        let _ = lines
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .try_for_each(|v| tx.send(v));
    });
    let deadline = std::time::Instant::now() + budget;
    let call = |stdin: &mut std::process::ChildStdin,
                id: u64,
                method: &str,
                params: Value|
     -> anyhow::Result<Value> {
        let request = serde_json::json!({ "id": id, "method": method, "params": params });
        writeln!(stdin, "{request}")?;
        stdin.flush()?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let msg = rx
                .recv_timeout(left)
                .with_context(|| format!("codex app-server did not answer {method}"))?;
            if msg.get("id").and_then(Value::as_u64) == Some(id) && msg.get("method").is_none() {
                if let Some(e) = msg.get("error") {
                    bail!("codex app-server: {method}: {e}");
                }
                return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    let client = serde_json::json!({ "clientInfo": { "name": "convosync", "version": version } });
    let result = call(&mut stdin, 1, "initialize", client).and_then(|_| {
        writeln!(stdin, "{}", serde_json::json!({ "method": "initialized" }))?;
        call(&mut stdin, 2, "hooks/list", serde_json::json!({ "cwds": [cwd] }))
    });
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let result = result?;
    let prefix = format!("{PLUGIN_ID}:");
    Ok(result["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["hooks"].as_array().cloned().unwrap_or_default())
        .filter_map(|h| {
            let key = h["key"].as_str()?;
            key.starts_with(&prefix).then(|| Hook {
                key: key.to_string(),
                trust: h["trustStatus"].as_str().unwrap_or("").to_string(),
                current_hash: h["currentHash"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect())
}

/// `config` (Codex's `config.toml`) with the plugin's hooks trusted at their current hashes:
/// one `[hooks.state."<key>"]` table each, `trusted_hash` and, for a plugin's hook (whose hash
/// is `<hook hash>/<plugin content hash>`), `trusted_content_hash`, as Codex's own `/hooks`
/// review writes them. Tables of the plugin written before (older hashes) are replaced; the
/// rest of the file is kept as it is.
pub fn trust(config: &str, hooks: &[Hook]) -> String {
    let ours = format!("[hooks.state.\"{PLUGIN_ID}:");
    let mut out = String::with_capacity(config.len() + 200 * hooks.len());
    let mut skipping = false;
    for line in config.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            skipping = t.starts_with(&ours);
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    for h in hooks {
        let mut hashes = h.current_hash.splitn(2, '/');
        let (hook, content) = (hashes.next().unwrap_or_default(), hashes.next());
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        let (key, hook) = (quote(&h.key), quote(hook));
        out.push_str(&format!("[hooks.state.{key}]\ntrusted_hash = {hook}\n"));
        if let Some(c) = content {
            out.push_str(&format!("trusted_content_hash = {}\n", quote(c)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_replaces_the_plugins_tables_and_keeps_the_rest() {
        let before = "model = \"gpt-5.5\"\n\n[hooks.state.\"convosync@convosync:hooks/codex.json:stop:0:0\"]\ntrusted_hash = \"sha256:old\"\ntrusted_content_hash = \"sha256:oldc\"\n\n[hooks.state.\"other@x:hooks/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:keep\"\n";
        let hooks = [Hook {
            key: "convosync@convosync:hooks/codex.json:stop:0:0".into(),
            trust: "modified".into(),
            current_hash: "sha256:new/sha256:newc".into(),
        }];
        let after = trust(before, &hooks);
        assert!(!after.contains("sha256:old"), "{after}");
        assert!(after.contains("model = \"gpt-5.5\""));
        assert!(after
            .contains("[hooks.state.\"other@x:hooks/hooks.json:stop:0:0\"]\ntrusted_hash = \"sha256:keep\""));
        assert!(after.ends_with("[hooks.state.\"convosync@convosync:hooks/codex.json:stop:0:0\"]\ntrusted_hash = \"sha256:new\"\ntrusted_content_hash = \"sha256:newc\"\n"), "{after}");
        assert_eq!(trust(&after, &hooks), after, "idempotent");
    }
}
