//! The per-repository lock that guards draft → commit → ref update.
//!
//! It lives under the git common dir (`<common>/convosync/lock`), so every linked worktree of a
//! clone, and every hook or command running at once, shares it. The OS releases it when the
//! process dies, so a killed save can never leave it stuck.
//!
//! Taking it again in a thread that holds it shares the held lock (no second `flock`), so a hook
//! can take it once around several steps that each take it.

use std::cell::RefCell;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

thread_local! {
    /// Lock files this thread holds, with how many guards share each.
    static HELD: RefCell<Vec<(PathBuf, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Held while alive; dropping the last guard of a thread releases the lock.
#[derive(Debug)]
pub struct RepoLock {
    file: Option<File>,
    path: PathBuf,
}

impl RepoLock {
    /// Take the exclusive lock in `state_dir`, waiting at most `wait` (at once when this thread
    /// holds it already).
    pub fn acquire(state_dir: &Path, wait: Duration) -> Result<RepoLock> {
        let path = state_dir.join("lock");
        let nested = HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.iter_mut()
                .find(|(p, _)| *p == path)
                .map(|(_, n)| *n += 1)
                .is_some()
        });
        if nested {
            return Ok(RepoLock { file: None, path });
        }
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("could not create {}", state_dir.display()))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("could not open lock file {}", path.display()))?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    HELD.with(|h| h.borrow_mut().push((path.clone(), 1)));
                    return Ok(RepoLock {
                        file: Some(file),
                        path,
                    });
                }
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

impl Drop for RepoLock {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().position(|(p, _)| *p == self.path) {
                h[i].1 -= 1;
                if h[i].1 == 0 {
                    h.remove(i);
                }
            }
        });
        if let Some(f) = &self.file {
            let _ = f.unlock();
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
    fn the_holding_thread_shares_it_until_the_last_guard_goes() {
        let dir = tempfile::tempdir().unwrap();
        let outer = RepoLock::acquire(dir.path(), Duration::from_millis(10)).unwrap();
        let inner = RepoLock::acquire(dir.path(), Duration::from_millis(10)).expect("nested");
        drop(inner);
        let p = dir.path().to_path_buf();
        let busy = std::thread::spawn(move || RepoLock::acquire(&p, Duration::from_millis(20)).is_err());
        assert!(busy.join().unwrap(), "still held by the outer guard");
        drop(outer);
        let p = dir.path().to_path_buf();
        let free = std::thread::spawn(move || RepoLock::acquire(&p, Duration::from_millis(20)).is_ok());
        assert!(free.join().unwrap());
    }
}
