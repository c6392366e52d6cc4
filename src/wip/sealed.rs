//! Encrypted snapshots of uncommitted work.
//!
//! When this device has a key (see [`crate::crypt`]), in every repository, a snapshot is sealed
//! before it is committed: the commit's tree holds two encrypted files (COSE_Encrypt0 messages),
//! `meta.age` (the branch and the changed paths, small, so listing snapshots decrypts little) and
//! `snapshot.age` (every changed path with its mode and content, and every deleted path, against
//! the base). The names are those of earlier versions, whose files were age's; such a snapshot is
//! reported as unreadable until its device takes a new one. The commit message carries only the device, the base commit and
//! `Convosync-Encrypted: yes`. A device with the key [`open`]s a snapshot by decrypting it into
//! the local object database as the very tree the snapshot was made of (base tree plus changes),
//! never referenced by a ref nor pushed, so the checks, `show`, `diff` and `apply` run on it
//! unchanged.
//!
//! Each file is refused above [`crypt::MAX_CIPHERTEXT`] bytes, checked from the object header
//! before it is read, and `meta.age` is decrypted at most once per process.
//!
//! `snapshot.age` decrypts to `convosync-wip-1\n` followed by records: a kind byte (`P` put, `D`
//! delete), the git mode (u32), the path length (u32) and path, the data length (u64) and data,
//! all big-endian. A submodule entry's data is its commit id (20 bytes).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use git2::{Commit, Delta, FileMode, Index, Oid, Repository, Tree};
use serde::Deserialize;

use super::commit::{base_tree, diff, entry, Sealed, Snapshot};
use super::mode::Mode;
use crate::crypt::{self, Key, OpenError, Purpose};
use crate::repo::Repo;
use crate::untrusted::{self, Object, Skipped};

/// The tree entry with the snapshot's branch and file list.
pub const META: &str = "meta.age";
/// The tree entry with the snapshot's changes.
pub const DATA: &str = "snapshot.age";
const MAGIC: &[u8] = b"convosync-wip-1\n";

/// What [`META`] holds (written by [`seal`] in this shape).
#[derive(Deserialize)]
struct Meta {
    branch: Option<String>,
    files: Vec<String>,
}

/// The commit message of a sealed snapshot: nothing from the worktree. An empty snapshot (the
/// worktree is clean again) says so, so keyless devices are not offered it.
pub fn message(device: &str, base: Option<Oid>, empty: bool) -> String {
    let mut msg = format!(
        "wip from {device} (encrypted)\n\nConvosync-Device: {device}\nConvosync-Base: {}\nConvosync-Encrypted: yes\n",
        base.map(|b| b.to_string()).unwrap_or_else(|| "none".into()),
    );
    if empty {
        msg.push_str("Convosync-Files: 0\n");
    }
    msg
}

/// Whether the commit is a sealed snapshot.
pub fn is_sealed(c: &Commit<'_>) -> bool {
    let msg = c.message().unwrap_or_default();
    msg.lines().any(|l| l.trim() == "Convosync-Encrypted: yes")
}

/// The serialised changes from `base` to `tree`.
fn payload(git: &Repository, base: &Tree<'_>, tree: &Tree<'_>) -> Result<Vec<u8>> {
    let diff = diff(git, base, tree, true)?;
    let mut out = MAGIC.to_vec();
    let mut record = |kind: u8, mode: u32, path: &[u8], data: &[u8]| {
        out.push(kind);
        out.extend_from_slice(&mode.to_be_bytes());
        out.extend_from_slice(&(path.len() as u32).to_be_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(data);
    };
    for d in diff.deltas() {
        if d.status() == Delta::Deleted {
            let path = d
                .old_file()
                .path_bytes()
                .context("a deleted path without a name")?;
            record(b'D', 0, path, &[]);
            continue;
        }
        let (new, blob);
        new = d.new_file();
        let (id, path) = (
            new.id(),
            new.path_bytes().context("a changed path without a name")?,
        );
        let data = if super::mode::is(new.mode(), Mode::Submodule) {
            id.as_bytes()
        } else {
            let shown = String::from_utf8_lossy(path);
            blob = git
                .find_blob(id)
                .with_context(|| format!("could not read blob {id} of {shown}"))?;
            blob.content()
        };
        // The mode as git has it: the record carries git's raw mode.
        record(b'P', u32::from(new.mode()), path, data);
    }
    Ok(out)
}

/// One record of a payload.
struct Record<'a> {
    put: bool,
    /// git's raw mode, as the payload carries it (see [`super::mode`]).
    mode: u32,
    path: &'a [u8],
    data: &'a [u8],
}

fn parse(bytes: &[u8]) -> Result<Vec<Record<'_>>> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        let (head, tail) = rest.split_at_checked(n).context("the snapshot is cut short")?;
        *rest = tail;
        Ok(head)
    }
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .context("not a convosync snapshot (unknown format)")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let kind = take(&mut rest, 1)?[0];
        let mode = u32::from_be_bytes(take(&mut rest, 4)?.try_into()?);
        let plen = u32::from_be_bytes(take(&mut rest, 4)?.try_into()?) as usize;
        let path = take(&mut rest, plen)?;
        let dlen = u64::from_be_bytes(take(&mut rest, 8)?.try_into()?);
        let data = take(&mut rest, usize::try_from(dlen)?)?;
        if kind != b'P' && kind != b'D' {
            bail!("the snapshot holds an unknown record");
        }
        let put = kind == b'P';
        out.push(Record {
            put,
            mode,
            path,
            data,
        });
    }
    Ok(out)
}

/// Seal the snapshot `tree` (made against `base`): the tree to commit in its place, holding
/// only the two age files, or `Err(bytes)` when the changes exceed `limit`.
pub fn seal(
    repo: &Repo,
    key: &Key,
    base: &Tree<'_>,
    tree: &Tree<'_>,
    branch: Option<&str>,
    files: &[String],
    limit: u64,
) -> Result<std::result::Result<Oid, u64>> {
    let data = payload(&repo.git, base, tree)?;
    if data.len() as u64 > limit {
        return Ok(Err(data.len() as u64));
    }
    let meta = serde_json::to_vec(&serde_json::json!({ "branch": branch, "files": files }))?;
    let mut tb = repo.git.treebuilder(None).context("could not start a tree")?;
    for (name, plain) in [(META, &meta), (DATA, &data)] {
        let blob = repo
            .git
            .blob(&key.encrypt(Purpose::Snapshot, plain)?)
            .with_context(|| format!("could not write the sealed {name}"))?;
        tb.insert(name, blob, FileMode::Blob.into())
            .with_context(|| format!("could not add the sealed {name} ({blob}) to a tree"))?;
    }
    Ok(Ok(tb
        .write()
        .context("could not write the sealed snapshot's tree")?))
}

/// The decrypted `name` ([`META`] or [`DATA`]) of `device`'s sealed snapshot `c`, read through
/// the one door ([`crate::untrusted::blob`]) with the cap of its kind: a blob over it is never
/// inflated.
fn age_blob(
    git: &Repository,
    device: &str,
    c: &Commit<'_>,
    name: &str,
    skipped: &mut Skipped,
) -> Result<Vec<u8>> {
    let at = format_args!("{name} of {device}'s snapshot {}", c.id());
    let mut refused = |e: untrusted::Refused| {
        skipped.refused(&at, &e);
        anyhow!("{e}")
    };
    let tree = untrusted::tree(git, c.tree_id()).map_err(&mut refused)?;
    let entry = tree
        .get_name(name)
        .with_context(|| format!("the encrypted snapshot has no {name}"))?;
    let what = if name == DATA {
        Object::WipFile
    } else {
        Object::WipMeta
    };
    let blob = untrusted::blob(git, entry.id(), what).map_err(&mut refused)?;
    if !crypt::is_encrypted(blob.content()) {
        bail!("{name} is not encrypted");
    }
    // The data is large and read once per snapshot (the tree it opens to is remembered): not kept.
    let id = (name != DATA).then(|| entry.id());
    Ok(crypt::open(id, Purpose::Snapshot, blob.content())?
        .text
        .into_owned())
}

/// A snapshot read from its commit, with a sealed one's branch and files decrypted when this
/// device can; a file list refused for its size is recorded in `skipped`.
pub fn read(repo: &Repo, device: &str, c: &Commit<'_>, skipped: &mut Skipped) -> Snapshot {
    let mut snap = super::commit::read(device, c);
    if !is_sealed(c) {
        return snap;
    }
    let msg = c.message().unwrap_or_default();
    if msg.lines().any(|l| l.trim() == "Convosync-Files: 0") {
        // A clean worktree: nothing to read, nothing to offer.
        snap.sealed = Sealed::Open;
        return snap;
    }
    let meta = age_blob(&repo.git, device, c, META, skipped)
        .and_then(|m| serde_json::from_slice::<Meta>(&m).map_err(|e| anyhow!("encrypted note ({e})")));
    snap.sealed = match meta {
        Ok(meta) => {
            snap.recorded(meta.branch.as_deref(), meta.files.iter().map(String::as_str));
            Sealed::Open
        }
        Err(e) => Sealed::Locked(match e.downcast_ref::<OpenError>() {
            Some(OpenError::NoKey) => format!(
                "{device}'s snapshot is encrypted and this device has no key: {}",
                crypt::KEY_HINT
            ),
            Some(OpenError::OtherKey) => format!("{device}'s snapshot is encrypted to another person's key"),
            _ => format!("{device}'s snapshot could not be read: {e}"),
        }),
    };
    snap
}

/// Where the tree a sealed snapshot opened to is remembered: `<state>/wip-open/<commit>`.
fn cache_path(repo: &Repo, commit: Oid) -> std::path::PathBuf {
    repo.state_dir().join("wip-open").join(commit.to_string())
}

/// Remember that the sealed snapshot `commit` opens to `tree` (written by this device).
pub fn remember(repo: &Repo, commit: Oid, tree: Oid) {
    let _ = crate::fsutil::replace_file(&cache_path(repo, commit), format!("{tree}\n").as_bytes());
}

/// The tree the snapshot is made of: its commit's tree when plain; when sealed, its changes
/// decrypted and applied to its base tree in the local object database (remembered per commit,
/// so each snapshot is decrypted once). Nothing written here is ever referenced by a ref.
pub fn tree_id(repo: &Repo, snap: &Snapshot) -> Result<Oid> {
    let (id, device) = (snap.commit, &snap.device);
    let c = repo
        .git
        .find_commit(id)
        .with_context(|| format!("could not read commit {id} of {device}'s snapshot"))?;
    if !is_sealed(&c) {
        return Ok(c.tree_id());
    }
    if let Some(reason) = snap.locked() {
        bail!("{reason}");
    }
    let cached = std::fs::read_to_string(cache_path(repo, snap.commit))
        .ok()
        .and_then(|s| Oid::from_str(s.trim()).ok())
        .filter(|t| repo.git.find_tree(*t).is_ok());
    if let Some(t) = cached {
        return Ok(t);
    }
    let base = base_tree(repo, snap)?;
    let tree =
        open(repo, &snap.device, &c, &base).map_err(|e| anyhow!("{}'s snapshot: {e:#}", snap.device))?;
    remember(repo, snap.commit, tree);
    Ok(tree)
}

/// Decrypt the sealed snapshot `c` and apply its records to `base`: the resulting tree's id.
fn open(repo: &Repo, device: &str, c: &Commit<'_>, base: &Tree<'_>) -> Result<Oid> {
    // Refused, it fails with the reason: nothing to tell besides.
    let bytes = age_blob(&repo.git, device, c, DATA, &mut Skipped::default())?;
    let mut records = parse(&bytes)?;
    // Deletions first, so a file that becomes a directory (or the reverse) never meets its old self.
    records.sort_by_key(|r| r.put);
    let mut index = Index::new()?;
    index
        .read_tree(base)
        .with_context(|| format!("could not read base tree {}", base.id()))?;
    for r in records {
        let path = std::str::from_utf8(r.path).context("a path that is not UTF-8")?;
        if !r.put {
            index
                .remove_path(Path::new(path))
                .with_context(|| format!("could not leave out {path}"))?;
            continue;
        }
        let submodule = Mode::from_raw(r.mode).is_ok_and(|m| m == Mode::Submodule);
        let id = if submodule {
            Oid::from_bytes(r.data)?
        } else {
            repo.git
                .blob(r.data)
                .with_context(|| format!("could not store {path}"))?
        };
        let size = if submodule { 0 } else { r.data.len() as u32 };
        index
            .add(&entry(path, id, r.mode, size))
            .with_context(|| format!("refused: the snapshot holds an invalid entry {path:?}"))?;
    }
    index
        .write_tree_to(&repo.git)
        .with_context(|| format!("could not write the tree of snapshot {}", c.id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_cut_short() {
        let mut out = MAGIC.to_vec();
        for (k, m, p, d) in [
            (b'P', 0o100644u32, &b"a/b.txt"[..], &b"hello"[..]),
            (b'D', 0, b"gone", b""),
        ] {
            out.push(k);
            out.extend_from_slice(&m.to_be_bytes());
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(&(d.len() as u64).to_be_bytes());
            out.extend_from_slice(d);
        }
        let r = parse(&out).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].put && r[0].path == b"a/b.txt" && r[0].data == b"hello" && r[0].mode == 0o100644);
        assert!(!r[1].put && r[1].path == b"gone");
        assert!(parse(&out[..out.len() - 3]).is_err());
        assert!(parse(b"nope").is_err());
    }
}
