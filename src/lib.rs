//! convosync carries the thread of a Claude Code session from one machine to the next.
//!
//! Handoff notes live on a dedicated git ref of the project's own repository, one file per device
//! (`devices/<device>.md`). The SessionStart hook puts the other devices' newest notes into Claude's
//! context; the Stop hook asks Claude for a note (or derives one) and commits it to the ref. Nothing
//! here ever touches the user's worktree, index, HEAD or branches, except the explicit `save` command.

pub(crate) mod agent;
pub mod cli;
pub mod cmd;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod crypt;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod draft;
pub(crate) mod fsutil;
pub(crate) mod git;
pub(crate) mod handoff;
pub(crate) mod history;
pub(crate) mod hook;
pub(crate) mod lock;
pub(crate) mod namespace;
pub(crate) mod notes;
pub(crate) mod redact;
pub(crate) mod refs;
pub(crate) mod repo;
pub(crate) mod secrets;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod sync;
pub(crate) mod team;
pub(crate) mod term;
pub(crate) mod timefmt;
pub(crate) mod transcript;
pub(crate) mod untrusted;
pub(crate) mod wip;
pub(crate) mod worktree;

/// What the benchmarks and the key tests build their fixtures with (notes written straight to
/// the ref, keys made without the CLI); not an API.
#[doc(hidden)]
pub mod fixture {
    pub use crate::crypt::{key, Key, Purpose};
    pub use crate::handoff::{format, CommitRef, Handoff, Section};
    pub use crate::store::{commit_message, Store};
}

/// Process-wide git settings, called once at start-up before any thread exists: ask libgit2 to
/// fsync objects and refs so a committed handoff survives a power cut as well as a crash.
pub fn init() {
    // SAFETY: git_libgit2_opts with an int flag; called before other threads use libgit2.
    unsafe {
        // A file-size limit (ulimit -f) would otherwise kill us mid-write with SIGXFSZ; ignored,
        // the write fails with EFBIG and the error is reported like any full disk.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libgit2_sys::init();
        libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_ENABLE_FSYNC_GITDIR as libc::c_int,
            1 as libc::c_int,
        );
    }
}
