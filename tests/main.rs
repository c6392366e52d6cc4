//! One integration-test binary: real git repositories in temp dirs, a real bare remote, several
//! clones acting as devices, and the real `convosync` binary run as Claude Code runs it.

mod bounded;
mod claude;
mod codex;
mod commands;
mod common;
mod core;
mod corrupt;
mod export;
mod gemini;
mod history;
mod history_cache;
mod hooks;
mod hostile;
mod identity;
mod keys;
mod private;
mod project;
mod release;
mod remotes;
mod save;
#[path = "fixtures/servers.rs"]
mod servers;
mod shim;
mod sync;
mod view;
mod wip;
mod worktree;
