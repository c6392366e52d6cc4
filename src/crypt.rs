//! End-to-end encryption of handoff notes with the person's own age X25519 key.
//!
//! One key per person, in the config dir (`<config>/convosync/key.txt`, mode 0600), serves all of
//! their repositories. A repository's handoff ref records that its notes are encrypted with a
//! `keys/<recipient>` file per person: the recipient is the public half of an age key (`age1…`),
//! which is public by design. Once a ref has such a file, a device with a key encrypts its
//! handoffs to its own key before committing them (after redaction), and commit messages carry
//! only the device name. Reading is transparent: [`open`] sits where a blob becomes text, so every
//! command and hook decrypts. The key file is read at most once per process, and only when an
//! encrypted blob is met or a handoff is written to an encrypted ref.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use age::secrecy::ExposeSecret;
use anyhow::{bail, Context, Result};

/// The directory in the ref's tree with one `<recipient>` file per person whose notes are
/// encrypted.
pub const KEYS_DIR: &str = "keys";
/// The first bytes of every age file (binary format).
const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// Every decryption failure message starts with this, so commands can tell them apart.
pub const ENCRYPTED: &str = "encrypted note";
/// The reason for a note this device has no key for.
pub const NO_KEY: &str = "encrypted note (this device has no key)";
/// The reason for a note encrypted to someone else's key.
pub const OTHER_KEY: &str = "encrypted note (another person's key)";
/// What to run on a device without the key.
pub const KEY_HINT: &str =
    "run `convosync key show` on a device that has your key, then `convosync key add KEY` here";

/// A person's key: the secret identity and its public recipient.
pub struct Key {
    identity: age::x25519::Identity,
    recipient: String,
}

impl Key {
    pub fn generate() -> Key {
        Key::from_identity(age::x25519::Identity::generate())
    }

    fn from_identity(identity: age::x25519::Identity) -> Key {
        let recipient = identity.to_public().to_string();
        Key { identity, recipient }
    }

    /// Parse `AGE-SECRET-KEY-1…` (surrounding whitespace and `#` comment lines are ignored).
    pub fn parse(text: &str) -> Result<Key> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        if !line.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-1") {
            bail!("not a convosync key: it starts with AGE-SECRET-KEY-1 (print it with `convosync key show` on a device that has it)");
        }
        let identity: age::x25519::Identity = line.to_ascii_uppercase().parse().map_err(|e| {
            anyhow::anyhow!("not a valid key ({e}); copy the whole line `convosync key show` prints")
        })?;
        Ok(Key::from_identity(identity))
    }

    /// The public recipient, `age1…`: safe to publish.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The secret identity as one line.
    pub fn secret(&self) -> String {
        self.identity.to_string().expose_secret().to_string()
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        age::encrypt(&self.identity.to_public(), plaintext).context("could not encrypt the note")
    }

    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        age::decrypt(&self.identity, ciphertext).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => OTHER_KEY.to_string(),
            e => format!("{ENCRYPTED} that could not be decrypted ({e})"),
        })
    }
}

/// A short form of a recipient for messages: `age1abcdefgh…wxyz`.
pub fn fingerprint(recipient: &str) -> String {
    let n = recipient.len();
    if n <= 20 {
        return recipient.to_string();
    }
    format!("{}…{}", &recipient[..12], &recipient[n - 6..])
}

/// `<config dir>/key.txt`.
pub fn key_path() -> Option<PathBuf> {
    crate::device::config_dir().map(|d| d.join("key.txt"))
}

/// Whether a key file exists (a stat, no read).
pub fn key_file_exists() -> bool {
    key_path().is_some_and(|p| p.is_file())
}

fn read_key_file() -> Option<Key> {
    let text = std::fs::read_to_string(key_path()?).ok()?;
    Key::parse(&text).ok()
}

/// This person's key, read once per process.
pub fn key() -> Option<&'static Key> {
    static KEY: OnceLock<Option<Key>> = OnceLock::new();
    KEY.get_or_init(read_key_file).as_ref()
}

/// Store `key` as this person's key: a new file with mode 0600 from the start, renamed into
/// place. Refuses to replace a different existing key (notes written with it would be lost).
pub fn store_key(key: &Key) -> Result<PathBuf> {
    let path = key_path().context("could not find a config directory for the key (set HOME)")?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        match Key::parse(&text) {
            Ok(existing) if existing.recipient == key.recipient => return Ok(path),
            Ok(existing) => bail!(
                "{} already holds another key ({}); notes written with it could no longer be read. Move it away first if you really mean to replace it",
                path.display(),
                fingerprint(existing.recipient())
            ),
            Err(_) => bail!(
                "{} exists but holds no valid key; move it away first",
                path.display()
            ),
        }
    }
    let text = format!(
        "# convosync key (age X25519). Keep it secret; without it your encrypted notes cannot be read.\n# public key: {}\n{}\n",
        key.recipient(),
        key.secret()
    );
    crate::fsutil::atomic_write_mode(&path, text.as_bytes(), 0o600)?;
    Ok(path)
}

/// Whether `bytes` is an age file.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The text of a device file: itself when plain, decrypted with this person's key when encrypted.
/// Costs one prefix comparison for plain files.
pub fn open(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !is_encrypted(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    match key() {
        Some(k) => k.decrypt(bytes).map(Cow::Owned),
        None => Err(NO_KEY.to_string()),
    }
}

/// Whether `name` looks like an age X25519 recipient (`age1` and bech32 characters).
pub fn is_recipient(name: &str) -> bool {
    name.len() > 4
        && name.len() <= 100
        && name.starts_with("age1")
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// What to commit for a rendered note: encrypted to this person's key when the ref records that
/// notes are encrypted (`encrypted_ref`) and this device has a key (`Some(recipient)` then), else
/// the text as it is.
pub fn seal(encrypted_ref: bool, text: Vec<u8>) -> Result<(Vec<u8>, Option<String>)> {
    if !encrypted_ref {
        return Ok((text, None));
    }
    match key() {
        Some(k) => Ok((k.encrypt(&text)?, Some(k.recipient().to_string()))),
        None => Ok((text, None)),
    }
}

/// The commit message of an encrypted handoff: the device only, nothing from the note.
pub fn sealed_message(device: &str) -> String {
    format!("handoff from {device}\n\nConvosync-Device: {device}\nConvosync-Encrypted: yes\n")
}

static UNREADABLE: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// Remember that `device`'s note could not be read because of `reason` (only encryption
/// reasons are kept), for [`unreadable_summary`].
pub fn note_unreadable(device: &str, reason: &str) {
    if reason.starts_with(ENCRYPTED) {
        if let Ok(mut set) = UNREADABLE.lock() {
            set.insert((device.to_string(), reason.to_string()));
        }
    }
}

/// The notes this process could not decrypt so far: (device, reason).
pub fn unreadable() -> BTreeSet<(String, String)> {
    UNREADABLE.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Lines for the user naming the notes this process could not decrypt, if any, worded as the
/// view of other devices' notes words them (`notes::unreadable_lines`).
pub fn unreadable_summary() -> Vec<String> {
    let list: Vec<crate::notes::Unreadable> = unreadable()
        .into_iter()
        .map(|(device, reason)| crate::notes::Unreadable { device, reason })
        .collect();
    crate::notes::unreadable_lines(&list, true)
}

/// A device name without control characters, for messages.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// The one-line hint for a session start on a device without the key, once per repository
/// (remembered in `state_dir`). `devices` are those whose notes it could not read.
pub fn session_hint(state_dir: &Path, devices: &[String]) -> Option<String> {
    if devices.is_empty() || key_file_exists() {
        return None;
    }
    let marker = state_dir.join("key-hint-shown");
    if marker.exists() {
        return None;
    }
    let _ = crate::fsutil::replace_file(&marker, b"1\n");
    Some(format!(
        "notes from {} are encrypted and this device has no key; {KEY_HINT}",
        devices.iter().map(|d| clean(d)).collect::<Vec<_>>().join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let k = Key::generate();
        let text = b"# Handoff\nsecret plan".to_vec();
        let c = k.encrypt(&text).unwrap();
        assert!(is_encrypted(&c));
        assert!(!c.windows(11).any(|w| w == b"secret plan"));
        assert_eq!(k.decrypt(&c).unwrap(), text);
        let other = Key::generate();
        assert_eq!(other.decrypt(&c).unwrap_err(), OTHER_KEY);
        let again = Key::parse(&format!("# comment\n{}\n", k.secret())).unwrap();
        assert_eq!(again.recipient(), k.recipient());
        assert!(Key::parse("hello").is_err());
        assert!(Key::parse("AGE-SECRET-KEY-1XYZ").is_err());
        assert!(!is_encrypted(b"# Handoff"));
        assert_eq!(open(b"plain").unwrap().as_ref(), b"plain");
    }
}
