//! Applying a snapshot: its plan carried out, deletions first and symlinks last, each write
//! checked again just before it happens.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::commit::Snapshot;
use super::mode::Mode;
use super::plan::{plan, unsafe_path, Conflict, Plan};
use crate::repo::Repo;

/// Result of an apply: each file changed with what was done to it (`added`, `updated` or
/// `deleted`, in that order), conflicts apart.
#[derive(Debug, Default)]
pub struct Applied {
    pub done: Vec<(&'static str, String)>,
    pub conflicts: Vec<Conflict>,
}

/// Apply `snap` (readable here) onto this worktree (see the module doc). Every path is planned
/// before anything is written, so a refused apply writes nothing.
pub fn apply(repo: &Repo, snap: &Snapshot, force: bool, allow_steering: bool) -> Result<Applied> {
    execute(plan(repo, snap, force, allow_steering)?)
}

/// Carry out `plan` unless it is refused, recording what was written and deleted.
pub(super) fn execute(mut plan: Plan) -> Result<Applied> {
    if let Some(why) = plan.refused.first() {
        bail!("{why}");
    }
    let (workdir, mut result) = (&plan.workdir, Applied::default());
    // Deletions first: a directory the snapshot turns into a file must be gone before the file.
    // Symlinks last, so no write can pass through one written here.
    plan.actions.sort_by_key(|(_, to)| match to {
        None => 0,
        Some((_, Mode::Symlink)) => 2,
        Some(_) => 1,
    });
    for (rel, to) in plan.actions {
        guard(workdir, &rel)?;
        let full = workdir.join(&rel);
        let verb = match to {
            Some((data, mode)) => {
                let verb = match std::fs::symlink_metadata(&full) {
                    Err(_) => "added",
                    Ok(_) => "updated",
                };
                write_file(&full, &data, mode)?;
                verb
            }
            None => {
                std::fs::remove_file(&full).with_context(|| format!("could not delete {rel}"))?;
                remove_empty_parents(&full, workdir);
                "deleted"
            }
        };
        // A file written with conflict markers is told as a conflict.
        if !plan.conflicts.iter().any(|c| c.path == rel) {
            result.done.push((verb, rel));
        }
    }
    result.done.sort_by_key(|(verb, _)| *verb == "deleted");
    result.conflicts = plan.conflicts;
    Ok(result)
}

/// After a deletion, remove the directories it left empty, as `git checkout` does.
fn remove_empty_parents(path: &Path, workdir: &Path) {
    for d in path.ancestors().skip(1) {
        if d == workdir || !d.starts_with(workdir) || std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// Write a file or symlink with the given git mode. An existing file keeps its permission bits
/// apart from the executable ones, which follow the mode, as git does on checkout.
fn write_file(path: &Path, data: &[u8], mode: Mode) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    if mode == Mode::Symlink {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(path);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(data), path)
            .with_context(|| format!("could not create symlink {}", path.display()))?;
        return Ok(());
    }
    // A symlink here is replaced, not written through: the new file is renamed over it.
    let rw = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o666)
        .unwrap_or(0o644);
    let exec = if mode == Mode::Executable {
        (rw & 0o444) >> 2
    } else {
        0
    };
    crate::fsutil::atomic_write_mode(path, data, rw | exec)
}

/// Refuse to touch `rel` unless every directory on the way to it is a real directory (or not
/// there yet) inside the worktree: checked again just before each write, whatever the plan said.
fn guard(workdir: &Path, rel: &str) -> Result<()> {
    if let Some(why) = unsafe_path(rel) {
        bail!("refused to write {rel}: {why}");
    }
    let dirs = Path::new(rel).parent().and_then(Path::to_str).unwrap_or_default();
    if let Some(link) = crate::worktree::symlink_on_the_way(workdir, dirs) {
        bail!(
            "refused to write {rel}: {} is a symlink",
            workdir.join(link).display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs;
    use crate::wip::check;
    use crate::wip::commit::message;
    use crate::wip::plan::Action;
    use git2::build::TreeUpdateBuilder;
    use git2::{FileMode, Oid, Repository, Signature};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    const OTHER: &str = "other";

    /// A repository whose one commit (the base) holds `files`, checked out.
    struct Fixture {
        _tmp: tempfile::TempDir,
        dir: PathBuf,
        git: Repository,
        base: Oid,
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn fixture(files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        let git = Repository::init(&dir).unwrap();
        let mut index = git.index().unwrap();
        for (rel, text) in files {
            write(&dir, rel, text);
            index.add_path(Path::new(rel)).unwrap();
        }
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("T", "t@example.com").unwrap();
        let base = git.commit(Some("HEAD"), &sig, &sig, "base", &tree, &[]).unwrap();
        drop(tree);
        Fixture {
            _tmp: tmp,
            dir,
            git,
            base,
        }
    }

    /// A change in the other device's snapshot: a file, a symlink, or a deletion.
    enum Their<'a> {
        File(&'a str, &'a str),
        Link(&'a str, &'a str),
        Gone(&'a str),
    }

    /// Record a snapshot from [`OTHER`]: the base's tree with `changes`, as `snapshot` writes it.
    fn their_snapshot(f: &Fixture, changes: &[Their<'_>]) {
        let base = f.git.find_commit(f.base).unwrap();
        let mut update = TreeUpdateBuilder::new();
        let mut files = Vec::new();
        for c in changes {
            let path = match c {
                Their::File(p, text) => {
                    let blob = f.git.blob(text.as_bytes()).unwrap();
                    update.upsert(*p, blob, FileMode::Blob);
                    p
                }
                Their::Link(p, target) => {
                    let blob = f.git.blob(target.as_bytes()).unwrap();
                    update.upsert(*p, blob, FileMode::Link);
                    p
                }
                Their::Gone(p) => {
                    update.remove(*p);
                    p
                }
            };
            files.push(path.to_string());
        }
        files.sort();
        let tree = update.create_updated(&f.git, &base.tree().unwrap()).unwrap();
        let tree = f.git.find_tree(tree).unwrap();
        let sig = Signature::now("T", "t@example.com").unwrap();
        let msg = message(OTHER, Some(f.base), Some("main"), &files);
        let id = f.git.commit(None, &sig, &sig, &msg, &tree, &[&base]).unwrap();
        f.git.reference(&refs::wip(OTHER), id, true, "test").unwrap();
    }

    /// Every file under `dir`, `.git` included: its content, or a symlink's target.
    fn files_under(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                files_under(&p, out);
            } else if t.is_symlink() {
                out.insert(
                    p.clone(),
                    std::fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
                );
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }

    /// Plan the apply of [`OTHER`]'s snapshot, checking that planning writes nothing at all.
    fn plan_of(f: &Fixture, force: bool, allow_steering: bool) -> Plan {
        let repo = Repo::open(&f.dir).unwrap();
        let mut before = BTreeMap::new();
        files_under(f._tmp.path(), &mut before);
        let (snaps, _) = crate::wip::list(&repo).unwrap();
        let snap = snaps.into_iter().find(|s| s.device == OTHER).unwrap();
        let p = plan(&repo, &snap, force, allow_steering).unwrap();
        let mut after = BTreeMap::new();
        files_under(f._tmp.path(), &mut after);
        assert_eq!(before, after, "planning wrote something");
        p
    }

    fn put(rel: &str, text: &str) -> Action {
        (rel.into(), Some((text.as_bytes().to_vec(), Mode::Regular)))
    }

    /// Start of the refusal for the plan's conflicts.
    const CONFLICTS: &str = "not applied: these files changed here and in other's snapshot";

    /// The plan's one reason to refuse.
    fn only_refusal(p: &Plan) -> &str {
        assert_eq!(p.refused.len(), 1, "{p:?}");
        &p.refused[0]
    }

    fn conflicts(p: &Plan) -> Vec<(&str, &str, bool)> {
        p.conflicts
            .iter()
            .map(|c| (c.path.as_str(), c.reason, c.markers))
            .collect()
    }

    #[test]
    fn files_untouched_here_take_the_snapshots_version() {
        let f = fixture(&[("a.txt", "one\n"), ("same.txt", "same\n")]);
        their_snapshot(
            &f,
            &[Their::File("a.txt", "two\n"), Their::File("new/b.txt", "new\n")],
        );
        let p = plan_of(&f, false, false);
        assert_eq!(p.actions, vec![put("a.txt", "two\n"), put("new/b.txt", "new\n")]);
        assert!(p.conflicts.is_empty() && p.refused.is_empty(), "{p:?}");
    }

    #[test]
    fn a_file_already_as_the_snapshot_has_it_is_left_alone() {
        let f = fixture(&[("a.txt", "one\n")]);
        their_snapshot(&f, &[Their::File("a.txt", "two\n")]);
        write(&f.dir, "a.txt", "two\n");
        let p = plan_of(&f, false, false);
        assert!(
            p.actions.is_empty() && p.conflicts.is_empty() && p.refused.is_empty(),
            "{p:?}"
        );
    }

    #[test]
    fn changes_on_both_sides_that_combine_are_merged() {
        let f = fixture(&[("a.txt", "1\n2\n3\n4\n5\n6\n")]);
        their_snapshot(&f, &[Their::File("a.txt", "1\n2\n3\n4\n5\nsix\n")]);
        write(&f.dir, "a.txt", "one\n2\n3\n4\n5\n6\n");
        let p = plan_of(&f, false, false);
        assert_eq!(p.actions, vec![put("a.txt", "one\n2\n3\n4\n5\nsix\n")]);
        assert!(p.conflicts.is_empty() && p.refused.is_empty(), "{p:?}");
    }

    /// `a.txt` changed here and in the snapshot on the same line; `b.txt` only in the snapshot.
    fn same_lines_changed_on_both_sides() -> Fixture {
        let f = fixture(&[("a.txt", "base\n"), ("b.txt", "b\n")]);
        their_snapshot(
            &f,
            &[Their::File("a.txt", "theirs\n"), Their::File("b.txt", "b2\n")],
        );
        write(&f.dir, "a.txt", "local\n");
        f
    }

    #[test]
    fn changes_to_the_same_lines_conflict_and_refuse_unless_forced() {
        let f = same_lines_changed_on_both_sides();
        let p = plan_of(&f, false, false);
        assert_eq!(
            conflicts(&p),
            vec![("a.txt", "both sides changed the same lines", true)]
        );
        let why = only_refusal(&p);
        assert!(
            why.starts_with(CONFLICTS) && why.contains("\n  a.txt (both sides changed the same lines)\n"),
            "{why}"
        );
        // Forced: written with conflict markers, the rest as usual.
        let p = plan_of(&f, true, false);
        assert!(p.refused.is_empty(), "{p:?}");
        let (rel, Some((data, Mode::Regular))) = &p.actions[0] else {
            panic!("{p:?}")
        };
        let text = String::from_utf8_lossy(data);
        assert_eq!(rel, "a.txt");
        assert!(
            text.contains("<<<<<<< local\nlocal\n") && text.contains("theirs\n>>>>>>> other"),
            "{text}"
        );
        assert_eq!(p.actions[1], put("b.txt", "b2\n"));
    }

    #[test]
    fn deletions_in_the_snapshot() {
        let f = fixture(&[
            ("gone.txt", "g\n"),
            ("edited.txt", "e\n"),
            ("gone-here-too.txt", "h\n"),
            ("dir/only.txt", "o\n"),
        ]);
        their_snapshot(
            &f,
            &[
                Their::Gone("gone.txt"),
                Their::Gone("edited.txt"),
                Their::Gone("gone-here-too.txt"),
                Their::Gone("dir/only.txt"),
            ],
        );
        write(&f.dir, "edited.txt", "changed here\n");
        std::fs::remove_file(f.dir.join("gone-here-too.txt")).unwrap();
        let p = plan_of(&f, false, false);
        assert_eq!(
            p.actions,
            vec![("dir/only.txt".into(), None), ("gone.txt".into(), None)]
        );
        assert_eq!(
            conflicts(&p),
            vec![("edited.txt", "deleted in the snapshot, changed here", false)]
        );
        assert!(only_refusal(&p).starts_with(CONFLICTS));
        // Forced, the local version stays: nothing is written for it.
        let p = plan_of(&f, true, false);
        assert!(p.refused.is_empty() && p.actions.len() == 2, "{p:?}");
    }

    #[test]
    fn a_steering_file_is_refused_without_the_allow_flag() {
        let f = fixture(&[("a.txt", "one\n")]);
        their_snapshot(
            &f,
            &[
                Their::File(".claude/settings.json", "{}\n"),
                Their::File("a.txt", "two\n"),
            ],
        );
        let why = check::steering(".claude/settings.json", None).unwrap();
        let p = plan_of(&f, true, false);
        let refused = only_refusal(&p);
        assert!(
            refused.starts_with("not applied: other's snapshot changes files that steer tools")
                && refused.contains(&format!("\n  .claude/settings.json ({why})\n")),
            "{refused}"
        );
        let p = plan_of(&f, false, true);
        assert!(p.refused.is_empty(), "{p:?}");
        assert_eq!(
            p.actions,
            vec![put(".claude/settings.json", "{}\n"), put("a.txt", "two\n")]
        );
    }

    #[test]
    fn a_path_below_a_symlink_here_is_not_written() {
        let f = fixture(&[("sub/a.txt", "one\n"), ("b.txt", "b\n")]);
        their_snapshot(
            &f,
            &[Their::File("sub/a.txt", "two\n"), Their::File("b.txt", "b2\n")],
        );
        let outside = f._tmp.path().join("outside");
        write(&outside, "a.txt", "one\n");
        std::fs::remove_dir_all(f.dir.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, f.dir.join("sub")).unwrap();
        let p = plan_of(&f, false, false);
        assert_eq!(
            conflicts(&p),
            vec![("sub/a.txt", "a symlink is in the way here", false)]
        );
        assert!(only_refusal(&p).starts_with(CONFLICTS));
        let p = plan_of(&f, true, true);
        assert!(p.refused.is_empty(), "{p:?}");
        assert_eq!(p.actions, vec![put("b.txt", "b2\n")]);
    }

    #[test]
    fn a_path_below_a_symlink_the_snapshot_writes_is_refused() {
        let f = fixture(&[("a.txt", "one\n")]);
        // On a case-insensitive filesystem `Sub` and `sub` are one name.
        their_snapshot(
            &f,
            &[Their::Link("Sub", "a.txt"), Their::File("sub/x.txt", "x\n")],
        );
        for (force, allow_steering) in [(false, false), (true, true)] {
            let p = plan_of(&f, force, allow_steering);
            assert_eq!(
                only_refusal(&p),
                "refused: other's snapshot writes sub/x.txt below a symlink it also writes (sub)"
            );
        }
    }

    #[test]
    fn a_refused_plan_writes_nothing() {
        let f = same_lines_changed_on_both_sides();
        let p = plan_of(&f, false, false);
        let why = only_refusal(&p).to_string();
        let err = execute(p).unwrap_err();
        assert_eq!(err.to_string(), why);
        assert_eq!(std::fs::read_to_string(f.dir.join("b.txt")).unwrap(), "b\n");
        let applied = execute(plan_of(&f, true, false)).unwrap();
        assert_eq!(applied.done, vec![("updated", "b.txt".to_string())]);
        assert_eq!(applied.conflicts[0].path, "a.txt");
        assert!(std::fs::read_to_string(f.dir.join("a.txt"))
            .unwrap()
            .contains("<<<<<<< local"));
        assert_eq!(std::fs::read_to_string(f.dir.join("b.txt")).unwrap(), "b2\n");
    }
}
