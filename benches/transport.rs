//! Transport benchmark: fetching and pushing the handoff ref over file://, ssh (an sshd on
//! 127.0.0.1 through an ssh config alias and an agent key) and smart HTTP (basic auth through a
//! credential helper), with the `git` executable as convosync runs it, and with libgit2 in-process
//! where this build of git2 can (file:// only: it is built without ssh/https transports).
//! Prints medians; asserts nothing.
//!
//! cargo bench --bench transport

#[path = "../tests/common/hermetic.rs"]
mod hermetic;
#[path = "../tests/fixtures/servers.rs"]
mod servers;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use convosync::fixture::{commit_message, Handoff, Section, Store};
use hermetic::{git, hermetic};

const REF: &str = "refs/convosync/handoffs";

fn handoff(i: i64) -> Handoff {
    Handoff {
        device: format!("device-{}", i % 100),
        timestamp: Utc.timestamp_opt(1_700_000_000 + i * 60, 0).unwrap(),
        commit: None,
        branch: Some("main".into()),
        session: None,
        author: None,
        agent: None,
        sections: vec![Section {
            title: "Current Task".into(),
            body: format!("task {i}"),
        }],
    }
}

/// One remote to measure, with the environment git needs for it and the servers behind it.
struct Target {
    name: &'static str,
    url: String,
    env: Vec<(&'static str, std::path::PathBuf)>,
    _guard: Option<Box<dyn std::any::Any>>,
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

/// `convosync sync` in `work` 10 times, each after another writer pushed one new handoff.
fn sync_times(bin: &Path, work: &Path, writer: &Path, home: &Path, env: &[(&str, &Path)]) -> f64 {
    let mut times = Vec::new();
    for n in 0..11 {
        {
            let repo = git2::Repository::open(writer).unwrap();
            let h = handoff(1_000_000 + n);
            Store::new(&repo, REF).put(&h, &commit_message(&h)).unwrap();
        }
        let mut push = Command::new("git");
        hermetic(&mut push, home).current_dir(writer);
        for (k, v) in env {
            push.env(k, v);
        }
        assert!(push
            .args(["push", "-q", "origin", REF])
            .status()
            .unwrap()
            .success());
        let mut cmd = Command::new(bin);
        hermetic(&mut cmd, home)
            .current_dir(work)
            .env("CONVOSYNC_DEVICE", "bench");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let t = Instant::now();
        let out = cmd.arg("sync").output().unwrap();
        times.push(t.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    times.remove(0);
    median(times)
}

/// libgit2 fetching the ref in-process (file:// only in this build).
fn git2_fetch_times(work: &Path, url: &str) -> f64 {
    let repo = git2::Repository::open(work).unwrap();
    let mut times = Vec::new();
    for _ in 0..11 {
        let mut remote = repo.remote_anonymous(url).unwrap();
        let mut fo = git2::FetchOptions::new();
        fo.download_tags(git2::AutotagOption::None);
        let t = Instant::now();
        remote
            .fetch(
                &["+refs/convosync/handoffs:refs/convosync/bench-git2"],
                Some(&mut fo),
                None,
            )
            .unwrap();
        times.push(t.elapsed());
    }
    times.remove(0);
    median(times)
}

fn main() {
    let bin = Path::new(env!("CARGO_BIN_EXE_convosync"));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Bench\n\temail = bench@example.com\n",
    )
    .unwrap();
    // A remote whose handoff ref has 10,000 commits over 100 devices.
    let seed = root.join("seed");
    let repo = git2::Repository::init(&seed).unwrap();
    let store = Store::new(&repo, REF);
    for i in 0..10_000 {
        let h = handoff(i);
        store.put(&h, &commit_message(&h)).unwrap();
    }
    git(root, &home, &["init", "-q", "--bare", "remote.git"]);
    git(
        &seed,
        &home,
        &[
            "push",
            "-q",
            &format!("file://{}", root.join("remote.git").display()),
            REF,
        ],
    );
    git(&root.join("remote.git"), &home, &["gc", "-q"]);

    println!(
        "{:<46} {:>10}",
        "transport (10,000-commit ref, 1 new handoff)", "median"
    );
    let remote_url = format!("file://{}", root.join("remote.git").display());
    let mut urls: Vec<Target> = vec![Target {
        name: "file://",
        url: remote_url,
        env: vec![],
        _guard: None,
    }];
    if let Some(ssh) = servers::Ssh::start(&root.join("ssh")) {
        let url = format!("devbox:{}", root.join("remote.git").display());
        let env = vec![
            ("GIT_SSH_COMMAND", std::path::PathBuf::from(ssh.ssh_command())),
            ("SSH_AUTH_SOCK", ssh.agent_sock.clone()),
        ];
        urls.push(Target {
            name: "ssh (config alias + agent)",
            url,
            env,
            _guard: Some(Box::new(ssh)),
        });
    }
    if let Some(http) = servers::Http::start(&root.join("http"), root, "bench", "pw") {
        let url = format!("http://127.0.0.1:{}/remote.git", http.port);
        let creds = root.join("creds");
        std::fs::write(&creds, format!("http://bench:pw@127.0.0.1:{}\n", http.port)).unwrap();
        let cfg = format!(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n[credential]\n\thelper = store --file={}\n",
            creds.display()
        );
        std::fs::write(home.join(".gitconfig"), cfg).unwrap();
        urls.push(Target {
            name: "http (basic auth + credential helper)",
            url,
            env: vec![],
            _guard: Some(Box::new(http)),
        });
    }
    for Target { name, url, env, .. } in &urls {
        let slug: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let work = root.join(format!("work-{slug}"));
        let writer = root.join(format!("writer-{slug}"));
        for d in [&work, &writer] {
            git(root, &home, &["init", "-q", d.to_str().unwrap()]);
            git(d, &home, &["remote", "add", "origin", url]);
        }
        let envs: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let mut fetch = Command::new("git");
        hermetic(&mut fetch, &home).current_dir(&writer);
        for (k, v) in &envs {
            fetch.env(k, v);
        }
        assert!(fetch
            .args(["fetch", "-q", "origin", &format!("{REF}:{REF}")])
            .status()
            .unwrap()
            .success());
        let ms = sync_times(bin, &work, &writer, &home, &envs);
        println!("{:<46} {:>8.1}ms", format!("git executable, {name}"), ms);
        if *name == "file://" {
            println!(
                "{:<46} {:>8.1}ms",
                "libgit2 in-process fetch, file://",
                git2_fetch_times(&work, url)
            );
        }
    }
}
