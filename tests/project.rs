//! The project a session belongs to: which repository its hooks use (the session's project, not
//! wherever the shell moved), which namespace it has in a notes repository, and convosync's own
//! git commands running none of the user's git hooks.

use std::path::Path;

use crate::common::{git, Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::hook;

/// A git hook that appends its own name to `marker` whenever git runs it.
fn marking_hook(dir: &Path, name: &str, marker: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let text = format!("#!/bin/sh\necho {name} >> '{}'\n", marker.display());
    crate::common::script(&dir.join(name), &text);
}

fn stop_json(d: &Device, cwd: &Path, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": cwd, "hook_event_name": "Stop",
        "stop_hook_active": true, "transcript_path": d.dir.join(".git/test-transcript.jsonl")})
    .to_string()
}

fn start_json(cwd: &Path, session: &str) -> String {
    serde_json::json!({"session_id": session, "cwd": cwd, "hook_event_name": "SessionStart",
        "source": "startup"})
    .to_string()
}

#[test]
fn convosyncs_own_git_runs_no_user_hook() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    let marker = env.path().join("hooks-ran");
    // The user's hooks, both where git looks by default and where `core.hooksPath` points.
    let own = env.path().join("user-hooks");
    for dir in [a.dir.join(".git/hooks"), own.clone()] {
        for name in ["reference-transaction", "pre-push", "post-merge", "post-checkout"] {
            marking_hook(&dir, name, &marker);
        }
    }
    a.git(&["config", "core.hooksPath", own.to_str().unwrap()]);
    // The hooks work: a plain git command of the user's runs them.
    a.git(&["update-ref", "refs/probe", "HEAD"]);
    assert!(marker.exists(), "the hook runs for the user's own git");
    std::fs::remove_file(&marker).unwrap();

    // Another device's note, so that a's fetch brings something and merges it.
    write_draft(&b, "### Current Task\nnote from b\n");
    b.convosync().arg("save-handoff").assert().success();
    let v = hook(&a, "session-start", &start_json(&a.dir, "s1")).expect("notes");
    assert!(v.to_string().contains("note from b"), "{v}");
    // A Stop that commits a draft and pushes it.
    write_draft(&a, "### Current Task\nnote from a\n");
    let v = hook(&a, "stop", &stop_json(&a, &a.dir, "s1")).unwrap();
    assert!(v.to_string().contains("pushed"), "{v}");
    assert!(b.git(&["ls-remote", "origin", "refs/convosync/handoffs"]).len() > 40);
    a.convosync().arg("sync").assert().success();
    // `resume --pull` fetches the branch and fast-forwards it.
    std::fs::write(b.dir.join("new.txt"), "new\n").unwrap();
    b.git(&["add", "new.txt"]);
    b.git(&["commit", "-q", "-m", "new file"]);
    b.git(&["push", "-q", "origin", "HEAD:main"]);
    let out = a.convosync().args(["resume", "--pull"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fast-forwarded 1 commit"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(a.dir.join("new.txt").exists());

    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(ran.is_empty(), "user git hooks ran inside convosync: {ran}");
}

/// A superproject and the submodule it holds at `sub/`, each with a bare remote of its own, and
/// a device's clone of the superproject with the submodule checked out.
struct WithSubmodule {
    root: tempfile::TempDir,
    device: Device,
}

impl WithSubmodule {
    fn new() -> WithSubmodule {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let home = r.join("seed-home");
        let gitconfig = "[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n";
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), gitconfig).unwrap();
        for name in ["sub", "super"] {
            git(r, &home, &["init", "-q", "--bare", &format!("{name}.git")]);
            git(
                r,
                &home,
                &["clone", "-q", &format!("{name}.git"), &format!("seed-{name}")],
            );
            let seed = r.join(format!("seed-{name}"));
            std::fs::write(seed.join("README.md"), format!("# {name}\n")).unwrap();
            git(&seed, &home, &["add", "README.md"]);
            if name == "super" {
                let url = r.join("sub.git");
                git(
                    &seed,
                    &home,
                    &["submodule", "add", "-q", url.to_str().unwrap(), "sub"],
                );
            }
            git(&seed, &home, &["commit", "-q", "-m", "initial commit"]);
            git(&seed, &home, &["push", "-q", "origin", "HEAD:main"]);
        }
        let dhome = r.join("home-laptop");
        std::fs::create_dir_all(&dhome).unwrap();
        std::fs::write(dhome.join(".gitconfig"), gitconfig).unwrap();
        git(
            r,
            &dhome,
            &["clone", "-q", "--recurse-submodules", "super.git", "laptop"],
        );
        let device = Device {
            name: "laptop".into(),
            dir: r.join("laptop"),
            home: dhome,
        };
        assert!(device.dir.join("sub/README.md").exists());
        WithSubmodule { root, device }
    }

    /// The convosync refs of the bare remote `name`.
    fn notes_on(&self, name: &str) -> String {
        git(
            self.root.path(),
            &self.device.home,
            &[
                "--git-dir",
                &format!("{name}.git"),
                "for-each-ref",
                "refs/convosync",
            ],
        )
    }

    fn note_on(&self, name: &str) -> String {
        git(
            self.root.path(),
            &self.device.home,
            &[
                "--git-dir",
                &format!("{name}.git"),
                "show",
                "refs/convosync/handoffs:devices/laptop.md",
            ],
        )
    }
}

#[test]
fn a_stop_inside_a_submodule_saves_the_superprojects_note() {
    let w = WithSubmodule::new();
    let d = &w.device;
    let sub = d.dir.join("sub");
    // The session started at the top of the superproject; its shell is now in the submodule.
    hook(d, "session-start", &start_json(&d.dir, "s1"));
    write_draft(d, "### Current Task\nsuper-task-7171\n");
    let v = hook(d, "stop", &stop_json(d, &sub, "s1")).expect("saved");
    assert!(v.to_string().contains("pushed"), "{v}");
    assert!(w.note_on("super").contains("super-task-7171"));
    assert_eq!(w.notes_on("sub"), "", "nothing on the submodule's remote");
    assert!(
        git(&sub, &d.home, &["for-each-ref", "refs/convosync"]).is_empty(),
        "nor on the submodule's own refs"
    );

    // A session whose start was not seen: the agent's project directory decides.
    write_draft(d, "### Current Task\nsuper-task-8282\n");
    let out = d
        .convosync()
        .args(["hook", "stop"])
        .env("CLAUDE_PROJECT_DIR", &d.dir)
        .write_stdin(stop_json(d, &sub, "s2"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("pushed"), "{out:?}");
    assert!(w.note_on("super").contains("super-task-8282"));
    assert_eq!(w.notes_on("sub"), "");

    // A session that asks for a note from inside the submodule asks for the superproject's draft.
    let transcript = d.dir.join(".git/test-transcript.jsonl");
    let line = serde_json::json!({"type": "assistant", "timestamp": chrono::Utc::now().to_rfc3339(),
        "message": {"role": "assistant", "content": [{"type": "tool_use", "name": "Write",
        "input": {"file_path": sub.join("x.rs"), "content": "x"}}]}});
    std::fs::write(&transcript, format!("{line}\n")).unwrap();
    hook(d, "session-start", &start_json(&d.dir, "s3"));
    let input = serde_json::json!({"session_id": "s3", "cwd": sub, "hook_event_name": "Stop",
        "stop_hook_active": false, "transcript_path": transcript})
    .to_string();
    let v = hook(d, "stop", &input).expect("asks for a note");
    let asked = crate::hooks::stop_request(&v);
    let top = d.dir.join(".convosync/session-handoff-draft.md");
    assert!(asked.contains(top.to_str().unwrap()), "{asked}");
}

/// A bare notes repository and a project's bare remote with three commits, in one temp dir.
struct Notes {
    root: tempfile::TempDir,
    home: std::path::PathBuf,
}

impl Notes {
    fn new() -> Notes {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let home = r.join("seed-home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
        git(r, &home, &["init", "-q", "--bare", "notes.git"]);
        git(r, &home, &["init", "-q", "--bare", "web.git"]);
        git(r, &home, &["clone", "-q", "web.git", "seed"]);
        let seed = r.join("seed");
        for i in 0..3 {
            std::fs::write(seed.join("README.md"), format!("# web {i}\n")).unwrap();
            git(&seed, &home, &["add", "README.md"]);
            git(&seed, &home, &["commit", "-q", "-m", &format!("commit {i}")]);
        }
        git(&seed, &home, &["push", "-q", "origin", "HEAD:main"]);
        Notes { root, home }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.root.path().join(p)
    }

    /// A device `name` at `dir` (relative to the temp dir), made by `make` (run in the temp dir
    /// with the device's home), keeping its notes in the notes repository.
    fn device(&self, name: &str, dir: &str, make: &[&str]) -> Device {
        let home = self.path(&format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
        git(self.root.path(), &home, make);
        let d = Device {
            name: name.to_string(),
            dir: self.path(dir),
            home,
        };
        d.git(&[
            "config",
            "convosync.remote",
            self.path("notes.git").to_str().unwrap(),
        ]);
        d
    }

    /// A clone of the project as `name`, with extra `git clone` options, its `origin` then set
    /// to `url` (the project's remote as that machine spells it; never contacted by convosync,
    /// which exchanges notes with the notes repository only).
    fn clone(&self, name: &str, opts: &[&str], url: &str) -> Device {
        let src = format!("file://{}", self.path("web.git").display());
        let mut make = vec!["clone", "-q"];
        make.extend_from_slice(opts);
        make.extend_from_slice(&[&src, name]);
        let d = self.device(name, name, &make);
        d.git(&["remote", "set-url", "origin", url]);
        d
    }

    /// The namespaces holding a handoff ref in the notes repository.
    fn namespaces(&self) -> Vec<String> {
        let refs = git(
            self.root.path(),
            &self.home,
            &[
                "--git-dir",
                "notes.git",
                "for-each-ref",
                "--format=%(refname)",
                "refs/convosync/p/",
            ],
        );
        refs.lines()
            .filter_map(|r| r.strip_suffix("/handoffs"))
            .map(|r| r.trim_start_matches("refs/convosync/p/").to_string())
            .collect()
    }
}

fn save_note(d: &Device, task: &str) {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    let out = d.convosync().arg("save-handoff").output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn resume(d: &Device) -> String {
    let out = d.convosync().arg("resume").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespace a device's clone uses now.
fn namespace(d: &Device) -> String {
    std::fs::read_to_string(d.dir.join(".git/convosync/project-id"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn one_project_meets_in_one_namespace_whatever_the_clone() {
    let n = Notes::new();
    let ssh = n.clone("ssh", &[], "git@example.com:me/web.git");
    let https = n.clone("https", &[], "https://example.com/me/web");
    let shallow = n.clone("shallow", &["--depth", "1"], "ssh://git@example.com:22/me/web/");
    assert_eq!(shallow.git(&["rev-parse", "--is-shallow-repository"]), "true");

    save_note(&ssh, "ssh-task-1001");
    save_note(&shallow, "shallow-task-1002");
    let seen = resume(&https);
    assert!(
        seen.contains("ssh-task-1001") && seen.contains("shallow-task-1002"),
        "{seen}"
    );
    assert_eq!(n.namespaces().len(), 1, "{:?}", n.namespaces());
    let ns = namespace(&ssh);
    assert_eq!(namespace(&https), ns);
    assert_eq!(namespace(&shallow), ns);

    // The shallow clone gets its whole history: its namespace does not move.
    let full = format!("file://{}", n.path("web.git").display());
    shallow.git(&["fetch", "-q", "--unshallow", &full, "main"]);
    assert_eq!(shallow.git(&["rev-parse", "--is-shallow-repository"]), "false");
    save_note(&shallow, "shallow-task-1003");
    assert_eq!(namespace(&shallow), ns);
    assert!(resume(&ssh).contains("shallow-task-1003"));
    assert_eq!(n.namespaces(), vec![ns.clone()]);
}

#[test]
fn forks_and_unrelated_repositories_never_mix() {
    let n = Notes::new();
    let mine = n.clone("mine", &[], "git@example.com:me/web.git");
    // A fork: the same history (root commit and all), another remote.
    let fork = n.clone("fork", &[], "git@example.com:someone/web.git");
    assert_eq!(
        mine.git(&["rev-list", "--max-parents=0", "HEAD"]),
        fork.git(&["rev-list", "--max-parents=0", "HEAD"])
    );
    // Two repositories with no commit and no remote, both called `web`.
    let a = n.device("a", "a/web", &["init", "-q", "a/web"]);
    let b = n.device("b", "b/web", &["init", "-q", "b/web"]);

    save_note(&mine, "mine-task-2001");
    save_note(&fork, "fork-task-2002");
    save_note(&a, "a-task-2003");
    save_note(&b, "b-task-2004");
    let spaces = n.namespaces();
    assert_eq!(spaces.len(), 4, "{spaces:?}");
    for (d, own, others) in [
        (&mine, "mine", ["fork", "a-task", "b-task"]),
        (&fork, "fork", ["mine", "a-task", "b-task"]),
        (&a, "a-task", ["mine", "fork", "b-task"]),
        (&b, "b-task", ["mine", "fork", "a-task"]),
    ] {
        // Each sees its own notes (as `resume --all` lists them) and nobody else's.
        let out = d.convosync().args(["resume", "--all"]).output().unwrap();
        let seen = String::from_utf8_lossy(&out.stdout);
        assert!(seen.contains(own), "{}: {seen}", d.name);
        for o in others {
            assert!(!seen.contains(o), "{} sees {o}: {seen}", d.name);
        }
    }
    // Neither empty repository took its folder's name.
    assert!(!spaces.iter().any(|s| s == "web"), "{spaces:?}");
    // A commit later, still without a remote, the local namespace's notes come along.
    std::fs::write(a.dir.join("f.txt"), "f\n").unwrap();
    a.git(&["add", "f.txt"]);
    a.git(&["commit", "-q", "-m", "first"]);
    let before = namespace(&a);
    let out = a.convosync().args(["resume", "--all"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("a-task-2003"),
        "{out:?}"
    );
    assert_ne!(namespace(&a), before, "the namespace follows the root commit");
}

#[test]
fn notes_of_the_earlier_namespace_are_carried_over() {
    let n = Notes::new();
    let old = n.clone("old", &[], "git@example.com:me/web.git");
    // As an earlier version named every project: 12 digits of the root commit, remembered in
    // the clone, with a note already on that namespace in the notes repository.
    let root = old.git(&["rev-list", "--max-parents=0", "HEAD"]);
    let earlier = root[..12].to_string();
    write_draft(&old, "### Current Task\nlegacy-task-3001\n");
    let out = old
        .convosync()
        .env("CONVOSYNC_REF", format!("refs/convosync/p/{earlier}/handoffs"))
        .arg("save-handoff")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::create_dir_all(old.dir.join(".git/convosync")).unwrap();
    std::fs::write(old.dir.join(".git/convosync/project-id"), format!("{earlier}\n")).unwrap();
    assert_eq!(n.namespaces(), vec![earlier.clone()]);

    // Another device of the same project, upgraded, on a new clone: nothing yet.
    let new = n.clone("new", &[], "https://example.com/me/web.git");
    assert!(!resume(&new).contains("legacy-task-3001"));
    // The upgraded old clone carries its earlier namespace over at its next exchange...
    let out = old.convosync().arg("sync").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(namespace(&old), namespace(&new));
    // ... after which every device of the project reads the earlier notes.
    assert!(resume(&new).contains("legacy-task-3001"));
    let spaces = n.namespaces();
    assert!(
        spaces.contains(&earlier) && spaces.contains(&namespace(&new)),
        "{spaces:?}"
    );
}
