//! End-to-end encryption of handoff notes and snapshots with the person's own key.
//!
//! One key per person, in the config dir (`<config>/convosync/key.txt`, mode 0600), serves all of
//! their repositories: a 32-byte secret, written in bech32 as `CONVOSYNC-KEY-1…` (the
//! `AGE-SECRET-KEY-1…` lines of earlier versions are read the same way, so nobody re-keys). A
//! device that has a key encrypts every note and snapshot it writes, in every repository, whatever
//! the ref says, and its commit messages carry only the device name.
//!
//! The format is a standard one, not ours: a tagged COSE_Encrypt0 message (RFC 9052) with
//! ChaCha20/Poly1305 (COSE algorithm 24), a random 12-byte IV per message, and the key id in the
//! protected (authenticated) header. The AEAD key and the key id are derived from the secret with
//! HKDF-SHA256. The cipher is symmetric: only holders of the person's secret can make a message
//! that decrypts under it, so a note that decrypts with this device's key PROVES it was written
//! with that key ([`Opened::proven`]); [`crate::team::Me::owns`] relies on that.
//!
//! The ref's `keys/` directory records one key id per person (`keys/<id>`): a one-way digest of
//! the secret, neither the secret nor anything one could encrypt to. It only tells devices
//! without the key that notes are encrypted. Reading is transparent: [`open`] sits where a blob
//! becomes text, and each blob id is decrypted at most once per process.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Nonce};
use coset::{iana, CoseEncrypt0, CoseEncrypt0Builder, HeaderBuilder, TaggedCborSerializable};
use git2::Oid;
use hkdf::Hkdf;
use sha2::Sha256;

/// The directory in the ref's tree with one `<key id>` file per person whose notes are
/// encrypted.
pub const KEYS_DIR: &str = "keys";
/// The first bytes of a file encrypted by earlier versions (age's binary format).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The first bytes of every encrypted file: CBOR tag 16 (COSE_Encrypt0), then an array of three.
const COSE_MAGIC: &[u8] = &[0xd0, 0x83];
/// Encrypted files larger than this are refused before anything is decrypted. Notes are capped
/// lower still ([`crate::store::MAX_HANDOFF_BYTES`]); this bounds a snapshot's changes.
pub const MAX_CIPHERTEXT: usize = 64 * 1024 * 1024;
/// Why an encrypted file could not be opened. Each reason reads "encrypted note …", as users see
/// it; the ones this device can do something about are variants of their own.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub enum OpenError {
    /// Encrypted, and this device has no key.
    #[error("encrypted note (this device has no key)")]
    NoKey,
    /// Encrypted with someone else's key.
    #[error("encrypted note (another person's key)")]
    OtherKey,
    /// In the format of earlier versions (age).
    #[error(
        "encrypted note (encrypted by an older convosync; it is rewritten at that device's next handoff)"
    )]
    OldFormat,
    #[error("encrypted note too large to decrypt ({0} bytes)")]
    TooLarge(usize),
    /// Not a COSE message (the parser's reason).
    #[error("encrypted note that is not a valid message ({0})")]
    Invalid(String),
    #[error("encrypted note in an algorithm this version does not read")]
    Algorithm,
    #[error("encrypted note with an invalid IV")]
    Iv,
    #[error("encrypted note without a ciphertext")]
    NoCiphertext,
    /// Altered, or made with another key claiming this key's id.
    #[error("encrypted note that failed its integrity check (altered, or not written with this key)")]
    Integrity,
}

/// What to run on a device without the key.
pub const KEY_HINT: &str =
    "run `convosync key show` on a device that has your key, then `convosync key add KEY` here";

/// What a message is, bound into it as COSE external data: a snapshot's file never passes for a
/// note, nor a note for a snapshot's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Note,
    Snapshot,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::Note => b"convosync note v1",
            Purpose::Snapshot => b"convosync snapshot v1",
        }
    }
}

/// The bech32 prefix of a key's text form (written in capitals, as age writes its keys).
const HRP: &str = "convosync-key-";
/// The prefix of keys made by earlier versions (age X25519 identities): the same 32 bytes.
const AGE_HRP: &str = "age-secret-key-";
/// Bytes of a key id.
const ID_LEN: usize = 16;

/// A person's key: the secret, the cipher derived from it, and its public id.
pub struct Key {
    secret: [u8; 32],
    cipher: ChaCha20Poly1305,
    id: [u8; ID_LEN],
}

impl Key {
    pub fn generate() -> Key {
        Key::from_secret(ChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    fn from_secret(secret: [u8; 32]) -> Key {
        let hk = Hkdf::<Sha256>::new(Some(b"convosync"), &secret);
        let mut aead = [0u8; 32];
        let mut id = [0u8; ID_LEN];
        // Both lengths are far below HKDF's limit (255 blocks): these cannot fail.
        hk.expand(b"convosync v1 note key", &mut aead)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hk.expand(b"convosync v1 key id", &mut id)
            .expect("16 bytes is a valid HKDF-SHA256 length");
        Key {
            secret,
            cipher: ChaCha20Poly1305::new(&aead.into()),
            id,
        }
    }

    /// Parse `CONVOSYNC-KEY-1…` or an earlier `AGE-SECRET-KEY-1…` (surrounding whitespace and
    /// `#` comment lines are ignored).
    pub fn parse(text: &str) -> Result<Key> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        let upper = line.to_ascii_uppercase();
        let known = |hrp: &str| [HRP, AGE_HRP].iter().any(|h| hrp.eq_ignore_ascii_case(h));
        if !upper.split_once('1').is_some_and(|(hrp, _)| known(hrp)) {
            bail!("not a convosync key: it starts with CONVOSYNC-KEY-1 (print it with `convosync key show` on a device that has it)");
        }
        let invalid = |e: &dyn std::fmt::Display| {
            anyhow!("not a valid key ({e}); copy the whole line `convosync key show` prints")
        };
        let (hrp, data) = bech32::decode(&upper).map_err(|e| invalid(&e))?;
        if !known(hrp.as_str()) {
            return Err(invalid(&"unknown prefix"));
        }
        let secret: [u8; 32] = data
            .try_into()
            .map_err(|d: Vec<u8>| invalid(&format!("{} bytes instead of 32", d.len())))?;
        Ok(Key::from_secret(secret))
    }

    /// The public key id (32 hex digits): recorded on the ref, safe to publish, useless to encrypt
    /// to.
    pub fn id(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret as one line, `CONVOSYNC-KEY-1…`.
    pub fn secret(&self) -> String {
        let hrp = bech32::Hrp::parse(HRP).expect("a valid bech32 prefix");
        bech32::encode_upper::<bech32::Bech32>(hrp, &self.secret).expect("32 bytes fit a bech32 string")
    }

    /// `plaintext` as a tagged COSE_Encrypt0 message for `purpose`.
    pub fn encrypt(&self, purpose: Purpose, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ChaCha20Poly1305)
            .key_id(self.id.to_vec())
            .build();
        let unprotected = HeaderBuilder::new().iv(nonce.to_vec()).build();
        let msg = CoseEncrypt0Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .try_create_ciphertext(plaintext, purpose.aad(), |pt, aad| {
                self.cipher.encrypt(&nonce, Payload { msg: pt, aad })
            })
            .map_err(|_| anyhow!("could not encrypt the note"))?
            .build();
        msg.to_tagged_vec()
            .map_err(|e| anyhow!("could not encode the encrypted note ({e})"))
    }

    /// The plaintext of a message made by [`Key::encrypt`] with this key for `purpose`; the
    /// reason it cannot be read otherwise.
    pub fn decrypt(&self, purpose: Purpose, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
        if bytes.len() > MAX_CIPHERTEXT {
            return Err(OpenError::TooLarge(bytes.len()));
        }
        let msg = CoseEncrypt0::from_tagged_slice(bytes).map_err(|e| OpenError::Invalid(e.to_string()))?;
        let alg = msg.protected.header.alg.as_ref();
        if alg != Some(&coset::Algorithm::Assigned(iana::Algorithm::ChaCha20Poly1305)) {
            return Err(OpenError::Algorithm);
        }
        if msg.protected.header.key_id != self.id {
            return Err(OpenError::OtherKey);
        }
        let iv = &msg.unprotected.iv;
        if iv.len() != 12 {
            return Err(OpenError::Iv);
        }
        msg.decrypt_ciphertext(
            purpose.aad(),
            || OpenError::NoCiphertext,
            |ct, aad| {
                self.cipher
                    .decrypt(Nonce::from_slice(iv), Payload { msg: ct, aad })
                    .map_err(|_| OpenError::Integrity)
            },
        )
    }
}

/// A short form of a key id for messages: `0123456789ab…abcdef`.
pub fn fingerprint(id: &str) -> String {
    let n = id.len();
    if n <= 20 || !id.is_ascii() {
        return id.to_string();
    }
    format!("{}…{}", &id[..12], &id[n - 6..])
}

/// `<config dir>/key.txt`.
pub fn key_path() -> Option<PathBuf> {
    crate::device::config_dir().map(|d| d.join("key.txt"))
}

/// Whether a key file exists (a stat, no read).
pub fn key_file_exists() -> bool {
    key_path().is_some_and(|p| p.is_file())
}

/// This person's key, read once per process.
pub fn key() -> Option<&'static Key> {
    static KEY: OnceLock<Option<Key>> = OnceLock::new();
    KEY.get_or_init(|| Key::parse(&std::fs::read_to_string(key_path()?).ok()?).ok())
        .as_ref()
}

/// Store `key` as this person's key: a new file with mode 0600 from the start, renamed into
/// place. Refuses to replace a different existing key (notes written with it would be lost).
pub fn store_key(key: &Key) -> Result<PathBuf> {
    let path = key_path().context("could not find a config directory for the key (set HOME)")?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        match Key::parse(&text) {
            Ok(existing) if existing.id == key.id => return Ok(path),
            Ok(existing) => bail!(
                "{} already holds another key ({}); notes written with it could no longer be read. Move it away first if you really mean to replace it",
                path.display(),
                fingerprint(&existing.id())
            ),
            Err(_) => bail!(
                "{} exists but holds no valid key; move it away first",
                path.display()
            ),
        }
    }
    let text = format!(
        "# convosync key. Keep it secret; without it your encrypted notes cannot be read.\n# key id: {}\n{}\n",
        key.id(),
        key.secret()
    );
    crate::fsutil::atomic_write_mode(&path, text.as_bytes(), 0o600)?;
    Ok(path)
}

/// Whether `bytes` is an encrypted file, in this format or an earlier one.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(COSE_MAGIC) || bytes.starts_with(AGE_MAGIC)
}

/// A file of the ref, ready to parse.
#[derive(Debug)]
pub struct Opened<'a> {
    pub text: Cow<'a, [u8]>,
    /// Whether it was decrypted with this device's key, which proves it was written with it.
    pub proven: bool,
}

/// The text of a file of the ref: itself when plain, decrypted with this person's key when
/// encrypted. Costs one prefix comparison for plain files. Given the blob's `id` (prefer that when
/// it is known), each blob is decrypted at most once per process.
pub fn open(id: Option<Oid>, purpose: Purpose, bytes: &[u8]) -> Result<Opened<'_>, OpenError> {
    if bytes.starts_with(AGE_MAGIC) {
        return Err(OpenError::OldFormat);
    }
    if !bytes.starts_with(COSE_MAGIC) {
        return Ok(Opened {
            text: Cow::Borrowed(bytes),
            proven: false,
        });
    }
    let k = key().ok_or(OpenError::NoKey)?;
    let text = match id {
        Some(id) => (DECRYPTED.lock().unwrap_or_else(|e| e.into_inner()))
            .open(id, purpose, bytes, k)?
            .as_ref()
            .clone(),
        None => k.decrypt(purpose, bytes)?,
    };
    Ok(Opened {
        text: Cow::Owned(text),
        proven: true,
    })
}

/// Plaintext bytes kept at most; past that, blobs are decrypted again rather than held in
/// memory. Reasons (a few dozen bytes each) are kept for this many blobs at most.
const CACHED_BYTES: usize = 32 * 1024 * 1024;
const CACHED_BLOBS: usize = 65_536;

/// A decrypted plaintext, shared, or why it could not be decrypted.
type Plain = Result<Arc<Vec<u8>>, OpenError>;

/// The decryptions of a process, by blob id: many entries pointing at one blob cost one.
#[derive(Default)]
pub struct Decrypted {
    done: HashMap<(Oid, Purpose), Plain>,
    /// Plaintext bytes held in `done`.
    held: usize,
    /// How many decryptions ran.
    pub count: usize,
}

impl Decrypted {
    /// The plaintext of blob `id` (holding `bytes`) under `key`, decrypted on the first call only.
    pub fn open(
        &mut self,
        id: Oid,
        purpose: Purpose,
        bytes: &[u8],
        key: &Key,
    ) -> Result<Arc<Vec<u8>>, OpenError> {
        if let Some(r) = self.done.get(&(id, purpose)) {
            return r.clone();
        }
        self.count += 1;
        let r = key.decrypt(purpose, bytes).map(Arc::new);
        let size = r.as_ref().map_or(0, |t| t.len());
        if self.done.len() < CACHED_BLOBS && self.held + size <= CACHED_BYTES {
            self.held += size;
            self.done.insert((id, purpose), r.clone());
        }
        r
    }
}

static DECRYPTED: std::sync::LazyLock<Mutex<Decrypted>> = std::sync::LazyLock::new(Default::default);

/// Whether `name` is a key id as [`Key::id`] writes it (32 lowercase hex digits), or the age
/// recipient (`age1…`) earlier versions recorded: both mean "notes here are encrypted".
pub fn is_key_id(name: &str) -> bool {
    let hex = name.len() == 2 * ID_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let age = name.len() > 4
        && name.len() <= 100
        && name.starts_with("age1")
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    hex || age
}

/// What to commit for a rendered note: encrypted with this person's key when this device has
/// one (`Some(key id)` then), whatever the ref records; else the text as it is.
pub fn seal(text: Vec<u8>) -> Result<(Vec<u8>, Option<String>)> {
    match key() {
        Some(k) => Ok((k.encrypt(Purpose::Note, &text)?, Some(k.id()))),
        None => Ok((text, None)),
    }
}

/// The commit message of an encrypted handoff: the device only, nothing from the note.
pub fn sealed_message(device: &str) -> String {
    format!("handoff from {device}\n\nConvosync-Device: {device}\nConvosync-Encrypted: yes\n")
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
        // Device names without control characters.
        devices.join(", ").replace(char::is_control, "")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let k = Key::generate();
        let text = b"# Handoff\nsecret plan".to_vec();
        let c = k.encrypt(Purpose::Note, &text).unwrap();
        assert!(is_encrypted(&c) && c.starts_with(COSE_MAGIC));
        assert!(!c.windows(11).any(|w| w == b"secret plan"));
        assert_eq!(k.decrypt(Purpose::Note, &c).unwrap(), text);
        assert_ne!(
            c,
            k.encrypt(Purpose::Note, &text).unwrap(),
            "a fresh IV each time"
        );
        // A note never passes for a snapshot's file.
        assert!(k.decrypt(Purpose::Snapshot, &c).is_err());
        let other = Key::generate();
        assert_eq!(other.decrypt(Purpose::Note, &c).unwrap_err(), OpenError::OtherKey);
        let again = Key::parse(&format!("# comment\n{}\n", k.secret())).unwrap();
        assert_eq!(again.id(), k.id());
        assert!(k.secret().starts_with("CONVOSYNC-KEY-1"));
        assert!(Key::parse(&k.secret().to_lowercase()).is_ok());
        assert!(Key::parse("hello").is_err());
        assert!(Key::parse("CONVOSYNC-KEY-1XYZ").is_err());
        assert!(!is_encrypted(b"# Handoff"));
        let plain = open(None, Purpose::Note, b"plain").unwrap();
        assert_eq!((plain.text.as_ref(), plain.proven), (&b"plain"[..], false));
        assert!(is_key_id(&k.id()) && !is_key_id("../x") && !is_key_id(&k.id().to_uppercase()));
    }

    #[test]
    fn a_tampered_message_is_refused() {
        let k = Key::generate();
        let c = k.encrypt(Purpose::Note, b"the plan").unwrap();
        // Every byte of the ciphertext and tag (the last bytes) is covered.
        for i in [c.len() - 1, c.len() - 17, c.len() - 20] {
            let mut bad = c.clone();
            bad[i] ^= 1;
            let e = k.decrypt(Purpose::Note, &bad).unwrap_err();
            assert_eq!(e, OpenError::Integrity);
            assert!(e.to_string().starts_with("encrypted note"), "{e}");
        }
        // A message claiming this key's id, made with another key, fails its integrity check.
        let other = Key::generate();
        let mut forged =
            CoseEncrypt0::from_tagged_slice(&other.encrypt(Purpose::Note, b"x").unwrap()).unwrap();
        forged.protected.header.key_id = k.id.to_vec();
        forged.protected.original_data = None;
        let forged = forged.to_tagged_vec().unwrap();
        assert_eq!(
            k.decrypt(Purpose::Note, &forged).unwrap_err(),
            OpenError::Integrity
        );
        assert!(k.decrypt(Purpose::Note, b"\xd0\x83junk").is_err());
        assert_eq!(
            k.decrypt(Purpose::Note, &vec![0xd0; MAX_CIPHERTEXT + 1])
                .unwrap_err(),
            OpenError::TooLarge(MAX_CIPHERTEXT + 1)
        );
    }

    #[test]
    fn keys_of_earlier_versions_still_work() {
        // An age X25519 identity (from age's own test vectors): its 32 bytes are the secret.
        let age = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let k = Key::parse(age).unwrap();
        assert_eq!(k.secret, [0x42; 32]);
        assert_eq!(
            Key::parse(&k.secret()).unwrap().id(),
            k.id(),
            "the same key in the new form"
        );
        assert_eq!(
            open(None, Purpose::Note, b"age-encryption.org/v1\n-> X25519 abc\n").unwrap_err(),
            OpenError::OldFormat
        );
    }

    #[test]
    fn one_blob_is_decrypted_once() {
        let k = Key::generate();
        let c = k.encrypt(Purpose::Note, b"note").unwrap();
        let id = Oid::hash_object(git2::ObjectType::Blob, &c).unwrap();
        let mut d = Decrypted::default();
        for _ in 0..1000 {
            assert_eq!(d.open(id, Purpose::Note, &c, &k).unwrap().as_slice(), b"note");
        }
        assert_eq!(d.count, 1);
        let other = Key::generate();
        let mut d = Decrypted::default();
        for _ in 0..1000 {
            assert_eq!(
                d.open(id, Purpose::Note, &c, &other).unwrap_err(),
                OpenError::OtherKey
            );
        }
        assert_eq!(d.count, 1, "failures are remembered too");
    }
}
