//! The release workflow and the `cargo binstall` metadata agree: for every target the workflow
//! builds, the binstall templates render to the archive it uploads and the path of the binary
//! inside it.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// `key = "value"` in the `[package.metadata.binstall]` table of Cargo.toml.
fn binstall(key: &str) -> String {
    let manifest = read("Cargo.toml");
    let table = manifest
        .split("\n[package.metadata.binstall]\n")
        .nth(1)
        .expect("a [package.metadata.binstall] table");
    let table = table.split("\n[").next().unwrap();
    table
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("{key} in [package.metadata.binstall]"))
}

/// binstall's template syntax (`{ var }`) with this crate's values, as binstall renders them.
fn render(template: &str, target: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let repo = env!("CARGO_PKG_REPOSITORY");
    template
        .replace("{ repo }", repo)
        .replace("{ name }", "convosync")
        .replace("{ version }", version)
        .replace("{ target }", target)
        .replace("{ bin }", "convosync")
        .replace("{ binary-ext }", "")
        .replace("{ archive-suffix }", ".tar.gz")
}

#[test]
fn binstall_metadata_matches_the_release_workflow() {
    let workflow = read(".github/workflows/release.yml");
    let targets: Vec<&str> = workflow
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- target: "))
        .collect();
    for needed in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(targets.contains(&needed), "the workflow builds {needed}");
    }
    // The archive's name, as the workflow spells it for a matrix target.
    let archive_template = workflow
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARCHIVE: "))
        .expect("ARCHIVE in the workflow's env");
    assert!(
        workflow.contains(r#"tar -C dist -czf "dist/$ARCHIVE.tar.gz" "$ARCHIVE""#),
        "the workflow packs dist/$ARCHIVE as $ARCHIVE.tar.gz"
    );
    assert!(
        workflow.contains(
            r#"cp "target/${{ matrix.target }}/release/convosync" README.md LICENSE "dist/$ARCHIVE/""#
        ),
        "the binary sits at the top of $ARCHIVE/"
    );
    assert!(workflow.contains("tags: [\"v*\"]") && workflow.contains(r#""v$version" != "$GITHUB_REF_NAME""#));
    assert!(workflow.contains("sha256sum convosync-*.tar.gz > SHA256SUMS"));
    assert!(workflow.contains("dist/convosync-*.tar.gz dist/SHA256SUMS"));
    assert_eq!(binstall("pkg-fmt"), "tgz");
    let version = env!("CARGO_PKG_VERSION");
    let repo = env!("CARGO_PKG_REPOSITORY");
    for target in targets {
        let archive = archive_template.replace("${{ matrix.target }}", target);
        assert_eq!(
            render(&binstall("pkg-url"), target),
            format!("{repo}/releases/download/v{version}/{archive}.tar.gz"),
            "{target}"
        );
        assert_eq!(
            render(&binstall("bin-dir"), target),
            format!("{archive}/convosync"),
            "{target}"
        );
    }
}
