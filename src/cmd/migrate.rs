//! `convosync migrate`: move the original plugin's appended handoff file onto the ref.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::CLI_LOCK_WAIT;
use crate::cli::MigrateArgs;
use crate::handoff::legacy;
use crate::repo::{Repo, LEGACY_PATH};
use crate::store::{commit_message, Store};

pub fn run(dir: &Path, args: MigrateArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let path = match args.file {
        Some(f) => f,
        None => repo
            .workdir()
            .context("bare repository: pass --file")?
            .join(LEGACY_PATH),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
    let file = legacy::parse_legacy(&text);
    for s in &file.skipped {
        eprintln!("convosync: skipped an entry of {}: {s}", path.display());
    }
    let newest = legacy::newest_per_device(&file);
    if newest.is_empty() {
        anyhow::bail!("{} holds no readable handoffs", path.display());
    }
    let store = Store::new(&repo.git, &repo.settings.refname);
    let _lock = (!args.dry_run).then(|| repo.lock(CLI_LOCK_WAIT)).transpose()?;
    let mut moved = 0;
    for h in newest {
        let Some(device) = crate::device::sanitize(&h.device) else {
            eprintln!(
                "convosync: skipped a handoff from {:?}: not a usable device name",
                h.device
            );
            continue;
        };
        let (h, _) = crate::draft::redact_handoff(&repo, crate::handoff::Handoff { device, ..h })?;
        match store.get(&h.device)? {
            Some(cur) if cur.timestamp >= h.timestamp => {
                println!("{}: the ref already has a newer handoff; kept it", h.device);
                continue;
            }
            _ => {}
        }
        if args.dry_run {
            println!(
                "would move the handoff from {} ({})",
                h.device,
                crate::timefmt::rfc3339(h.timestamp)
            );
        } else {
            store.put(&h, &format!("migrate: {}", commit_message(&h)))?;
            println!(
                "moved the handoff from {} ({})",
                h.device,
                crate::timefmt::rfc3339(h.timestamp)
            );
        }
        moved += 1;
    }
    if !args.dry_run && moved > 0 {
        println!(
            "{moved} handoff(s) now on {}; run `convosync sync` to share them. {} can be removed from your branch when every device has upgraded.",
            repo.settings.refname,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
