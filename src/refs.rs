//! Every ref name convosync reads or writes, in one place: the handoff ref, each device's wip
//! ref, and the remote-tracking copies a fetch writes them to.

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
    if git2::Remote::is_valid_name(remote) && !crate::config::is_url(remote) {
        return remote.to_string();
    }
    let id = git2::Oid::hash_object(git2::ObjectType::Blob, remote.as_bytes())
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "0".repeat(40));
    format!("url-{}", &id[..12])
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

/// Where fetched wip refs from `remote` live: `<prefix><device>`.
pub fn wip_tracking_prefix(remote: &str) -> String {
    format!("{}wip/", remote_prefix(remote))
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
        let url = tracking(DEFAULT_HANDOFFS, "git@host:me/notes.git");
        assert!(url.starts_with("refs/convosync/remote/url-"), "{url}");
        assert!(git2::Reference::is_valid_name(&url), "{url}");
        assert_eq!(wip_tracking_prefix("origin"), "refs/convosync/remote/origin/wip/");
    }
}
