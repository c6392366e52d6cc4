//! Placeholder legacy reader (replaced by the fence-aware implementation).

use super::Handoff;

pub struct LegacyFile {
    pub handoffs: Vec<Handoff>,
    pub skipped: Vec<String>,
}

pub fn parse_legacy(text: &str) -> LegacyFile {
    let mut out = LegacyFile {
        handoffs: Vec::new(),
        skipped: Vec::new(),
    };
    for chunk in text.split("\n---\n") {
        match super::format::parse(chunk.trim_start_matches("---\n")) {
            Ok(h) => out.handoffs.push(h),
            Err(e) => out.skipped.push(e.to_string()),
        }
    }
    out
}

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
