//! `convosync export`: handoffs as markdown (one file or a folder), JSON, or one self-contained
//! HTML page (devices, a timeline, each handoff's sections).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::cli::{ExportArgs, ExportFormat};
use crate::handoff::format::{Fence, FenceLine};
use crate::history::{self, Version};
use crate::repo::Repo;

pub fn run(dir: &Path, args: ExportArgs) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let f = super::filter(&args.filter)?;
    let versions: Vec<Version> = super::told(history::versions(&repo.git, &repo.settings.refname)?)
        .into_iter()
        .filter(|v| f.accepts(v))
        .collect();
    if args.split {
        let out = args.output.as_deref().context("--split needs --output DIR")?;
        std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
        let ext = args.format.to_possible_value().context("no extension")?;
        let mut written = 0;
        // Only a valid device id (`[a-z0-9-]`) is ever part of a file name.
        for v in versions.iter().filter(|v| crate::device::is_valid(&v.device)) {
            let name = format!(
                "{}-{}-{}.{}",
                v.handoff.timestamp.format("%Y%m%dT%H%M%SZ"),
                v.device,
                v.short_id(),
                ext.get_name()
            );
            let text = render(args.format, std::slice::from_ref(v), &repo, true)?;
            crate::fsutil::atomic_write(&out.join(name), text.as_bytes())?;
            written += 1;
        }
        println!("wrote {written} handoff(s) to {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = render(args.format, &versions, &repo, false)?;
    match args.output {
        Some(path) => {
            crate::fsutil::atomic_write(&path, text.as_bytes())?;
            println!("wrote {} handoff(s) to {}", versions.len(), path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `versions` in `format`; `one`: the file of one handoff in a --split export (its own note, or
/// one JSON object).
fn render(format: ExportFormat, versions: &[Version], repo: &Repo, one: bool) -> Result<String> {
    let text = match format {
        ExportFormat::Md if one => crate::handoff::format::render(&versions[0].handoff),
        ExportFormat::Md => versions
            .iter()
            .fold("# convosync handoffs\n".to_string(), |out, v| {
                out + "\n---\n\n" + &crate::handoff::format::render(&v.handoff)
            }),
        ExportFormat::Json => {
            let mut json: Vec<_> = versions.iter().map(super::history::version_json).collect();
            serde_json::to_string_pretty(&if one { json.swap_remove(0) } else { json.into() })? + "\n"
        }
        ExportFormat::Html => html(versions, repo),
    };
    // Everything from the ref was cleaned when read; this is the last check before a terminal.
    Ok(crate::untrusted::text(&text).into_owned())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Just enough markdown for handoffs: headings, lists, paragraphs, fenced code.
fn md_to_html(body: &str) -> String {
    let mut out = String::new();
    let (mut in_list, mut in_code) = (false, false);
    let mut fence = Fence::default();
    for line in body.lines() {
        let kind = fence.line(line);
        let t = line.trim();
        let item = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).or_else(|| {
            let digits = t.chars().take_while(char::is_ascii_digit).count();
            (digits > 0).then(|| t[digits..].strip_prefix(". ")).flatten()
        });
        let item = item.filter(|_| kind == FenceLine::Outside);
        if in_list && item.is_none() {
            out.push_str("</ul>");
        }
        let _ = match (kind, item) {
            (FenceLine::Opens, _) => write!(out, "<pre><code>"),
            (FenceLine::Closes, _) => write!(out, "</code></pre>"),
            (FenceLine::Inside, _) => writeln!(out, "{}", esc(line)),
            (_, Some(i)) => write!(out, "{}<li>{}</li>", if in_list { "" } else { "<ul>" }, esc(i)),
            _ => match t.strip_prefix("#### ") {
                Some(h) => write!(out, "<h4>{}</h4>", esc(h)),
                None if !t.is_empty() => write!(out, "<p>{}</p>", esc(t)),
                None => Ok(()),
            },
        };
        in_list = item.is_some();
        in_code = matches!(kind, FenceLine::Opens | FenceLine::Inside);
    }
    if in_list {
        out.push_str("</ul>");
    }
    if in_code {
        out.push_str("</code></pre>");
    }
    out
}

fn html(versions: &[Version], repo: &Repo) -> String {
    let now = crate::timefmt::now();
    let name = repo.workdir().and_then(|w| w.file_name());
    let name = name.map(|n| esc(&n.to_string_lossy())).unwrap_or_default();
    let mut devices: Vec<(&str, &Version, usize)> = Vec::new();
    for v in versions {
        match devices.iter_mut().find(|(d, _, _)| *d == v.device) {
            Some(e) => e.2 += 1,
            None => devices.push((&v.device, v, 1)),
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>convosync handoffs: {name}</title>\n<style>\
body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
h1{{font-size:1.6rem}} table{{border-collapse:collapse}} td,th{{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}}\
.handoff{{border:1px solid #ccc;border-radius:8px;padding:.5rem 1rem;margin:1rem 0}} .meta{{color:#666;font-size:.9rem}}\
ol.timeline li{{margin:.2rem 0}} pre{{background:#f5f5f5;padding:.5rem;overflow:auto}} h3{{margin-bottom:.2rem}}\
</style></head><body>\n<h1>convosync handoffs: {name}</h1>\n"
    );
    let _ = write!(s, "<h2>Devices</h2>\n<table><tr><th>device</th><th>last seen</th><th>branch</th><th>handoffs</th></tr>\n");
    for (d, v, n) in &devices {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{n}</td></tr>",
            esc(d),
            esc(&crate::timefmt::ago(v.handoff.timestamp, now)),
            esc(v.handoff.branch.as_deref().unwrap_or("(detached)"))
        );
    }
    s.push_str("</table>\n<h2>Timeline</h2>\n<ol class=\"timeline\">\n");
    for v in versions {
        let _ = writeln!(
            s,
            "<li><a href=\"#h-{}\">{}</a> · {} · {}</li>",
            v.short_id(),
            esc(&crate::timefmt::rfc3339(v.handoff.timestamp)),
            esc(&v.device),
            esc(&v.handoff.task_line(100))
        );
    }
    s.push_str("</ol>\n<h2>Handoffs</h2>\n");
    for v in versions {
        let h = &v.handoff;
        let _ = write!(
            s,
            "<section class=\"handoff\" id=\"h-{}\"><h2>{}</h2><p class=\"meta\">{} · branch {} · commit {}</p>",
            v.short_id(),
            esc(&v.device),
            esc(&crate::timefmt::rfc3339(h.timestamp)),
            esc(h.branch.as_deref().unwrap_or("(detached)")),
            esc(&h.commit.as_ref().map(|c| format!("{} {}", c.short(), c.subject)).unwrap_or_default())
        );
        for sec in &h.sections {
            let _ = write!(s, "<h3>{}</h3>{}", esc(&sec.title), md_to_html(&sec.body));
        }
        s.push_str("</section>\n");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset_is_escaped() {
        let html =
            md_to_html("- <b>bold</b>\n1. first\n\ntext & more\n```\n<script>x</script>\n```\n#### sub");
        assert_eq!(
            html,
            "<ul><li>&lt;b&gt;bold&lt;/b&gt;</li><li>first</li></ul><p>text &amp; more</p><pre><code>&lt;script&gt;x&lt;/script&gt;\n</code></pre><h4>sub</h4>"
        );
    }

    /// A fence closes only where the note's own fence rule closes it: a shorter fence inside a
    /// longer one is code, as in the handoff's sections.
    #[test]
    fn a_shorter_fence_inside_a_longer_one_stays_code() {
        assert_eq!(
            md_to_html("````md\n```\n<i>x</i>\n```\n````\nafter"),
            "<pre><code>```\n&lt;i&gt;x&lt;/i&gt;\n```\n</code></pre><p>after</p>"
        );
    }
}
