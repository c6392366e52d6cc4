//! Which sections a handoff has, and what Claude is told about each.
//!
//! The default is the original plugin's seven sections. A team can override it with
//! `.convosync/template.md` in the repository (committed, shared), a user with `template.md` in
//! their convosync config dir. A template file is markdown: free text first (the instructions
//! Claude receives), then one `### Title` per section with an optional hint below it; a title
//! ending in ` (required)` or `*` must be filled in.
//!
//! A repository's template is the repository's content, written by whoever can commit: it is
//! read without following symlinks ([`crate::worktree`]), at most [`MAX_TEMPLATE_BYTES`], and
//! remembered as such ([`Origin::Repository`]) so that it reaches Claude framed as repository
//! content, never in convosync's own voice. The user's own template is trusted.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::format::{draft_heading, normalize_newlines, split_sections, trim_blank_lines};
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
    /// Where the template came from.
    pub origin: Origin,
}

/// Where a template came from, which decides how far it is trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// convosync's own sections, or a template that was only parsed.
    #[default]
    Builtin,
    /// The user's config dir: the user's own words.
    User,
    /// `.convosync/template.md` in the repository: the repository's content.
    Repository,
}

/// A repository's template larger than this is not read.
pub const MAX_TEMPLATE_BYTES: u64 = 16 * 1024;

/// The original plugin's seven sections, as a template file.
const DEFAULT_TEMPLATE: &str = "\
### Current Task (required)
What you are working on, in one or two lines.

### Progress So Far
What is done (✅) and what is in progress (⏳).

### Key Decisions Made
Technical or design decisions and why they were made.

### Important Context
Non-code context: the user's preferences, facts they shared, requirements, assumptions.

### Next Steps
The next concrete actions, in order.

### Files Modified
Changed files with a few words each.

### Open Questions
Anything unresolved or waiting on the user.
";

impl Default for Template {
    fn default() -> Self {
        Template::parse(DEFAULT_TEMPLATE).expect("the built-in template parses")
    }
}

/// Where a repository's shared template lives, relative to its worktree.
pub const REPO_TEMPLATE: &str = ".convosync/template.md";

impl Template {
    /// Parse a template file.
    pub fn parse(text: &str) -> Result<Template> {
        let text = normalize_newlines(text);
        let lines: Vec<&str> = text.split('\n').collect();
        // The same fence-aware splitting as drafts, so a `### ` line in a fenced example inside
        // the instructions or a hint is not taken for a section.
        let (preamble, sections) = split_sections(&lines, draft_heading);
        if sections.is_empty() {
            bail!("a template needs at least one `### Section` heading");
        }
        let sections = sections
            .into_iter()
            .map(|s| {
                let required = required_marker(&s.title);
                TemplateSection {
                    title: required.unwrap_or(&s.title).to_string(),
                    hint: strip_comments(&s.body).trim().to_string(),
                    required: required.is_some(),
                }
            })
            .collect();
        Ok(Template {
            sections,
            instructions: preamble.join("\n").trim().to_string(),
            origin: Origin::Builtin,
        })
    }

    /// The repository's template, else the user's, else the default; `refused` is told why a
    /// repository template that is there was not read (a symlink on its path, not a regular
    /// file, too large): it is then skipped.
    pub fn load_reporting(
        workdir: Option<&Path>,
        config_dir: Option<&Path>,
        refused: &mut dyn FnMut(&str),
    ) -> Result<Template> {
        let parse = |text: &str, origin, path: &Path| {
            let t = Template::parse(text).with_context(|| format!("invalid template {}", path.display()))?;
            anyhow::Ok(Template { origin, ..t })
        };
        if let Some(w) = workdir {
            match crate::worktree::read(w, REPO_TEMPLATE, MAX_TEMPLATE_BYTES) {
                Ok(Some(bytes)) => {
                    let text = String::from_utf8_lossy(&bytes);
                    return parse(&text, Origin::Repository, &w.join(REPO_TEMPLATE));
                }
                Ok(None) => {}
                Err(e) => refused(&format!("template not read: {e:#}")),
            }
        }
        if let Some(path) = config_dir.map(|c| c.join("template.md")) {
            match std::fs::read_to_string(&path) {
                Ok(text) => return parse(&text, Origin::User, &path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
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
            out = format!("{}\n\n", self.instructions);
        }
        for s in &self.sections {
            let required = if s.required { " (required)" } else { "" };
            // The hint, when there is one, on the lines below the heading.
            let hint: String = s.hint.lines().map(|l| format!("{l}\n")).collect();
            out.push_str(&format!("### {}{required}\n{hint}\n", s.title));
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
                // Blank edges only: a body may start with indented code.
                body: trim_blank_lines(&strip_comments(&s.body).split('\n').collect::<Vec<_>>()),
            })
            .filter(|s| !s.body.trim().is_empty())
            .collect();
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        let keys: Vec<String> = self.sections.iter().map(|t| title_key(&t.title)).collect();
        for (t, key) in self.sections.iter().zip(&keys) {
            let bodies: Vec<&str> = cleaned
                .iter()
                .filter(|s| title_key(&s.title) == *key)
                .map(|s| s.body.as_str())
                .collect();
            if !bodies.is_empty() {
                out.push(Section {
                    title: t.title.clone(),
                    body: bodies.join("\n\n"),
                });
            } else if t.required {
                problems.push(format!(
                    "the required section `### {}` is missing or empty",
                    t.title
                ));
            }
        }
        let known = |s: &Section| keys.contains(&title_key(&s.title));
        out.extend(cleaned.into_iter().filter(|s| !known(s)));
        if !problems.is_empty() {
            return Err(problems);
        }
        if out.is_empty() {
            return Err(vec!["every section is empty".to_string()]);
        }
        Ok(out)
    }
}

/// The title without its "required" marker (` (required)` or a trailing `*`), when it has one.
fn required_marker(title: &str) -> Option<&str> {
    title
        .strip_suffix("(required)")
        .or_else(|| title.strip_suffix('*'))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// What a draft's title is matched on: case-insensitive (Unicode, not only ASCII), and
/// forgiving of a copied "required" marker or a trailing colon, which models sometimes add.
fn title_key(title: &str) -> String {
    let t = title.trim();
    let t = required_marker(t).unwrap_or(t);
    t.trim_end_matches(':').trim().to_lowercase()
}

/// Remove `<!-- … -->` comments (the template's hints) from a body.
fn strip_comments(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("-->")
            .map_or("", |end| &rest[start + end + 3..]);
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
    fn fenced_examples_in_instructions_are_not_sections() {
        let t =
            Template::parse("Example:\n```md\n### Not a section\n```\n\n### Goal*\n~~~\n### nor this\n~~~\n")
                .unwrap();
        assert!(t.instructions.ends_with("### Not a section\n```"), "{t:?}");
        assert_eq!(t.sections.len(), 1);
        assert!(t.sections[0].required);
        assert_eq!(t.sections[0].hint, "~~~\n### nor this\n~~~");
        // A title that is only a marker is a title, not an empty required one.
        assert_eq!(Template::parse("### *\n").unwrap().sections[0].title, "*");
    }

    #[test]
    fn validate_matches_titles_loosely_and_keeps_indented_code() {
        let t = Template::parse("### Überblick (required)\n### Next Steps\n").unwrap();
        let got = t
            .validate(&[
                sec("next steps:", "    cargo test\n<!-- hint -->"),
                sec("ÜBERBLICK (required)", "x"),
            ])
            .unwrap();
        assert_eq!(
            got,
            vec![sec("Überblick", "x"), sec("Next Steps", "    cargo test")]
        );
    }

    fn line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        // No heading, fence or comment markers at all: those are the file's own syntax. Nor a
        // byte-order mark, which a file may only start with and which is dropped there.
        "[^\\s#`~<\u{feff}][^\r\n#`~<]{0,30}".prop_map(|l| l.trim_end().to_string())
    }

    fn text(max: usize) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::collection::vec(line(), 0..max).prop_map(|l| l.join("\n").trim().to_string())
    }

    fn template() -> impl proptest::strategy::Strategy<Value = Template> {
        use proptest::strategy::Strategy;
        let section = ("[A-Za-z0-9][A-Za-z0-9 ,/&'-]{0,20}", text(4), proptest::bool::ANY).prop_map(
            |(title, hint, required)| TemplateSection {
                title: title.trim().to_string(),
                hint,
                required,
            },
        );
        (proptest::collection::vec(section, 1..8), text(5)).prop_map(|(sections, instructions)| Template {
            sections,
            instructions,
            origin: Origin::Builtin,
        })
    }

    proptest::proptest! {
        #[test]
        fn template_file_round_trip(t in template()) {
            proptest::prop_assert_eq!(Template::parse(&t.render_template_file()).unwrap(), t);
        }
    }

    #[test]
    fn load_prefers_repo_then_user() {
        let repo = tempfile::tempdir().unwrap();
        let user = tempfile::tempdir().unwrap();
        assert_eq!(
            Template::load_reporting(Some(repo.path()), Some(user.path()), &mut |_| {}).unwrap(),
            Template::default()
        );
        std::fs::write(user.path().join("template.md"), "### User\n").unwrap();
        assert_eq!(
            Template::load_reporting(Some(repo.path()), Some(user.path()), &mut |_| {})
                .unwrap()
                .sections[0]
                .title,
            "User"
        );
        std::fs::create_dir_all(repo.path().join(".convosync")).unwrap();
        std::fs::write(repo.path().join(REPO_TEMPLATE), "### Team\n").unwrap();
        assert_eq!(
            Template::load_reporting(Some(repo.path()), Some(user.path()), &mut |_| {})
                .unwrap()
                .sections[0]
                .title,
            "Team"
        );
        std::fs::write(repo.path().join(REPO_TEMPLATE), "nothing").unwrap();
        assert!(Template::load_reporting(Some(repo.path()), None, &mut |_| {}).is_err());
    }

    #[test]
    fn load_knows_where_a_template_came_from_and_never_follows_a_symlink() {
        let repo = tempfile::tempdir().unwrap();
        let user = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let load = |why: &mut Vec<String>| {
            Template::load_reporting(Some(repo.path()), Some(user.path()), &mut |w| why.push(w.into()))
                .unwrap()
        };
        let mut why = Vec::new();
        assert_eq!(load(&mut why).origin, Origin::Builtin);
        std::fs::write(user.path().join("template.md"), "### User\n").unwrap();
        assert_eq!(load(&mut why).origin, Origin::User);
        std::fs::create_dir_all(repo.path().join(".convosync")).unwrap();
        std::fs::write(repo.path().join(REPO_TEMPLATE), "### Team\n").unwrap();
        assert_eq!(load(&mut why).origin, Origin::Repository);
        assert!(why.is_empty(), "{why:?}");

        std::fs::write(outside.path().join("t.md"), "### Outside\n").unwrap();
        std::fs::remove_file(repo.path().join(REPO_TEMPLATE)).unwrap();
        std::os::unix::fs::symlink(outside.path().join("t.md"), repo.path().join(REPO_TEMPLATE)).unwrap();
        let t = load(&mut why);
        assert_eq!((t.origin, t.sections[0].title.as_str()), (Origin::User, "User"));
        assert_eq!(why.len(), 1, "one line: {why:?}");
        assert!(why[0].contains("symlink"), "{why:?}");

        std::fs::remove_dir_all(repo.path().join(".convosync")).unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join(".convosync")).unwrap();
        std::fs::write(outside.path().join("template.md"), "### Outside\n").unwrap();
        assert_eq!(load(&mut why).sections[0].title, "User");
    }
}
