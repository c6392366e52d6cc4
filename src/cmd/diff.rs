//! `convosync diff [A] [B]`: what changed between two handoffs, section by section.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use similar::{ChangeTag, TextDiff};

use crate::handoff::Handoff;
use crate::history::{self, Version};
use crate::repo::Repo;
use crate::term::{color, page, paint};

pub fn run(dir: &Path, a: Option<&str>, b: Option<&str>) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let all = super::told(history::versions(&repo.git, &repo.settings.refname)?);
    let me = crate::team::my_device(&repo)?;
    let newest_of = |d: &str| all.iter().find(|v| v.device == d);
    let resolve = |spec: &str| -> Result<&Version> {
        let by_id = || history::find(&all, spec);
        newest_of(spec).map_or_else(by_id, Ok).map_err(|e| {
            anyhow::anyhow!(
                "{spec:?} is neither a device with handoffs nor a handoff id ({e}); devices: {}",
                devices(&all)
            )
        })
    };
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (resolve(a)?, resolve(b)?),
        (Some(d), None) if newest_of(d).is_some() => {
            let mut mine = all.iter().filter(|v| v.device == d);
            match (mine.next(), mine.next()) {
                (Some(newest), Some(previous)) => (previous, newest),
                _ => bail!("{d} has only one handoff; nothing to compare it with"),
            }
        }
        (Some(a), None) => {
            let a = resolve(a)?;
            let b = all.iter().find(|v| v.device != a.device);
            older_first(a, b.context("no handoff from another device")?)
        }
        (None, _) => {
            let a = newest_of(&me)
                .with_context(|| format!("{me} has no handoff yet; name two: convosync diff A B"))?;
            let b = all.iter().find(|v| v.device != me);
            older_first(a, b.context("no handoff from another device yet")?)
        }
    };
    page(&render(a, b, color()));
    Ok(ExitCode::SUCCESS)
}

/// The two versions ordered older → newer, as a diff reads when nobody chose an order.
fn older_first<'v>(a: &'v Version, b: &'v Version) -> (&'v Version, &'v Version) {
    if a.handoff.timestamp <= b.handoff.timestamp {
        (a, b)
    } else {
        (b, a)
    }
}

/// The devices that have handoffs, for error messages.
fn devices(all: &[Version]) -> String {
    let names: BTreeSet<&str> = all.iter().map(|v| v.device.as_str()).collect();
    match names.into_iter().collect::<Vec<_>>().join(", ") {
        n if n.is_empty() => "none yet".to_string(),
        n => n,
    }
}

/// A section body as whole lines: every line ends with exactly one newline, so the last line of
/// a section compares equal to the same line in the middle of the other side.
fn lines_of(body: Option<&str>) -> String {
    let body = body.unwrap_or("").trim_end_matches(['\n', '\r']);
    if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    }
}

fn label(v: &Version) -> String {
    format!(
        "{} {} ({})",
        v.device,
        v.short_id(),
        crate::timefmt::rfc3339(v.handoff.timestamp)
    )
}

/// The section-by-section diff of `a` → `b`.
pub fn render(a: &Version, b: &Version, c: bool) -> String {
    // One line: what `-` marks in red, what `+` marks in green, anything else as it is.
    let line = |sign: &str, text: &str| match sign.as_bytes()[0] {
        b'-' => format!("{}\n", paint(&format!("{sign} {text}"), "31", c)),
        b'+' => format!("{}\n", paint(&format!("{sign} {text}"), "32", c)),
        _ => format!("{sign} {text}\n"),
    };
    let mut out = line("---", &label(a)) + &line("+++", &label(b));
    let meta = |h: &Handoff| {
        format!(
            "branch {} · commit {}",
            h.branch.as_deref().unwrap_or("(detached)"),
            h.commit.as_ref().map(|c| c.short()).unwrap_or("-")
        )
    };
    if meta(&a.handoff) != meta(&b.handoff) {
        out += &(line("-", &meta(&a.handoff)) + &line("+", &meta(&b.handoff)));
    }
    let mut titles: Vec<&str> = a.handoff.sections.iter().map(|s| s.title.as_str()).collect();
    for s in &b.handoff.sections {
        if !titles.iter().any(|t| t.eq_ignore_ascii_case(&s.title)) {
            titles.push(&s.title);
        }
    }
    let mut changed = false;
    for t in titles {
        let (x, y) = (a.handoff.section(t), b.handoff.section(t));
        let tag = match (x, y) {
            (None, None) => continue,
            (None, _) => " (added)",
            (_, None) => " (removed)",
            _ => "",
        };
        let (x, y) = (lines_of(x), lines_of(y));
        if x == y && tag.is_empty() {
            continue;
        }
        changed = true;
        out.push_str(&format!("\n{}\n", paint(&format!("### {t}{tag}"), "1", c)));
        let diff = TextDiff::from_lines(&x, &y);
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => "-",
                ChangeTag::Insert => "+",
                ChangeTag::Equal => " ",
            };
            out.push_str(&line(sign, change.to_string_lossy().trim_end_matches('\n')));
        }
    }
    if !changed {
        out.push_str("\nThe sections are identical.\n");
    }
    out
}
