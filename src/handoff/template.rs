//! Placeholder template (replaced by the full implementation).

use std::path::Path;

use anyhow::Result;

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
    pub instructions: String,
}

impl Default for Template {
    fn default() -> Self {
        let s = |t: &str, r| TemplateSection {
            title: t.into(),
            hint: String::new(),
            required: r,
        };
        Template {
            sections: vec![
                s("Current Task", true),
                s("Progress So Far", false),
                s("Key Decisions Made", false),
                s("Important Context", false),
                s("Next Steps", false),
                s("Files Modified", false),
                s("Open Questions", false),
            ],
            instructions: String::new(),
        }
    }
}

impl Template {
    pub fn load(_workdir: Option<&Path>, _config_dir: Option<&Path>) -> Result<Template> {
        Ok(Template::default())
    }

    pub fn skeleton(&self) -> String {
        self.sections
            .iter()
            .map(|s| format!("### {}\n\n", s.title))
            .collect()
    }

    pub fn validate(&self, sections: &[Section]) -> Result<Vec<Section>, Vec<String>> {
        if sections
            .iter()
            .any(|s| s.title.eq_ignore_ascii_case("Current Task"))
        {
            Ok(sections.to_vec())
        } else {
            Err(vec!["missing required section `### Current Task`".into()])
        }
    }
}
