//! The per-repository lock that guards draft → commit → ref update.
//!
//! It lives under the git common dir (`<common>/convosync/lock`), so every linked worktree of a
//! clone, and every hook or command running at once, shares it. The OS releases it when the
//! process dies, so a killed save can never leave it stuck.
//!
//! It is taken once around a whole step and passed down: a function that must run under it takes
//! `&RepoLock`, so holding it is checked by the compiler, never by taking it again.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Held while alive; dropping it closes the file, which releases the lock.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    /// Take the exclusive lock in `state_dir`, waiting at most `wait`.
    pub fn acquire(state_dir: &Path, wait: Duration) -> Result<RepoLock> {
        let path = state_dir.join("lock");
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("could not create {}", state_dir.display()))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("could not open lock file {}", path.display()))?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(RepoLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => bail!(
                    "another convosync process holds {} (waited {:.1}s)",
                    path.display(),
                    wait.as_secs_f64()
                ),
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("could not lock {}", path.display()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = RepoLock::acquire(dir.path(), Duration::from_millis(10)).unwrap();
        let path = dir.path().to_path_buf();
        let p = path.clone();
        let other = std::thread::spawn(move || RepoLock::acquire(&p, Duration::from_millis(50)).is_err());
        assert!(other.join().unwrap(), "another thread waits");
        let waiter = std::thread::spawn(move || RepoLock::acquire(&path, Duration::from_secs(5)).is_ok());
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn the_holder_is_not_let_in_twice() {
        let dir = tempfile::tempdir().unwrap();
        let held = RepoLock::acquire(dir.path(), Duration::from_millis(10)).unwrap();
        let again = RepoLock::acquire(dir.path(), Duration::from_millis(20));
        assert!(
            again.is_err(),
            "a second take in the same thread waits like any other"
        );
        drop(held);
        RepoLock::acquire(dir.path(), Duration::from_millis(20)).expect("free once dropped");
    }
}
