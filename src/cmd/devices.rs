//! `convosync devices [rename OLD NEW | forget NAME]`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use super::CLI_LOCK_WAIT;
use crate::cli::DevicesAction;
use crate::repo::Repo;
use crate::store::Store;
use crate::timefmt::ago;

pub fn run(dir: &Path, action: Option<DevicesAction>, json: bool) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let store = Store::new(&repo.git, &repo.settings.refname);
    match action {
        Some(DevicesAction::Rename { old, new }) => {
            let new = crate::device::validate(&new)?;
            let _lock = repo.lock(CLI_LOCK_WAIT)?;
            let Some(mut h) = store.get(&old)? else {
                bail!("no device named {old} on {}", repo.settings.refname)
            };
            if store.get(&new)?.is_some() {
                bail!("{new} already has a handoff; forget it first or pick another name");
            }
            h.device = new.clone();
            // Re-rendered under the new name: redacted like any handoff written to the ref.
            let (h, _) = crate::draft::redact_handoff(&repo, h)?;
            store.rename(&old, &h, &format!("rename device {old} to {new}"))?;
            println!("renamed {old} to {new}; run `convosync sync` to share it");
            if crate::device::current().is_ok_and(|me| me == old) {
                println!("this machine is {old}: run `convosync device set {new}` to keep writing as {new}");
            }
        }
        Some(DevicesAction::Forget { name }) => {
            let _lock = repo.lock(CLI_LOCK_WAIT)?;
            if store.get(&name)?.is_none() {
                bail!("no device named {name} on {}", repo.settings.refname);
            }
            store.remove(&name, &format!("forget device {name}"))?;
            println!("forgot {name} (its handoffs stay in history); run `convosync sync` to share it");
        }
        None => return list(&repo, &store, json),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(repo: &Repo, store: &Store<'_>, json_out: bool) -> Result<ExitCode> {
    let who = crate::team::Me::load(repo);
    let me = crate::team::my_device_as(repo, &who)?;
    let mut versions = crate::history::versions(&repo.git, &repo.settings.refname)?;
    let current = store.entries()?;
    versions.warnings.extend(current.warnings);
    let versions = super::told(versions);
    let current: Vec<String> = current.items.into_iter().map(|e| e.device).collect();
    // Newest first, so the first version seen per device is its latest.
    let mut devices: BTreeMap<&str, (usize, &crate::history::Version)> = BTreeMap::new();
    for v in &versions {
        devices
            .entry(v.device.as_str())
            .and_modify(|e| e.0 += 1)
            .or_insert((1, v));
    }
    let mut rows: Vec<_> = devices
        .into_iter()
        .map(|(d, (n, v))| {
            // Whose each device's latest note is: proven by this device's key (its blob
            // decrypted with it), else by its author line when this device has no key.
            let proven = crate::store::read_note(&repo.git, v.blob).is_ok_and(|(_, p)| p);
            Row {
                device: d,
                handoffs: n,
                latest: v,
                mine: who.owns(v.handoff.author.as_deref(), proven),
                forgotten: !current.iter().any(|c| c == d),
            }
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.latest.handoff.timestamp));
    if json_out {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                let (d, v) = (r.device, r.latest);
                json!({
                    "device": d,
                    "last_seen": crate::timefmt::rfc3339(v.handoff.timestamp),
                    "branch": v.handoff.branch,
                    "commit": v.handoff.commit.as_ref().map(|c| c.sha.clone()),
                    "author": v.handoff.author,
                    "handoffs": r.handoffs,
                    "this_machine": d == me,
                    "mine": r.mine,
                    "forgotten": r.forgotten,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No device has written a handoff yet.");
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::timefmt::now();
    let mut out = super::header(&format!(
        "{:<20} {:<16} {:<20} {:<9} {}",
        "DEVICE", "LAST SEEN", "BRANCH", "COMMIT", "HANDOFFS"
    ));
    for Row {
        device: d,
        handoffs: n,
        latest: v,
        mine,
        forgotten,
    } in rows
    {
        let teammate = format!("teammate: {}", crate::team::teammate_name(&v.handoff));
        let tags: Vec<&str> = [
            (d == me, "this machine"),
            (!mine, &teammate),
            (forgotten, "forgotten"),
        ]
        .into_iter()
        .filter_map(|(on, tag)| on.then_some(tag))
        .collect();
        out.push_str(&format!(
            "{:<20} {:<16} {:<20} {:<9} {:>3} handoff{}{}\n",
            d,
            ago(v.handoff.timestamp, now),
            v.handoff.branch.as_deref().unwrap_or("(detached)"),
            v.handoff.commit.as_ref().map(|c| c.short()).unwrap_or("-"),
            n,
            if n == 1 { " " } else { "s" },
            if tags.is_empty() {
                String::new()
            } else {
                format!("  ({})", tags.join(", "))
            }
        ));
    }
    crate::term::page(&out);
    Ok(ExitCode::SUCCESS)
}

/// One device of the listing: its number of handoffs and its latest, whether that note is the
/// user's own, and whether its note is gone from the ref (`forgotten`).
struct Row<'a> {
    device: &'a str,
    handoffs: usize,
    latest: &'a crate::history::Version,
    mine: bool,
    forgotten: bool,
}
