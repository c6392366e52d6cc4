//! Every ref name convosync reads or writes, in one place: the handoff ref, each device's wip
//! ref, and the remote-tracking copies a fetch writes them to; and object ids as people read them.

/// How many hex digits of an object id people are shown (git's own default).
pub const SHORT_LEN: usize = 7;

/// An object id, in hex, as people read it: its first [`SHORT_LEN`] digits.
pub fn short_id(hex: &str) -> &str {
    hex.get(..SHORT_LEN).unwrap_or(hex)
}

/// The ref holding `devices/<device>.md`, unless `convosync.ref` names another.
pub const DEFAULT_HANDOFFS: &str = "refs/convosync/handoffs";

/// Each device's snapshot of uncommitted work lives at `<WIP_PREFIX><device>`.
pub const WIP_PREFIX: &str = "refs/convosync/wip/";

/// Where fetched copies of convosync refs from `remote` live.
fn remote_prefix(remote: &str) -> String {
    format!("refs/convosync/remote/{}/", remote_component(remote))
}

/// A remote as one component of a tracking ref name: a remote name as it is, a URL as
/// `url-<first 12 hex digits of its SHA-1>`.
pub fn remote_component(remote: &str) -> String {
    if git2::Remote::is_valid_name(remote) && !is_url(remote) {
        return remote.to_string();
    }
    format!("url-{}", &hash_hex(remote.as_bytes())[..12])
}

/// The SHA-1 of `bytes` as a git blob, in hex (40 digits).
pub fn hash_hex(bytes: &[u8]) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes).map_or_else(|_| "0".repeat(40), |o| o.to_string())
}

/// A configured ref name: `handoffs` → `refs/heads/handoffs`; full ref names are kept.
pub fn normalize(r: &str) -> String {
    if r.starts_with("refs/") {
        r.to_string()
    } else {
        format!("refs/heads/{r}")
    }
}

/// `refs/convosync/handoffs` + `origin` → `refs/convosync/remote/origin/convosync/handoffs`.
pub fn tracking(refname: &str, remote: &str) -> String {
    format!(
        "{}{}",
        remote_prefix(remote),
        refname.strip_prefix("refs/").unwrap_or(refname)
    )
}

/// The wip ref of `device`.
pub fn wip(device: &str) -> String {
    format!("{WIP_PREFIX}{device}")
}

/// Where the devices' wip refs live on the remote (`handoffs`: the handoff ref): `refs/convosync/wip/`, or in a notes
/// repository the project's namespace next to its handoff ref (`refs/convosync/p/<id>/wip/`).
pub fn wip_remote_prefix(notes_repo: bool, handoffs: &str) -> String {
    match handoffs.strip_suffix("/handoffs") {
        _ if !notes_repo => WIP_PREFIX.to_string(),
        Some(ns) => format!("{ns}/wip/"),
        None => format!("{handoffs}-wip/"),
    }
}

/// The refspec that fetches every device's wip ref into remote-tracking refs.
pub fn wip_fetch_refspec(notes_repo: bool, handoffs: &str, remote: &str) -> String {
    format!(
        "+{}*:{}*",
        wip_remote_prefix(notes_repo, handoffs),
        wip_tracking_prefix(remote)
    )
}

/// Where fetched wip refs from `remote` live: `<prefix><device>`.
pub fn wip_tracking_prefix(remote: &str) -> String {
    format!("{}wip/", remote_prefix(remote))
}

/// Whether a `convosync.remote` value names a repository by URL or path rather than a remote:
/// `https://…`, `ssh://…`, `file://…`, `user@host:path`, `/abs/path`, `./rel`, `~/…`.
pub fn is_url(v: &str) -> bool {
    v.contains("://")
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || v.split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize("handoffs"), "refs/heads/handoffs");
        assert_eq!(normalize("refs/x/y"), "refs/x/y");
        assert_eq!(
            tracking(DEFAULT_HANDOFFS, "origin"),
            "refs/convosync/remote/origin/convosync/handoffs"
        );
        assert_eq!(wip("laptop"), "refs/convosync/wip/laptop");
        for url in [
            "https://h/x.git",
            "git@github.com:me/notes.git",
            "/srv/notes.git",
            "./n",
            "file:///n",
        ] {
            assert!(is_url(url), "{url}");
        }
        for name in ["origin", "notes", "my-notes"] {
            assert!(!is_url(name), "{name}");
        }
        let url = tracking(DEFAULT_HANDOFFS, "git@host:me/notes.git");
        assert!(url.starts_with("refs/convosync/remote/url-"), "{url}");
        assert!(git2::Reference::is_valid_name(&url), "{url}");
        assert_eq!(wip_tracking_prefix("origin"), "refs/convosync/remote/origin/wip/");
    }
}
