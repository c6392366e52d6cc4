//! Private notes: handoffs encrypted to the person's own key, and a notes repository shared by
//! several projects (issue 16).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{git, Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::start;

const TASK: &str = "zebra-quantum-4711 rotate the signing keys";
const PREF: &str = "favourite pizza: Margherita-8812";

pub(crate) fn save(d: &Device, task: &str) {
    write_draft(
        d,
        &format!("### Current Task\n{task}\n\n### Important Context\n- {PREF}\n"),
    );
    d.convosync().arg("save-handoff").assert().success();
}

pub(crate) fn run(d: &Device, args: &[&str]) -> (bool, String, String) {
    let out = d.convosync().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Every object of the bare repository `remote`, commits, trees and blobs, as raw bytes.
pub(crate) fn all_objects(remote: &Path, home: &Path) -> Vec<u8> {
    let mut cmd = std::process::Command::new("git");
    crate::common::hermetic(&mut cmd, home);
    let out = cmd
        .current_dir(remote)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

pub(crate) fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

pub(crate) fn key_show(d: &Device) -> String {
    let (ok, out, err) = run(d, &["key", "show"]);
    assert!(ok, "{err}");
    assert!(err.contains("SECRET"), "a warning on stderr: {err}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.starts_with("CONVOSYNC-KEY-1"), "{out}");
    out.trim().to_string()
}

#[test]
fn keyed_devices_resume_and_the_remote_never_sees_the_text() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    let (ok, out, err) = run(&a, &["key", "init"]);
    assert!(ok, "{err}");
    assert!(out.contains("created your key"), "{out}");
    let key_file = a.home.join(".config/convosync/key.txt");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is readable by its owner only");
    let (_, status, _) = run(&a, &["key"]);
    assert!(
        status.contains("encrypted, keys ") && status.contains("(yours)"),
        "{status}"
    );
    save(&a, TASK);

    // The second device has no key yet; carrying it over is one line each way.
    assert!(!run(&b, &["key", "show"]).0, "no key to show");
    assert!(
        !run(&b, &["key", "add", "AGE-SECRET-KEY-1NOTAKEY"]).0,
        "a bad key is refused"
    );
    let secret = key_show(&a);
    let (ok, out, err) = run(&b, &["key", "add", &secret]);
    assert!(ok, "{err}");
    assert!(out.contains("encrypted with it"), "{out}");

    let v = start(&b, "s1");
    let v = v.expect("context");
    let ctx = v["hookSpecificOutput"]["additionalContext"].as_str().unwrap();
    assert!(
        ctx.contains(TASK) && ctx.contains(PREF),
        "decrypted into the context: {ctx}"
    );
    assert!(v["systemMessage"].as_str().unwrap().contains("zebra-quantum"));

    for args in [
        vec!["resume"],
        vec!["history", "show", "desktop"],
        vec!["search", "zebra-quantum-4711"],
        vec!["export", "--format", "json"],
    ] {
        let args: Vec<&str> = if args[0] == "history" {
            let (_, list, _) = run(&b, &["history", "--json"]);
            let list: Value = serde_json::from_str(&list).expect("history json");
            let id = list[0]["id"].as_str().expect("an id").to_string();
            let (ok, out, err) = run(&b, &["history", "show", &id]);
            assert!(ok && out.contains(TASK), "history show: {out}{err}");
            continue;
        } else {
            args
        };
        let (ok, out, err) = run(&b, &args);
        assert!(ok && out.contains("zebra-quantum-4711"), "{args:?}: {out}\n{err}");
        assert!(!err.contains("encrypted"), "{args:?}: {err}");
    }
    let (ok, out, _) = run(&b, &["devices"]);
    assert!(ok && out.contains("desktop"), "{out}");

    // The second device writes encrypted too, and the first reads it.
    save(&b, "laptop-secret-9931 migrate the database");
    let (ok, out, _) = run(&a, &["resume"]);
    assert!(ok && out.contains("laptop-secret-9931"), "{out}");

    let objects = all_objects(&env.remote(), &a.home);
    for text in [TASK, "zebra-quantum", PREF, "Margherita", "laptop-secret-9931"] {
        assert!(
            !contains(&objects, text),
            "{text:?} appears in an object on the remote"
        );
    }
    let note = crate::keys::remote_blob(&env, &a, "devices/desktop.md");
    assert!(
        note.starts_with(&[0xd0, 0x83]),
        "the notes are there, encrypted (COSE_Encrypt0)"
    );
    let log = git(
        &env.remote(),
        &a.home,
        &["log", "--format=%B", "refs/convosync/handoffs"],
    );
    assert!(log.contains("handoff from desktop"), "{log}");
}

#[test]
fn a_keyless_device_keeps_working_and_is_told_once() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let c = env.device("borrowed");
    assert!(run(&a, &["key", "init"]).0);
    save(&a, TASK);

    let v = start(&c, "s1");
    let msg = v.expect("a hint")["systemMessage"].as_str().unwrap().to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains("desktop") && msg.contains("convosync key add"),
        "{msg}"
    );
    let again = start(&c, "s2");
    assert!(
        again
            .as_ref()
            .and_then(|v| v["systemMessage"].as_str())
            .is_none_or(|m| !m.contains("key add")),
        "told once per repository: {again:?}"
    );
    for args in [
        vec!["resume"],
        vec!["history"],
        vec!["search", "zebra"],
        vec!["devices"],
    ] {
        let (ok, out, err) = run(&c, &args);
        // search exits 1 when nothing matches, like grep.
        assert!(ok || args[0] == "search", "{args:?} still works: {err}");
        assert!(!out.contains("zebra-quantum"), "{out}");
        assert!(
            err.contains("could not read encrypted notes from desktop") && err.contains("key add"),
            "{args:?} names the unreadable note: {err}"
        );
    }
    let (_, status, _) = run(&c, &["key", "status"]);
    assert!(status.contains("cannot read them"), "{status}");

    // A teammate with a key of their own sees the note as encrypted, from which device.
    assert!(run(&c, &["key", "init"]).0);
    let (ok, _, err) = run(&c, &["resume"]);
    assert!(
        ok && err.contains("encrypted note from desktop (another person's key)"),
        "{err}"
    );
    let (_, status, _) = run(&c, &["key", "status"]);
    let listed = status
        .lines()
        .find_map(|l| l.strip_prefix("this repository's notes: encrypted, keys "))
        .unwrap_or_default();
    assert_eq!(
        (listed.split(", ").count(), listed.matches("(yours)").count()),
        (2, 1),
        "two keys listed, one ours: {status}"
    );
}

/// A bare project remote whose root commit differs from every other's, and a clone of it.
fn project(root: &Path, name: &str) -> PathBuf {
    let home = root.join(format!("seed-home-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
    let remote = root.join(format!("{name}.git"));
    git(root, &home, &["init", "-q", "--bare", remote.to_str().unwrap()]);
    let seed = root.join(format!("seed-{name}"));
    git(
        root,
        &home,
        &["clone", "-q", remote.to_str().unwrap(), seed.to_str().unwrap()],
    );
    std::fs::write(seed.join("README.md"), format!("# {name}\n")).unwrap();
    git(&seed, &home, &["add", "README.md"]);
    git(&seed, &home, &["commit", "-q", "-m", "initial commit"]);
    git(&seed, &home, &["push", "-q", "origin", "HEAD:main"]);
    remote
}

fn clone(root: &Path, remote: &Path, name: &str, notes: &Path) -> Device {
    let home = root.join(format!("home-{name}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".gitconfig"), "[init]\n\tdefaultBranch = main\n").unwrap();
    git(root, &home, &["clone", "-q", remote.to_str().unwrap(), name]);
    let d = Device {
        name: name.to_string(),
        dir: root.join(name),
        home,
    };
    d.git(&["config", "convosync.remote", notes.to_str().unwrap()]);
    d
}

/// A bare notes repository and two projects, `web` and `api`, each cloned on a desktop and a
/// laptop that keep their notes there.
struct NotesRepo {
    /// The home directory git runs with outside the devices.
    home: PathBuf,
    notes: PathBuf,
    /// The projects' own remotes.
    web: PathBuf,
    api: PathBuf,
    /// Web desktop, web laptop, api desktop, api laptop.
    devices: [Device; 4],
}

impl NotesRepo {
    fn new(root: &Path) -> NotesRepo {
        let home = root.join("notes-home");
        std::fs::create_dir_all(&home).unwrap();
        let notes = root.join("notes.git");
        git(root, &home, &["init", "-q", "--bare", notes.to_str().unwrap()]);
        let (web, api) = (project(root, "web"), project(root, "api"));
        let devices = [
            clone(root, &web, "web-desktop", &notes),
            clone(root, &web, "web-laptop", &notes),
            clone(root, &api, "api-desktop", &notes),
            clone(root, &api, "api-laptop", &notes),
        ];
        NotesRepo {
            home,
            notes,
            web,
            api,
            devices,
        }
    }
}

#[test]
fn two_projects_share_one_notes_repository() {
    let root = tempfile::tempdir().unwrap();
    let NotesRepo {
        home,
        notes,
        web,
        api,
        devices: [web1, web2, api1, api2],
    } = NotesRepo::new(root.path());

    save(&web1, "web-task-1111 redesign the landing page");
    save(&api1, "api-task-2222 paginate the orders endpoint");
    let (ok, out, err) = run(&web2, &["resume"]);
    assert!(
        ok && out.contains("web-task-1111") && !out.contains("api-task-2222"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&api2, &["resume"]);
    assert!(
        ok && out.contains("api-task-2222") && !out.contains("web-task-1111"),
        "{out}{err}"
    );
    let v = start(&web2, "s");
    let ctx = v.expect("context")["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ctx.contains("web-task-1111") && !ctx.contains("api-task-2222"),
        "{ctx}"
    );

    let refs = git(&notes, &home, &["for-each-ref", "--format=%(refname)"]);
    let namespaced: Vec<&str> = refs
        .lines()
        .filter(|r| r.starts_with("refs/convosync/p/"))
        .collect();
    assert_eq!(namespaced.len(), 2, "one ref per project: {refs}");
    assert!(namespaced.iter().all(|r| r.ends_with("/handoffs")), "{refs}");
    for remote in [&web, &api] {
        let refs = git(remote, &home, &["for-each-ref", "refs/convosync"]);
        assert!(refs.is_empty(), "the project's own remote holds no notes: {refs}");
    }
    // Both devices of one project derive the same namespace.
    let ns = |d: &Device| std::fs::read_to_string(d.dir.join(".git/convosync/project-id")).unwrap();
    assert_eq!(ns(&web1), ns(&web2));
    assert_ne!(ns(&web1), ns(&api1));
}

const SECRET_FILE: &str = "unreleased/patch-7733.rs";
const SECRET_CODE: &str = "fn cve_fix_9182() {}";
const SECRET_EDIT: &str = "embargoed-5521 fix the overflow";

/// A device with a committed `plan.txt` on the remote, and a second device cloned after it.
fn with_plan(env: &TestEnv) -> (Device, Device) {
    let a = env.device("desktop");
    std::fs::write(a.dir.join("plan.txt"), "step 1\nstep 2\n").unwrap();
    a.git(&["add", "plan.txt"]);
    a.git(&["commit", "-q", "-m", "plan"]);
    a.git(&["push", "-q"]);
    let b = env.device("laptop");
    (a, b)
}

fn secret_changes(a: &Device) {
    std::fs::write(a.dir.join("plan.txt"), format!("step 1\n{SECRET_EDIT}\nstep 2\n")).unwrap();
    std::fs::create_dir_all(a.dir.join("unreleased")).unwrap();
    std::fs::write(a.dir.join(SECRET_FILE), format!("{SECRET_CODE}\n")).unwrap();
}

/// The Stop hook after a session that wrote a draft: its systemMessage.
pub(crate) fn stop(d: &Device, task: &str) -> String {
    write_draft(d, &format!("### Current Task\n{task}\n"));
    let input = serde_json::json!({"session_id": "s", "cwd": d.dir, "stop_hook_active": true});
    let out = d
        .convosync()
        .args(["hook", "stop"])
        .write_stdin(input.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "hooks always exit 0");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    v["systemMessage"].as_str().unwrap_or_default().to_string()
}

#[test]
fn encrypted_snapshots_hide_uncommitted_work_from_the_remote() {
    let env = TestEnv::new();
    let (a, b) = with_plan(&env);
    let c = env.device("borrowed");
    assert!(run(&a, &["key", "init"]).0);
    save(&a, TASK);
    secret_changes(&a);
    let msg = stop(&a, "keep going");
    assert!(
        msg.contains("uncommitted changes in 2 file(s) shared"),
        "encrypted snapshots are pushed without asking: {msg}"
    );

    let objects = all_objects(&env.remote(), &a.home);
    for text in [
        SECRET_CODE,
        "cve_fix_9182",
        SECRET_EDIT,
        "embargoed-5521",
        "patch-7733",
        "unreleased/",
    ] {
        assert!(
            !contains(&objects, text),
            "{text:?} appears in an object on the remote"
        );
    }
    let log = git(
        &env.remote(),
        &a.home,
        &["log", "-1", "--format=%B", "refs/convosync/wip/desktop"],
    );
    assert!(
        log.contains("Convosync-Encrypted: yes") && !log.contains("main"),
        "{log}"
    );

    // A device with the key reads and applies it exactly.
    let secret = key_show(&a);
    assert!(run(&b, &["key", "add", &secret]).0);
    let (ok, out, err) = run(&b, &["wip", "list"]);
    assert!(
        ok && out.contains("desktop") && out.contains("2 file(s)") && out.contains("main"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&b, &["wip", "show", "desktop"]);
    assert!(
        ok && out.contains(&format!("A {SECRET_FILE}")) && out.contains("M plan.txt"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&b, &["wip", "diff", "desktop"]);
    assert!(ok && out.contains(&format!("+{SECRET_CODE}")), "{out}{err}");
    let v = start(&b, "s2");
    let ctx = v.expect("context")["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ctx.contains("desktop left uncommitted changes in 2 files on main"),
        "{ctx}"
    );
    let (ok, out, err) = run(&b, &["wip", "apply", "desktop"]);
    assert!(ok, "{out}{err}");
    for f in ["plan.txt", SECRET_FILE] {
        assert_eq!(
            std::fs::read(b.dir.join(f)).unwrap(),
            std::fs::read(a.dir.join(f)).unwrap(),
            "{f} arrives exactly"
        );
    }
    // What was decrypted stays local: the remote still holds no plaintext.
    let objects = all_objects(&env.remote(), &a.home);
    assert!(!contains(&objects, SECRET_CODE));

    // A device without the key keeps working and is told which key it needs.
    let (ok, out, err) = run(&c, &["wip", "list"]);
    assert!(
        ok && out.contains("encrypted snapshot from desktop"),
        "{out}{err}"
    );
    assert!(!out.contains("patch-7733"), "{out}");
    for args in [
        ["wip", "show", "desktop"],
        ["wip", "diff", "desktop"],
        ["wip", "apply", "desktop"],
    ] {
        let (ok, out, err) = run(&c, &args);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            err.contains("encrypted") && err.contains("convosync key add"),
            "{args:?}: {err}"
        );
    }
    assert!(!c.dir.join(SECRET_FILE).exists());
    let v = start(&c, "s3");
    let ctx = v
        .as_ref()
        .and_then(|v| v["hookSpecificOutput"]["additionalContext"].as_str())
        .unwrap_or_default();
    assert!(!ctx.contains("patch-7733") && !ctx.contains("cve_fix"), "{ctx}");
}

#[test]
fn plain_snapshots_stay_local_unless_turned_on() {
    let env = TestEnv::new();
    let (a, _b) = with_plan(&env);
    secret_changes(&a);
    let first = stop(&a, "first");
    assert!(
        first.contains("convosync.wipPush true"),
        "says how to turn it on: {first}"
    );
    std::fs::write(a.dir.join("more.txt"), "more\n").unwrap();
    let second = stop(&a, "second");
    assert!(!second.contains("wipPush"), "said once: {second}");
    assert!(second.contains("handoff saved"), "{second}");
    let (ok, out, _) = run(&a, &["wip", "save"]);
    assert!(
        ok && out.contains("not pushed") && out.contains("--push"),
        "{out}"
    );
    let refs = git(&env.remote(), &a.home, &["for-each-ref", "refs/convosync/wip"]);
    assert!(refs.is_empty(), "no snapshot on the remote: {refs}");
    let objects = all_objects(&env.remote(), &a.home);
    for text in [SECRET_CODE, SECRET_EDIT, "patch-7733"] {
        assert!(!contains(&objects, text), "{text:?} reached the remote");
    }
    // Turned on, the next one goes.
    a.git(&["config", "convosync.wipPush", "true"]);
    std::fs::write(a.dir.join("more.txt"), "more, again\n").unwrap();
    let (ok, out, err) = run(&a, &["wip", "save"]);
    assert!(ok && out.contains("pushed the snapshot"), "{out}{err}");
    let objects = all_objects(&env.remote(), &a.home);
    assert!(contains(&objects, SECRET_CODE), "now shared as asked");
}

#[test]
fn a_notes_repository_keeps_projects_snapshots_apart() {
    let root = tempfile::tempdir().unwrap();
    let NotesRepo {
        home,
        notes,
        web,
        api,
        devices: [web1, web2, api1, api2],
    } = NotesRepo::new(root.path());
    std::fs::write(web1.dir.join("README.md"), "# web\nweb-wip-3131\n").unwrap();
    std::fs::write(api1.dir.join("README.md"), "# api\napi-wip-4141\n").unwrap();
    for d in [&web1, &api1] {
        let (ok, out, err) = run(d, &["wip", "save", "--push"]);
        assert!(ok && out.contains("pushed the snapshot"), "{out}{err}");
    }
    let (ok, out, err) = run(&web2, &["wip", "list"]);
    assert!(
        ok && out.contains("web-desktop") && !out.contains("api-desktop"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&api2, &["wip", "list"]);
    assert!(
        ok && out.contains("api-desktop") && !out.contains("web-desktop"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&web2, &["wip", "apply", "web-desktop"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(web2.dir.join("README.md")).unwrap(),
        "# web\nweb-wip-3131\n"
    );
    let (ok, out, err) = run(&api2, &["wip", "apply", "api-desktop"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(api2.dir.join("README.md")).unwrap(),
        "# api\napi-wip-4141\n"
    );

    let refs = git(&notes, &home, &["for-each-ref", "--format=%(refname)"]);
    let wip: Vec<&str> = refs.lines().filter(|r| r.contains("/wip/")).collect();
    assert_eq!(wip.len(), 2, "{refs}");
    assert!(
        wip.iter().all(|r| r.starts_with("refs/convosync/p/")),
        "namespaced: {refs}"
    );
    let ns = |r: &str| r.split('/').nth(3).unwrap().to_string();
    assert_ne!(ns(wip[0]), ns(wip[1]), "one namespace per project: {refs}");
    for remote in [&web, &api] {
        let refs = git(remote, &home, &["for-each-ref", "refs/convosync"]);
        assert!(
            refs.is_empty(),
            "the project's own remote holds no snapshot: {refs}"
        );
    }
    // Tracking refs of a URL are valid ref names.
    let tracking = web2.git(&["for-each-ref", "--format=%(refname)", "refs/convosync/remote"]);
    assert!(
        tracking.contains("/url-") && tracking.contains("/wip/web-desktop"),
        "{tracking}"
    );
}
