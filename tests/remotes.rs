//! Real remotes with real authentication: an `sshd` on 127.0.0.1 reached through an ssh config
//! host alias with a key held by a real `ssh-agent`, and a smart-HTTP server with basic auth fed
//! by a credential helper. convosync must reach them exactly as the user's own `git push` does.
//! Tests skip with a message when sshd or python3 is missing here (CI installs them).

use std::path::Path;
use std::process::Command;

use crate::common::{Device, TestEnv};
use crate::core::write_draft;
use crate::servers::{run_ok, Http, Ssh};

fn save(d: &Device, marker: &str, env: &[(&str, &Path)]) -> String {
    write_draft(d, &format!("### Current Task\n{marker}\n"));
    let mut cmd = d.convosync();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["save-handoff", "--timeout", "10"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn resume(d: &Device, env: &[(&str, &Path)]) -> String {
    let mut cmd = d.convosync();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["resume", "--timeout", "10"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn ssh_alias_with_agent_key() {
    let env = TestEnv::new();
    let Some(ssh) = Ssh::start(&env.path().join("ssh")) else {
        return;
    };
    let url = format!("devbox:{}", env.remote().display());
    let a = env.device("a");
    let b = env.device("b");
    for d in [&a, &b] {
        d.git(&["remote", "set-url", "origin", &url]);
        d.git(&["config", "core.sshCommand", &ssh.ssh_command()]);
    }
    let agent: [(&str, &Path); 1] = [("SSH_AUTH_SOCK", ssh.agent_sock.as_path())];
    let out = save(&a, "over ssh", &agent);
    assert!(out.contains("pushed to origin"), "{out}");
    assert!(resume(&b, &agent).contains("over ssh"));
    // With the key gone from the agent: a clear failure (no prompt), the handoff kept and queued.
    run_ok(
        Command::new("ssh-add")
            .arg("-D")
            .env("SSH_AUTH_SOCK", &ssh.agent_sock),
    );
    let out = save(&b, "no agent", &agent);
    assert!(out.contains("queued"), "{out}");
    assert!(b
        .git(&["show", "refs/convosync/handoffs:devices/b.md"])
        .contains("no agent"));
}

#[test]
fn http_with_credential_helper() {
    let env = TestEnv::new();
    let Some(http) = Http::start(&env.path().join("http"), env.path(), "alice", "s3cret-pw") else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/remote.git", http.port);
    let a = env.device("a");
    let b = env.device("b");
    for d in [&a, &b] {
        d.git(&["remote", "set-url", "origin", &url]);
        let store = d.home.join("git-credentials");
        std::fs::write(
            &store,
            format!("http://alice:s3cret-pw@127.0.0.1:{}\n", http.port),
        )
        .unwrap();
        d.git(&[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file={}", store.display()),
        ]);
    }
    let out = save(&a, "over http", &[]);
    assert!(out.contains("pushed to origin"), "{out}");
    assert!(resume(&b, &[]).contains("over http"));
    assert!(
        !a.git(&["remote", "get-url", "origin"]).contains("s3cret"),
        "no password in the URL"
    );
    // A wrong password fails at once, without a prompt, and keeps the handoff.
    let store = b.home.join("git-credentials");
    std::fs::write(&store, format!("http://alice:wrong@127.0.0.1:{}\n", http.port)).unwrap();
    // At once: refused for its credentials, not ended by the deadline.
    let out = save(&b, "bad password", &[]);
    assert!(out.contains("queued"), "{out}");
    assert!(!out.contains("did not answer"), "{out}");
}
