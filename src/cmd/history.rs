//! `convosync history` and `convosync search`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::{HistoryAction, HistoryArgs, SearchArgs};
use crate::history::{self, Version};
use crate::repo::Repo;
use crate::term::{color, page, paint};
use crate::timefmt::ago;

pub fn run(dir: &Path, args: HistoryArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let all = super::told(history::versions(&repo.git, &repo.settings.refname)?);
    if let Some(HistoryAction::Show { id }) = args.action {
        let v = history::find(&all, &id)?;
        page(&crate::handoff::format::render(&v.handoff));
        return Ok(ExitCode::SUCCESS);
    }
    let f = super::filter(&args.filter)?;
    let shown: Vec<&Version> = all.iter().filter(|v| f.accepts(v)).take(args.limit).collect();
    if args.json {
        let items: Vec<_> = shown.iter().map(|v| version_json(v)).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        let why = if all.is_empty() {
            ""
        } else {
            " match those filters"
        };
        println!("No handoffs yet{why}.");
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::timefmt::now();
    let c = color();
    let mut out = super::header(&format!(
        "{:<8}  {:<16} {:<20} {:<16} {}",
        "ID", "DEVICE", "BRANCH", "WHEN", "TASK"
    ));
    for v in shown {
        out.push_str(&format!(
            "{}  {:<16} {:<20} {:<16} {}\n",
            paint(&v.short_id(), "33", c),
            v.device,
            v.handoff.branch.as_deref().unwrap_or("(detached)"),
            ago(v.handoff.timestamp, now),
            v.handoff.task_line(70)
        ));
    }
    page(&out);
    Ok(ExitCode::SUCCESS)
}

/// The stable JSON shape of one handoff version.
pub fn version_json(v: &Version) -> serde_json::Value {
    let h = &v.handoff;
    json!({
        "id": v.commit.to_string(),
        "device": v.device,
        "author": h.author,
        "timestamp": crate::timefmt::rfc3339(h.timestamp),
        "branch": h.branch,
        "commit": h.commit.as_ref().map(|c| c.sha.clone()),
        "commit_subject": h.commit.as_ref().map(|c| c.subject.clone()),
        "session": h.session,
        "task": h.task_line(200),
        "sections": h.sections.iter().map(|s| json!({"title": s.title, "body": s.body})).collect::<Vec<_>>(),
    })
}

pub fn search(dir: &Path, args: SearchArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let all = super::told(history::versions(&repo.git, &repo.settings.refname)?);
    let f = super::filter(&args.filter)?;
    let words: Vec<String> = args
        .query
        .iter()
        .flat_map(|q| q.split_whitespace())
        .map(str::to_lowercase)
        .collect();
    // How many of the words the text holds.
    let holds = |text: &str| {
        let text = text.to_lowercase();
        words.iter().filter(|w| text.contains(w.as_str())).count()
    };
    // Each hit: a section of a handoff that holds all the words, and its lines that hold any.
    let hits: Vec<(&Version, &str, Vec<&str>)> = all
        .iter()
        .filter(|v| f.accepts(v) && holds(&crate::handoff::format::render(&v.handoff)) == words.len())
        .flat_map(|v| {
            v.handoff.sections.iter().map(move |s| {
                let lines: Vec<&str> = s.body.lines().filter(|l| holds(l) > 0).collect();
                (v, s.title.as_str(), lines)
            })
        })
        .filter(|(.., lines)| !lines.is_empty())
        .take(args.limit)
        .collect();
    if args.json {
        let items: Vec<_> = hits
            .iter()
            .map(|(v, section, lines)| json!({"id": v.commit.to_string(), "device": v.device, "timestamp": crate::timefmt::rfc3339(v.handoff.timestamp), "section": section, "lines": lines}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        println!("No handoff mentions {}.", args.query.join(" "));
        return Ok(ExitCode::FAILURE);
    }
    let now = crate::timefmt::now();
    let c = color();
    let mut out = String::new();
    for (v, section, lines) in &hits {
        out.push_str(&format!(
            "{} {} ({}) · {section}\n",
            paint(&v.short_id(), "33", c),
            paint(&v.device, "1", c),
            ago(v.handoff.timestamp, now),
        ));
        for l in lines {
            out.push_str(&format!("    {}\n", highlight(l, &words, c)));
        }
    }
    page(&out);
    Ok(ExitCode::SUCCESS)
}

/// Wrap each occurrence of the words in bold red (case-insensitive, char-boundary safe).
fn highlight(line: &str, words: &[String], on: bool) -> String {
    if !on {
        return line.to_string();
    }
    let lower = line.to_lowercase();
    if lower.len() != line.len() {
        return line.to_string(); // case mapping changed byte offsets; show it plain
    }
    let mut marks = vec![false; line.len()];
    for w in words.iter().filter(|w| !w.is_empty()) {
        for (start, m) in lower.match_indices(w.as_str()) {
            marks[start..start + m.len()].fill(true);
        }
    }
    let mut out = String::new();
    let mut inside = false;
    for (i, ch) in line.char_indices() {
        if marks[i] != inside {
            out.push_str(if marks[i] { "\x1b[1;31m" } else { "\x1b[0m" });
            inside = marks[i];
        }
        out.push(ch);
    }
    if inside {
        out.push_str("\x1b[0m");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn highlights_every_occurrence() {
        let w = vec!["pizza".to_string()];
        assert_eq!(
            highlight("Pizza and pizza", &w, true),
            "\x1b[1;31mPizza\x1b[0m and \x1b[1;31mpizza\x1b[0m"
        );
        assert_eq!(highlight("Pizza", &w, false), "Pizza");
    }
}
