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
    let mut s = format!("## Handoff from {}\n", h.device);
    s.push_str(&format!(
        "**Timestamp:** {}\n",
        crate::timefmt::rfc3339(h.timestamp)
    ));
    match &h.commit {
        Some(c) => s.push_str(&format!("**Commit:** {} ({})\n", c.sha, c.subject)),
        None => s.push_str(&format!("**Commit:** {NO_COMMIT}\n")),
    }
    s.push_str(&format!(
        "**Branch:** {}\n",
        h.branch.as_deref().unwrap_or(DETACHED)
    ));
    if let Some(id) = &h.session {
        s.push_str(&format!("**Session:** {id}\n"));
    }
    if let Some(a) = &h.author {
        s.push_str(&format!("**Author:** {a}\n"));
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

/// Tracks fenced code blocks (CommonMark: a fence of 3+ backticks or tildes closes only with the
/// same character, at least as long, and nothing but spaces after it).
#[derive(Default)]
pub struct Fence {
    open: Option<(char, usize)>,
}

impl Fence {
    /// Feed one line; returns whether the line is inside (or opens or closes) a fence.
    pub fn line(&mut self, line: &str) -> bool {
        let t = line.trim_start_matches(' ');
        let indent = line.len() - t.len();
        let run = |c: char| t.chars().take_while(|&x| x == c).count();
        match self.open {
            Some((c, n)) => {
                if indent < 4 && run(c) >= n && t[run(c) * c.len_utf8()..].trim().is_empty() {
                    self.open = None;
                }
                true
            }
            None => {
                if indent < 4 {
                    for c in ['`', '~'] {
                        let n = run(c);
                        // A backtick fence's info string may not contain backticks.
                        if n >= 3 && !(c == '`' && t[n..].contains('`')) {
                            self.open = Some((c, n));
                            return true;
                        }
                    }
                }
                false
            }
        }
    }
}

/// The title when `line` is a section heading (`### Title`) outside a fence.
fn heading(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("### ")?;
    let t = rest.trim().trim_end_matches('#').trim();
    (!t.is_empty()).then_some(t)
}

/// Split lines (from `start`) into sections; text before the first heading is returned apart.
fn split_sections(lines: &[&str]) -> (Vec<usize>, Vec<Section>) {
    let mut fence = Fence::default();
    let mut preamble = Vec::new();
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let fenced = fence.line(line);
        if !fenced {
            if let Some(t) = heading(line) {
                sections.push((t.to_string(), Vec::new()));
                continue;
            }
        }
        match sections.last_mut() {
            Some((_, body)) => body.push(line),
            None if !line.trim().is_empty() => preamble.push(i),
            None => {}
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

fn trim_blank_lines(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}

/// A `**Key:** value` metadata line.
fn metadata(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix("**")?;
    let (key, value) = rest.split_once(":**")?;
    Some((key.trim(), value.trim()))
}

fn parse_commit(v: &str) -> Option<CommitRef> {
    let v = v.trim();
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
    let mut i = 0;
    // Leading blank lines and the legacy `---` separator.
    while i < lines.len() && (lines[i].trim().is_empty() || lines[i].trim() == "---") {
        i += 1;
    }
    if i == lines.len() {
        return Err(ParseError::Empty);
    }
    let device = lines[i]
        .strip_prefix("## Handoff from")
        .ok_or(ParseError::MissingHeader { line: i + 1 })?
        .trim()
        .to_string();
    if device.is_empty() {
        return Err(ParseError::EmptyDevice { line: i + 1 });
    }
    i += 1;
    let mut h = Handoff {
        device,
        timestamp: DateTime::<Utc>::MIN_UTC,
        commit: None,
        branch: None,
        session: None,
        author: None,
        sections: Vec::new(),
    };
    let mut timestamp = None;
    while i < lines.len() && heading(lines[i]).is_none() {
        let line = lines[i];
        if let Some((key, value)) = metadata(line) {
            match key.to_ascii_lowercase().as_str() {
                "timestamp" => {
                    let t = DateTime::parse_from_rfc3339(value).map_err(|_| ParseError::BadTimestamp {
                        line: i + 1,
                        value: value.to_string(),
                    })?;
                    timestamp = Some(t.with_timezone(&Utc));
                }
                "commit" => h.commit = parse_commit(value),
                "branch" => h.branch = (value != DETACHED && !value.is_empty()).then(|| value.to_string()),
                "session" => h.session = (!value.is_empty()).then(|| value.to_string()),
                "author" => h.author = (!value.is_empty()).then(|| value.to_string()),
                _ => {}
            }
        } else if !line.trim().is_empty() {
            return Err(ParseError::Stray { line: i + 1 });
        }
        i += 1;
    }
    h.timestamp = timestamp.ok_or(ParseError::MissingTimestamp)?;
    let (_, sections) = split_sections(&lines[i..]);
    h.sections = sections;
    Ok(h)
}

/// Parse what Claude wrote into the draft file: only its `### ` sections count. A header and
/// metadata the model may have written are ignored, since metadata is never taken from the model.
/// Sections with empty bodies are dropped.
pub fn parse_draft(text: &str) -> Result<Vec<Section>, ParseError> {
    let text = normalize_newlines(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let (_, sections) = split_sections(&lines);
    let sections: Vec<Section> = sections
        .into_iter()
        .filter(|s| !s.body.trim().is_empty())
        .collect();
    if sections.is_empty() {
        return Err(ParseError::NoSections);
    }
    Ok(sections)
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

    fn handoff() -> impl Strategy<Value = Handoff> {
        (
            "[a-z0-9][a-z0-9-]{0,39}",
            0i64..4_000_000_000,
            proptest::option::of(("[0-9a-f]{7,40}", "[^\r\n()]{0,30}")),
            proptest::option::of("[a-zA-Z0-9/._-]{1,30}"),
            proptest::option::of("[a-z0-9-]{1,36}"),
            proptest::option::of("[a-z0-9.]{1,10}@[a-z]{1,10}\\.com"),
            prop::collection::vec(("[A-Za-z][A-Za-z ]{0,20}[A-Za-z]", body()), 0..6),
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
            // Unclosed fences in a body would swallow later headings; close them as a writer would.
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
