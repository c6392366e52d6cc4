//! Secret redaction: handoffs are written by a model that has just seen the user's terminal,
//! `.env` files and logs, and they are pushed to a shared remote. Before anything is committed,
//! likely secrets are replaced by `[REDACTED:<kind>]`.
//!
//! Each rule carries a real-looking sample that a test proves it matches. Rules that redact a
//! value after a name (`password=…`) keep the name and replace only the value. Placeholders such
//! as `${DB_PASSWORD}` or `os.environ["TOKEN"]`, commit ids, UUIDs and ordinary prose are left
//! alone. Redaction is idempotent: redacted text passes through unchanged.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::{Context, Result};
use regex::{Captures, Regex};

/// One kind of secret: the regex and which capture group is the secret (0 = the whole match).
struct Rule {
    kind: &'static str,
    re: Regex,
    group: usize,
}

/// A secret-ish name right before a value: `password`, `api_key`, `client-secret`, `token` …
const SECRET_NAME: &str = r"(?i:[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth)[a-z0-9_.-]*)";

/// The rules, each with a real-looking sample it must match (the tests prove it).
fn rules() -> Vec<(Rule, &'static str)> {
    let r = |kind, pattern: &str, group, sample: &'static str| {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("rule {kind}: {e}"));
        (Rule { kind, re, group }, sample)
    };
    vec![
        r(
            "private-key",
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
            0,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----",
        ),
        r("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", 0, "AKIAIOSFODNN7EXAMPLE"),
        r(
            "aws-secret-key",
            r#"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
            1,
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        r("gcp-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b", 0, "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
        r(
            "gcp-service-account",
            r#""private_key_id"\s*:\s*"([0-9a-f]{40})""#,
            1,
            r#""private_key_id": "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c""#,
        ),
        r(
            "azure-storage-key",
            r"(?i)AccountKey=([A-Za-z0-9+/]{40,}={0,2})",
            1,
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        ),
        r(
            "azure-sas",
            r"(?i)[?&]sig=([A-Za-z0-9%+/=]{30,})",
            1,
            "https://acct.blob.core.windows.net/c?sv=2021-06-08&sig=3s2wVqS%2BmL0q5c1qz8XsG6W%2FvJkQ4yX7Z9aB1cD2eF3%3D",
        ),
        r("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 0, "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        r("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}\b", 0, "glpat-xYz12AbC34dEf56GhI78jK"),
        r("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", 0, "xoxb-2143568790-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
        r(
            "slack-webhook",
            r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
            0,
            "https://hooks.slack.com/services/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",
        ),
        r("stripe-key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b", 0, "sk_live_51H8aBcDeFgHiJkLmNoPqRsTuV"),
        r("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", 0, "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfGh"),
        r("openai-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", 0, "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd"),
        r(
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            0,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        r("basic-auth", r"(?i)\bBasic\s+([A-Za-z0-9+/]{12,}={0,2})", 1, "Authorization: Basic dXNlcjpodW50ZXIyMjI="),
        r("bearer", r"(?i)\bBearer\s+([A-Za-z0-9._~+/-]{20,}=*)", 1, "Authorization: Bearer abcdef0123456789abcdef0123456789"),
        r(
            "url-password",
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\[\]]+:([^\s@/\[\]]+)@",
            1,
            "postgres://admin:s3cr3tP4ss@db.example.com:5432/app",
        ),
        r(
            "assignment",
            &format!(r#"{SECRET_NAME}["']?\s*(?:=|:|:=|=>)\s*["']?([^\s"'`,;]{{6,}})"#),
            1,
            "DB_PASSWORD=hunter2hunter2",
        ),
    ]
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| rules().into_iter().map(|(rule, _)| rule).collect());

/// Values that are references to secrets, not secrets: `${VAR}`, `$VAR`, `process.env.X`,
/// `os.environ[…]`, `<placeholder>`, `***`, our own markers.
fn is_placeholder(v: &str) -> bool {
    static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?ix)^(?:\$\{?[A-Za-z_]|%[A-Za-z_]+%|process\.env|os\.environ|os\.getenv|env\(|ENV\[|getenv|<[^>]*>?|\*{3,}|x{4,}|\.{3}|\[REDACTED|your[_-]|changeme$|example|placeholder|null$|none$|true$|false$|undefined$|secrets\.|vault:|ref\+|\{\{)"#)
            .expect("placeholder regex")
    });
    PLACEHOLDER.is_match(v)
}

/// A named identifier or path rather than a value: `Token`, `user.token`, `&User`, `fn`.
fn looks_like_code(v: &str) -> bool {
    let v = v.trim_end_matches(['(', ')', '{', '}', '>', '<']);
    v.chars()
        .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '&' || c == ':')
        && !v.chars().any(|c| c.is_ascii_digit())
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: String,
    /// 1-based line of the input where the secret started.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub findings: Vec<Finding>,
}

/// The built-in rules plus the user's extra patterns and allow-list.
#[derive(Debug)]
pub struct Redactor {
    extra: Vec<Regex>,
    allow: Vec<Regex>,
}

impl Redactor {
    /// `extra`: regexes from `convosync.redactPattern` (their whole match is redacted as
    /// `custom`). `allow`: strings never redacted, or regexes written `re:<pattern>`.
    pub fn new(extra: &[String], allow: &[String]) -> Result<Redactor> {
        let extra = extra
            .iter()
            .map(|p| Regex::new(p).with_context(|| format!("invalid convosync.redactPattern {p:?}")))
            .collect::<Result<_>>()?;
        let allow = allow
            .iter()
            .map(|a| match a.strip_prefix("re:") {
                Some(p) => Regex::new(p).with_context(|| format!("invalid convosync.redactAllow {a:?}")),
                None => Ok(Regex::new(&format!("^{}$", regex::escape(a))).expect("escaped literal")),
            })
            .collect::<Result<_>>()?;
        Ok(Redactor { extra, allow })
    }

    fn allowed(&self, secret: &str) -> bool {
        secret.starts_with("[REDACTED:") || self.allow.iter().any(|a| a.is_match(secret))
    }

    pub fn redact(&self, text: &str) -> Redacted {
        let mut findings = Vec::new();
        let mut out = text.to_string();
        for rule in RULES.iter() {
            out = self.apply(&out, text, rule.kind, &rule.re, rule.group, &mut findings);
        }
        for re in &self.extra {
            out = self.apply(&out, text, "custom", re, 0, &mut findings);
        }
        out = self.high_entropy(&out, text, &mut findings);
        findings.sort_by_key(|f| f.line);
        Redacted { text: out, findings }
    }

    fn apply(
        &self,
        current: &str,
        original: &str,
        kind: &str,
        re: &Regex,
        group: usize,
        findings: &mut Vec<Finding>,
    ) -> String {
        re.replace_all(current, |caps: &Captures<'_>| {
            let whole = caps.get(0).expect("match");
            let Some(secret) = caps.get(group) else {
                return whole.as_str().to_string();
            };
            let value = secret.as_str();
            let value_only = group != 0;
            if self.allowed(value) || (value_only && (is_placeholder(value) || looks_like_code(value))) {
                return whole.as_str().to_string();
            }
            if kind == "assignment" && value.len() < 8 && entropy(value) < 2.0 {
                // `password=secret` in prose about settings, not a real value.
                return whole.as_str().to_string();
            }
            findings.push(Finding {
                kind: kind.to_string(),
                line: line_of(original, value),
            });
            let mut s = String::with_capacity(whole.len());
            s.push_str(&whole.as_str()[..secret.start() - whole.start()]);
            s.push_str(&format!("[REDACTED:{kind}]"));
            s.push_str(&whole.as_str()[secret.end() - whole.start()..]);
            s
        })
        .into_owned()
    }

    /// Long random-looking strings right after a secret-ish name on the same line.
    fn high_entropy(&self, current: &str, original: &str, findings: &mut Vec<Finding>) -> String {
        static NEAR_NAME: LazyLock<Regex> = LazyLock::new(|| {
            // Plain "key" counts here: a random 20+ character token right after it is a key.
            Regex::new(&format!(
                r#"(?:{SECRET_NAME}|(?i:\bkey\b))[^\n]{{0,24}}?\b([A-Za-z0-9+/_=-]{{20,}})"#
            ))
            .expect("entropy regex")
        });
        NEAR_NAME
            .replace_all(current, |caps: &Captures<'_>| {
                let whole = caps.get(0).expect("match");
                let v = caps.get(1).expect("group");
                let value = v.as_str();
                let hexish = value.chars().all(|c| c.is_ascii_hexdigit());
                let mixed = value.chars().any(|c| c.is_ascii_digit())
                    && value.chars().any(|c| c.is_ascii_alphabetic());
                if !mixed
                    || hexish && value.len() == 40
                    || entropy(value) < 3.5
                    || self.allowed(value)
                    || value.contains("REDACTED")
                {
                    return whole.as_str().to_string();
                }
                findings.push(Finding {
                    kind: "high-entropy".into(),
                    line: line_of(original, value),
                });
                format!(
                    "{}[REDACTED:high-entropy]{}",
                    &whole.as_str()[..v.start() - whole.start()],
                    &whole.as_str()[v.end() - whole.start()..]
                )
            })
            .into_owned()
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|i| text[..i].matches('\n').count() + 1)
        .unwrap_or(0)
}

/// Redact with the built-in rules only.
#[cfg(test)]
fn redact_default(text: &str) -> Redacted {
    static DEFAULT: LazyLock<Redactor> = LazyLock::new(|| Redactor::new(&[], &[]).expect("no user patterns"));
    DEFAULT.redact(text)
}

/// File names that hold secrets by convention (`.env`, keys, credentials). Examples and
/// templates (`.env.example`) and public keys are not secrets.
pub fn looks_like_secret_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    if name.ends_with(".pub")
        || [".example", ".sample", ".template", ".dist"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return false;
    }
    name == ".env"
        || name.starts_with(".env.")
        || name.ends_with(".env")
        || [
            ".pem",
            ".key",
            ".p12",
            ".pfx",
            ".keystore",
            ".jks",
            ".ppk",
            ".asc",
            ".gpg",
        ]
        .iter()
        .any(|s| name.ends_with(s))
        || ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .any(|p| name.starts_with(p))
        || [
            "credentials",
            "credentials.json",
            ".netrc",
            ".pgpass",
            "secrets.yml",
            "secrets.yaml",
            "secrets.json",
            ".htpasswd",
        ]
        .contains(&name.as_str())
        || name.starts_with("service-account") && name.ends_with(".json")
}

/// A file that must never leave this machine: a secret-looking name, or (for small regular
/// files; a private key is never megabytes long) a private key block inside.
pub fn is_secret_file(path: &Path) -> bool {
    if looks_like_secret_file(path) {
        return true;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() <= 1 << 20 => std::fs::read(path)
            .map(|b| contains_private_key(&b))
            .unwrap_or(false),
        _ => false,
    }
}

/// Kinds whose match is a secret beyond reasonable doubt (key blocks, fixed token prefixes),
/// unlike the heuristics on names and randomness: enough to keep a whole file off the remote.
const HIGH_CONFIDENCE: &[&str] = &[
    "private-key",
    "aws-access-key",
    "gcp-api-key",
    "gcp-service-account",
    "azure-storage-key",
    "github-token",
    "gitlab-token",
    "slack-token",
    "slack-webhook",
    "stripe-key",
    "anthropic-key",
    "openai-key",
];

/// The kind of the first high-confidence secret in `text`, if any.
pub fn high_confidence(text: &str) -> Option<&'static str> {
    RULES
        .iter()
        .filter(|r| HIGH_CONFIDENCE.contains(&r.kind))
        .find(|r| r.re.is_match(text))
        .map(|r| r.kind)
}

/// Whether `bytes` contain a private key block.
pub fn contains_private_key(bytes: &[u8]) -> bool {
    let needle = b"PRIVATE KEY";
    bytes.windows(needle.len()).any(|w| w == needle) && String::from_utf8_lossy(bytes).contains("-----BEGIN ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_rule_matches_its_own_sample_alone_and_embedded() {
        for (rule, sample) in rules() {
            for text in [
                sample.to_string(),
                format!("While debugging I saw {sample} in the log."),
            ] {
                let r = redact_default(&text);
                assert!(
                    r.text.contains(&format!("[REDACTED:{}]", rule.kind)),
                    "{}: {} -> {}",
                    rule.kind,
                    text,
                    r.text
                );
                assert!(r.findings.iter().any(|f| f.kind == rule.kind));
                let secret = rule
                    .re
                    .captures(sample)
                    .and_then(|c| c.get(rule.group))
                    .unwrap()
                    .as_str();
                assert!(
                    !r.text.contains(secret),
                    "{}: secret survived: {}",
                    rule.kind,
                    r.text
                );
            }
        }
    }

    #[test]
    fn keeps_names_and_hosts() {
        assert_eq!(
            redact_default("DB_PASSWORD=hunter2hunter2").text,
            "DB_PASSWORD=[REDACTED:assignment]"
        );
        assert_eq!(
            redact_default("postgres://admin:s3cr3tP4ss@db.example.com/app").text,
            "postgres://admin:[REDACTED:url-password]@db.example.com/app"
        );
        assert_eq!(
            redact_default(r#"  "client_secret": "Zx8v2Lq9Tt4Wm1Rk7Pp3""#).text,
            r#"  "client_secret": "[REDACTED:assignment]""#
        );
        assert_eq!(
            redact_default("api_key: 'AbC123xYz789QwE456'").text,
            "api_key: '[REDACTED:assignment]'"
        );
        assert_eq!(
            redact_default("export GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a").text,
            "export GITHUB_TOKEN=[REDACTED:github-token]"
        );
    }

    #[test]
    fn anthropic_keys_are_not_openai_keys() {
        let r = redact_default("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
        assert!(r.text.contains("[REDACTED:anthropic-key]"), "{}", r.text);
        assert!(!r.text.contains("openai"));
    }

    #[test]
    fn ordinary_text_survives() {
        let negatives = [
            "Fixed in commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 and abc1234.",
            "Request id 123e4567-e89b-12d3-a456-426614174000 failed.",
            "Image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 pulled.",
            r#"const LOGO: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";"#,
            "The password reset flow uses a token stored in Redis.",
            "password=${DB_PASSWORD}",
            r#"token = os.environ["TOKEN"]"#,
            "api_key: process.env.API_KEY",
            "Bearer tokens expire after 7 days.",
            "See https://user@github.com/x and https://example.com/a:b for details.",
            "src/auth/token_store.rs and ~/.config/app/secret_rotation.md",
            "fn token_for(user: &User) -> Token { todo!() }",
            "version 1.2.3-beta.4, node v20.20.2",
            "[REDACTED:github-token] was removed",
            "- Using JWT tokens with 7-day expiry (balanced security vs UX)",
            "password: <your password here>",
            "secret_key_base = Rails.application.credentials.secret_key_base",
        ];
        for n in negatives {
            assert_eq!(redact_default(n).text, n, "mangled an ordinary line");
        }
    }

    #[test]
    fn high_entropy_after_a_name() {
        let r = redact_default("the deploy key is Zk3pQ9vX2mN7bR4tY8wL1cF6hJ0sD5gA");
        assert!(r.text.contains("[REDACTED:"), "{}", r.text);
        let r = redact_default("the deploy key is documented in the wiki somewhere");
        assert!(!r.text.contains("REDACTED"));
    }

    #[test]
    fn user_patterns_and_allow_list() {
        let r = Redactor::new(&["ACME-[0-9]{6}".into()], &["hunter2hunter2".into()]).unwrap();
        let out = r.redact("ticket ACME-123456, DB_PASSWORD=hunter2hunter2");
        assert_eq!(out.text, "ticket [REDACTED:custom], DB_PASSWORD=hunter2hunter2");
        assert!(Redactor::new(&["(".into()], &[])
            .unwrap_err()
            .to_string()
            .contains("redactPattern"));
    }

    #[test]
    fn secret_files() {
        for yes in [
            ".env",
            ".env.local",
            "prod.env",
            "server.pem",
            "tls.key",
            "id_rsa",
            "id_ed25519",
            "credentials",
            ".netrc",
            "service-account-prod.json",
            "keystore.jks",
        ] {
            assert!(looks_like_secret_file(Path::new(yes)), "{yes}");
        }
        for no in [
            ".env.example",
            ".env.sample",
            "id_rsa.pub",
            "main.rs",
            "keys.md",
            "environment.ts",
            "README.md",
        ] {
            assert!(!looks_like_secret_file(Path::new(no)), "{no}");
        }
        assert!(contains_private_key(b"x\n-----BEGIN RSA PRIVATE KEY-----\nMII\n"));
        assert!(!contains_private_key(b"public key only"));
    }

    #[test]
    fn large_input_is_linear() {
        let big = "ordinary words and numbers 12345 ".repeat(40_000);
        let t = std::time::Instant::now();
        let r = redact_default(&big);
        assert_eq!(r.text.len(), big.len());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(s in any::<String>()) {
            let once = redact_default(&s).text;
            prop_assert_eq!(redact_default(&once).text, once);
        }

        #[test]
        fn idempotent_on_secret_mixes(parts in prop::collection::vec(prop::sample::select(vec![
            "AKIAIOSFODNN7EXAMPLE", "password=hunter2hunter2", " ", "\n", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "Bearer abcdef0123456789abcdef0123456789", "https://u:p4ssw0rd!@h.example/x", "token: Zk3pQ9vX2mN7bR4tY8wL1cF6hJ0sD5gA",
        ]), 0..12)) {
            let glued: String = parts.concat();
            let once = redact_default(&glued).text;
            prop_assert_eq!(redact_default(&once).text, once);
            let once = redact_default(&parts.join(" ")).text;
            prop_assert!(!once.contains("hunter2hunter2") && !once.contains("AKIAIOSFODNN7EXAMPLE") && !once.contains("p4ssw0rd"));
        }
    }
}
