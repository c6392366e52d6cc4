//! Secrets found by walking a text's structure rather than by one regex: the values of a
//! Kubernetes `kind: Secret` manifest and of `Cookie:` / `Set-Cookie:` headers.

use std::sync::LazyLock;

use regex::Regex;

use crate::handoff::format::is_fence_line;

use super::names::is_placeholder;

/// Values under `data:` / `stringData:` in a Kubernetes `kind: Secret` manifest. A manifest is a
/// YAML document: text between `---` lines or code fences.
pub(super) fn kubernetes_secret_values(text: &str) -> Vec<(usize, usize)> {
    static KIND: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?m)^\s*kind:\s*["']?Secret["']?\s*$"#).expect("kind regex"));
    if !KIND.is_match(text) {
        return Vec::new();
    }
    // Line by line, each document's values kept until its end shows whether it is a Secret.
    let (mut out, mut values, mut from, mut next) = (Vec::new(), Vec::new(), 0, 0);
    let mut block: Option<usize> = None; // indent of the `data:` line
    for line in text.split_inclusive('\n') {
        let offset = next;
        next += line.len();
        // Documents end at `---` and fence lines.
        if line.trim() == "---" || is_fence_line(line) {
            if KIND.is_match(&text[from..offset]) {
                out.append(&mut values);
            }
            (values, block, from) = (Vec::new(), None, next);
            continue;
        }
        let body = line.trim_end_matches(['\n', '\r']);
        let t = body.trim_start();
        let indent = body.len() - t.len();
        if let Some(i) = block {
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if indent <= i {
                block = None;
            } else if let Some(colon) = t.find(':') {
                let value = t[colon + 1..].trim().trim_matches(['"', '\'']);
                if !matches!(value, "" | "|" | ">") && !is_placeholder(value) {
                    let at = offset + indent + colon + 1;
                    let rel = text[at..offset + body.len()].find(value).expect("value in line");
                    values.push((at + rel, at + rel + value.len()));
                }
            }
        }
        if block.is_none() && (t == "data:" || t == "stringData:") {
            block = Some(indent);
        }
    }
    if KIND.is_match(&text[from..]) {
        out.append(&mut values);
    }
    out
}

/// The values of a `Cookie:` header (every `name=value` pair) and of a `Set-Cookie:` header (its
/// first pair; the rest are attributes), when they are at least 8 characters and not a
/// placeholder: session ids, not `theme=dark`.
pub(super) fn cookie_values(text: &str) -> Vec<(usize, usize)> {
    static HEADER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)\b(set-cookie|cookie)[ \t]*:[ \t]*([^\n]*)").expect("cookie regex")
    });
    if !text.to_ascii_lowercase().contains("cookie") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for caps in HEADER.captures_iter(text) {
        // Both groups take part in every match. A `Set-Cookie:` header's (one longer than
        // `cookie`) first pair is its cookie; the rest are attributes.
        let (header, pairs) = (&caps[1], caps.get(2).expect("cookie pairs"));
        let count = if header.len() > 6 { 1 } else { usize::MAX };
        let mut at = pairs.start();
        for pair in pairs.as_str().split(';').take(count) {
            let start = at;
            at += pair.len() + 1;
            let Some(eq) = pair.find('=') else { continue };
            let raw = &pair[eq + 1..];
            let value = raw.trim_start_matches([' ', '"', '\'']);
            let from = start + eq + 1 + raw.len() - value.len();
            let value = value.trim_end_matches([' ', '"', '\'', '\r']);
            if value.chars().count() >= 8 && !is_placeholder(value) && !value.contains("[REDACTED:") {
                out.push((from, from + value.len()));
            }
        }
    }
    out
}
