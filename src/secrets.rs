//! The one secret-file policy: which files must never leave this machine, by name or by
//! content. `convosync save` (the user's branch) and wip snapshots (the wip refs) both ask
//! [`file`] (or [`worktree_file`]), and leave out what it names unless the user asks for the
//! file by name (`save --include`).

use std::path::Path;

/// Files up to this size are read to look for a secret inside; larger ones are judged by name
/// (a credential file or a private key is never megabytes long).
pub const CONTENT_BYTES: u64 = 1 << 20;

/// Why a file must not leave this machine (a credential by name or content), or `None`.
/// `path` is relative to the worktree, `/`-separated; `content` is `None` when only the name is
/// known yet. Examples and templates (`.env.example`) and public keys are not secrets.
pub fn file(path: &str, content: Option<&[u8]>) -> Option<&'static str> {
    if let Some(why) = by_name(path) {
        return Some(why);
    }
    let text = String::from_utf8_lossy(content?);
    if path.to_ascii_lowercase().ends_with(".json")
        && text.contains("\"private_key\"")
        // `"type": "service_account"`, allowing any spacing.
        && text.split_whitespace().collect::<String>().contains("\"type\":\"service_account\"")
    {
        return Some("a service-account key");
    }
    crate::redact::high_confidence(&text).map(|_| "it contains a secret")
}

/// [`file`] for `rel` in the worktree `workdir`: by name, then by the content of a regular file
/// of at most [`CONTENT_BYTES`] (a symlink is judged by its name only).
pub fn worktree_file(workdir: &Path, rel: &Path) -> Option<&'static str> {
    let path = rel.to_string_lossy().replace('\\', "/");
    let full = workdir.join(rel);
    // Read only when the name alone does not decide.
    let small = |m: std::fs::Metadata| m.is_file() && m.len() <= CONTENT_BYTES;
    let read = by_name(&path).is_none() && std::fs::symlink_metadata(&full).is_ok_and(small);
    let content = read.then(|| std::fs::read(&full).ok()).flatten();
    file(&path, content.as_deref())
}

/// Why a file is a secret by its name alone.
fn by_name(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let at = |file: &str| lower == file || lower.ends_with(&format!("/{file}"));
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    let why = match (name, ext) {
        (_, "pub" | "example" | "sample" | "template" | "dist") => return None,
        (".git-credentials" | ".netrc" | "_netrc" | ".npmrc" | ".pypirc" | ".pgpass" | ".htpasswd", _) => {
            "a credentials file"
        }
        ("credentials", _) => "a credentials file",
        (_, "json") if name.starts_with("credentials") => "a credentials file",
        _ if name.starts_with(".env.") || ext == "env" => "an environment file",
        _ if at(".docker/config.json") => "Docker registry credentials",
        _ if at(".kube/config") || name.starts_with("kubeconfig") => "a kubeconfig",
        _ if ext == "tfvars" || name.ends_with(".tfvars.json") => "Terraform variables",
        _ if starts(&["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_xmss"]) => "an SSH key",
        (_, "pem" | "key" | "p12" | "pfx" | "keystore" | "jks" | "ppk" | "asc" | "gpg") => {
            "a key or certificate store"
        }
        ("secrets.yml" | "secrets.yaml" | "secrets.json", _) => "a secrets file",
        (_, "json") if name.starts_with("service-account") => "a secrets file",
        _ => return None,
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_named() {
        for path in [
            ".git-credentials",
            ".netrc",
            ".npmrc",
            "sub/.pypirc",
            ".docker/config.json",
            ".kube/config",
            "kubeconfig",
            "kubeconfig-prod.yaml",
            "prod.tfvars",
            "credentials",
            "credentials.json",
            "credentials-prod.json",
            "server.pem",
            "tls.key",
            "cert.p12",
            "cert.pfx",
            "keystore.jks",
            "id_rsa",
            "id_ed25519",
            ".env",
            ".env.local",
            "prod.env",
            "service-account-prod.json",
            "config/secrets.yml",
        ] {
            assert!(file(path, Some(b"x")).is_some(), "{path}");
            assert!(file(path, None).is_some(), "{path}");
        }
        for path in [
            "id_map.rs",
            "id_rsa.pub",
            "config.json",
            "src/key.rs",
            "kube/config",
            ".env.example",
            ".env.sample",
            "prod.tfvars.example",
            "keys.md",
            "environment.ts",
            "README.md",
        ] {
            assert_eq!(file(path, Some(b"nothing here")), None, "{path}");
        }
    }

    #[test]
    fn secret_content_is_found() {
        let sa = br#"{ "type" : "service_account", "project_id": "p", "private_key": "x" }"#;
        assert!(file("deploy.json", Some(sa)).is_some());
        assert!(file("deploy.json", Some(br#"{"type": "user", "private_key": "x"}"#)).is_none());
        for key in [
            &b"-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----\n"[..],
            b"x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n",
        ] {
            assert!(file("notes.md", Some(key)).is_some());
        }
        assert!(file(
            "main.py",
            Some(b"token = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'")
        )
        .is_some());
        assert!(file("main.py", Some(b"max_tokens = 4096\ntokenizer = load()")).is_none());
        assert!(file("notes.md", Some(b"public key only")).is_none());
    }

    #[test]
    fn worktree_files_are_read_when_small() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("deploy.txt"),
            "-----BEGIN EC PRIVATE KEY-----\nMHc\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("plain.txt"), "hello\n").unwrap();
        assert!(worktree_file(dir.path(), Path::new("deploy.txt")).is_some());
        assert!(worktree_file(dir.path(), Path::new("plain.txt")).is_none());
        assert!(worktree_file(dir.path(), Path::new("missing/.npmrc")).is_some());
        std::os::unix::fs::symlink("deploy.txt", dir.path().join("link")).unwrap();
        assert!(
            worktree_file(dir.path(), Path::new("link")).is_none(),
            "a link is judged by name"
        );
    }
}
