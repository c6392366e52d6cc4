//! The draft → handoff path: what Claude wrote into `.convosync/session-handoff-draft.md`
//! becomes a committed handoff on the ref, with metadata filled in by convosync.
//!
//! Crash safety: the draft is deleted only after the ref points at a commit containing it. A
//! process killed at any point leaves either the draft or the committed handoff (or both: then
//! the next run sees the draft is already on the ref and only deletes it).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use git2::Oid;

use crate::handoff::template::Template;
use crate::handoff::{format, Handoff, Section};
use crate::redact::Redactor;
use crate::repo::Repo;
use crate::store::{commit_message, Store};
use crate::transcript::Summary;

/// Drafts larger than this are refused (a handoff is a short note).
pub const MAX_DRAFT_BYTES: u64 = 512 * 1024;

#[derive(Debug)]
pub enum Outcome {
    /// There is no draft.
    NoDraft,
    /// The draft is now on the ref (and deleted).
    Committed {
        handoff: Handoff,
        commit: Oid,
        redacted: usize,
    },
    /// An identical handoff was already on the ref (a previous run died before deleting the
    /// draft); the draft was deleted.
    AlreadyCommitted { handoff: Handoff },
}

/// The template in force for this repository.
pub fn template(repo: &Repo) -> Result<Template> {
    Template::load(repo.workdir(), crate::device::config_dir().as_deref())
}

/// What identifies one version of the draft file: a rewrite in place or a new file renamed over
/// it changes at least one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(m: &std::fs::Metadata) -> Version {
        use std::os::unix::fs::MetadataExt;
        Version {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The draft's bytes and the version they were read from, after the checks (no symlinks, a
/// regular file, not too large). The file is opened without following a symlink and without
/// blocking, and the version is taken from the open file.
fn read_draft(path: &Path) -> Result<(Vec<u8>, Version)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "{} is a symlink; refusing to read a draft through it",
                dir.display()
            );
        }
    }
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("could not read {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file; refusing to read it", path.display());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("could not read {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file; refusing to read it", path.display());
    }
    if meta.len() > MAX_DRAFT_BYTES {
        bail!(
            "{} is {} KB; a handoff should be a short note (at most {} KB)",
            path.display(),
            meta.len() / 1024,
            MAX_DRAFT_BYTES / 1024
        );
    }
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_DRAFT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read {}", path.display()))?;
    let after = file
        .metadata()
        .with_context(|| format!("could not read {}", path.display()))?;
    if bytes.len() as u64 != after.len() || Version::of(&meta) != Version::of(&after) {
        bail!("{} changed while it was read; try again", path.display());
    }
    Ok((bytes, Version::of(&after)))
}

/// Validate the draft's bytes into sections, redacted.
fn parse_sections(repo: &Repo, path: &Path, bytes: Vec<u8>) -> Result<Vec<Section>> {
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let template = template(repo)?;
    if is_blank(&text, &template) {
        bail!(
            "the draft {} is empty: write the handoff under its headings (`convosync generate-handoff` shows them), or delete the file",
            path.display()
        );
    }
    let sections = format::parse_draft(&text)
        .with_context(|| format!("the draft {} is not a handoff", path.display()))?;
    template.validate(&sections).map_err(|problems| {
        anyhow::anyhow!(
            "the draft {} is incomplete: {}",
            path.display(),
            problems.join("; ")
        )
    })
}

/// Whether a draft says nothing: only blank lines, headings, comments and the template's own
/// hints (a template copied but not filled in).
fn is_blank(text: &str, template: &Template) -> bool {
    text.lines().map(str::trim).all(|l| {
        l.is_empty()
            || (l.starts_with('#') && {
                let rest = l.trim_start_matches('#');
                rest.is_empty() || rest.starts_with(' ')
            })
            || (l.starts_with("<!--") && l.ends_with("-->"))
            || template.sections.iter().any(|s| s.hint.trim() == l)
    })
}

/// The redactor configured for this repository, or `None` under `convosync.redact=false`.
fn redactor(repo: &Repo) -> Result<Option<Redactor>> {
    if !repo.settings.redact {
        return Ok(None);
    }
    Redactor::new(&repo.settings.redact_patterns, &repo.settings.redact_allow)
        .context("invalid convosync.redactPattern or convosync.redactAllow")
        .map(Some)
}

/// The one gate between a handoff and the ref: secrets are redacted from everything that is
/// written there (section titles and bodies, the HEAD commit's subject, the branch name; the
/// commit message of the ref is made from these). Every writer (a draft, auto mode, `migrate`,
/// `devices rename`) passes through it. Returns the handoff and how many secrets were found.
pub fn redact_handoff(repo: &Repo, mut h: Handoff) -> Result<(Handoff, usize)> {
    let Some(r) = redactor(repo)? else {
        return Ok((h, 0));
    };
    let mut count = 0;
    let mut clean = |text: &mut String| {
        let out = r.redact(text);
        count += out.findings.len();
        *text = out.text;
    };
    for s in &mut h.sections {
        clean(&mut s.title);
        clean(&mut s.body);
    }
    if let Some(c) = &mut h.commit {
        clean(&mut c.subject);
    }
    if let Some(b) = &mut h.branch {
        clean(b);
    }
    Ok((h, count))
}

/// An auto-mode summary with secrets redacted from the whole text, before it is cut to section
/// length (a secret cut in half would no longer be recognised). Under an invalid user pattern the
/// built-in rules still apply (writing the handoff then fails on the configuration).
pub fn redact_summary(repo: &Repo, summary: &Summary) -> Summary {
    if !repo.settings.redact {
        return summary.clone();
    }
    match redactor(repo) {
        Ok(Some(r)) => summary.map_text(|t| r.redact(t).text),
        _ => summary.map_text(|t| crate::redact::redact_default(t).text),
    }
}

/// A handoff for this device and HEAD, now, with the given sections, redacted (see
/// `redact_handoff`). Returns it with the number of secrets redacted.
/// Who writes a handoff: the agent's session and the agent itself (`Codex 0.169.0`), when known.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub session: Option<String>,
    pub agent: Option<String>,
}

impl Origin {
    /// A command run by hand or by the agent's shell: the session given, the agent told from
    /// the environment its shell tool sets.
    pub fn of_command(session: Option<&str>) -> Origin {
        let agent = crate::agent::Agent::from_tool_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Origin {
            session: session.map(str::to_string),
            agent: agent.map(|a| a.name().to_string()),
        }
    }
}

pub fn build(repo: &Repo, sections: Vec<Section>, origin: &Origin) -> Result<(Handoff, usize)> {
    let (commit, branch) = repo.head_info();
    let me = crate::team::Me::load(repo);
    let author = me.author_line();
    let device = crate::team::my_device_as(repo, &me)?;
    redact_handoff(
        repo,
        Handoff {
            device,
            timestamp: crate::timefmt::now(),
            commit,
            branch,
            session: origin.session.clone().filter(|s| !s.is_empty()),
            author,
            agent: origin.agent.clone().filter(|s| !s.is_empty()),
            sections,
        },
    )
}

/// The request for a draft, shared by `generate-handoff`, `save` and the Stop hook.
pub fn instructions(template: &Template, path: &Path) -> String {
    let mut out = String::new();
    if template.instructions.trim().is_empty() {
        out.push_str(
            "Write a short handoff note for the next session on another machine: what you were \
             doing, what is done, what was decided and why, what the user told you about their \
             preferences or constraints, and what comes next. Be concise (bullets, under 300 words). \
             Do not include secrets, tokens or passwords.\n",
        );
    } else {
        out.push_str(template.instructions.trim());
        out.push('\n');
    }
    out.push_str(&format!(
        "\nWrite it to {} with these sections (metadata such as time, commit and branch is added automatically):\n\n",
        path.display()
    ));
    out.push_str(&template.skeleton());
    out
}

/// Commit the draft of this worktree, if there is one.
///
/// The draft is read, committed and removed under the repository lock, and removed only if it is
/// still the very version that was committed: a draft written while this ran (Claude writing
/// again, a second session) is kept for the next run.
pub fn commit(repo: &Repo, origin: &Origin, lock_wait: Duration) -> Result<Outcome> {
    let path = repo.draft_path()?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(Outcome::NoDraft);
    }
    let store = Store::new(&repo.git, &repo.settings.refname);
    let _lock = repo.lock(lock_wait)?;
    crate::fsutil::failpoint("locked");
    let (bytes, version) = match read_draft(&path) {
        Err(_) if std::fs::symlink_metadata(&path).is_err() => return Ok(Outcome::NoDraft),
        r => r?,
    };
    let sections = parse_sections(repo, &path, bytes.clone())?;
    let (handoff, redacted) = build(repo, sections, origin)?;
    if let Some(current) = store.get(&handoff.device)? {
        if current.sections == handoff.sections {
            remove_draft(&path, &bytes, &version)?;
            return Ok(Outcome::AlreadyCommitted { handoff: current });
        }
    }
    let commit = store.put(&handoff, &commit_message(&handoff))?;
    crate::fsutil::failpoint("committed");
    remove_draft(&path, &bytes, &version)?;
    Ok(Outcome::Committed {
        handoff,
        commit,
        redacted,
    })
}

/// Remove the draft if it is still the version (and the bytes) that was committed; a changed
/// draft is left in place for the next run.
fn remove_draft(path: &Path, committed: &[u8], version: &Version) -> Result<()> {
    let same = match read_draft(path) {
        Ok((bytes, v)) => bytes == committed && v == *version,
        Err(_) => false,
    };
    if !same {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "the handoff is committed but {} could not be deleted",
                path.display()
            )
        }),
    }
}
