//! What git records a path of a snapshot as: the few kinds of file wip carries, converted from
//! and to git's raw modes only where a tree, an index entry or a diff is read or written.

use std::fs::Metadata;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Result};
use git2::FileMode;

/// git's raw modes of a tree entry.
pub const MODE_TREE: u32 = 0o040000;
pub const MODE_BLOB: u32 = 0o100644;
pub const MODE_BLOB_GROUP: u32 = 0o100664;
pub const MODE_EXEC: u32 = 0o100755;
pub const MODE_LINK: u32 = 0o120000;
pub const MODE_GITLINK: u32 = 0o160000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A regular file (`100644`; git's old group-writable `100664` reads as one too).
    Regular,
    /// An executable file (`100755`).
    Executable,
    /// A symlink (`120000`): its content is the target.
    Symlink,
    /// A submodule's commit (`160000`): never written to the worktree.
    Submodule,
}

impl Mode {
    /// From a raw git mode; an error for a tree or anything that is not a file git stores.
    pub(crate) fn from_raw(raw: u32) -> Result<Mode> {
        Ok(match raw {
            MODE_BLOB | MODE_BLOB_GROUP => Mode::Regular,
            MODE_EXEC => Mode::Executable,
            MODE_LINK => Mode::Symlink,
            MODE_GITLINK => Mode::Submodule,
            _ => bail!("an unexpected git mode {raw:o}"),
        })
    }

    /// From libgit2's mode of a diff side or tree entry.
    pub(crate) fn of(m: FileMode) -> Result<Mode> {
        Mode::from_raw(u32::from(m))
    }

    /// The raw git mode.
    pub(crate) fn raw(self) -> u32 {
        match self {
            Mode::Regular => MODE_BLOB,
            Mode::Executable => MODE_EXEC,
            Mode::Symlink => MODE_LINK,
            Mode::Submodule => MODE_GITLINK,
        }
    }
}

/// The content (a symlink's target) and mode of the worktree file at `path`, whose `lstat` is
/// `m`, as git would record it (executable when any execute bit is set); an error for anything
/// else (a directory, a socket).
pub(crate) fn read_file(path: &Path, m: &Metadata) -> std::io::Result<(Vec<u8>, Mode)> {
    if m.file_type().is_symlink() {
        return Ok((
            std::fs::read_link(path)?.into_os_string().into_vec(),
            Mode::Symlink,
        ));
    }
    if !m.is_file() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    let exec = m.permissions().mode() & 0o111 != 0;
    let mode = if exec { Mode::Executable } else { Mode::Regular };
    Ok((std::fs::read(path)?, mode))
}

/// Whether libgit2's mode `m` is `mode` (false for no file at all).
pub(crate) fn is(m: FileMode, mode: Mode) -> bool {
    Mode::of(m).is_ok_and(|k| k == mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_modes_round_trip() {
        for (fm, mode) in [
            (FileMode::Blob, Mode::Regular),
            (FileMode::BlobExecutable, Mode::Executable),
            (FileMode::Link, Mode::Symlink),
            (FileMode::Commit, Mode::Submodule),
        ] {
            assert_eq!(Mode::of(fm).unwrap(), mode);
            assert_eq!(mode.raw(), u32::from(fm));
        }
        assert_eq!(Mode::of(FileMode::BlobGroupWritable).unwrap(), Mode::Regular);
        assert!(Mode::of(FileMode::Tree).is_err());
        assert!(Mode::of(FileMode::Unreadable).is_err());
        assert!(!is(FileMode::Unreadable, Mode::Symlink));
    }
}
