//! One integration-test binary: real git repositories in temp dirs, a real bare remote, several
//! clones acting as devices, and the real `convosync` binary run as Claude Code runs it.

mod bounded;
mod claude;
mod codex;
mod common;
mod core;
mod corrupt;
mod gemini;
mod history_cache;
mod hooks;
mod hostile;
mod identity;
mod keys;
mod polish;
mod private;
mod project;
mod proof;
mod release;
mod remotes;
mod roadmap;
mod save;
#[path = "fixtures/servers.rs"]
mod servers;
mod shim;
mod sync;
mod truth;
mod view;
mod wip;
mod worktree;
