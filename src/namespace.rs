//! A project's namespace in a notes repository (`convosync.remote` holding the notes of several
//! projects): `refs/convosync/p/<id>/handoffs` and `refs/convosync/p/<id>/wip/<device>`.
//!
//! The id must be the same in every clone of one project and differ between projects, so it is
//! made of what clones share and nothing they do not:
//! - `convosync.project`, when set (sanitised);
//! - else the project's own remote, its URL normalised so that every spelling of one repository
//!   agrees (`git@host:a/b.git`, `ssh://git@host:22/a/b`, `https://host/a/b/`): `remote-<16 hex>`.
//!   A shallow clone, a full one and one that has just been unshallowed share it, since it does
//!   not depend on history; forks, which share history but not a remote, do not;
//! - else (no remote) the root commit, reached by first parents from HEAD: its first 12 hex
//!   digits, as earlier versions named every project. A shallow clone cannot know its root and
//!   takes the next rule;
//! - else (no commit or a shallow clone, and no remote) an id local to this clone, `local-<16
//!   hex>` from random bytes, kept in `<common dir>/convosync/project-local-id`. It never names
//!   another repository, whatever the two are called.
//!
//! The id a clone last used is kept in `<common dir>/convosync/project-id` (where earlier
//! versions kept theirs). When the id changes (a remote added, `convosync.project` set, or an
//! earlier version's id), the notes of the earlier namespace are carried into the new one once,
//! at the next fetch (see [`crate::sync`]); then the file names the new id.

use std::io::Read;
use std::path::Path;

use git2::Repository;

use crate::state::state_dir_of;

/// The file naming the namespace this clone last used.
const LAST_USED: &str = "project-id";
/// The file holding this clone's local id, once made.
const LOCAL_ID: &str = "project-local-id";
/// The file caching the root commit's id (walking history to it costs time in a large project).
const ROOT: &str = "project-root";

/// The namespace of a project: its id, and the id this clone used before when that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: String,
    pub previous: Option<String>,
}

/// The handoff ref of the namespace `id`.
pub fn handoffs_ref(id: &str) -> String {
    format!("refs/convosync/p/{id}/handoffs")
}

/// The namespace of the repository `git`: `configured` is `convosync.project`, `notes_remote`
/// the remote *name* holding the notes (never taken for the project's own remote).
pub fn of(git: &Repository, configured: Option<&str>, notes_remote: Option<&str>) -> Namespace {
    let id = configured
        .and_then(crate::device::sanitize)
        .or_else(|| project_url(git, notes_remote).map(|u| remote_id(&u)))
        .or_else(|| root_id(git))
        .unwrap_or_else(|| local_id(git));
    let state = state_dir_of(git);
    let previous = std::fs::read_to_string(state.join(LAST_USED))
        .ok()
        .and_then(|s| crate::device::sanitize(&s));
    if previous.is_none() {
        // A clone's first namespace: nothing to carry over.
        let _ = crate::fsutil::replace_file(&state.join(LAST_USED), format!("{id}\n").as_bytes());
    }
    Namespace {
        previous: previous.filter(|p| *p != id),
        id,
    }
}

/// Record that the notes of the earlier namespace are now in `id`'s: later runs use `id` alone.
pub fn settled(git: &Repository, id: &str) -> anyhow::Result<()> {
    crate::fsutil::atomic_write(&state_dir_of(git).join(LAST_USED), format!("{id}\n").as_bytes())
}

/// `remote-` and 16 hex digits of the SHA-1 of the normalised URL.
fn remote_id(normalised: &str) -> String {
    let hash = crate::refs::hash_hex(format!("convosync project\0{normalised}").as_bytes());
    format!("remote-{}", &hash[..16])
}

/// The URL of the project's own remote, normalised: `origin`, else the only remote, else the
/// current branch's upstream remote, else the first by name; never the notes repository.
fn project_url(git: &Repository, notes_remote: Option<&str>) -> Option<String> {
    let names = git.remotes().ok()?;
    let mut names: Vec<&str> = names
        .iter()
        .filter_map(|n| n.ok().flatten())
        .filter(|n| Some(*n) != notes_remote)
        .collect();
    names.sort_unstable();
    let upstream = || {
        let head = git.head().ok().filter(|h| h.is_branch())?;
        let buf = git.branch_upstream_remote(head.name().ok()?).ok()?;
        let name = buf.as_str().ok()?.to_string();
        names.contains(&name.as_str()).then_some(name)
    };
    let chosen = if names.contains(&"origin") {
        "origin".to_string()
    } else if names.len() == 1 {
        names[0].to_string()
    } else {
        upstream().or_else(|| names.first().map(|n| n.to_string()))?
    };
    let remote = git.find_remote(&chosen).ok()?;
    let url = remote.url().ok().filter(|u| !u.trim().is_empty())?;
    Some(normalise_url(url, git.workdir().unwrap_or(git.path())))
}

/// One spelling for every way of writing one repository's URL: no scheme, user, password, port,
/// trailing `/` or `.git`; host and path in lowercase (hosting services ignore case in both);
/// `host/path`. scp-like `[user@]host:path` is read as git reads it (no `/` before the first
/// `:`). A local path (or `file://` URL) stays a path, `file:<path>`: made absolute from `base`
/// (as git reads a relative remote path, from the worktree) and with symlinks resolved when it
/// exists.
pub fn normalise_url(url: &str, base: &Path) -> String {
    let url = url.trim();
    let (host, path) = match (url.split_once("://"), url.split_once(':')) {
        (Some((scheme, rest)), _) if scheme.eq_ignore_ascii_case("file") => (None, rest),
        (Some((_, rest)), _) => rest
            .split_once('/')
            .map_or((Some(rest), ""), |(a, p)| (Some(a), p)),
        (None, Some((left, path))) if !left.is_empty() && !left.contains('/') => (Some(left), path),
        _ => (None, url),
    };
    let given = path.trim_end_matches('/');
    let path = given.strip_suffix(".git").unwrap_or(given).trim_end_matches('/');
    match host {
        Some(authority) => {
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            // A port (`host:22`, `[::1]:22`) is not part of the repository's name.
            let host = match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
                _ => host,
            };
            let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            format!("{}/{}", host, path.join("/")).to_lowercase()
        }
        None => {
            // As git finds a local repository: the path, else the path with `.git`.
            let full = std::fs::canonicalize(base.join(given))
                .or_else(|_| std::fs::canonicalize(base.join(format!("{given}.git"))))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| base.join(given).to_string_lossy().into_owned());
            let full = full.strip_suffix(".git").unwrap_or(&full);
            format!("file:{full}")
        }
    }
}

/// The first 12 hex digits of the root commit reached by first parents from HEAD (cached);
/// `None` without a commit or in a shallow clone, whose history stops short of the root.
fn root_id(git: &Repository) -> Option<String> {
    if git.is_shallow() {
        return None;
    }
    let file = state_dir_of(git).join(ROOT);
    if let Some(id) = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Some(id);
    }
    let head = git.head().ok()?.peel_to_commit().ok()?;
    let mut walk = git.revwalk().ok()?;
    walk.simplify_first_parent().ok()?;
    walk.push(head.id()).ok()?;
    let root = walk.filter_map(Result::ok).last()?;
    let id = root.to_string()[..12].to_string();
    let _ = crate::fsutil::replace_file(&file, format!("{id}\n").as_bytes());
    Some(id)
}

/// This clone's own id, made once from random bytes and kept: `local-<16 hex>`. Two processes
/// making it at once agree on the first one written.
fn local_id(git: &Repository) -> String {
    let file = state_dir_of(git).join(LOCAL_ID);
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| crate::device::sanitize(&s))
            .filter(|s| s.starts_with("local-"))
    };
    if let Some(id) = read(&file) {
        return id;
    }
    let mut seed = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let material = format!(
        "{seed:?}\0{}\0{nanos}\0{}",
        git.path().display(),
        std::process::id()
    );
    let id = format!("local-{}", &crate::refs::hash_hex(material.as_bytes())[..16]);
    let written = file.parent().and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).ok()?;
        std::io::Write::write_all(&mut tmp, format!("{id}\n").as_bytes()).ok()?;
        tmp.as_file().sync_all().ok()?;
        // Never over an id another process wrote first.
        tmp.persist_noclobber(&file).ok()
    });
    match written {
        Some(_) => id,
        None => read(&file).unwrap_or(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_repository_agrees() {
        let same = [
            "git@github.com:Me/Web.git",
            "ssh://git@github.com/me/web",
            "ssh://git@github.com:22/me/web.git",
            "git+ssh://github.com/me/web/",
            "https://github.com/me/web.git",
            "https://github.com/me/web",
            "https://user:token@GitHub.com/me/web.git/",
            "http://github.com//me/web",
            "github.com:me/web",
        ];
        let base = Path::new("/nonexistent/work/web");
        for u in same {
            assert_eq!(normalise_url(u, base), "github.com/me/web", "{u}");
        }
        for (u, want) in [
            ("/srv/git/web.git", "file:/srv/git/web"),
            ("file:///srv/git/web.git", "file:/srv/git/web"),
            ("../web.git", "file:/nonexistent/work/web/../web"),
            ("https://gitlab.com/group/sub/web.git", "gitlab.com/group/sub/web"),
        ] {
            assert_eq!(normalise_url(u, base), want, "{u}");
        }
        // An existing local remote, however it is reached, is one path.
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("web.git");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("link")).unwrap();
        let by_path = normalise_url(real.to_str().unwrap(), base);
        assert_eq!(normalise_url("../web.git", &tmp.path().join("a")), by_path);
        assert_eq!(normalise_url("../link/web", &tmp.path().join("a")), by_path);
        // Another owner, another host, a local path: three other projects.
        let ids: Vec<String> = [
            "git@github.com:me/web.git",
            "git@github.com:you/web.git",
            "git@gitlab.com:me/web.git",
            "/github.com/me/web",
        ]
        .iter()
        .map(|u| remote_id(&normalise_url(u, Path::new("/"))))
        .collect();
        for (i, a) in ids.iter().enumerate() {
            assert!(crate::device::is_valid(a), "{a}");
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn local_ids_are_kept_and_never_shared() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Repository::init(tmp.path().join("x/web")).unwrap();
        let b = Repository::init(tmp.path().join("y/web")).unwrap();
        let (na, nb) = (of(&a, None, None), of(&b, None, None));
        assert!(na.id.starts_with("local-"), "{na:?}");
        assert_ne!(na.id, nb.id, "two repositories of the same name");
        assert_eq!(of(&a, None, None), na, "kept");
        assert_eq!(na.previous, None);
    }
}
