//! Reader for the original plugin's `.convosync/session-handoff.md`: handoffs from every device
//! appended to one file, each opened by a `---` line.
//!
//! The original split the file on `---`, so a note containing a horizontal rule was cut in two.
//! Here a new handoff starts only at a `## Handoff from ` line outside fenced code; the `---`
//! separator just before it belongs to no body, and every other `---` stays where it is.

use std::path::Path;

use super::format::{fenced_lines, normalize_newlines, parse};
use super::Handoff;

/// A legacy file larger than this is not read.
pub const MAX_LEGACY_BYTES: u64 = 8 * 1024 * 1024;

/// The legacy file of `workdir` ([`crate::repo::LEGACY_PATH`]), `None` when there is none. It
/// arrives with the branch, so it is read as the repository's content: never through a symlink
/// (see [`crate::worktree`]) and at most [`MAX_LEGACY_BYTES`]. Whose notes it holds is decided
/// per entry by the one ownership rule, [`crate::team::Me::owns`], as for notes on the ref.
pub fn read_from(workdir: &Path) -> anyhow::Result<Option<String>> {
    let bytes = crate::worktree::read(workdir, crate::repo::LEGACY_PATH, MAX_LEGACY_BYTES)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// What could be read from a legacy file.
#[derive(Debug, Default)]
pub struct LegacyFile {
    pub handoffs: Vec<Handoff>,
    /// One reason (with the entry's line number) per entry that could not be parsed.
    pub skipped: Vec<String>,
}

pub fn parse_legacy(text: &str) -> LegacyFile {
    let text = normalize_newlines(text);
    let lines: Vec<&str> = text.split('\n').collect();
    // An unclosed fence in one entry opens nothing (see `fenced_lines`), so it cannot hide
    // every later entry.
    let fenced = fenced_lines(&lines);
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| !fenced[i] && lines[i].starts_with("## Handoff from "))
        .collect();
    let mut out = LegacyFile::default();
    for (n, &start) in starts.iter().enumerate() {
        let entry = &lines[start..starts.get(n + 1).copied().unwrap_or(lines.len())];
        // Drop the separator that opens the next entry: its last line that is not blank, a `---`.
        let last = entry.iter().rposition(|l| !l.trim().is_empty());
        let end = last
            .filter(|&i| i > 0 && entry[i].trim() == "---")
            .unwrap_or(entry.len());
        match parse(&entry[..end].join("\n")) {
            Ok(h) => out.handoffs.push(h),
            Err(e) => {
                let from = lines[start].trim_start_matches("## Handoff from ").trim();
                out.skipped
                    .push(format!("entry at line {} (from {from}): {e}", start + 1));
            }
        }
    }
    out
}

/// One legacy entry ready to move, or the reason it cannot.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The handoff under its device id; `renamed_from` holds the name the file used when the
    /// device-id rule changed it.
    Ready {
        handoff: Box<Handoff>,
        renamed_from: Option<String>,
    },
    /// Not movable, and why.
    Skipped(String),
}

/// Every handoff of the file, oldest first, each under a device id made with the same rule as
/// this machine's own id (`crate::device::sanitize`); names with nothing usable are skipped,
/// and so are exact repeats of an entry already listed.
pub fn entries_oldest_first(file: &LegacyFile) -> Vec<Entry> {
    let mut ready: Vec<Handoff> = Vec::new();
    let mut out = Vec::new();
    let skip = |who: String, h: &Handoff, why: &str| {
        let when = crate::timefmt::rfc3339(h.timestamp);
        Entry::Skipped(format!("the handoff from {who} ({when}): {why}"))
    };
    for h in &file.handoffs {
        let Some(device) = crate::device::sanitize(&h.device) else {
            out.push(skip(format!("{:?}", h.device), h, "not a usable device name"));
            continue;
        };
        let renamed_from = (device != h.device).then(|| h.device.clone());
        let h = Handoff { device, ..h.clone() };
        if ready.contains(&h) {
            out.push(skip(h.device.clone(), &h, "a repeat of an earlier entry"));
            continue;
        }
        ready.push(h.clone());
        out.push(Entry::Ready {
            handoff: Box::new(h),
            renamed_from,
        });
    }
    // Stable: entries with one timestamp keep the file's order.
    out.sort_by_key(|e| match e {
        Entry::Ready { handoff, .. } => Some(handoff.timestamp),
        Entry::Skipped(_) => None,
    });
    out
}

/// The newest handoff of each device, newest first.
pub fn newest_per_device(file: &LegacyFile) -> Vec<Handoff> {
    let mut out: Vec<Handoff> = Vec::new();
    for h in &file.handoffs {
        match out.iter_mut().find(|o| o.device == h.device) {
            Some(o) if o.timestamp < h.timestamp => *o = h.clone(),
            Some(_) => {}
            None => out.push(h.clone()),
        }
    }
    out.sort_by_key(|h| std::cmp::Reverse(h.timestamp));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Session handoffs\n\n---\n## Handoff from desktop\n**Timestamp:** 2025-10-22T14:30:00Z\n**Commit:** abc123d\n**Branch:** main\n\n### Current Task\nOAuth\n\n---\n\nA horizontal rule above, and a fenced block below:\n```\n---\n## Handoff from fake\n```\n\n---\n## Handoff from laptop\n**Timestamp:** 2025-10-22T15:00:00Z\n**Commit:** def4567\n**Branch:** main\n\n### Current Task\nTests\n\n---\n## Handoff from broken\nno timestamp here\n\n---\n## Handoff from desktop\n**Timestamp:** 2025-10-23T09:00:00Z\n**Commit:** 0123abc\n**Branch:** main\n\n### Current Task\nRefresh tokens\n";

    #[test]
    fn bodies_with_rules_and_fences_stay_whole() {
        let f = parse_legacy(FILE);
        assert_eq!(f.handoffs.len(), 3, "{:?}", f.skipped);
        let first = &f.handoffs[0];
        let body = first.section("Current Task").unwrap();
        assert!(body.contains("OAuth\n\n---\n\nA horizontal rule above"), "{body}");
        assert!(body.contains("```\n---\n## Handoff from fake\n```"), "{body}");
        assert!(
            !body.trim_end().ends_with("---"),
            "the separator is not part of the body: {body}"
        );
        assert_eq!(f.skipped.len(), 1);
        assert!(
            f.skipped[0].starts_with("entry at line 30 (from broken)"),
            "{:?}",
            f.skipped
        );
    }

    #[test]
    fn crlf_files_parse_the_same() {
        let a = parse_legacy(FILE);
        let b = parse_legacy(&FILE.replace('\n', "\r\n"));
        assert_eq!(a.handoffs, b.handoffs);
    }

    #[test]
    fn newest_per_device_sorted() {
        let newest = newest_per_device(&parse_legacy(FILE));
        let got: Vec<(&str, &str)> = newest
            .iter()
            .map(|h| (h.device.as_str(), h.section("Current Task").unwrap()))
            .collect();
        assert_eq!(got, [("desktop", "Refresh tokens"), ("laptop", "Tests")]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics(s in proptest::prelude::any::<String>()) {
            let f = parse_legacy(&s);
            let _ = newest_per_device(&f);
        }

        #[test]
        fn never_panics_on_handoff_like_text(lines in proptest::collection::vec(proptest::sample::select(vec![
            "---", "## Handoff from a", "## Handoff from ", "**Timestamp:** 2026-01-01T00:00:00Z", "**Timestamp:** x",
            "### Current Task", "```", "~~~~", "text", "", "\r",
        ]), 0..60)) {
            let _ = parse_legacy(&lines.join("\n"));
        }
    }

    #[test]
    fn an_unclosed_fence_does_not_hide_later_entries() {
        let text = "---\n## Handoff from a\n**Timestamp:** 2025-10-22T14:30:00Z\n\n### Current Task\n```sh\nmake\n\n---\n## Handoff from b\n**Timestamp:** 2025-10-22T15:00:00Z\n\n### Current Task\nb's task\n";
        let f = parse_legacy(text);
        let devices: Vec<&str> = f.handoffs.iter().map(|h| h.device.as_str()).collect();
        assert_eq!(devices, ["a", "b"], "{:?}", f.skipped);
        assert_eq!(f.handoffs[0].section("Current Task"), Some("```sh\nmake"));
    }

    #[test]
    fn seed_entries_with_a_bare_commit_and_lone_cr() {
        let f = parse_legacy(&FILE.replace('\n', "\r"));
        assert_eq!(f.handoffs.len(), 3);
        assert_eq!(
            f.handoffs[1]
                .commit
                .as_ref()
                .map(|c| (c.sha.as_str(), c.subject.as_str())),
            Some(("def4567", ""))
        );
    }

    #[test]
    fn every_entry_oldest_first_under_device_ids() {
        let text = format!(
            "{FILE}\n---\n## Handoff from My Laptop\n**Timestamp:** 2025-10-20T08:00:00Z\n\n### Current Task\nfirst\n\n---\n## Handoff from !!!\n**Timestamp:** 2025-10-20T09:00:00Z\n\n### Current Task\nnameless\n"
        );
        let entries = entries_oldest_first(&parse_legacy(&text));
        let ready: Vec<(&str, &str, Option<&str>)> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Ready {
                    handoff,
                    renamed_from,
                } => Some((
                    handoff.device.as_str(),
                    handoff.section("Current Task").unwrap(),
                    renamed_from.as_deref(),
                )),
                Entry::Skipped(_) => None,
            })
            .collect();
        assert_eq!(
            ready,
            [
                ("my-laptop", "first", Some("My Laptop")),
                ("desktop", "OAuth\n\n---\n\nA horizontal rule above, and a fenced block below:\n```\n---\n## Handoff from fake\n```", None),
                ("laptop", "Tests", None),
                ("desktop", "Refresh tokens", None),
            ]
        );
        let skipped: Vec<&Entry> = entries
            .iter()
            .filter(|e| matches!(e, Entry::Skipped(_)))
            .collect();
        assert_eq!(skipped.len(), 1, "{entries:?}");
    }

    #[test]
    fn empty_and_garbage() {
        assert!(parse_legacy("").handoffs.is_empty());
        assert!(parse_legacy("---\n---\n").handoffs.is_empty());
    }
}
