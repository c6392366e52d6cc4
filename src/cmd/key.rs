//! `convosync key [status|init|show|add KEY]`: this person's encryption key.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{deadline, CLI_LOCK_WAIT};
use crate::cli::{KeyAction, Sub};
use crate::crypt::{self, fingerprint, Key};
use crate::repo::Repo;
use crate::store::Store;

pub fn run(dir: &Path, args: Sub<KeyAction>) -> Result<ExitCode> {
    match args.action.unwrap_or(KeyAction::Status) {
        KeyAction::Status => status(dir),
        KeyAction::Init => init(dir),
        KeyAction::Show => show(),
        KeyAction::Add { key } => add(dir, &key),
    }
}

fn load() -> Result<Option<Key>> {
    let Some(path) = crypt::key_path().filter(|p| p.exists()) else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
    let key = Key::parse(&text).with_context(|| format!("{} holds no valid key", path.display()))?;
    Ok(Some(key))
}

fn status(dir: &Path) -> Result<ExitCode> {
    let path = crypt::key_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mine = load()?.map(|k| k.id());
    match &mine {
        Some(id) => {
            println!("key: {id} ({path})");
            println!("this device encrypts every note and snapshot it writes, in every repository");
        }
        None => println!(
            "key: none (create one with `convosync key init`, or bring yours with `convosync key add`)"
        ),
    }
    if let Some(repo) = Repo::discover(dir)? {
        let recorded = crate::store::key_ids(&repo.git, &repo.settings.refname);
        let list: Vec<String> = recorded
            .iter()
            .map(|r| {
                let whose = match r {
                    r if mine.as_ref() == Some(r) => " (yours)",
                    r if r.starts_with("age1") => " (recorded by an older convosync)",
                    _ => "",
                };
                format!("{}{whose}", fingerprint(r))
            })
            .collect();
        match (&mine, recorded.is_empty()) {
            (Some(_), true) => println!(
                "this repository's notes: yours are encrypted (its ref records your key with your next note)"
            ),
            (None, true) => {
                println!("this repository's notes: not encrypted (turn it on with `convosync key init`)")
            }
            (_, false) => println!("this repository's notes: encrypted, keys {}", list.join(", ")),
        }
        if mine.is_none() && !recorded.is_empty() {
            println!("this device cannot read them: {}", crypt::KEY_HINT);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn init(dir: &Path) -> Result<ExitCode> {
    let key = match load()? {
        Some(k) => {
            println!("using your existing key {}", fingerprint(&k.id()));
            k
        }
        None => {
            let k = Key::generate();
            let path = crypt::store_key(&k)?;
            println!("created your key {} in {}", fingerprint(&k.id()), path.display());
            eprintln!("keep it safe: without it, notes encrypted with it cannot be read by anyone.");
            eprintln!("carry it to your other devices with `convosync key show` here and `convosync key add KEY` there.");
            k
        }
    };
    match Repo::discover(dir)? {
        Some(repo) => enable(&repo, &key)?,
        None => println!("run `convosync key init` inside a repository to encrypt its notes"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Record the key on the repository's ref, re-commit this device's own plain note encrypted, and
/// push when a remote answers.
fn enable(repo: &Repo, key: &Key) -> Result<()> {
    let store = Store::new(&repo.git, &repo.settings.refname);
    {
        let _lock = repo.lock(CLI_LOCK_WAIT)?;
        store.record_key(&key.id())?;
        let me = crate::team::my_device(repo)?;
        // This device's own plain note is committed again, encrypted; its earlier versions stay
        // readable in the ref's history.
        let plain = |blob| {
            repo.git
                .find_blob(blob)
                .is_ok_and(|b| !crypt::is_encrypted(b.content()))
        };
        if let Some(Ok(h)) = store.entry(&me)?.filter(|e| plain(e.blob)).map(|e| e.handoff) {
            store.put(&h, &crypt::sealed_message(&me))?;
        }
    }
    let (fingerprint, refname) = (fingerprint(&key.id()), &repo.settings.refname);
    println!("notes of this repository are now encrypted with {fingerprint} (ref {refname})");
    if let Some(remote) = repo.remote_name() {
        let report = crate::sync::sync(repo, &remote, deadline(30.0), CLI_LOCK_WAIT);
        match report.problem() {
            Some(p) => eprintln!("convosync: {p}"),
            None => println!("shared with {remote}"),
        }
    }
    Ok(())
}

fn show() -> Result<ExitCode> {
    let key = load()?.context("no key on this device (create one with `convosync key init`)")?;
    eprintln!("This is your SECRET key: anyone who has it can read your notes. Paste it only into `convosync key add` on your own devices.");
    println!("{}", key.secret());
    Ok(ExitCode::SUCCESS)
}

fn add(dir: &Path, text: &str) -> Result<ExitCode> {
    let text = match text {
        "-" => {
            std::io::read_to_string(std::io::stdin()).context("could not read the key from standard input")?
        }
        t => t.to_string(),
    };
    let key = Key::parse(&text)?;
    let path = crypt::store_key(&key)?;
    println!("stored your key {} in {}", fingerprint(&key.id()), path.display());
    if let Some(repo) = Repo::discover(dir)? {
        if let Some(remote) = repo.remote_name() {
            // Best effort: see what the ref records now.
            let _ = crate::sync::sync(&repo, &remote, deadline(10.0), CLI_LOCK_WAIT);
        }
        if crate::store::key_ids(&repo.git, &repo.settings.refname).contains(&key.id()) {
            println!("this repository's notes are encrypted with it: this device reads and writes them now");
        } else {
            println!("this device encrypts every note it writes from now on, in every repository");
        }
    }
    Ok(ExitCode::SUCCESS)
}
