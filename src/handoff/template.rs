//! Which sections a handoff has, and what Claude is told about each.
//!
//! The default is the original plugin's seven sections. A team can override it with
//! `.convosync/template.md` in the repository (committed, shared), a user with `template.md` in
//! their convosync config dir. A template file is markdown: free text first (the instructions
//! Claude receives), then one `### Title` per section with an optional hint below it; a title
//! ending in ` (required)` or `*` must be filled in.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::format::{normalize_newlines, parse_draft};
use super::Section;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSection {
    pub title: String,
    pub hint: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub sections: Vec<TemplateSection>,
    /// Free text given to Claude before the sections; empty means the built-in wording.
    pub instructions: String,
}

const DEFAULT_SECTIONS: [(&str, &str, bool); 7] = [
    (
        "Current Task",
        "What you are working on, in one or two lines.",
        true,
    ),
    (
        "Progress So Far",
        "What is done (✅) and what is in progress (⏳).",
        false,
    ),
    (
        "Key Decisions Made",
        "Technical or design decisions and why they were made.",
        false,
    ),
    (
        "Important Context",
        "Non-code context: the user's preferences, facts they shared, requirements, assumptions.",
        false,
    ),
    ("Next Steps", "The next concrete actions, in order.", false),
    ("Files Modified", "Changed files with a few words each.", false),
    (
        "Open Questions",
        "Anything unresolved or waiting on the user.",
        false,
    ),
];

impl Default for Template {
    fn default() -> Self {
        Template {
            sections: DEFAULT_SECTIONS
                .iter()
                .map(|(t, h, r)| TemplateSection {
                    title: t.to_string(),
                    hint: h.to_string(),
                    required: *r,
                })
                .collect(),
            instructions: String::new(),
        }
    }
}

/// Where a repository's shared template lives, relative to its worktree.
pub const REPO_TEMPLATE: &str = ".convosync/template.md";

impl Template {
    /// Parse a template file.
    pub fn parse(text: &str) -> Result<Template> {
        let text = normalize_newlines(text);
        let first = text
            .lines()
            .position(|l| l.starts_with("### "))
            .unwrap_or(usize::MAX);
        let instructions = text
            .lines()
            .take(first)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string();
        let sections = parse_draft_keep_empty(&text);
        if sections.is_empty() {
            bail!("a template needs at least one `### Section` heading");
        }
        let sections = sections
            .into_iter()
            .map(|s| {
                let (title, required) = match s
                    .title
                    .strip_suffix("(required)")
                    .or_else(|| s.title.strip_suffix('*'))
                {
                    Some(t) => (t.trim().to_string(), true),
                    None => (s.title.clone(), false),
                };
                TemplateSection {
                    title,
                    hint: strip_comments(&s.body).trim().to_string(),
                    required,
                }
            })
            .collect();
        Ok(Template {
            sections,
            instructions,
        })
    }

    /// The repository's template, else the user's, else the default.
    pub fn load(workdir: Option<&Path>, config_dir: Option<&Path>) -> Result<Template> {
        let candidates = [
            workdir.map(|w| w.join(REPO_TEMPLATE)),
            config_dir.map(|c| c.join("template.md")),
        ];
        for path in candidates.into_iter().flatten() {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return Template::parse(&text)
                        .with_context(|| format!("invalid template {}", path.display()))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("could not read template {}", path.display()))
                }
            }
        }
        Ok(Template::default())
    }

    /// The skeleton Claude fills in: each heading with its hint as an HTML comment.
    pub fn skeleton(&self) -> String {
        self.sections
            .iter()
            .map(|s| {
                let req = if s.required { " (required)" } else { "" };
                if s.hint.is_empty() {
                    format!("### {}\n\n", s.title)
                } else {
                    format!("### {}\n<!-- {}{req} -->\n\n", s.title, s.hint)
                }
            })
            .collect()
    }

    /// The template as a file that [`Template::parse`] reads back.
    pub fn render_template_file(&self) -> String {
        let mut out = String::new();
        if !self.instructions.is_empty() {
            out.push_str(&self.instructions);
            out.push_str("\n\n");
        }
        for s in &self.sections {
            out.push_str(&format!(
                "### {}{}\n",
                s.title,
                if s.required { " (required)" } else { "" }
            ));
            if !s.hint.is_empty() {
                out.push_str(&s.hint);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }

    /// Check a draft's sections: required ones present and filled; hint comments removed; known
    /// sections in the template's order and spelling, extra ones kept after them.
    pub fn validate(&self, sections: &[Section]) -> Result<Vec<Section>, Vec<String>> {
        let cleaned: Vec<Section> = sections
            .iter()
            .map(|s| Section {
                title: s.title.clone(),
                body: strip_comments(&s.body).trim().to_string(),
            })
            .filter(|s| !s.body.is_empty())
            .collect();
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for t in &self.sections {
            let matching: Vec<&Section> = cleaned
                .iter()
                .filter(|s| s.title.eq_ignore_ascii_case(&t.title))
                .collect();
            if matching.is_empty() {
                if t.required {
                    problems.push(format!(
                        "the required section `### {}` is missing or empty",
                        t.title
                    ));
                }
                continue;
            }
            let body = matching
                .iter()
                .map(|s| s.body.as_str())
                .collect::<Vec<_>>()
                .join("\n\n");
            out.push(Section {
                title: t.title.clone(),
                body,
            });
        }
        for s in &cleaned {
            if !self
                .sections
                .iter()
                .any(|t| t.title.eq_ignore_ascii_case(&s.title))
            {
                out.push(s.clone());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if out.is_empty() {
            return Err(vec!["every section is empty".to_string()]);
        }
        Ok(out)
    }
}

fn parse_draft_keep_empty(text: &str) -> Vec<Section> {
    // parse_draft drops empty sections; a template's sections may have no hint, so mark them.
    let marked: String = text
        .lines()
        .map(|l| {
            if l.starts_with("### ") {
                format!("{l}\n\u{1}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    parse_draft(&marked)
        .unwrap_or_default()
        .into_iter()
        .map(|s| Section {
            title: s.title,
            body: s.body.replace('\u{1}', "").trim().to_string(),
        })
        .collect()
}

/// Remove `<!-- … -->` comments (the template's hints) from a body.
fn strip_comments(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(t: &str, b: &str) -> Section {
        Section {
            title: t.into(),
            body: b.into(),
        }
    }

    #[test]
    fn default_has_the_seed_sections() {
        let t = Template::default();
        let titles: Vec<&str> = t.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles[0], "Current Task");
        assert_eq!(titles.len(), 7);
        assert!(t.sections[3].hint.contains("preferences"));
        assert!(t
            .skeleton()
            .contains("### Important Context\n<!-- Non-code context"));
    }

    #[test]
    fn file_round_trip() {
        let text = "Write in French.\n\n### Goal (required)\nOne line.\n\n### Risks*\n\n### Notes\n";
        let t = Template::parse(text).unwrap();
        assert_eq!(t.instructions, "Write in French.");
        assert_eq!(
            t.sections,
            vec![
                TemplateSection {
                    title: "Goal".into(),
                    hint: "One line.".into(),
                    required: true
                },
                TemplateSection {
                    title: "Risks".into(),
                    hint: String::new(),
                    required: true
                },
                TemplateSection {
                    title: "Notes".into(),
                    hint: String::new(),
                    required: false
                },
            ]
        );
        assert_eq!(Template::parse(&t.render_template_file()).unwrap(), t);
        assert_eq!(
            Template::parse(&Template::default().render_template_file()).unwrap(),
            Template::default()
        );
        assert!(Template::parse("no headings").is_err());
    }

    #[test]
    fn validate_orders_canonicalises_and_reports() {
        let t = Template::default();
        let got = t
            .validate(&[
                sec("extra thoughts", "kept"),
                sec("next steps", "1. ship"),
                sec("current task", "<!-- What you are working on -->\nlogin"),
                sec("Open Questions", "<!-- hint only -->"),
            ])
            .unwrap();
        assert_eq!(
            got,
            vec![
                sec("Current Task", "login"),
                sec("Next Steps", "1. ship"),
                sec("extra thoughts", "kept")
            ]
        );
        let err = t
            .validate(&[sec("Current Task", "<!-- hint -->"), sec("Next Steps", "x")])
            .unwrap_err();
        assert!(err[0].contains("Current Task"), "{err:?}");
    }

    proptest::proptest! {
        #[test]
        fn parse_and_validate_never_panic(s in proptest::prelude::any::<String>()) {
            if let Ok(t) = Template::parse(&s) {
                let _ = t.validate(&[sec("Current Task", &s)]);
                let _ = t.skeleton();
            }
            let _ = strip_comments(&s);
        }
    }

    #[test]
    fn load_prefers_repo_then_user() {
        let repo = tempfile::tempdir().unwrap();
        let user = tempfile::tempdir().unwrap();
        assert_eq!(
            Template::load(Some(repo.path()), Some(user.path())).unwrap(),
            Template::default()
        );
        std::fs::write(user.path().join("template.md"), "### User\n").unwrap();
        assert_eq!(
            Template::load(Some(repo.path()), Some(user.path()))
                .unwrap()
                .sections[0]
                .title,
            "User"
        );
        std::fs::create_dir_all(repo.path().join(".convosync")).unwrap();
        std::fs::write(repo.path().join(REPO_TEMPLATE), "### Team\n").unwrap();
        assert_eq!(
            Template::load(Some(repo.path()), Some(user.path()))
                .unwrap()
                .sections[0]
                .title,
            "Team"
        );
        std::fs::write(repo.path().join(REPO_TEMPLATE), "nothing").unwrap();
        assert!(Template::load(Some(repo.path()), None).is_err());
    }
}
