//! `convosync export`: markdown, JSON and HTML, to one file or one file per handoff.

use crate::common::{ok, Device, TestEnv};
use crate::core::write_draft;
use crate::history::{history_env, run};

pub fn save_handoff(d: &Device, task: &str) {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    ok(d, &["save-handoff"]);
}

#[test]
fn export_split_writes_each_handoff_in_the_chosen_format() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    save_handoff(&a, "first from a");
    save_handoff(&b, "first from b");
    for (format, check) in [("json", "json"), ("html", "html"), ("md", "md")] {
        let dir = env.path().join(format!("out-{format}"));
        let said = ok(
            &b,
            &[
                "export",
                "--split",
                "--format",
                format,
                "--output",
                dir.to_str().unwrap(),
            ],
        );
        assert!(said.contains("wrote 2 handoff(s)"), "{said}");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        let mut tasks = String::new();
        for f in &files {
            assert_eq!(f.extension().and_then(|e| e.to_str()), Some(check), "{f:?}");
            let text = std::fs::read_to_string(f).unwrap();
            match format {
                "json" => {
                    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
                    assert!(v.is_object(), "{text}");
                    assert!(v["device"] == "a" || v["device"] == "b", "{text}");
                }
                "html" => assert!(
                    text.starts_with("<!doctype html>") && text.contains("</html>"),
                    "{text}"
                ),
                _ => assert!(text.contains("## Handoff from"), "{text}"),
            }
            tasks.push_str(&text);
        }
        assert!(
            tasks.contains("first from a") && tasks.contains("first from b"),
            "{format}: {tasks}"
        );
    }
    // The format is a closed set.
    let out = b
        .convosync()
        .args(["export", "--format", "pdf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("possible values: md, json, html"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_markdown_json_and_html() {
    let (env, a) = history_env();
    let md = run(&a, "desk", &["export"]);
    assert_eq!(md.matches("## Handoff from").count(), 4);
    let json: serde_json::Value = serde_json::from_str(&run(
        &a,
        "desk",
        &["export", "--format", "json", "--device", "desk"],
    ))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let folder = env.path().join("export");
    a.convosync()
        .args(["export", "--split", "--output"])
        .arg(&folder)
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 4);
    let page = env.path().join("handoffs.html");
    a.convosync()
        .args(["export", "--format", "html", "--output"])
        .arg(&page)
        .assert()
        .success();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<h2>Timeline</h2>") && html.contains("Margherita"));
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    // Opened in a real browser, the page shows the handoffs.
    let Some(dom) = chromium_dom(&page) else { return };
    assert!(
        dom.contains("Refresh-token storage in Redis"),
        "rendered DOM lacks the handoff"
    );
    assert!(dom.contains("<td>laptop</td>") && dom.contains("favourite pizza: Margherita"));
}

/// The page's DOM after headless Chromium loaded it; `None` (with a message) without Chromium.
fn chromium_dom(page: &std::path::Path) -> Option<String> {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists());
    let Some(bin) = bin else {
        crate::common::skip("chromium not installed (apt-get install chromium)");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
