//! Carrying uncommitted work to the next machine without touching branches.
//!
//! A snapshot of the worktree's uncommitted changes (tracked edits and deletions, untracked files
//! that are not ignored) is written as a commit on `refs/convosync/wip/<device>`: its tree is
//! HEAD's tree with the changes applied, built in memory, so the index and worktree are never
//! touched (like `git stash create`). Its base is a commit the remote already has (HEAD when it
//! is pushed, else its merge-base with the remote's branches), so local commits that were never
//! pushed travel only as changes inside the snapshot, never as commits; with no such commit the
//! snapshot is the whole tree against nothing. Its message records the base and branch; its
//! parents are the previous snapshot and the base. Credential files and convosync's own files are
//! never included (see [`crate::secrets::file`]). When the worktree is clean again, one empty
//! snapshot withdraws the last, so other devices are not offered work that was since committed or
//! thrown away.
//!
//! `apply` brings a snapshot into another worktree as a three-way merge from its base: files the
//! user has not touched take the snapshot's version, files both sides changed are merged, and any
//! conflict refuses the whole apply (unless forced) so local work is never overwritten silently.
//! A snapshot is untrusted input from a shared remote: its trees (and its base's) must pass git's
//! fsck tree checks ([`check`]), paths that steer tools need `--allow-steering`, and nothing is
//! ever written through a symlink, under `.git` or outside the worktree.

mod apply;
mod check;
mod checked;
mod commit;
mod merge;
mod mode;
mod plan;
mod publish;
mod sealed;
mod show;
mod snapshot;
mod status;

pub use apply::apply;
pub use commit::Snapshot;
pub use publish::{fetch, list, others_summary, push, push_extra, stays_local};
pub use show::{changes, patch};
pub use snapshot::{snapshot, Outcome};
