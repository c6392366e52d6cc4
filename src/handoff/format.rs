//! The handoff file format (compatible with the original plugin) and the draft format.
//!
//! ```text
//! ## Handoff from <device>
//! **Timestamp:** 2026-11-24T20:31:07Z
//! **Commit:** <sha> (<subject>)
//! **Branch:** <branch>
//! **Session:** <id>
//!
//! ### Current Task
//! …
//! ```
//!
//! Sections start at `### ` lines outside fenced code blocks; everything else in a body is kept
//! verbatim, including `---` lines and `## Handoff from` lines (the original plugin split its file
//! on those and cut such notes apart).

use chrono::{DateTime, Utc};

use super::{CommitRef, Handoff, Section};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the handoff is empty")]
    Empty,
    #[error("line {line}: expected `## Handoff from <device>`")]
    MissingHeader { line: usize },
    #[error("line {line}: the device name is empty")]
    EmptyDevice { line: usize },
    #[error("missing `**Timestamp:**` line")]
    MissingTimestamp,
    #[error("line {line}: bad timestamp {value:?} (expected RFC 3339, like 2026-11-24T20:31:07Z)")]
    BadTimestamp { line: usize, value: String },
    #[error("line {line}: unexpected text before the first `### ` section")]
    Stray { line: usize },
    #[error("the draft has no `### ` sections")]
    NoSections,
}

const DETACHED: &str = "(detached HEAD)";
const NO_COMMIT: &str = "(none)";

/// Render a handoff as stored on the ref.
pub fn render(h: &Handoff) -> String {
    let commit = h
        .commit
        .as_ref()
        .map_or(NO_COMMIT.into(), |c| format!("{} ({})", c.sha, c.subject));
    let mut s = format!(
        "## Handoff from {}\n**Timestamp:** {}\n**Commit:** {commit}\n**Branch:** {}\n",
        h.device,
        crate::timefmt::rfc3339(h.timestamp),
        h.branch.as_deref().unwrap_or(DETACHED)
    );
    for (key, value) in [
        ("Session", &h.session),
        ("Author", &h.author),
        ("Agent", &h.agent),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("**{key}:** {v}\n"));
        }
    }
    for sec in &h.sections {
        s.push_str(&format!("\n### {}\n", sec.title));
        if !sec.body.is_empty() {
            s.push_str(&sec.body);
            s.push('\n');
        }
    }
    s
}

/// CRLF and lone CR to LF, without a leading byte-order mark.
pub fn normalize_newlines(text: &str) -> String {
    text.trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// A fence line's character, length, and whether nothing but spaces follows it.
type Marker = (char, usize, bool);

/// A fence line (CommonMark: 3+ backticks or tildes, indented less than 4 spaces): its
/// character, its length, and whether nothing but spaces follows (only such a line can close).
fn fence_marker(line: &str) -> Option<Marker> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() >= 4 {
        return None;
    }
    let c = t.chars().next().filter(|&c| c == '`' || c == '~')?;
    let n = t.chars().take_while(|&x| x == c).count();
    // Both fence characters are ASCII, so `n` characters are `n` bytes.
    let rest = &t[n..];
    // A backtick fence's info string may not contain backticks.
    if n < 3 || (c == '`' && rest.contains('`')) {
        return None;
    }
    Some((c, n, rest.trim().is_empty()))
}

/// Whether a line could open or close fenced code (the rule [`Fence`] and [`fenced_lines`]
/// follow), for code that only needs to know where fenced blocks may begin or end.
pub fn is_fence_line(line: &str) -> bool {
    fence_marker(line).is_some()
}

/// Where one line stands with respect to fenced code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceLine {
    Outside,
    Opens,
    Inside,
    Closes,
}

/// Tracks fenced code blocks line by line (CommonMark: a fence closes only with the same
/// character, at least as long, and nothing but spaces after it). Streaming, so it cannot know
/// whether a fence is ever closed; splitting uses [`fenced_lines`] instead.
#[derive(Default)]
pub struct Fence {
    open: Option<(char, usize)>,
}

impl Fence {
    /// Feed one line; returns whether it is outside fenced code, opens a fence, is inside one
    /// (a shorter or different fence line included), or closes it.
    pub fn line(&mut self, line: &str) -> FenceLine {
        self.step(fence_marker(line), |_, _| true)
    }

    /// Feed one line's marker; an opening fence opens only when `closed_later` says so.
    fn step(&mut self, marker: Option<Marker>, closed_later: impl Fn(char, usize) -> bool) -> FenceLine {
        match (self.open, marker) {
            (Some((c, n)), Some((mc, mn, true))) if mc == c && mn >= n => {
                self.open = None;
                FenceLine::Closes
            }
            (Some(_), _) => FenceLine::Inside,
            (None, Some((c, n, _))) if closed_later(c, n) => {
                self.open = Some((c, n));
                FenceLine::Opens
            }
            (None, _) => FenceLine::Outside,
        }
    }
}

/// For each line, whether it belongs to a fenced code block (its fence lines included).
///
/// Unlike CommonMark, an opening fence that is never closed opens nothing. A model that forgets
/// a closing fence would otherwise fold every later section of its draft (and, in the legacy
/// file, every later handoff) into one code block, and those would be lost as sections.
pub fn fenced_lines(lines: &[&str]) -> Vec<bool> {
    let markers: Vec<Option<Marker>> = lines.iter().map(|l| fence_marker(l)).collect();
    // closers_after[i] = the longest closing-capable run of (backticks, tildes) after line i, so
    // whether an opener is ever closed is known in one backward pass.
    let mut closers_after = vec![(0usize, 0usize); lines.len() + 1];
    for i in (0..lines.len()).rev() {
        let (ticks, tildes) = closers_after[i + 1];
        closers_after[i] = match markers[i] {
            Some(('`', n, true)) => (ticks.max(n), tildes),
            Some((_, n, true)) => (ticks, tildes.max(n)),
            _ => (ticks, tildes),
        };
    }
    let mut fence = Fence::default();
    let closed = |i: usize, c: char, n: usize| {
        let (ticks, tildes) = closers_after[i + 1];
        (if c == '`' { ticks } else { tildes }) >= n
    };
    (0..lines.len())
        .map(|i| fence.step(markers[i], |c, n| closed(i, c, n)) != FenceLine::Outside)
        .collect()
}

/// The title when `line` is a section heading (`### Title`) of a stored handoff. The title is
/// taken verbatim (trimmed): convosync wrote it, so a trailing `#` is part of it ("C#", "Fix #").
fn stored_heading(line: &str) -> Option<&str> {
    let t = line.strip_prefix("### ")?.trim();
    (!t.is_empty()).then_some(t)
}

/// The title when `line` is a section heading of a draft or template, which people and models
/// write: a CommonMark closing sequence (`### Title ###`) is dropped, but only when a space
/// precedes it, so "C#" stays "C#".
pub(crate) fn draft_heading(line: &str) -> Option<&str> {
    let t = stored_heading(line)?;
    let without = t.trim_end_matches('#');
    let t = if without.is_empty() || without.ends_with([' ', '\t']) {
        without.trim_end()
    } else {
        t
    };
    (!t.is_empty()).then_some(t)
}

/// How a line is recognised as a section heading: [`stored_heading`] or [`draft_heading`].
type HeadingRule = fn(&str) -> Option<&str>;

/// Split lines into sections at headings outside fenced code. The lines before the first heading
/// (the preamble) are returned apart, verbatim; section bodies lose leading and trailing blank
/// lines only. Sections with empty bodies are kept: callers decide what an empty one means.
pub(crate) fn split_sections<'a>(lines: &[&'a str], heading: HeadingRule) -> (Vec<&'a str>, Vec<Section>) {
    let fenced = fenced_lines(lines);
    let mut preamble = Vec::new();
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for (line, fenced) in lines.iter().zip(fenced) {
        match (heading(line).filter(|_| !fenced), sections.last_mut()) {
            (Some(title), _) => sections.push((title.to_string(), Vec::new())),
            (None, Some((_, body))) => body.push(line),
            (None, None) => preamble.push(*line),
        }
    }
    let sections = sections
        .into_iter()
        .map(|(title, body)| Section {
            title,
            body: trim_blank_lines(&body),
        })
        .collect();
    (preamble, sections)
}

/// The lines joined, without leading and trailing blank (or whitespace-only) lines.
pub(crate) fn trim_blank_lines(lines: &[&str]) -> String {
    let filled = |l: &&str| !l.trim().is_empty();
    let start = lines.iter().position(filled).unwrap_or(lines.len());
    let end = lines.iter().rposition(filled).map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}

/// A `**Key:** value` metadata line.
/// Both `**Key:** value` (what convosync and the seed write) and `**Key**: value` (what people
/// type by hand) are accepted; whichever marker comes first ends the key.
fn metadata(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix("**")?;
    let end = [rest.find(":**"), rest.find("**:")].into_iter().flatten().min()?;
    Some((rest[..end].trim(), rest[end + 3..].trim()))
}

/// A `**Commit:**` value (trimmed, as [`metadata`] gives it).
fn parse_commit(v: &str) -> Option<CommitRef> {
    if v.is_empty() || v == NO_COMMIT {
        return None;
    }
    let (sha, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
    let rest = rest.trim();
    let subject = match (rest.find('('), rest.rfind(')')) {
        (Some(a), Some(b)) if a < b => &rest[a + 1..b],
        _ => rest,
    };
    Some(CommitRef {
        sha: sha.to_string(),
        subject: subject.to_string(),
    })
}

/// Parse a stored handoff.
pub fn parse(text: &str) -> Result<Handoff, ParseError> {
    let text = normalize_newlines(text);
    let lines: Vec<&str> = text.split('\n').collect();
    // Leading blank lines and the legacy `---` separator.
    let i = lines
        .iter()
        .position(|l| !matches!(l.trim(), "" | "---"))
        .ok_or(ParseError::Empty)?;
    let device = lines[i]
        .strip_prefix("## Handoff from")
        .ok_or(ParseError::MissingHeader { line: i + 1 })?
        .trim()
        .to_string();
    if device.is_empty() {
        return Err(ParseError::EmptyDevice { line: i + 1 });
    }
    // The lines before the first section are metadata (a fence line among them is stray text).
    let (meta, sections) = split_sections(&lines[i + 1..], stored_heading);
    let mut h = Handoff {
        device,
        sections,
        ..Handoff::default()
    };
    let mut timestamp = None;
    for (line, number) in meta.into_iter().zip(i + 2..) {
        if let Some((key, value)) = metadata(line) {
            let given = (!value.is_empty()).then(|| value.to_string());
            match key.to_ascii_lowercase().as_str() {
                "timestamp" => {
                    let t = DateTime::parse_from_rfc3339(value).map_err(|_| ParseError::BadTimestamp {
                        line: number,
                        value: value.to_string(),
                    })?;
                    timestamp = Some(t.with_timezone(&Utc));
                }
                "commit" => h.commit = parse_commit(value),
                "branch" => h.branch = given.filter(|v| v != DETACHED),
                "session" => h.session = given,
                "author" => h.author = given,
                "agent" => h.agent = given,
                _ => {}
            }
        } else if !line.trim().is_empty() {
            return Err(ParseError::Stray { line: number });
        }
    }
    h.timestamp = timestamp.ok_or(ParseError::MissingTimestamp)?;
    Ok(h)
}

/// Parse what Claude wrote into the draft file: only its `### ` sections count. A header and
/// metadata the model may have written are ignored, since metadata is never taken from the model.
/// Sections with empty bodies are dropped.
pub fn parse_draft(text: &str) -> Result<Vec<Section>, ParseError> {
    let text = normalize_newlines(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let sections: Vec<Section> = split_sections(&lines, draft_heading)
        .1
        .into_iter()
        .filter(|s| !s.body.trim().is_empty())
        .collect();
    (!sections.is_empty())
        .then_some(sections)
        .ok_or(ParseError::NoSections)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Handoff {
        Handoff {
            device: "desktop".into(),
            timestamp: Utc.with_ymd_and_hms(2026, 11, 24, 20, 31, 7).unwrap(),
            commit: Some(CommitRef { sha: "abc1234".into(), subject: "add (OAuth) routes".into() }),
            branch: Some("feature/oauth".into()),
            session: Some("s-1".into()),
            author: Some("dev@example.com".into()),
            agent: None,
            sections: vec![
                Section { title: "Current Task".into(), body: "OAuth login".into() },
                Section {
                    title: "Important Context".into(),
                    body: "- favourite pizza: Margherita\n\n---\n\n## Handoff from nobody\n```md\n### not a heading\n---\n```\n#### sub".into(),
                },
            ],
        }
    }

    #[test]
    fn renders_the_seed_layout() {
        let text = render(&sample());
        assert!(text.starts_with(
            "## Handoff from desktop\n**Timestamp:** 2026-11-24T20:31:07Z\n**Commit:** abc1234 (add (OAuth) routes)\n**Branch:** feature/oauth\n**Session:** s-1\n**Author:** dev@example.com\n\n### Current Task\nOAuth login\n"
        ));
        assert!(text.ends_with("#### sub\n"));
    }

    #[test]
    fn round_trips_bodies_with_rules_and_fences() {
        let h = sample();
        assert_eq!(parse(&render(&h)).unwrap(), h);
    }

    #[test]
    fn crlf_equals_lf() {
        let text = render(&sample());
        assert_eq!(parse(&text.replace('\n', "\r\n")).unwrap(), sample());
        assert_eq!(parse(&format!("\u{feff}---\n\n{text}")).unwrap(), sample());
    }

    #[test]
    fn fenced_heading_stays_in_body() {
        let text = "## Handoff from a\n**Timestamp:** 2026-01-01T00:00:00+02:00\n\n### One\n~~~~\n### inside\n~~~\nstill inside\n~~~~\n### Two\nx\n";
        let h = parse(text).unwrap();
        assert_eq!(h.sections.len(), 2);
        assert!(h.sections[0].body.contains("### inside"));
        assert_eq!(h.timestamp, Utc.with_ymd_and_hms(2025, 12, 31, 22, 0, 0).unwrap());
    }

    #[test]
    fn metadata_variants() {
        let h = parse("## Handoff from old\n**Timestamp:** 2025-10-22T14:30:00Z\n**Commit:** abc123d\n**Branch:** (detached HEAD)\n**Extra:** kept quiet\n").unwrap();
        assert_eq!(
            h.commit,
            Some(CommitRef {
                sha: "abc123d".into(),
                subject: String::new()
            })
        );
        assert_eq!(h.branch, None);
        assert!(h.sections.is_empty());
        let h =
            parse("## Handoff from new\n**Timestamp:** 2025-10-22T14:30:00Z\n**Commit:** (none)\n").unwrap();
        assert_eq!(h.commit, None);
    }

    #[test]
    fn very_long_lines() {
        let mut h = sample();
        h.sections[0].body = "x".repeat(1 << 20);
        assert_eq!(parse(&render(&h)).unwrap(), h);
    }

    #[test]
    fn rejects_garbage_clearly() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("\n\n"), Err(ParseError::Empty));
        assert_eq!(parse("hello"), Err(ParseError::MissingHeader { line: 1 }));
        assert_eq!(
            parse("## Handoff from \n"),
            Err(ParseError::EmptyDevice { line: 1 })
        );
        assert_eq!(
            parse("## Handoff from a\n### X\ny"),
            Err(ParseError::MissingTimestamp)
        );
        assert!(matches!(
            parse("## Handoff from a\n**Timestamp:** yesterday\n"),
            Err(ParseError::BadTimestamp { line: 2, .. })
        ));
        assert_eq!(
            parse("## Handoff from a\n**Timestamp:** 2025-10-22T14:30:00Z\nstray\n"),
            Err(ParseError::Stray { line: 3 })
        );
        let junk = String::from_utf8_lossy(&[0xff, 0x00, 0x13, 0x80, b'#', b'#']).into_owned();
        assert!(parse(&junk).is_err());
    }

    #[test]
    fn drafts_ignore_model_metadata() {
        let d = "## Handoff from evil\n**Timestamp:** 1999-01-01T00:00:00Z\n**Commit:** deadbee\n\n### Current Task\nreal\n\n### Open Questions\n\n";
        let s = parse_draft(d).unwrap();
        assert_eq!(
            s,
            vec![Section {
                title: "Current Task".into(),
                body: "real".into()
            }]
        );
        assert_eq!(parse_draft("no sections here"), Err(ParseError::NoSections));
        assert_eq!(parse_draft("### Empty\n\n"), Err(ParseError::NoSections));
    }

    fn with_sections(sections: &[(&str, &str)]) -> Handoff {
        let mut h = sample();
        h.sections = sections
            .iter()
            .map(|(t, b)| Section {
                title: t.to_string(),
                body: b.to_string(),
            })
            .collect();
        h
    }

    #[test]
    fn titles_keep_a_trailing_hash() {
        let h = with_sections(&[("C#", "a"), ("Fix #", "b"), ("Rust *", "c")]);
        assert_eq!(parse(&render(&h)).unwrap(), h);
    }

    #[test]
    fn draft_titles_drop_only_a_closing_sequence() {
        let s = parse_draft("### Next Steps ##\na\n### C#\nb\n### ###\nc\n").unwrap();
        let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
        // `### ###` is an empty heading, so its line stays in the body before it.
        assert_eq!(titles, ["Next Steps", "C#"]);
        assert_eq!(s[1].body, "b\n### ###\nc");
    }

    #[test]
    fn unclosed_fence_does_not_swallow_later_sections() {
        let draft = "### Current Task\nx\n```rust\nfn a() {}\n\n### Next Steps\ny\n";
        let s = parse_draft(draft).unwrap();
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].body, "x\n```rust\nfn a() {}");
        // And once stored, it reads back the same.
        let h = with_sections(&[(&s[0].title, &s[0].body), (&s[1].title, &s[1].body)]);
        assert_eq!(parse(&render(&h)).unwrap(), h);
    }

    #[test]
    fn fences_close_with_the_same_char_and_at_least_the_same_length() {
        let lines = [
            "````md",
            "```",
            "~~~~",
            "### in",
            "````` ",
            "### out",
            "~~~",
            "### never closed",
            "```",
        ];
        let got = fenced_lines(&lines);
        assert_eq!(got, [true, true, true, true, true, false, false, false, false]);
        // Indented 4 spaces is code, not a fence; a backtick info string may not hold backticks.
        assert_eq!(fenced_lines(&["    ```", "x", "```"]), [false, false, false]);
        assert_eq!(fenced_lines(&["``` a`b", "x", "```"]), [false, false, false]);
        assert_eq!(fenced_lines(&["~~~ a`b", "x", "~~~"]), [true, true, true]);
        assert_eq!(
            fenced_lines(&["```", "x", "```` trailing"]),
            [false, false, false]
        );
    }

    /// The streaming tracker follows the same rule as [`fenced_lines`] and says which line
    /// opens and which closes: a shorter or different fence inside a fence is content.
    #[test]
    fn fence_tracker_reports_opening_and_closing_lines() {
        let lines = [
            "x", "````md", "```", "~~~~", "````` ", "y", "    ```", "~~~ a`b", "```", "~~~",
        ];
        let mut fence = Fence::default();
        let got: Vec<FenceLine> = lines.iter().map(|l| fence.line(l)).collect();
        use FenceLine::*;
        assert_eq!(
            got,
            [Outside, Opens, Inside, Inside, Closes, Outside, Outside, Opens, Inside, Closes]
        );
        let fence_lines: Vec<bool> = lines.iter().map(|l| is_fence_line(l)).collect();
        assert_eq!(
            fence_lines,
            [false, true, true, true, true, false, false, true, true, true]
        );
    }

    #[test]
    fn fenced_bodies_keep_separators_and_fake_headers() {
        let h = with_sections(&[
            ("Current Task", "---\ntext\n---"),
            (
                "Important Context",
                "```\n## Handoff from x\n### fake heading\n```\nafter",
            ),
            ("Next Steps", "~~~~\n~~~\n### still code\n~~~~\n#### sub"),
        ]);
        let text = render(&h);
        assert_eq!(parse(&text).unwrap(), h);
        assert_eq!(parse(&text.replace('\n', "\r")).unwrap(), h);
    }

    #[test]
    fn metadata_tolerates_the_colon_outside_the_bold() {
        let h = parse("## Handoff from a\n**Timestamp**: 2026-01-01T00:00:00Z\n**Branch**: main\n").unwrap();
        assert_eq!(h.branch.as_deref(), Some("main"));
        let h = parse("## Handoff from a\n**Timestamp:** 2026-01-01T00:00:00Z\n**Commit:** abc (x**: y)\n")
            .unwrap();
        assert_eq!(h.commit.unwrap().subject, "x**: y");
    }

    fn body() -> impl Strategy<Value = String> {
        // Lines of arbitrary text (no CR), never a heading at the start, no blank edges.
        prop::collection::vec("[^\r\n]{0,40}", 1..8)
            .prop_map(|lines| {
                lines
                    .into_iter()
                    .map(|l| {
                        if l.starts_with("### ") || l.starts_with("```") || l.starts_with("~~~") {
                            format!(" {l}")
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .prop_map(|b| {
                b.trim_matches(|c: char| c == '\n' || c.is_whitespace())
                    .to_string()
            })
            .prop_filter("no blank edges", |b| {
                b.lines().next().is_none_or(|l| !l.trim().is_empty())
            })
    }

    /// Single-line titles with the characters that confuse heading parsers: `#`, `*`, parens.
    fn title() -> impl Strategy<Value = String> {
        "[^\\s][^\r\n]{0,20}"
            .prop_map(|t| t.trim().to_string())
            .prop_filter("non-empty", |t| !t.is_empty())
    }

    fn handoff() -> impl Strategy<Value = Handoff> {
        (
            "[a-z0-9][a-z0-9-]{0,39}",
            0i64..4_000_000_000,
            proptest::option::of(("[0-9a-f]{7,40}", "[^\r\n()]{0,30}")),
            proptest::option::of("[a-zA-Z0-9/._-]{1,30}"),
            proptest::option::of("[a-z0-9-]{1,36}"),
            proptest::option::of("[a-z0-9.]{1,10}@[a-z]{1,10}\\.com"),
            prop::collection::vec((title(), body()), 0..6),
        )
            .prop_map(
                |(device, ts, commit, branch, session, author, sections)| Handoff {
                    device,
                    timestamp: Utc.timestamp_opt(ts, 0).unwrap(),
                    commit: commit.map(|(sha, subject)| CommitRef {
                        sha,
                        subject: subject.trim().to_string(),
                    }),
                    branch,
                    session,
                    agent: author.as_ref().map(|_| "Codex 0.169.0".to_string()),
                    author,
                    sections: sections
                        .into_iter()
                        .map(|(title, body)| Section {
                            title: title.trim().to_string(),
                            body: trim_blank_lines(&body.split('\n').collect::<Vec<_>>()),
                        })
                        .collect(),
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn render_parse_round_trip(h in handoff()) {
            // An unclosed fence in one body would be closed by a fence line of a later body and
            // swallow the headings in between; such a handoff is not canonical, so avoid it.
            let mut h = h;
            for s in &mut h.sections {
                let mut f = Fence::default();
                for l in s.body.split('\n') { f.line(l); }
                if f.open.is_some() { s.body = s.body.replace("```", "'''").replace("~~~", "'''"); }
            }
            prop_assert_eq!(parse(&render(&h)).unwrap(), h);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse(&s);
            let _ = parse_draft(&s);
        }

        #[test]
        fn parse_never_panics_on_bytes(b in prop::collection::vec(any::<u8>(), 0..2048)) {
            let s = String::from_utf8_lossy(&b);
            let _ = parse(&s);
            let _ = parse_draft(&s);
        }
    }
}
