//! Files convosync reads from the user's worktree (the handoff draft, the repository's template,
//! the original plugin's handoff file), read as the repository's content: never through a symlink.
//!
//! Anyone who can commit to the repository can put a symlink at any of these paths, or make
//! `.convosync` itself a symlink to a directory elsewhere on the machine. Every component below
//! the worktree is therefore opened relative to its parent with `O_NOFOLLOW` (`openat`), so a
//! symlink anywhere on the way is refused, and no check can be raced by swapping a directory for
//! a link between a check and the open. The file must be a regular file; it is opened without
//! blocking, so a FIFO cannot stall a hook.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Why a path below the worktree was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This component (relative to the worktree) is a symlink.
    #[error("{0} is a symlink; convosync never reads through one")]
    Symlink(String),
    /// This component is neither a directory (on the way) nor a regular file (at the end).
    #[error("{0} is not a regular file; refusing to read it")]
    NotRegular(String),
}

/// The directory holding `rel`'s last component, opened component by component without
/// following a symlink, with `rel` as walked; `None` when a directory on the way does not exist.
fn parent_of(workdir: &Path, rel: &str) -> Result<Option<(OwnedFd, PathBuf)>> {
    let path = Path::new(rel);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("{rel} is not a plain relative path");
    }
    let (Some(dirs), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("empty path");
    };
    let mut dir = open_at(None, workdir.as_os_str(), libc::O_DIRECTORY)
        .with_context(|| format!("could not open {}", workdir.display()))?;
    let mut walked = PathBuf::new();
    for part in dirs.components() {
        walked.push(part);
        let Some(fd) = step(workdir, &dir, &walked, libc::O_DIRECTORY | libc::O_NOFOLLOW)? else {
            return Ok(None);
        };
        dir = fd;
    }
    Ok(Some((dir, walked.join(name))))
}

/// Remove the file `rel` below `workdir`, never through a symlink on the way (the file itself,
/// were it a link, would be removed, not its target). A missing file is not an error.
pub fn remove(workdir: &Path, rel: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let Some((dir, walked)) = parent_of(workdir, rel)? else {
        return Ok(());
    };
    let name = walked.file_name().unwrap_or_default();
    let c = CString::new(name.as_bytes()).context("NUL in a path")?;
    // SAFETY: `dir` is an open directory and `c` a valid C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e).with_context(|| format!("could not delete {rel}"));
        }
    }
    Ok(())
}

/// Open `rel` (a relative path such as `.convosync/template.md`) below `workdir` for reading,
/// without following a symlink at any component. `Ok(None)` when it does not exist; an error
/// that downcasts to [`Refused`] when a component is a symlink or not what it should be.
pub fn open(workdir: &Path, rel: &str) -> Result<Option<File>> {
    let Some((dir, walked)) = parent_of(workdir, rel)? else {
        return Ok(None);
    };
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let Some(fd) = step(workdir, &dir, &walked, flags)? else {
        return Ok(None);
    };
    let file = File::from(fd);
    let meta = file
        .metadata()
        .with_context(|| format!("could not read {}", workdir.join(&walked).display()))?;
    if !meta.file_type().is_file() {
        return Err(Refused::NotRegular(walked.display().to_string()).into());
    }
    Ok(Some(file))
}

/// Read `rel` below `workdir` as [`open`] does, at most `max` bytes: a larger file is refused.
pub fn read(workdir: &Path, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(file) = open(workdir, rel)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    (&file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read {rel}"))?;
    if bytes.len() as u64 > max {
        bail!("{rel} is larger than {} KB; not read", max / 1024);
    }
    Ok(Some(bytes))
}

/// The first component of `rel` below `workdir` that is a symlink, if any (whether or not the
/// file itself exists): where convosync must neither read nor ask anyone to write.
pub fn symlink_on_the_way(workdir: &Path, rel: &str) -> Option<String> {
    let mut walked = PathBuf::new();
    for part in Path::new(rel).components() {
        walked.push(part);
        match std::fs::symlink_metadata(workdir.join(&walked)) {
            Ok(m) if m.file_type().is_symlink() => return Some(walked.display().to_string()),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// `openat(dir, name, O_RDONLY | O_CLOEXEC | flags)`; `dir` `None` opens `name` as it is.
fn open_at(dir: Option<&OwnedFd>, name: &std::ffi::OsStr, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let c = CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))?;
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is a valid NUL-terminated string and `at` an open directory (or AT_FDCWD).
    let fd = unsafe { libc::openat(at, c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open `walked`'s last component in `dir` (its parent, opened by [`parent_of`]) with `flags`:
/// `None` when it does not exist, an error that downcasts to [`Refused`] when `O_NOFOLLOW` (or
/// `O_DIRECTORY`) refused it.
fn step(workdir: &Path, dir: &OwnedFd, walked: &Path, flags: libc::c_int) -> Result<Option<OwnedFd>> {
    let name = walked.file_name().context("empty path")?;
    let e = match open_at(Some(dir), name, flags) {
        Ok(fd) => return Ok(Some(fd)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => e,
    };
    let shown = walked.display().to_string();
    // Only the message depends on what is there now: the open was refused either way.
    Err(match std::fs::symlink_metadata(workdir.join(walked)) {
        Ok(m) if m.file_type().is_symlink() => Refused::Symlink(shown).into(),
        Ok(_) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
            Refused::NotRegular(shown).into()
        }
        _ => anyhow::Error::from(e).context(format!("could not open {shown}")),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn refused(r: Result<Option<Vec<u8>>>) -> Refused {
        r.unwrap_err().downcast::<Refused>().expect("a refusal")
    }

    #[test]
    fn reads_plain_files_and_refuses_every_symlink_on_the_way() {
        let w = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t.md"), "outside").unwrap();
        let rel = ".convosync/t.md";
        assert_eq!(read(w.path(), rel, 100).unwrap(), None);
        std::fs::create_dir(w.path().join(".convosync")).unwrap();
        assert_eq!(read(w.path(), rel, 100).unwrap(), None);
        std::fs::write(w.path().join(rel), "inside").unwrap();
        assert_eq!(read(w.path(), rel, 100).unwrap().unwrap(), b"inside");
        assert!(read(w.path(), rel, 3).is_err(), "over the cap");
        assert_eq!(symlink_on_the_way(w.path(), rel), None);

        std::fs::remove_file(w.path().join(rel)).unwrap();
        symlink(outside.path().join("t.md"), w.path().join(rel)).unwrap();
        assert_eq!(refused(read(w.path(), rel, 100)), Refused::Symlink(rel.into()));
        assert_eq!(symlink_on_the_way(w.path(), rel).as_deref(), Some(rel));

        std::fs::remove_dir_all(w.path().join(".convosync")).unwrap();
        symlink(outside.path(), w.path().join(".convosync")).unwrap();
        assert_eq!(
            refused(read(w.path(), rel, 100)),
            Refused::Symlink(".convosync".into())
        );
        assert_eq!(
            symlink_on_the_way(w.path(), ".convosync/missing.md").as_deref(),
            Some(".convosync")
        );
        // A dangling link is refused too, not taken for a missing file.
        std::fs::remove_file(w.path().join(".convosync")).unwrap();
        symlink("/nonexistent/dir", w.path().join(".convosync")).unwrap();
        assert_eq!(
            refused(read(w.path(), rel, 100)),
            Refused::Symlink(".convosync".into())
        );
    }

    #[test]
    fn removes_without_following_a_symlink() {
        let w = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t.md"), "keep").unwrap();
        symlink(outside.path(), w.path().join(".convosync")).unwrap();
        assert!(remove(w.path(), ".convosync/t.md").is_err());
        assert!(outside.path().join("t.md").exists());
        std::fs::remove_file(w.path().join(".convosync")).unwrap();
        std::fs::create_dir(w.path().join(".convosync")).unwrap();
        remove(w.path(), ".convosync/t.md").unwrap();
        std::fs::write(w.path().join(".convosync/t.md"), "x").unwrap();
        remove(w.path(), ".convosync/t.md").unwrap();
        assert!(!w.path().join(".convosync/t.md").exists());
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let w = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(w.path().join("d/t.md")).unwrap();
        assert_eq!(
            refused(read(w.path(), "d/t.md", 100)),
            Refused::NotRegular("d/t.md".into())
        );
        std::fs::write(w.path().join("f"), "x").unwrap();
        assert_eq!(
            refused(read(w.path(), "f/t.md", 100)),
            Refused::NotRegular("f".into())
        );
        let fifo = CString::new(w.path().join("d/p").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(
            refused(read(w.path(), "d/p", 100)),
            Refused::NotRegular("d/p".into())
        );
    }
}
