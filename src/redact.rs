//! Placeholder redactor (replaced by the full rule table).

pub struct Finding {
    pub kind: String,
    pub line: usize,
}

pub struct Redacted {
    pub text: String,
    pub findings: Vec<Finding>,
}

pub struct Redactor;

impl Redactor {
    pub fn new(_extra: &[String], _allow: &[String]) -> anyhow::Result<Redactor> {
        Ok(Redactor)
    }

    pub fn redact(&self, text: &str) -> Redacted {
        Redacted {
            text: text.to_string(),
            findings: Vec::new(),
        }
    }
}
