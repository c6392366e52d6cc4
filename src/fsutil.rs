//! File writes that never leave a half-written file behind: temp file in the same directory,
//! `sync_all`, rename over the target.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Atomically replace `path` with `contents`, creating parent directories as needed, and make it
/// durable (fsync) before the rename.
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    write_via_temp(path, contents, true, None)
}

/// [`atomic_write`] of a file with permissions `mode` (`0o600` for a secret, `0o755` for a
/// program): the temp file has them from its creation, so the contents are never readable by
/// anyone the mode excludes, and they are set again after writing so the umask cannot narrow them.
pub fn atomic_write_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_via_temp(path, contents, true, Some(mode))
}

/// Like [`atomic_write`] without the fsync: for small state that is cheap to lose (a crash leaves
/// the old or the new file, never a torn one) but is written on every hook run.
pub fn replace_file(path: &Path, contents: &[u8]) -> Result<()> {
    write_via_temp(path, contents, false, None)
}

fn write_via_temp(path: &Path, contents: &[u8], durable: bool, mode: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let perms = mode.map(std::fs::Permissions::from_mode);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".convosync-").suffix(".tmp");
    if let Some(p) = &perms {
        builder.permissions(p.clone());
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("could not create a temp file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| perms.map_or(Ok(()), |p| tmp.as_file().set_permissions(p)))
        .and_then(|()| if durable { tmp.as_file().sync_all() } else { Ok(()) })
        .with_context(|| format!("could not write {}", path.display()))?;
    tmp.persist(path)
        .map(drop)
        .map_err(|e| e.error)
        .with_context(|| format!("could not replace {}", path.display()))
}

/// Crash-test hook: `CONVOSYNC_FAILPOINT=<name>` kills the process at that point, as a power cut
/// or `kill -9` would, so tests can prove nothing is lost between the steps of a save. With
/// `CONVOSYNC_FAILPOINT_RUN=<shell command>` as well, the command runs there instead (and the
/// process goes on): a race with another writer, made deterministic. Only in builds with the
/// `failpoints` feature (the tests'); elsewhere it does nothing.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    if std::env::var_os("CONVOSYNC_FAILPOINT").is_some_and(|v| v == name) {
        match std::env::var_os("CONVOSYNC_FAILPOINT_RUN") {
            Some(cmd) => {
                let _ = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .status();
            }
            None => std::process::abort(),
        }
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp files left behind");
    }
}
