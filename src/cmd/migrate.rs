//! `convosync migrate`: move the original plugin's appended handoff file onto the ref.
//!
//! Every handoff of the file becomes one commit (oldest first, dated with the handoff's own
//! timestamp) on a line of history of its own, which is then merged into the handoff ref: the
//! tree keeps each device's newest handoff and `convosync history` shows all of them.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use git2::Repository;

use super::CLI_LOCK_WAIT;
use crate::cli::MigrateArgs;
use crate::handoff::legacy::{self, Entry, LegacyFile};
use crate::handoff::Handoff;
use crate::repo::{Repo, LEGACY_PATH};
use crate::store::{self, commit_message, tip_of};

pub fn run(dir: &Path, args: MigrateArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let (path, text) = match args.file {
        Some(f) => {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("could not read {}", f.display()))?;
            (f, text)
        }
        None => {
            let workdir = repo.workdir().context("bare repository: pass --file")?;
            let path = workdir.join(LEGACY_PATH);
            let text = legacy::read_from(workdir)
                .with_context(|| format!("could not read {}", path.display()))?
                .with_context(|| format!("could not read {}: there is no such file", path.display()))?;
            (path, text)
        }
    };
    let file = legacy::parse_legacy(&text);
    let refname = &repo.settings.refname;
    let _lock = (!args.dry_run).then(|| repo.lock(CLI_LOCK_WAIT)).transpose()?;
    let pending = pending(&repo, &file, &args.devices)?;
    if pending.todo.is_empty() && pending.already == 0 {
        for s in &pending.skipped {
            eprintln!("convosync: skipped {}", crate::untrusted::line(s));
        }
        anyhow::bail!("{} holds no readable handoffs", path.display());
    }
    let verb = if args.dry_run { "would move" } else { "moved" };
    for h in &pending.todo {
        let when = crate::timefmt::rfc3339(h.timestamp);
        println!("{verb} the handoff from {} ({when})", h.device);
    }
    if !args.dry_run && !pending.todo.is_empty() {
        write(&repo.git, refname, &pending.todo)?;
    }
    // How many handoffs moved (or would), then each skipped entry.
    let devices: HashSet<&str> = pending.todo.iter().map(|h| h.device.as_str()).collect();
    let already = match pending.already {
        0 => String::new(),
        n => format!(" ({n} already there)"),
    };
    println!(
        "{verb} {} handoff(s) from {} device(s) into the history of {refname}; skipped {}{already}",
        pending.todo.len(),
        devices.len(),
        pending.skipped.len(),
    );
    for s in &pending.skipped {
        println!("  skipped {}", crate::untrusted::line(s));
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    // Whether to sync, and whether the legacy file can go.
    if !pending.todo.is_empty() && repo.remote_name().is_some() {
        println!("Run `convosync sync` to share them.");
    }
    let path = path.display();
    if pending.skipped.is_empty() {
        println!("Every entry is on the ref now; {path} can be removed from your branch once every device has upgraded.");
    } else {
        println!("Keep {path}: the skipped entries exist only there.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The legacy file's handoffs to migrate, and what is left out.
struct Pending {
    /// Redacted, oldest first.
    todo: Vec<Handoff>,
    /// Entries already in the ref's history (an earlier migrate).
    already: usize,
    /// Why each unreadable entry was skipped.
    skipped: Vec<String>,
}

/// Sort the legacy `file`'s entries into those to write (redacted) and those that are already on
/// the ref's history or cannot be read; a renamed device is said as it is met.
/// `vouched`: devices whose entries the user names as their own (`--device`), whatever their
/// author line says.
fn pending(repo: &Repo, file: &LegacyFile, vouched: &[String]) -> Result<Pending> {
    let mut skipped: Vec<String> = file.skipped.clone();
    // Entries already in the ref's history (an earlier migrate) are not written twice.
    let known: HashSet<(String, i64)> =
        super::told(crate::history::versions(&repo.git, &repo.settings.refname)?)
            .into_iter()
            .map(|v| (v.device, v.handoff.timestamp.timestamp()))
            .collect();
    let who = crate::team::Me::load(repo);
    let mut todo: Vec<Handoff> = Vec::new();
    let mut already = 0;
    for e in legacy::entries_oldest_first(file) {
        match e {
            Entry::Skipped(why) => skipped.push(why),
            Entry::Ready {
                handoff,
                renamed_from,
            } => {
                // The file is the repository's content: an entry goes onto the ref only when
                // the one ownership rule says it is the user's own, as for notes on the ref.
                // The legacy file proves nothing: its author line decides (on a device with a
                // key, an entry labelled as the user's is migrated, plain, and stays unproven).
                let vouched = vouched
                    .iter()
                    .any(|d| crate::device::sanitize(d).as_deref() == Some(&handoff.device));
                if !vouched && who.whose(handoff.author.as_deref(), false) == crate::team::Whose::Theirs {
                    let (d, when) = (&handoff.device, crate::timefmt::rfc3339(handoff.timestamp));
                    skipped.push(format!(
                        "the handoff from {d} ({when}): written by {}, not by you (`convosync status` shows who counts as you; `--device {d}` moves it if it is yours)",
                        crate::team::teammate_name(&handoff),
                    ));
                    continue;
                }
                if known.contains(&(handoff.device.clone(), handoff.timestamp.timestamp())) {
                    already += 1;
                    continue;
                }
                if let Some(old) = renamed_from {
                    println!(
                        "device name {:?} becomes {} (lowercase letters, digits and dashes)",
                        old, handoff.device
                    );
                }
                let (handoff, _) = crate::draft::redact_handoff(repo, *handoff)?;
                todo.push(handoff);
            }
        }
    }
    Ok(Pending {
        todo,
        already,
        skipped,
    })
}

/// Commit `handoffs` (oldest first) one by one on a new line of history, then merge that line
/// into `refname` (the newest handoff of each device wins in the tree).
fn write(repo: &Repository, refname: &str, handoffs: &[Handoff]) -> Result<()> {
    let mut files = store::Files::new();
    let mut parent: Option<git2::Commit<'_>> = None;
    for h in handoffs {
        let failed = |what: &str| format!("could not write {what}the note of {} for {refname}", h.device);
        // Migrated notes stay as they were: plain. They are already plain on the branch that
        // carries the file, and anyone could have written them there, so sealing them with this
        // person's key would make them pass for notes proven to be theirs.
        let content = crate::handoff::format::render(h).into_bytes();
        let blob = repo.blob(&content).with_context(|| failed(""))?;
        files.insert(h.device.clone(), blob);
        let tree = store::write_ref_tree(repo, &files, &store::Files::new())
            .with_context(|| failed("a tree with "))?;
        let sig = store::signature(repo, h.timestamp)?;
        let msg = format!("migrate: {}", commit_message(h));
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = repo
            .commit(None, &sig, &sig, &msg, &tree, &parents)
            .and_then(|id| repo.find_commit(id))
            .with_context(|| failed("a commit with "))?;
        parent = Some(id);
    }
    let Some(line) = parent.map(|c| c.id()) else {
        return Ok(());
    };
    let mut skipped = crate::untrusted::Skipped::default();
    store::retry_cas(repo, refname, "migrate handoffs", || {
        let tip = tip_of(repo, refname)?;
        let to = match &tip {
            None => line,
            Some(t) => store::merge_commit(
                repo,
                t.id(),
                line,
                "migrate: merge the original plugin's handoffs\n",
                &mut skipped,
            )
            .with_context(|| format!("could not merge the migrated handoffs into {refname}"))?,
        };
        Ok(store::Cas::Move {
            from: tip.map(|t| t.id()),
            to,
        })
    })?;
    if let Some(w) = skipped.warning() {
        eprintln!("{w}");
    }
    Ok(())
}
