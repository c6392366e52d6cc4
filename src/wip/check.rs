//! Pure checks on what a snapshot carries: raw tree objects from the remote (git's fsck tree
//! rules, and the spellings of `.git` that HFS+ and NTFS treat as `.git`) and paths that steer
//! tools. Which files hold credentials is [`crate::secrets`]'s to say. Nothing here touches the
//! disk or a repository.

use super::mode::{Mode, MODE_LINK, MODE_TREE};

/// One entry of a raw tree object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub mode: u32,
    pub name: Vec<u8>,
    pub id: [u8; 20],
}

/// Parse a raw tree object (`<octal mode> <name>\0<20-byte id>`, repeated). Zero-padded modes,
/// empty modes and truncated entries are refused, as `git fsck` does.
pub fn parse_tree(raw: &[u8]) -> Result<Vec<RawEntry>, String> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a tree entry without a mode")?;
        let mode_text = &rest[..sp];
        if mode_text.is_empty()
            || mode_text[0] == b'0'
            || !mode_text.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let shown = String::from_utf8_lossy(mode_text);
            return Err(format!("a malformed mode {shown:?}"));
        }
        if mode_text.len() > 6 {
            return Err("a malformed mode".into());
        }
        let mode = mode_text.iter().fold(0u32, |m, b| m * 8 + u32::from(b - b'0'));
        rest = &rest[sp + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("a tree entry without a name terminator")?;
        let name = rest[..nul].to_vec();
        rest = &rest[nul + 1..];
        let (id, tail) = rest.split_at_checked(20).ok_or("a truncated tree entry")?;
        let id = id.try_into().expect("20 bytes");
        rest = tail;
        out.push(RawEntry { mode, name, id });
    }
    Ok(out)
}

/// `name` as HFS+ compares it: ASCII case and the code points it ignores (git's
/// `next_hfs_char`) do not count, so it equals a lower-case ASCII name it stands for.
fn hfs_fold(name: &str) -> String {
    let ignorable =
        |c: &char| matches!(*c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff);
    name.chars()
        .filter(|c| !ignorable(c))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `name` is `needle` (lower-case ASCII) on NTFS: ASCII case does not count, trailing
/// dots and spaces are dropped, `:stream` names an alternate data stream of the same file, and
/// `short` (a `~1`-style 8.3 alias prefix, without the digit) names it too.
fn ntfs_is(name: &str, needle: &str, short: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let tail_ok = |t: &str| {
        let t = t.split(':').next().unwrap_or("");
        t.chars().all(|c| c == '.' || c == ' ')
    };
    lower.strip_prefix(needle).is_some_and(tail_ok)
        || lower
            .strip_prefix(short)
            .and_then(|t| t.strip_prefix(['1', '2', '3', '4']))
            .is_some_and(tail_ok)
}

/// Whether a name is `.git` in any spelling a filesystem could take for it.
pub fn is_dotgit(name: &str) -> bool {
    name.split('\\')
        .any(|part| hfs_fold(part) == ".git" || ntfs_is(part, ".git", "git~"))
}

/// Files that git refuses as symlinks (fsck's `gitmodulesSymlink` and friends), with the short
/// names NTFS gives them.
const NO_SYMLINK: &[(&str, &str)] = &[
    (".gitmodules", "gi7eba~"),
    (".gitattributes", "gi7d29~"),
    (".gitignore", "gi250a~"),
    (".mailmap", "maba30~"),
];

/// Why one entry name is refused, or `None` when it is fine.
pub fn bad_name(name: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(name);
    let is = |f: fn(&str) -> bool| text.is_ok_and(f);
    [
        (name.is_empty(), "an empty name"),
        (name.contains(&b'/'), "a name containing '/'"),
        (name.contains(&0), "a name containing NUL"),
        (text.is_err(), "a name that is not UTF-8"),
        (is(|n| n == "." || n == ".."), "a '.' or '..' entry"),
        (
            is(|n| n.chars().any(char::is_control)),
            "a name with control characters",
        ),
        (is(is_dotgit), "a .git entry (in some spelling)"),
    ]
    .into_iter()
    .find_map(|(bad, why)| bad.then_some(why))
}

/// Git's tree order: names compared bytewise, a directory as if it ended in '/'.
fn sort_key(e: &RawEntry) -> Vec<u8> {
    let dir: &[u8] = if e.mode == MODE_TREE { b"/" } else { b"" };
    [&e.name[..], dir].concat()
}

/// Check one tree's entries as `git fsck` does: names, modes, duplicates (a file or symlink and
/// a directory of the same name count), order, and symlinked `.gitmodules`-like files.
pub fn check_entries(entries: &[RawEntry]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let shown = String::from_utf8_lossy(&e.name).escape_debug().to_string();
        if let Some(why) = bad_name(&e.name) {
            return Err(format!("{why}: \"{shown}\""));
        }
        if e.mode != MODE_TREE && Mode::from_raw(e.mode).is_err() {
            return Err(format!("a bad mode {:o} for \"{shown}\"", e.mode));
        }
        if !seen.insert(e.name.as_slice()) {
            return Err(format!("a duplicate entry \"{shown}\""));
        }
        if e.mode == MODE_LINK {
            let name = std::str::from_utf8(&e.name).unwrap_or_default();
            if NO_SYMLINK
                .iter()
                .any(|(n, short)| hfs_fold(name) == *n || ntfs_is(name, n, short))
            {
                return Err(format!("a symlink named \"{shown}\""));
            }
        }
        if i > 0 && sort_key(&entries[i - 1]) >= sort_key(e) {
            return Err(format!("entries out of order at \"{shown}\""));
        }
    }
    Ok(())
}

/// A name folded the way case-insensitive filesystems compare it (ASCII case, HFS+ ignorables,
/// NTFS trailing dots and spaces), for matching names that steer tools.
fn fold(name: &str) -> String {
    hfs_fold(name).trim_end_matches(['.', ' ']).to_string()
}

/// A path with each name folded as in [`steering`], for comparing paths the way a
/// case-insensitive filesystem does.
pub fn fold_path(path: &str) -> String {
    path.split('/').map(fold).collect::<Vec<_>>().join("/")
}

/// Directories whose files steer a tool when present (anywhere in the worktree, or at the root
/// when `root_only`).
const STEERING_DIRS: &[(&str, bool, &str)] = &[
    (".convosync", false, "convosync's own files"),
    (".claude", false, "Claude Code settings, hooks and commands"),
    (".vscode", false, "editor tasks and settings"),
    (".idea", false, "editor run configurations"),
    (".devcontainer", false, "dev container commands"),
    (".husky", false, "git hooks"),
    (".circleci", true, "CI configuration"),
    (".buildkite", true, "CI configuration"),
    (".woodpecker", true, "CI configuration"),
];

/// Files that steer a tool, by folded name.
const STEERING_FILES: &[(&str, &str)] = &[
    ("claude.md", "instructions Claude Code loads"),
    ("claude.local.md", "instructions Claude Code loads"),
    (".mcp.json", "MCP servers Claude Code starts"),
    (".envrc", "a direnv script"),
    (".mise.toml", "a mise configuration"),
    ("mise.toml", "a mise configuration"),
    (".pre-commit-config.yaml", "git hooks"),
    ("lefthook.yml", "git hooks"),
    (".lefthook.yml", "git hooks"),
    ("jenkinsfile", "CI configuration"),
    (".travis.yml", "CI configuration"),
    (".drone.yml", "CI configuration"),
    (".woodpecker.yml", "CI configuration"),
    ("azure-pipelines.yml", "CI configuration"),
    ("bitbucket-pipelines.yml", "CI configuration"),
];

/// Why a path steers a tool (git, Claude Code, CI, an editor, direnv), or `None`. Such files are
/// applied only when asked for explicitly. `link` is a symlink's target: one that leaves the
/// worktree or points into `.git` steers whatever later writes through it.
pub fn steering(path: &str, link: Option<&[u8]>) -> Option<&'static str> {
    let parts: Vec<String> = path.split('/').map(fold).collect();
    let (name, dirs) = parts.split_last()?;
    let dir = dirs.iter().enumerate().find_map(|(i, d)| {
        STEERING_DIRS
            .iter()
            .find(|(n, root_only, _)| d == n && (!root_only || i == 0))
    });
    if let Some((_, _, why)) = dir {
        return Some(why);
    }
    if dirs.first().is_some_and(|d| d == ".github")
        && dirs.get(1).is_some_and(|d| d == "workflows" || d == "actions")
    {
        return Some("CI configuration");
    }
    if name.starts_with(".git") {
        return Some("git configuration (attributes, ignores, submodules, CI)");
    }
    if let Some((_, why)) = STEERING_FILES.iter().find(|(n, _)| n == name) {
        return Some(why);
    }
    if let Some(target) = link {
        let target = String::from_utf8_lossy(target);
        if target.starts_with('/') {
            return Some("a symlink to an absolute path");
        }
        let mut depth = dirs.len() as i64;
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                p if is_dotgit(p) => return Some("a symlink into .git"),
                _ => depth += 1,
            }
            if depth < 0 {
                return Some("a symlink out of the worktree");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(&[7u8; 20]);
        }
        out
    }

    fn check(entries: &[(&str, &[u8])]) -> Result<(), String> {
        check_entries(&parse_tree(&raw(entries))?)
    }

    #[test]
    fn a_plain_tree_passes() {
        assert_eq!(
            check(&[
                ("100644", b"a"),
                ("40000", b"a-b"),
                ("40000", b"a.d"),
                ("100755", b"run.sh"),
                ("120000", b"z-link"),
                ("160000", b"zz-sub"),
            ]),
            Ok(())
        );
        // A directory sorts as if its name ended in '/'.
        assert_eq!(check(&[("100644", b"a.c"), ("40000", b"a")]), Ok(()));
    }

    #[test]
    fn dotgit_in_every_spelling_is_refused() {
        for name in [
            ".git",
            ".GIT",
            ".Git",
            ".g\u{200c}it",
            "\u{feff}.git",
            ".git\u{200d}",
            ".\u{206a}GIT",
            "git~1",
            "GIT~1",
            ".git.",
            ".git ",
            ".git. .",
            ".git::$INDEX_ALLOCATION",
            "GIT~1:stream",
            "x\\.git",
        ] {
            assert!(is_dotgit(name), "{name:?}");
            assert!(check(&[("40000", name.as_bytes())]).is_err(), "{name:?}");
        }
        for name in [
            ".github",
            ".gitx",
            "git",
            "git~5",
            ".gi",
            "a.git",
            ".git-blame-ignore",
        ] {
            assert!(!is_dotgit(name), "{name:?}");
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [&b"."[..], b"..", b"a/b", b"/", b"", b"bad\x1b[31m", b"\xff\xfe"] {
            assert!(bad_name(name).is_some(), "{name:?}");
        }
        // Raw parsing stops a name at NUL, and an entry whose id is cut short is refused.
        assert!(parse_tree(b"100644 a\0short").is_err());
        assert!(check(&[("100644", b"a/b")]).unwrap_err().contains("'/'"));
        assert!(check(&[("100644", b"")]).unwrap_err().contains("empty"));
    }

    #[test]
    fn duplicates_and_order_are_refused() {
        let e = check(&[("100644", b"a"), ("100644", b"a")]).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        // A symlink and a directory of the same name.
        let e = check(&[("120000", b"sub"), ("40000", b"sub")]).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        let e = check(&[("40000", b"sub"), ("120000", b"sub")]).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        let e = check(&[("100644", b"b"), ("100644", b"a")]).unwrap_err();
        assert!(e.contains("order"), "{e}");
    }

    #[test]
    fn bad_modes_are_refused() {
        for mode in [
            "100600", "100777", "040000", "0100644", "12", "777777", "1006448", "10064a",
        ] {
            assert!(check(&[(mode, b"f")]).is_err(), "{mode}");
        }
        assert!(parse_tree(b" f\0aaaaaaaaaaaaaaaaaaaa").is_err());
    }

    #[test]
    fn gitmodules_like_symlinks_are_refused() {
        for name in [
            ".gitmodules",
            ".GITMODULES",
            ".gitattributes ",
            ".git\u{200c}ignore",
            "GI7EBA~1",
            ".mailmap",
        ] {
            assert!(check(&[("120000", name.as_bytes())]).is_err(), "{name:?}");
        }
        assert_eq!(check(&[("100644", b".gitmodules")]), Ok(()));
    }

    #[test]
    fn steering_paths_are_named() {
        for path in [
            ".convosync/x",
            ".claude/settings.json",
            "sub/.claude/commands/a.md",
            ".gitattributes",
            "sub/.gitignore",
            ".gitmodules",
            ".GITATTRIBUTES.",
            ".g\u{200c}itattributes",
            ".gitlab-ci.yml",
            ".envrc",
            ".github/workflows/ci.yml",
            ".github/actions/x/action.yml",
            ".circleci/config.yml",
            ".buildkite/pipeline.yml",
            "Jenkinsfile",
            ".vscode/tasks.json",
            "CLAUDE.md",
            ".mcp.json",
            ".husky/pre-commit",
        ] {
            assert!(steering(path, None).is_some(), "{path}");
        }
        for path in [
            "src/main.rs",
            ".github/CODEOWNERS",
            "docs/.circleci/x",
            "Makefile",
            "claude.rs",
        ] {
            assert_eq!(steering(path, None), None, "{path}");
        }
        assert!(steering("link", Some(b"/etc/passwd")).is_some());
        assert!(steering("a/link", Some(b"../../x")).is_some());
        assert!(steering("hooks", Some(b".git/hooks")).is_some());
        assert!(steering("hooks", Some(b"./.GIT/hooks")).is_some());
        assert_eq!(steering("a/link", Some(b"../b/c")), None);
    }
}
