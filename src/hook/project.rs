//! Which directory a hook works in: the session's project, not wherever the shell moved.
//!
//! An agent's hook input carries the shell's current directory (`cwd`), which follows every `cd`
//! of the session: into a submodule, a nested repository, a sibling checkout. The note of the
//! session belongs to the project the session was opened in, so the project is, in order:
//! the directory the agent names in its environment (`CLAUDE_PROJECT_DIR`), else the directory
//! this session started in (the SessionStart `cwd`, remembered per session id), else the input's
//! `cwd`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::wire::{Event, HookInput, Source};

/// Environment variables that name the session's project directory, first found wins.
const PROJECT_ENV: [&str; 2] = ["CLAUDE_PROJECT_DIR", "GEMINI_PROJECT_DIR"];

/// How a hook reads its environment (`std::env::var_os` in the binary).
pub type Env<'e> = &'e dyn Fn(&str) -> Option<OsString>;

/// The session's project directory for a hook with `input`, reading the environment through
/// `env` (a variable set to an empty value counts as unset).
pub fn dir(input: &HookInput, env: Env<'_>) -> Option<PathBuf> {
    PROJECT_ENV
        .iter()
        .find_map(|k| var(env, k))
        .map(PathBuf::from)
        .or_else(|| started_in(input, env))
        .or_else(|| input.cwd.as_ref().map(PathBuf::from))
}

fn var(env: Env<'_>, key: &str) -> Option<OsString> {
    env(key).filter(|v| !v.is_empty())
}

/// At a SessionStart that opens a session (new, resumed or forked), remember its `cwd` as the
/// directory the session started in. A `clear` or `compact` keeps what the opening start saw
/// (the shell may have moved since), unless nothing was remembered.
pub fn remember_start(input: &HookInput, event: Event, env: Env<'_>) {
    if event != Event::SessionStart {
        return;
    }
    let (Some(file), Some(cwd)) = (record(input, env), input.cwd.as_deref()) else {
        return;
    };
    let opens = matches!(input.source, Source::Startup | Source::Resume | Source::Fork);
    let known = std::fs::read(&file).ok();
    if known.is_some() && (!opens || known.as_deref() == Some(cwd.as_bytes())) {
        return;
    }
    let _ = crate::fsutil::replace_file(&file, cwd.as_bytes());
    if let Some(dir) = file.parent() {
        crate::state::prune(dir);
    }
}

/// The directory the session of `input` started in, if remembered and still a directory.
fn started_in(input: &HookInput, env: Env<'_>) -> Option<PathBuf> {
    let text = std::fs::read_to_string(record(input, env)?).ok()?;
    let dir = PathBuf::from(text);
    (dir.is_absolute() && dir.is_dir()).then_some(dir)
}

/// Where the start directory of the session of `input` is remembered: one file per session id
/// under this user's state directory (not a repository's: the session's later hooks may run
/// inside another repository).
/// The directory is `<state dir>/convosync/sessions` (`~/.local/state` on Linux, the cache
/// directory where the platform has no state directory), or `$CONVOSYNC_CONFIG_DIR/sessions` when
/// that is set.
fn record(input: &HookInput, env: Env<'_>) -> Option<PathBuf> {
    let base = var(env, "CONVOSYNC_CONFIG_DIR").map(PathBuf::from).or_else(|| {
        dirs::state_dir()
            .or_else(dirs::cache_dir)
            .map(|d| d.join("convosync"))
    })?;
    Some(base.join("sessions").join(input.session_key()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(cwd: &str, session: &str, source: Option<&str>) -> HookInput {
        HookInput {
            session_id: Some(session.to_string()),
            cwd: Some(cwd.to_string()),
            source: Source::parse(source),
            ..HookInput::default()
        }
    }

    #[test]
    fn the_environment_then_the_start_then_the_cwd() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let (top, sub) = (tmp.path().join("top"), tmp.path().join("top/sub"));
        std::fs::create_dir_all(&sub).unwrap();
        let home = |k: &str| (k == "CONVOSYNC_CONFIG_DIR").then(|| state.clone().into_os_string());
        let (top_s, sub_s) = (top.to_str().unwrap(), sub.to_str().unwrap());
        // Nothing remembered: the cwd.
        assert_eq!(dir(&input(sub_s, "s1", None), &home), Some(sub.clone()));
        // Started at the top; the shell moved into `sub`.
        remember_start(&input(top_s, "s1", Some("startup")), Event::SessionStart, &home);
        assert_eq!(dir(&input(sub_s, "s1", None), &home), Some(top.clone()));
        // A compaction while the shell is in `sub` keeps the start.
        remember_start(&input(sub_s, "s1", Some("compact")), Event::SessionStart, &home);
        assert_eq!(dir(&input(sub_s, "s1", None), &home), Some(top.clone()));
        // Other events never record; another session has its own start.
        remember_start(&input(sub_s, "s1", None), Event::Stop, &home);
        assert_eq!(dir(&input(sub_s, "s1", None), &home), Some(top.clone()));
        assert_eq!(dir(&input(sub_s, "s2", None), &home), Some(sub.clone()));
        // The agent's own variable wins; empty counts as unset.
        let claude = |k: &str| match k {
            "CLAUDE_PROJECT_DIR" => Some(OsString::from("/elsewhere")),
            _ => home(k),
        };
        assert_eq!(
            dir(&input(sub_s, "s1", None), &claude),
            Some(PathBuf::from("/elsewhere"))
        );
        let empty = |k: &str| match k {
            "CLAUDE_PROJECT_DIR" => Some(OsString::new()),
            _ => home(k),
        };
        assert_eq!(dir(&input(sub_s, "s1", None), &empty), Some(top.clone()));
        // A remembered directory that is gone is not used.
        std::fs::remove_dir_all(&top).unwrap();
        std::fs::create_dir_all(tmp.path().join("other")).unwrap();
        let other = tmp.path().join("other");
        assert_eq!(
            dir(&input(other.to_str().unwrap(), "s1", None), &home),
            Some(other)
        );
    }
}
