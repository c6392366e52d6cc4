//! The history of handoffs: every version of every device file, read from the handoff ref's log.
//!
//! Each non-merge commit on the ref changes one or a few `devices/<id>.md` files; merges only
//! bring together versions that their own commits already recorded, so they are skipped. Only the
//! `devices` subtree of each commit and its first parent are compared, so walking 10,000 commits
//! stays cheap. What the walk finds is kept in a cache keyed by the ref's tip ([`cache`]), so
//! only the commits added since the last listing are walked.

mod cache;
pub use cache::versions;

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use git2::{Oid, Repository, Sort, Tree};

use crate::handoff::Handoff;
use crate::store::{read_note, subtree, NoteError, Warnings, DEVICES_DIR};

/// One saved version of a device's handoff.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Version {
    /// The commit on the handoff ref that wrote it.
    #[serde(with = "oid_hex")]
    pub commit: Oid,
    pub device: String,
    #[serde(with = "oid_hex")]
    pub blob: Oid,
    /// Its `device` is the file name on the ref.
    pub handoff: Handoff,
    /// The device named in the file's header when it differs from the file name.
    pub claimed: Option<String>,
}

impl Version {
    /// The version's commit as people read it ([`crate::refs::short_id`]).
    pub fn short_id(&self) -> String {
        crate::refs::short_id(&self.commit.to_string()).to_string()
    }
}

/// Which versions to keep.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub device: Option<String>,
    pub branch: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn accepts(&self, v: &Version) -> bool {
        self.device.as_deref().is_none_or(|d| v.device == d)
            && self
                .branch
                .as_deref()
                .is_none_or(|b| v.handoff.branch.as_deref() == Some(b))
            && self.since.is_none_or(|s| v.handoff.timestamp >= s)
    }
}

/// The versions written by the commits reachable from `tip` but not from `known` (all of them
/// without it), in no particular order, each blob once (the newest commit that wrote it). What it
/// skips and cannot decrypt goes to `warnings`.
fn walk(
    repo: &Repository,
    refname: &str,
    tip: Oid,
    known: Option<Oid>,
    warnings: &mut Warnings,
) -> Result<Vec<Version>> {
    // Re-hashing every object read costs a fifth of a 10,000-commit walk; this is a read-only
    // listing and every blob is still parsed, so corruption shows as a skipped version.
    git2::opts::strict_hash_verification(false);
    // Every object is read once; libgit2's object cache would only grow.
    git2::opts::enable_caching(false);
    let mut walk = repo
        .revwalk()
        .and_then(|mut w| w.set_sorting(Sort::TOPOLOGICAL | Sort::TIME).map(|()| w))
        .with_context(|| format!("could not walk the history of {refname}"))?;
    walk.push(tip)
        .with_context(|| format!("could not walk the history of {refname} from {tip}"))?;
    if let Some(k) = known {
        walk.hide(k)
            .with_context(|| format!("could not walk the history of {refname} past {k}"))?;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // The walk goes from child to parent, so a commit's "before" is usually the next commit's
    // "now": carry it over instead of reading the same trees twice.
    let mut carried: Option<(Oid, Option<Tree<'_>>)> = None;
    for id in walk {
        let id = id.with_context(|| format!("could not walk the history of {refname} from {tip}"))?;
        let commit = repo
            .find_commit(id)
            .with_context(|| format!("could not read commit {id} in the history of {refname}"))?;
        if commit.parent_count() > 1 {
            continue;
        }
        let mut devices = |c: &git2::Commit<'_>| {
            let skipped = &mut warnings.skipped;
            crate::store::commit_tree(repo, c, skipped).and_then(|t| subtree(repo, &t, DEVICES_DIR, skipped))
        };
        let now = match carried.take() {
            Some((cid, tree)) if cid == id => tree,
            _ => devices(&commit),
        };
        let before = commit.parent(0).ok().and_then(|p| devices(&p));
        carried = commit.parent_id(0).ok().map(|pid| (pid, before.clone()));
        let Some(now) = now else { continue };
        if before.as_ref().is_some_and(|b| b.id() == now.id()) {
            continue;
        }
        for e in now.iter() {
            // Only regular files named `<device id>.md`: anything else a push left is skipped.
            let Some(device) = crate::store::device_entry(&e, &mut warnings.skipped) else {
                continue;
            };
            let unchanged = before
                .as_ref()
                .and_then(|b| b.get_name(e.name().ok()?))
                .is_some_and(|old| old.id() == e.id());
            if unchanged || !seen.insert(e.id()) {
                continue;
            }
            let read = crate::store::entry_from(&device, e.id(), read_note(repo, e.id()));
            match read.handoff {
                Ok(handoff) => out.push(Version {
                    commit: commit.id(),
                    device,
                    blob: e.id(),
                    handoff,
                    claimed: read.claimed,
                }),
                Err(big @ NoteError::TooLarge { .. }) => warnings
                    .skipped
                    .note(format_args!("skipped note {} on the handoff ref: {big}", e.id())),
                Err(why) => warnings.unreadable_note(&device, &why),
            }
        }
    }
    Ok(out)
}

/// Object ids as hex in the caches.
pub(crate) mod oid_hex {
    use git2::Oid;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Oid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Oid, D::Error> {
        let hex = std::borrow::Cow::<str>::deserialize(d)?;
        Oid::from_str(&hex).map_err(D::Error::custom)
    }
}

/// Find one version by (a prefix of) its commit id, optionally `id:device`.
pub fn find<'v>(versions: &'v [Version], spec: &str) -> Result<&'v Version> {
    let (id, device) = spec.split_once(':').map_or((spec, None), |(i, d)| (i, Some(d)));
    if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("{spec:?} is not a handoff id (use the id `convosync history` shows)");
    }
    let id = id.to_ascii_lowercase();
    let hits: Vec<&Version> = versions
        .iter()
        .filter(|v| v.commit.to_string().starts_with(&id) && device.is_none_or(|d| v.device == d))
        .collect();
    match hits.as_slice() {
        [v] => Ok(v),
        [] => bail!("no handoff with id {spec}"),
        many => bail!(
            "{spec} matches {} handoffs ({}); add more digits or `:device`",
            many.len(),
            many.iter()
                .map(|v| format!("{}:{}", v.short_id(), v.device))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `today`, `yesterday`, `last week`, an age (`3 days`, `2 weeks ago`, `2h`, `90m`), a date
/// (`2026-11-20`, midnight local time) or an RFC 3339 time.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    const HELP: &str =
        "use today, yesterday, last week, an age (3 days, 2 weeks ago, 2h) or a date (2026-11-20)";
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let lower = s.to_ascii_lowercase();
    let today = now.with_timezone(&chrono::Local).date_naive();
    let day = match lower.as_str() {
        "today" => Some(today),
        "yesterday" => today.pred_opt(),
        _ => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
    };
    if let Some(t) = day.map(|d| d.and_time(chrono::NaiveTime::MIN)) {
        // Midnight, local time.
        let local = t.and_local_timezone(chrono::Local).earliest();
        return Ok(local.map_or_else(|| t.and_utc(), |t| t.with_timezone(&Utc)));
    }
    let rest = lower.trim_end_matches(" ago").trim();
    let (n, unit) = if let Some(unit) = ["last ", "an ", "a "].iter().find_map(|p| rest.strip_prefix(p)) {
        (1, unit.trim())
    } else {
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: i64 = digits
            .parse()
            .map_err(|_| anyhow::anyhow!("--since {s:?}: {HELP}"))?;
        (n, rest[digits.len()..].trim())
    };
    let secs = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "month" | "months" => 30 * 86_400,
        _ => bail!("--since {s:?}: unknown unit {unit:?}; {HELP}"),
    };
    Ok(now - chrono::Duration::seconds(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::Section;
    use crate::store::Store;
    use chrono::TimeZone;

    fn h(device: &str, hour: u32, task: &str) -> Handoff {
        Handoff {
            device: device.into(),
            timestamp: Utc.with_ymd_and_hms(2026, 11, 20, hour, 0, 0).unwrap(),
            commit: None,
            branch: Some(if hour.is_multiple_of(2) { "main" } else { "feature" }.into()),
            session: None,
            author: None,
            agent: None,
            sections: vec![Section {
                title: "Current Task".into(),
                body: task.into(),
            }],
        }
    }

    #[test]
    fn every_version_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let store = Store::new(&repo, "refs/convosync/handoffs");
        for (i, d) in ["a", "b", "a", "c", "a"].iter().enumerate() {
            store.put(&h(d, i as u32, &format!("task {i}")), "m").unwrap();
        }
        store.put(&h("a", 4, "task 4"), "same again").unwrap();
        let v = versions(&repo, "refs/convosync/handoffs").unwrap().items;
        let tasks: Vec<String> = v.iter().map(|v| v.handoff.task_line(20)).collect();
        assert_eq!(tasks, ["task 4", "task 3", "task 2", "task 1", "task 0"]);
        let f = Filter {
            device: Some("a".into()),
            branch: Some("main".into()),
            ..Default::default()
        };
        assert_eq!(v.iter().filter(|x| f.accepts(x)).count(), 3);
        assert!(find(&v, &v[0].short_id()).is_ok());
        assert!(find(&v, "zz").is_err());
    }

    #[test]
    fn what_the_walk_skipped_comes_back_with_the_versions_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let refname = "refs/convosync/handoffs";
        let store = Store::new(&repo, refname);
        store.put(&h("a", 2, "task a"), "m").unwrap();
        // A push that adds a file no device may have.
        let tip = store.tip().unwrap().unwrap();
        let mut devices = repo
            .treebuilder(Some(
                &tip.tree()
                    .unwrap()
                    .get_path("devices".as_ref())
                    .unwrap()
                    .to_object(&repo)
                    .unwrap()
                    .peel_to_tree()
                    .unwrap(),
            ))
            .unwrap();
        let note = repo
            .blob(crate::handoff::format::render(&h("x", 3, "evil")).as_bytes())
            .unwrap();
        devices.insert("UPPER.md", note, 0o100644).unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("devices", devices.write().unwrap(), 0o040000)
            .unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let sig = crate::store::signature(&repo, crate::timefmt::now()).unwrap();
        repo.commit(Some(refname), &sig, &sig, "push", &tree, &[&tip])
            .unwrap();
        let line = "skipped devices/\"UPPER.md\" on the handoff ref";
        for round in ["walked", "from the cache"] {
            let read = versions(&repo, refname).unwrap();
            let tasks: Vec<String> = read.items.iter().map(|v| v.handoff.task_line(20)).collect();
            assert_eq!(tasks, ["task a"], "{round}");
            let skipped = read.warnings.skipped.lines();
            assert!(
                skipped.len() == 1 && skipped[0].starts_with(line),
                "{round}: {skipped:?}"
            );
        }
        // Another repository's read tells only its own.
        let other = tempfile::tempdir().unwrap();
        let clean = Repository::init(other.path()).unwrap();
        Store::new(&clean, refname)
            .put(&h("b", 1, "task b"), "m")
            .unwrap();
        assert!(versions(&clean, refname).unwrap().warnings.skipped.is_empty());
    }

    #[test]
    fn since_forms() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(parse_since("2h", now).unwrap(), now - chrono::Duration::hours(2));
        assert_eq!(
            parse_since("3 days", now).unwrap(),
            now - chrono::Duration::days(3)
        );
        assert_eq!(
            parse_since("2026-11-20", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("2 weeks ago", now).unwrap(),
            now - chrono::Duration::weeks(2)
        );
        assert_eq!(
            parse_since("last week", now).unwrap(),
            now - chrono::Duration::weeks(1)
        );
        assert_eq!(
            parse_since("2026-11-20T10:00:00Z", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
        );
        let today = parse_since("today", now).unwrap();
        let yesterday = parse_since("Yesterday", now).unwrap();
        assert_eq!(today - yesterday, chrono::Duration::days(1));
        assert!(today <= now && now - today < chrono::Duration::days(1));
        let e = parse_since("soon", now).unwrap_err().to_string();
        assert!(e.contains("yesterday") && !e.contains("invalid digit"), "{e}");
        assert!(parse_since("5 fortnights", now).is_err());
    }
}
