//! Secrets recognised by the name before them: which names are a secret's (`DB_PASSWORD`,
//! `apiKey`, not `cache_key` or `tokenizer`), which values after such a name are secrets rather
//! than placeholders, numbers or code, and a long random-looking value shortly after a name.

use std::sync::LazyLock;

use regex::{Captures, Match, Regex};

/// Words that let the name-based passes skip a text without them.
pub(super) const NAME_WORDS: &[&str] = &["pass", "pwd", "secret", "token", "key", "credential", "auth"];

/// A word before `key` that makes it the name of a record or an entry, never a secret.
static NAMING_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:cache|sort|partition|primary|foreign|lookup|index|routing|idempotency|dedupe?|cursor|public|object|row|hash|map)$")
        .expect("naming-key regex")
});

/// A word that makes a secret word after it part of one name: `apikey`, `secretkey`, `authtoken`.
static COMPOUND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:api|access|secret|private|client|refresh|auth|session|master|app|bot|db|admin|root|user|csrf|oauth|bearer|signing|encryption)$")
        .expect("compound regex")
});

/// The secret words a name may end with, and whether the value is a password (which may be
/// short and plain) rather than a key or token. `None`: not a secret's name.
pub(super) fn secret_name(name: &str) -> Option<bool> {
    const PASSWORDS: &[&str] = &["password", "passwd", "passphrase", "passcode", "pass", "pwd"];
    const KEYS: &[&str] = &["secret", "token", "key", "credential", "auth"];
    let lower = name.to_ascii_lowercase();
    let stems = [Some(lower.as_str()), lower.strip_suffix('s')];
    for stem in stems.into_iter().flatten() {
        for (words, is_password) in [(PASSWORDS, true), (KEYS, false)] {
            for (w, prefix) in words.iter().filter_map(|w| Some((*w, stem.strip_suffix(w)?))) {
                let start = prefix.len();
                // A key that names a record, not a secret: `cache_key`, `sortKey`, `primary_key`.
                if w == "key" && NAMING_KEY.is_match(prefix.trim_end_matches(['_', '-', '.'])) {
                    continue;
                }
                // A short word must start the name or a part of it: `db_pass`, `accessKey`,
                // `KEY`, not `bypass`, `monkey`, `hotkey`. Longer ones end any name
                // (`PGPASSWORD`, `csrftoken`).
                if w.len() >= 5 {
                    return Some(is_password);
                }
                let camel = name[start..].starts_with(|c: char| c.is_ascii_uppercase())
                    && name[..start].ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
                if prefix.is_empty()
                    || prefix.ends_with(['_', '-', '.'])
                    || camel
                    || COMPOUND.is_match(prefix)
                {
                    return Some(is_password);
                }
            }
        }
    }
    None
}

/// Whether a value named as a secret looks like one rather than a placeholder, a number, a
/// type or a code expression.
pub(super) fn secret_value(v: &str, is_password: bool, quoted: bool) -> bool {
    if v.is_empty() || is_placeholder(v) || v.starts_with("[REDACTED:") {
        return false;
    }
    if v.chars().all(|c| c.is_ascii_digit()) {
        // `KEY_LENGTH=32`, `max_tokens: 4096`: a number is a setting. A long one after a
        // password name is a PIN-like password.
        return is_password && v.len() >= 6;
    }
    if is_password {
        // Passwords are short and plain; only an unquoted identifier-like value is code.
        return v.chars().count() >= 4 && (quoted || !looks_like_code(v));
    }
    // A key or token is one long string, not a word or a phrase.
    v.chars().count() >= 8
        && !v.contains(' ')
        && !looks_like_code(v)
        && !v.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// Values that are references to secrets, not secrets: `${VAR}`, `$VAR`, `process.env.X`,
/// `os.environ[…]`, `<placeholder>`, `***`, `xxx`, `changeme`, type names, our own markers.
pub(super) fn is_placeholder(v: &str) -> bool {
    static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?ix)^(?:\$\{?[A-Za-z_]|%[A-Za-z_]+%|process\.env|os\.environ|os\.getenv|env\(|ENV\[|getenv|<[^>]*>?|\*{3,}|x{3,}$|\.{3}|\[REDACTED|your[_-]|changeme$|change[_-]me$|replace[_-]?me$|example|placeholder|dummy$|redacted$|null$|nil$|none$|true$|false$|undefined$|required$|optional$|string$|str$|text$|bool(?:ean)?$|int$|number$|secret$|password$|token$|hidden$|masked$|empty$|unset$|todo$|secrets\.|vault:|ref\+|\{\{|\(\)$)"#)
            .expect("placeholder regex")
    });
    PLACEHOLDER.is_match(v) || v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•' | '.'))
}

/// A named identifier, call or path rather than a value: `Token`, `user.token`, `&User`,
/// `get_password()`, `/etc/ssl/server.key`. A plain lowercase word is not code (it may be a
/// password).
pub(super) fn looks_like_code(v: &str) -> bool {
    let v = v.trim_end_matches(['(', ')', '{', '}', '>', '<', '[', ']', ';']);
    static CAMEL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[a-z]+(?:[A-Z][a-z]+)+|(?:[A-Z][a-z]+)+|[A-Z][A-Z_]*)$").expect("camel regex")
    });
    let identifier = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '&' | ':'))
        && (v.contains(['_', '.', '&', ':']) || CAMEL.is_match(v));
    identifier || v.contains("()") || v.starts_with('/') && !v[1..].contains(['@', '#', '!'])
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    s.bytes().for_each(|b| counts[b as usize] += 1);
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 / n)
        .map(|p| -p * p.log2())
        .sum()
}

/// A name ending in a secret word, then (on the same line, shortly after) a long random-looking
/// value: "the deploy key is Zk3p…", "token -> 9fQ…".
pub(super) static NEAR_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b([a-z0-9_.-]*?(?:password|passwd|passphrase|pwd|secret|token|key|credential|auth)s?)\b[^\n]{0,24}?\b([A-Za-z0-9+/_=-]{20,})",
    )
    .expect("entropy regex")
});

pub(super) fn near_name_secret<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    secret_name(caps.get(1)?.as_str())?;
    let v = caps.get(2)?;
    let value = v.as_str();
    let hexish = value.chars().all(|c| c.is_ascii_hexdigit());
    let mixed = value.chars().any(|c| c.is_ascii_digit()) && value.chars().any(|c| c.is_ascii_alphabetic());
    // A commit id or digest is hex of a fixed length; a word-with-dashes is a name.
    let named = value
        .split(['-', '_', '.'])
        .all(|p| p.chars().all(|c| c.is_ascii_lowercase()) || p.chars().all(|c| c.is_ascii_digit()));
    (mixed
        && !(hexish && matches!(value.len(), 40 | 64))
        && !named
        && entropy(value) >= 3.5
        && !value.contains("REDACTED"))
    .then_some(v)
}
