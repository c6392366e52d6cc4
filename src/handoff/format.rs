//! Placeholder render/parse (replaced by the full fence-aware implementation).

use chrono::{DateTime, Utc};

use super::{CommitRef, Handoff, Section};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Bad(String),
}

pub fn render(h: &Handoff) -> String {
    let mut s = format!(
        "## Handoff from {}\n**Timestamp:** {}\n",
        h.device,
        crate::timefmt::rfc3339(h.timestamp)
    );
    match &h.commit {
        Some(c) => s.push_str(&format!("**Commit:** {} ({})\n", c.sha, c.subject)),
        None => s.push_str("**Commit:** (none)\n"),
    }
    s.push_str(&format!(
        "**Branch:** {}\n",
        h.branch.as_deref().unwrap_or("(detached HEAD)")
    ));
    if let Some(id) = &h.session {
        s.push_str(&format!("**Session:** {id}\n"));
    }
    for sec in &h.sections {
        s.push_str(&format!("\n### {}\n{}\n", sec.title, sec.body));
    }
    s
}

pub fn parse(text: &str) -> Result<Handoff, ParseError> {
    let text = text.replace("\r\n", "\n");
    let mut lines = text.lines();
    let device = lines
        .next()
        .and_then(|l| l.strip_prefix("## Handoff from "))
        .ok_or_else(|| ParseError::Bad("line 1: expected `## Handoff from <device>`".into()))?
        .trim()
        .to_string();
    let mut h = Handoff {
        device,
        timestamp: DateTime::<Utc>::MIN_UTC,
        commit: None,
        branch: None,
        session: None,
        sections: Vec::new(),
    };
    let mut ts = None;
    for l in lines.by_ref() {
        if let Some(t) = l.strip_prefix("### ") {
            h.sections.push(Section {
                title: t.trim().into(),
                body: String::new(),
            });
            break;
        }
        if let Some(v) = l.strip_prefix("**Timestamp:** ") {
            ts = DateTime::parse_from_rfc3339(v.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc));
        } else if let Some(v) = l.strip_prefix("**Branch:** ") {
            h.branch = (v != "(detached HEAD)").then(|| v.to_string());
        } else if let Some(v) = l.strip_prefix("**Session:** ") {
            h.session = Some(v.to_string());
        } else if let Some(v) = l.strip_prefix("**Commit:** ") {
            if v != "(none)" {
                let (sha, rest) = v.split_once(' ').unwrap_or((v, ""));
                h.commit = Some(CommitRef {
                    sha: sha.into(),
                    subject: rest.trim().trim_start_matches('(').trim_end_matches(')').into(),
                });
            }
        }
    }
    h.timestamp = ts.ok_or_else(|| ParseError::Bad("missing **Timestamp:**".into()))?;
    for l in lines {
        if let Some(t) = l.strip_prefix("### ") {
            h.sections.push(Section {
                title: t.trim().into(),
                body: String::new(),
            });
        } else if let Some(s) = h.sections.last_mut() {
            s.body.push_str(l);
            s.body.push('\n');
        }
    }
    for s in &mut h.sections {
        s.body = s.body.trim_matches('\n').to_string();
    }
    Ok(h)
}

pub fn parse_draft(text: &str) -> Result<Vec<Section>, ParseError> {
    let fake = format!("## Handoff from x\n**Timestamp:** 2000-01-01T00:00:00Z\n{text}");
    let secs: Vec<Section> = parse(&fake)?
        .sections
        .into_iter()
        .filter(|s| !s.body.is_empty())
        .collect();
    if secs.is_empty() {
        return Err(ParseError::Bad("the draft has no `### ` sections".into()));
    }
    Ok(secs)
}
