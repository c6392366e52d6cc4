//! convosync carries the thread of a Claude Code session from one machine to the next.
//!
//! Handoff notes live on a dedicated git ref of the project's own repository, one file per device
//! (`devices/<device>.md`). The SessionStart hook puts the other devices' newest notes into Claude's
//! context; the Stop hook asks Claude for a note (or derives one) and commits it to the ref. Nothing
//! here ever touches the user's worktree, index, HEAD or branches, except the explicit `save` command.

pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod device;
pub mod draft;
pub mod fsutil;
pub mod git;
pub mod handoff;
pub mod hook;
pub mod lock;
pub mod redact;
pub mod repo;
pub mod store;
pub mod sync;
pub mod timefmt;
