//! Which paths of the worktree have uncommitted changes: what `git status` lists, untracked files
//! (each one, inside untracked directories too) included, ignored files and submodules left out.
//!
//! libgit2 knows neither git's untracked cache nor fsmonitor, so on a repository that turned
//! either on (`core.untrackedCache`, `core.fsmonitor`) the `git` executable reads the status, with
//! optional locks off so it never writes the index; if that fails, libgit2 reads it. Both give
//! the same list.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use git2::{Repository, Status, StatusOptions};

use crate::git::Deadline;

/// How long `git status` may take before libgit2 reads the status instead.
const GIT_STATUS_DEADLINE: Duration = Duration::from_secs(10);

/// The changed paths of `workdir`, sorted, from whichever reader suits the repository.
pub(crate) fn changed_paths(git: &Repository, workdir: &Path) -> Result<Vec<String>> {
    if uses_git_status(git) {
        if let Ok(paths) = from_git_status(workdir, Deadline::after(GIT_STATUS_DEADLINE)) {
            return Ok(paths);
        }
    }
    from_libgit2(git)
}

/// Whether the repository's config turns on the untracked cache or fsmonitor, which only the
/// `git` executable uses.
pub(crate) fn uses_git_status(git: &Repository) -> bool {
    let Ok(config) = git.config() else {
        return false;
    };
    let untracked_cache = config.get_bool("core.untrackedCache").unwrap_or(false);
    // `core.fsmonitor` is a boolean (the built-in daemon) or the path of a hook.
    let fsmonitor = config.get_bool("core.fsmonitor").unwrap_or_else(|_| {
        config
            .get_string("core.fsmonitor")
            .is_ok_and(|s| !s.trim().is_empty())
    });
    untracked_cache || fsmonitor
}

/// The changed paths as libgit2's status walk finds them.
pub(crate) fn from_libgit2(git: &Repository) -> Result<Vec<String>> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .renames_head_to_index(false);
    let statuses = git
        .statuses(Some(&mut opts))
        .context("could not read the worktree status")?;
    let mut paths: Vec<String> = statuses
        .iter()
        .filter(|e| !e.status().is_empty() && !e.status().contains(Status::IGNORED))
        .filter_map(|e| e.path().ok().map(str::to_string))
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The changed paths as `git status --porcelain=v2` lists them.
pub(crate) fn from_git_status(workdir: &Path, deadline: Deadline) -> Result<Vec<String>> {
    let (status, out) = crate::git::read_in(
        workdir,
        [
            "status",
            "--porcelain=v2",
            "-z",
            "--untracked-files=all",
            "--ignored=no",
            "--ignore-submodules=all",
            "--no-renames",
        ],
        deadline,
    )?;
    match status {
        Some(s) if s.success() => parse_porcelain_v2(&out),
        Some(s) => bail!("git status failed ({s})"),
        None => bail!("git status did not finish in time"),
    }
}

/// The paths of `git status --porcelain=v2 -z` output, sorted; paths that are not UTF-8 are left
/// out, as libgit2's reader leaves them out.
fn parse_porcelain_v2(out: &[u8]) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    let mut records = out.split(|&b| b == 0).filter(|r| !r.is_empty());
    while let Some(record) = records.next() {
        // The fields before the path, which is the last field and may hold spaces.
        let fields = match record.first() {
            Some(b'1') => 8,
            Some(b'2') => 9,
            Some(b'u') => 10,
            Some(b'?') => 1,
            Some(b'!' | b'#') => continue,
            _ => bail!("unexpected git status output"),
        };
        let mut parts = record.splitn(fields + 1, |&b| b == b' ');
        let head: Vec<&[u8]> = parts.by_ref().take(fields).collect();
        let path = parts.next().context("a git status line without a path")?;
        if record[0] == b'2' {
            // A rename's original path follows as a record of its own.
            records.next();
        }
        // The submodule state of a tracked entry (an untracked one has no such field).
        if head.get(2).is_some_and(|s| s.first() == Some(&b'S')) {
            continue;
        }
        if let Ok(p) = std::str::from_utf8(path) {
            paths.push(p.to_string());
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A worktree with every kind of change, on a repository with the untracked cache on.
    fn every_kind_of_change(dir: &Path) {
        git(dir, &["init", "-q"]);
        for f in ["kept.txt", "edited.txt", "deleted.txt", "run.sh", "to-link.txt"] {
            write(dir, f, &format!("{f}\n"));
        }
        write(dir, ".gitignore", "*.log\nbuild/\n");
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "base"]);
        git(dir, &["config", "core.untrackedCache", "true"]);
        git(dir, &["update-index", "--untracked-cache"]);
        // Populate the cache, then change everything after it.
        git(dir, &["status", "--porcelain"]);
        write(dir, "edited.txt", "edited\n");
        std::fs::remove_file(dir.join("deleted.txt")).unwrap();
        write(dir, "untracked.txt", "new\n");
        write(dir, "fresh/a.txt", "a\n");
        write(dir, "fresh/deeper/still/b.txt", "b\n");
        write(dir, "staged.txt", "staged\n");
        git(dir, &["add", "staged.txt"]);
        write(dir, "with space.txt", "s\n");
        write(dir, "ünïcödé/名前.txt", "u\n");
        write(dir, "new\nline.txt", "n\n");
        write(dir, "noise.log", "ignored\n");
        write(dir, "build/out.o", "ignored\n");
        std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("kept.txt", dir.join("link")).unwrap();
        std::fs::remove_file(dir.join("to-link.txt")).unwrap();
        std::os::unix::fs::symlink("kept.txt", dir.join("to-link.txt")).unwrap();
    }

    #[test]
    fn git_status_and_libgit2_agree_on_every_kind_of_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        std::fs::create_dir(&dir).unwrap();
        every_kind_of_change(&dir);
        let repo = Repository::open(&dir).unwrap();
        assert!(uses_git_status(&repo));
        let cli = from_git_status(&dir, Deadline::after(Duration::from_secs(60))).unwrap();
        let lib = from_libgit2(&repo).unwrap();
        assert_eq!(cli, lib);
        let mut expected = vec![
            "deleted.txt",
            "edited.txt",
            "fresh/a.txt",
            "fresh/deeper/still/b.txt",
            "link",
            "new\nline.txt",
            "run.sh",
            "staged.txt",
            "to-link.txt",
            "untracked.txt",
            "with space.txt",
            "ünïcödé/名前.txt",
        ];
        expected.sort();
        assert_eq!(cli, expected);
        assert_eq!(changed_paths(&repo, &dir).unwrap(), expected);
    }

    #[test]
    fn which_reader_follows_the_config() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q"]);
        let repo = || Repository::open(dir).unwrap();
        assert!(!uses_git_status(&repo()));
        git(dir, &["config", "core.untrackedCache", "false"]);
        git(dir, &["config", "core.fsmonitor", "false"]);
        assert!(!uses_git_status(&repo()));
        git(dir, &["config", "core.fsmonitor", ".git/hooks/query-watchman"]);
        assert!(uses_git_status(&repo()));
        git(dir, &["config", "core.fsmonitor", "true"]);
        assert!(uses_git_status(&repo()));
        git(dir, &["config", "core.fsmonitor", "false"]);
        git(dir, &["config", "core.untrackedCache", "true"]);
        assert!(uses_git_status(&repo()));
    }

    #[test]
    fn porcelain_v2_paths() {
        let out = b"1 .M N... 100644 100644 100644 aa bb a b.txt\0\
2 R. N... 100644 100644 100644 aa bb R100 new name\0old name\0\
u UU N... 100644 100644 100644 100644 aa bb cc both\0\
1 .M SC.. 160000 160000 160000 aa bb sub\0\
? dir/x\ny\0! ignored\0";
        assert_eq!(
            parse_porcelain_v2(out).unwrap(),
            vec!["a b.txt", "both", "dir/x\ny", "new name"]
        );
        assert!(parse_porcelain_v2(b"garbage\0").is_err());
        assert_eq!(parse_porcelain_v2(b"").unwrap(), Vec::<String>::new());
    }
}
