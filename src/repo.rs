//! The repository convosync works in: discovery from a directory, where its local state lives,
//! and what HEAD says (commit, branch) for a handoff's metadata. Read-only with respect to the
//! user's worktree, index, HEAD and branches.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use git2::Repository;

use crate::config::Settings;
use crate::handoff::CommitRef;
use crate::lock::RepoLock;

/// Where Claude writes the draft, relative to the worktree root (the original plugin's name).
pub const DRAFT_PATH: &str = ".convosync/session-handoff-draft.md";
/// The original plugin's appended handoff file, still read by `resume` and `migrate`.
pub const LEGACY_PATH: &str = ".convosync/session-handoff.md";

/// An opened repository plus the settings resolved for it.
pub struct Repo {
    pub git: Repository,
    pub settings: Settings,
    /// One snapshot of its configuration (with the global and system files), read once when
    /// the repository was opened.
    pub config: Option<git2::Config>,
}

impl Repo {
    /// Find the repository containing `dir`; `Ok(None)` when there is none.
    pub fn discover(dir: &Path) -> Result<Option<Repo>> {
        match Repository::discover(dir) {
            Ok(git) => {
                let config = git.config().and_then(|mut c| c.snapshot()).ok();
                let mut settings = Settings::load(config.as_ref());
                for bad in &settings.invalid {
                    crate::state::log(&crate::state::state_dir_of(&git), &format!("config: {bad}"));
                }
                if settings.notes_repo && !settings.ref_explicit {
                    // A notes repository named by a remote name is not the project's own remote.
                    let notes = settings.remote.as_deref().filter(|r| !crate::refs::is_url(r));
                    let ns = crate::namespace::of(&git, settings.project.as_deref(), notes);
                    settings.refname = crate::namespace::handoffs_ref(&ns.id);
                    settings.namespace = Some(ns);
                }
                Ok(Some(Repo {
                    git,
                    settings,
                    config,
                }))
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("could not open the git repository at {}", dir.display()))
            }
        }
    }

    /// The settings of the repository containing `dir` that are set but not valid (see
    /// [`Settings::invalid`]), read without opening it as a [`Repo`] (nothing is logged).
    pub fn invalid_settings(dir: &Path) -> Vec<String> {
        let Ok(git) = Repository::discover(dir) else {
            return Vec::new();
        };
        Settings::load(git.config().and_then(|mut c| c.snapshot()).ok().as_ref()).invalid
    }

    /// Like [`Repo::discover`], but a missing repository is an error with a clear message.
    pub fn open(dir: &Path) -> Result<Repo> {
        let hint = "run convosync from a clone of your project";
        Repo::discover(dir)?
            .with_context(|| format!("not inside a git repository: {} ({hint})", dir.display()))
    }

    /// The worktree root; `None` for a bare repository.
    pub fn workdir(&self) -> Option<&Path> {
        self.git.workdir()
    }

    /// convosync's local state, shared by all linked worktrees: `<git common dir>/convosync`.
    pub fn state_dir(&self) -> PathBuf {
        crate::state::state_dir_of(&self.git)
    }

    /// The draft file of this worktree.
    pub fn draft_path(&self) -> Result<PathBuf> {
        self.workdir()
            .map(|w| w.join(DRAFT_PATH))
            .context("this is a bare repository: there is no worktree for a handoff draft")
    }

    /// Take the repository lock (see [`crate::lock`]). Every convosync writer of the handoff and
    /// wip refs holds it, so a git ref lock file (`<ref>.lock`) found once we have it was left by
    /// a process that died mid-update, and would block every later update: it is removed.
    pub fn lock(&self, wait: Duration) -> Result<RepoLock> {
        let lock = RepoLock::acquire(&self.state_dir(), wait)?;
        let common = self.git.commondir();
        let mut stale = vec![common.join(format!("{}.lock", self.settings.refname))];
        if let Ok(dir) = std::fs::read_dir(common.join(crate::refs::WIP_PREFIX)) {
            let paths = dir.flatten().map(|e| e.path());
            stale.extend(paths.filter(|p| p.extension().is_some_and(|x| x == "lock")));
        }
        for path in stale.into_iter().filter(|p| p.exists()) {
            if std::fs::remove_file(&path).is_ok() {
                let msg = format!("removed stale ref lock {}", path.display());
                crate::state::log(&self.state_dir(), &msg);
            }
        }
        Ok(lock)
    }

    /// HEAD's commit (short sha and subject) and branch name; `None`s for an unborn or detached
    /// HEAD respectively.
    pub fn head_info(&self) -> (Option<CommitRef>, Option<String>) {
        let Ok(head) = self.git.head() else {
            // Unborn branch: HEAD names a branch that has no commit yet.
            let head = self.git.find_reference("HEAD").ok();
            let target = head.as_ref().and_then(|r| r.symbolic_target().ok().flatten());
            let branch = target.and_then(|t| t.strip_prefix("refs/heads/"));
            return (None, branch.map(str::to_string));
        };
        let branch = head.shorthand().ok().filter(|_| head.is_branch());
        // The full id is stored (display abbreviates it): looking up a full id is one stat, while
        // an abbreviation makes libgit2 scan loose-object directories, which grow with history.
        let commit = head.peel_to_commit().ok().map(|c| CommitRef {
            sha: c.id().to_string(),
            subject: c.summary().ok().flatten().unwrap_or_default().to_string(),
        });
        (commit, branch.map(str::to_string))
    }

    /// Make sure git ignores the draft (and other local files) in this clone without touching
    /// `.gitignore`: append to `<common dir>/info/exclude` once.
    pub fn ensure_excluded(&self) -> Result<()> {
        let exclude = self.git.commondir().join("info").join("exclude");
        let mut current = std::fs::read_to_string(&exclude).unwrap_or_default();
        let wanted = ["/.convosync/session-handoff-draft.md", "/.convosync/*.tmp"];
        let listed = |w: &&str| current.lines().any(|l| l.trim() == *w);
        let missing: Vec<&str> = wanted.into_iter().filter(|w| !listed(w)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !current.is_empty() && !current.ends_with('\n') {
            current.push('\n');
        }
        let missing = missing.join("\n");
        current += &format!("# convosync: local drafts, never committed\n{missing}\n");
        crate::fsutil::atomic_write(&exclude, current.as_bytes())
    }

    /// The remote to sync with: `convosync.remote`, else the current branch's upstream remote,
    /// else `origin`; `None` when that remote does not exist.
    pub fn remote_name(&self) -> Option<String> {
        if let Some(r) = &self.settings.remote {
            // A notes repository named by URL: git fetch and push take it in place of a name.
            return (crate::refs::is_url(r) || self.git.find_remote(r).is_ok()).then(|| r.clone());
        }
        self.code_remote()
    }

    /// The remote the project's code goes to: the handoffs' remote unless that is a notes
    /// repository, else the current branch's upstream remote, else `origin`.
    pub fn code_remote(&self) -> Option<String> {
        if let (Some(r), false) = (&self.settings.remote, self.settings.notes_repo) {
            return self.git.find_remote(r).ok().map(|_| r.clone());
        }
        let upstream = self
            .git
            .head()
            .ok()
            .filter(|h| h.is_branch())
            .and_then(|h| self.git.branch_upstream_remote(h.name().ok()?).ok())
            .and_then(|buf| buf.as_str().ok().map(str::to_string));
        upstream
            .or_else(|| Some("origin".to_string()))
            .filter(|r| self.git.find_remote(r).is_ok())
    }
}
