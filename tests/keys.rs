//! Encryption no remote can switch off, and notes whose author is proven (issue 20). Every attack
//! is built with git plumbing in a clone of its own and pushed to the bare remote.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{git, git_input, hermetic, Device, TestEnv};
use crate::hooks::start;
use crate::private::{contains, run, save, stop};

const REF: &str = "refs/convosync/handoffs";

/// git in `dir` with `input` on stdin; its stdout (bytes).
fn git_with_input(dir: &Path, home: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    git_input(dir, home, args, input)
}

/// The raw bytes of `path` on the remote's handoff ref.
pub(crate) fn remote_blob(env: &TestEnv, d: &Device, path: &str) -> Vec<u8> {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, &d.home);
    let out = cmd
        .current_dir(env.remote())
        .args(["cat-file", "blob", &format!("{REF}:{path}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{path} on the remote");
    out.stdout
}

/// Push, from the attacker's clone `eve`, a commit on top of the remote's handoff ref (a
/// fast-forward) whose root tree `edit` makes from the current root's `ls-tree` lines.
fn push_tree(eve: &Device, edit: impl FnOnce(&Device, Vec<String>) -> Vec<String>) {
    eve.git(&["fetch", "-q", "origin", &format!("+{REF}:refs/attack/tip")]);
    let root: Vec<String> = eve
        .git(&["ls-tree", "refs/attack/tip"])
        .lines()
        .map(str::to_string)
        .collect();
    let lines = edit(eve, root);
    let tree = mktree(eve, &lines);
    let commit = eve.git(&["commit-tree", &tree, "-p", "refs/attack/tip", "-m", "handoff"]);
    eve.git(&["push", "-q", "origin", &format!("{commit}:{REF}")]);
}

fn mktree(d: &Device, lines: &[String]) -> String {
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = git_with_input(&d.dir, &d.home, &["mktree"], input.as_bytes());
    String::from_utf8(out).unwrap().trim().to_string()
}

/// Add `files` (name → content) under `devices/` of the remote's handoff ref, as an attacker.
fn plant(eve: &Device, files: &[(&str, Vec<u8>)]) {
    push_tree(eve, |d, root| {
        let mut devices: Vec<String> = d
            .git(&["ls-tree", "refs/attack/tip:devices"])
            .lines()
            .map(str::to_string)
            .collect();
        for (name, content) in files {
            let out = git_with_input(&d.dir, &d.home, &["hash-object", "-w", "--stdin"], content);
            let blob = String::from_utf8(out).unwrap().trim().to_string();
            devices.push(format!("100644 blob {blob}\t{name}"));
        }
        let sub = mktree(d, &devices);
        root.into_iter()
            .filter(|l| !l.ends_with("\tdevices"))
            .chain([format!("040000 tree {sub}\tdevices")])
            .collect()
    });
}

fn identity(d: &Device, name: &str, email: &str) {
    d.git(&["config", "user.name", name]);
    d.git(&["config", "user.email", email]);
}

fn context(v: &Option<Value>) -> String {
    v.as_ref()
        .and_then(|v| v["hookSpecificOutput"]["additionalContext"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn message(v: &Option<Value>) -> String {
    v.as_ref()
        .and_then(|v| v["systemMessage"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A plain note of `device` as the markdown on the ref.
fn note(device: &str, author: Option<&str>, task: &str) -> Vec<u8> {
    let author = author.map(|a| format!("**Author:** {a}\n")).unwrap_or_default();
    format!(
        "## Handoff from {device}\n**Timestamp:** {}\n**Branch:** main\n{author}\n### Current Task\n{task}\n\n### Important Context\n- body-of-{task}\n",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
    .into_bytes()
}

#[test]
fn a_remote_without_keys_never_turns_encryption_off() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    let eve = env.device("eve");
    assert!(run(&a, &["key", "init"]).0);
    save(&a, "first-task-1001");
    // Another device's note, so that a's next session start has something to show.
    save(&b, "laptop-task-2002");

    // Someone with push access fast-forwards the ref to a tree without `keys/`.
    push_tree(&eve, |_, root| {
        root.into_iter().filter(|l| !l.ends_with("\tkeys")).collect()
    });
    let keys = git(&env.remote(), &a.home, &["ls-tree", "--name-only", REF, "keys/"]);
    assert!(keys.is_empty(), "the attack took: {keys}");

    let (_, status, _) = run(&a, &["key", "status"]);
    assert!(!status.contains("not encrypted"), "{status}");

    // The keyed device's next note goes out through the Stop hook, as in a session.
    stop(&a, "secret-task-5150 the merger plan");
    let blob = remote_blob(&env, &a, "devices/desktop.md");
    assert!(!contains(&blob, "secret-task-5150"), "the note went out in plain");
    let log = git(&env.remote(), &a.home, &["log", "--format=%B", REF]);
    assert!(!log.contains("secret-task") && !log.contains("merger"), "{log}");
    assert!(log.contains("handoff from desktop"), "{log}");
    assert!(blob.starts_with(&[0xd0, 0x83]), "encrypted (COSE_Encrypt0)");
    let keys = git(&env.remote(), &a.home, &["ls-tree", "--name-only", REF, "keys/"]);
    assert!(!keys.is_empty(), "the key record is back on the remote");
    let (_, status, _) = run(&a, &["key", "status"]);
    assert!(
        !status.contains("not encrypted") && status.contains("(yours)"),
        "{status}"
    );

    // The user is told once, at the next session start.
    let first = message(&start(&a, "s1"));
    assert!(
        first.contains("lost the record that notes are encrypted") && first.contains("restored"),
        "{first}"
    );
    assert_eq!(first.lines().count(), 1, "{first}");
    let again = message(&start(&a, "s2"));
    assert!(!again.contains("lost the record"), "told once: {again}");
}

#[test]
fn a_keyed_device_encrypts_in_a_repository_never_set_up() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    // The key arrives from elsewhere (`key add` on another repository): nothing here records it.
    let key = convosync::fixture::Key::generate();
    let dir = a.home.join(".config/convosync");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.txt"), format!("{}\n", key.secret())).unwrap();
    std::fs::write(a.dir.join("README.md"), "# project\nwip-secret-4242\n").unwrap();
    stop(&a, "secret-task-5150 the merger plan");
    let objects = crate::private::all_objects(&env.remote(), &a.home);
    for text in ["secret-task-5150", "merger", "wip-secret-4242"] {
        assert!(!contains(&objects, text), "{text:?} reached the remote in plain");
    }
    let blob = remote_blob(&env, &a, "devices/desktop.md");
    assert!(blob.starts_with(&[0xd0, 0x83]), "encrypted (COSE_Encrypt0)");
    let keys = git(&env.remote(), &a.home, &["ls-tree", "--name-only", REF, "keys/"]);
    assert_eq!(keys, format!("keys/{}", key.id()));
    let log = git(
        &env.remote(),
        &a.home,
        &["log", "-1", "--format=%B", "refs/convosync/wip/desktop"],
    );
    assert!(log.contains("Convosync-Encrypted: yes"), "{log}");
}

#[test]
fn a_remote_without_keys_is_merged_back_on_a_plain_sync() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let eve = env.device("eve");
    assert!(run(&a, &["key", "init"]).0);
    save(&a, "first-task-1001");
    push_tree(&eve, |_, root| {
        root.into_iter().filter(|l| !l.ends_with("\tkeys")).collect()
    });
    let (ok, out, err) = run(&a, &["sync"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("lost the record"), "told: {out}");
    let keys = git(&env.remote(), &a.home, &["ls-tree", "--name-only", REF, "keys/"]);
    assert!(!keys.is_empty(), "restored by the union and pushed back");
    let (_, out, _) = run(&a, &["sync"]);
    assert!(!out.contains("lost the record"), "once: {out}");
}

/// A COSE_Encrypt0 message as convosync writes, but made with a key its author does not have:
/// the kid claims the user's key (it is public on the ref), the key is random.
fn forged_ciphertext(kid: &[u8], text: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
    use chacha20poly1305::{AeadCore, ChaCha20Poly1305};
    use coset::{iana, CoseEncrypt0Builder, HeaderBuilder, TaggedCborSerializable};
    let cipher = ChaCha20Poly1305::new(&ChaCha20Poly1305::generate_key(&mut OsRng));
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    CoseEncrypt0Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ChaCha20Poly1305)
                .key_id(kid.to_vec())
                .build(),
        )
        .unprotected(HeaderBuilder::new().iv(nonce.to_vec()).build())
        .create_ciphertext(text, b"convosync note v1", |pt, aad| {
            cipher.encrypt(&nonce, Payload { msg: pt, aad }).unwrap()
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}

#[test]
fn notes_claiming_the_user_without_their_key_are_not_theirs() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    let eve = env.device("eve");
    for d in [&a, &b] {
        identity(d, "Ada Lovelace", "ada@example.com");
    }
    assert!(run(&a, &["key", "init"]).0);
    let (_, secret, _) = run(&a, &["key", "show"]);
    assert!(run(&b, &["key", "add", secret.trim()]).0);
    save(&a, "real-task-3003");

    let kid = git(&env.remote(), &a.home, &["ls-tree", "--name-only", REF, "keys/"]);
    let kid = kid.trim().strip_prefix("keys/").unwrap().to_string();
    // The user's key id, public on the ref (hex digits).
    let kid: Vec<u8> = (0..kid.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(kid.get(i..i + 2)?, 16).ok())
        .collect();
    let other = convosync::fixture::Key::generate();
    let claim = Some("Ada Lovelace <ada@example.com>");
    plant(
        &eve,
        &[
            ("plain.md", note("plain", claim, "forged-plain-6060")),
            (
                "forged.md",
                forged_ciphertext(&kid, &note("forged", claim, "forged-kid-7070")),
            ),
            (
                "otherkey.md",
                other
                    .encrypt(
                        convosync::fixture::Purpose::Note,
                        &note("otherkey", claim, "forged-other-8080"),
                    )
                    .unwrap(),
            ),
        ],
    );

    let v = start(&b, "s1");
    let ctx = context(&v);
    assert!(
        ctx.contains("## From desktop") && ctx.contains("real-task-3003"),
        "{ctx}"
    );
    for forged in ["plain", "forged", "otherkey"] {
        assert!(
            !ctx.contains(&format!("## From {forged}")),
            "{forged} shown as the user's: {ctx}"
        );
    }
    assert!(!ctx.contains("body-of-forged"), "a forged body in full: {ctx}");
    assert!(
        !ctx.contains("forged-kid-7070") && !ctx.contains("forged-other-8080"),
        "{ctx}"
    );
    let (ok, out, err) = run(&b, &["resume"]);
    assert!(ok && out.contains("real-task-3003"), "{out}{err}");
    assert!(!out.contains("body-of-forged"), "{out}");
    let (ok, out, _) = run(&b, &["devices", "--json"]);
    assert!(ok);
    let rows: Value = serde_json::from_str(&out).unwrap();
    let mine = |d: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["device"] == d)
            .map(|r| r["mine"].as_bool().unwrap())
    };
    assert_eq!(mine("desktop"), Some(true));
    assert_eq!(mine("plain"), Some(false));
}

#[test]
fn a_note_without_an_author_is_not_the_users_on_a_keyless_device() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    let eve = env.device("eve");
    for d in [&a, &b] {
        identity(d, "Ada Lovelace", "ada@example.com");
    }
    save(&a, "real-task-3003");
    plant(&eve, &[("ghost.md", note("ghost", None, "ghost-task-9090"))]);
    let ctx = context(&start(&b, "s1"));
    assert!(ctx.contains("## From desktop"), "{ctx}");
    assert!(
        !ctx.contains("## From ghost") && !ctx.contains("body-of-ghost"),
        "no author: not the user's: {ctx}"
    );
    let (_, out, _) = run(&b, &["resume"]);
    assert!(!out.contains("body-of-ghost"), "{out}");
}

#[test]
fn notes_in_the_old_age_format_are_reported_unreadable() {
    let env = TestEnv::new();
    let a = env.device("desktop");
    let b = env.device("laptop");
    let eve = env.device("eve");
    save(&a, "real-task-3003");
    let mut age = b"age-encryption.org/v1\n-> X25519 c29tZSBieXRlcw\nAAAA\n--- bWFj\n".to_vec();
    age.extend_from_slice(&[0x9f; 64]);
    plant(&eve, &[("old.md", age)]);
    assert!(
        run(&b, &["key", "init"]).0,
        "with a key and without: the same reason"
    );
    for d in [&b, &env.device("borrowed")] {
        let input = serde_json::json!({"session_id": "s", "cwd": d.dir, "hook_event_name": "SessionStart", "source": "startup"});
        let out = d
            .convosync()
            .args(["hook", "session-start"])
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "hooks exit 0");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let v: Value = serde_json::from_str(stdout.trim()).expect("JSON only on stdout");
        assert!(context(&Some(v)).contains("real-task-3003"));
        let (ok, _, err) = run(d, &["resume"]);
        assert!(ok, "{err}");
        assert!(
            err.contains("old: ") && err.contains("encrypted by an older convosync"),
            "{err}"
        );
    }
}
