//! Device identity: a short name for this machine, stored outside every repository.
//!
//! The original plugin kept the id in `.convosync/device-id` inside the repo, so it was committed
//! and every machine ended up with the same id. Here it lives in the user's config dir
//! (`<config>/convosync/device-id`), is created on first use from the hostname, and can be
//! overridden per process with `CONVOSYNC_DEVICE`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fsutil::atomic_write;

const MAX_LEN: usize = 40;

/// `<config dir>/convosync`, or `CONVOSYNC_CONFIG_DIR` when set.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("CONVOSYNC_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("convosync")))
}

fn id_file() -> Result<PathBuf> {
    config_dir()
        .map(|d| d.join("device-id"))
        .context("could not find a config directory for the device id (set HOME or CONVOSYNC_DEVICE)")
}

/// Turn any string into a device id: lowercase `[a-z0-9-]`, no leading/trailing or doubled
/// dashes, at most 40 characters. Returns `None` when nothing usable is left.
pub fn sanitize(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
        if out.len() >= MAX_LEN {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

/// Whether `name` is already a device id (what [`sanitize`] leaves unchanged). Names read from
/// the ref must pass this before they are shown, put into context or used in a path.
pub fn is_valid(name: &str) -> bool {
    // Lowercase letters, digits and single dashes between them: checked directly, as this runs
    // for every note at every session start.
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LEN
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !name.contains("--")
}

/// A name given by the user (`device set`, `CONVOSYNC_DEVICE`) as a device id, by the same rule
/// everywhere: normalised with [`sanitize`], refused only when nothing usable is left.
pub fn validate(name: &str) -> Result<String> {
    sanitize(name).with_context(|| {
        format!(
            "invalid device name {name:?}: use lowercase letters, digits and dashes (for example \"laptop\")"
        )
    })
}

/// `CONVOSYNC_DEVICE`, unless unset or blank.
fn env_device() -> Option<String> {
    std::env::var("CONVOSYNC_DEVICE")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// What to tell the user when `raw` was normalised into `id` (`None` when kept as given).
pub fn normalised_note(raw: &str, id: &str) -> Option<String> {
    (raw != id)
        .then(|| format!("device name {raw:?} is used as {id:?} (lowercase letters, digits and dashes)"))
}

/// The note for a `CONVOSYNC_DEVICE` that is not already a device id, for commands to print
/// once on stderr.
pub fn env_note() -> Option<String> {
    let v = env_device()?;
    let id = sanitize(&v)?;
    normalised_note(&v, &id).map(|n| format!("CONVOSYNC_DEVICE: {n}"))
}

/// This machine's device id: `CONVOSYNC_DEVICE`, else the stored id, else one created now from
/// the hostname and stored.
pub fn current() -> Result<String> {
    if let Some(v) = env_device() {
        return validate(&v).with_context(|| format!("CONVOSYNC_DEVICE={v:?} is not a usable device name"));
    }
    let file = id_file()?;
    if let Some(id) = std::fs::read_to_string(&file).ok().and_then(|s| sanitize(&s)) {
        return Ok(id);
    }
    let id = sanitize(&hostname()).unwrap_or_else(|| "device".to_string());
    // A failure to persist is not fatal: the same hostname gives the same id next time.
    let _ = atomic_write(&file, format!("{id}\n").as_bytes());
    Ok(id)
}

/// Store `name` as this machine's device id.
pub fn set(name: &str) -> Result<String> {
    let id = validate(name)?;
    atomic_write(&id_file()?, format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// Where the id comes from, for `convosync device show`.
pub fn source() -> String {
    if env_device().is_some() {
        "CONVOSYNC_DEVICE".to_string()
    } else {
        id_file().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

fn hostname() -> String {
    let name = std::env::var("CONVOSYNC_HOSTNAME").unwrap_or_else(|_| system_hostname());
    // "laptop.local" → "laptop": the domain part only adds noise.
    name.split('.').next().unwrap_or_default().to_string()
}

fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length and gethostname NUL-terminates within it (or
    // truncates, which we tolerate by stopping at the first NUL or the end).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        assert_eq!(sanitize("My MacBook Pro").as_deref(), Some("my-macbook-pro"));
        assert_eq!(sanitize("--x__y--").as_deref(), Some("x-y"));
        assert_eq!(sanitize("ÜBER").as_deref(), Some("ber"));
        assert_eq!(sanitize("../../etc").as_deref(), Some("etc"));
        assert_eq!(sanitize("  "), None);
        assert_eq!(sanitize("!!!"), None);
        assert_eq!(sanitize(&"a".repeat(100)).unwrap().len(), MAX_LEN);
    }

    #[test]
    fn one_rule_for_every_name() {
        assert_eq!(validate("laptop").unwrap(), "laptop");
        assert_eq!(validate("My Laptop").unwrap(), "my-laptop");
        assert_eq!(
            normalised_note("My Laptop", "my-laptop").unwrap(),
            "device name \"My Laptop\" is used as \"my-laptop\" (lowercase letters, digits and dashes)"
        );
        assert_eq!(normalised_note("laptop", "laptop"), None);
        assert!(validate("/").is_err());
    }

    #[test]
    fn valid_names() {
        for ok in ["laptop", "a", "dev-01", &"a".repeat(MAX_LEN)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "Laptop",
            "-a",
            "a-",
            "a--b",
            "../x",
            "a/b",
            "a.md",
            "x\u{1b}[2J",
            &"a".repeat(MAX_LEN + 1),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// A device id is exactly what [`sanitize`] leaves unchanged.
        #[test]
        fn valid_is_what_sanitize_keeps(name in "[a-z0-9-]{1,42}|[a-zA-Z0-9 _./-]{0,42}|\\PC{0,6}") {
            proptest::prop_assert_eq!(is_valid(&name), sanitize(&name).as_deref() == Some(name.as_str()));
        }
    }
}
