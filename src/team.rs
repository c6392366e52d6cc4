//! One repository, several people: device ids are qualified by their author so two people's
//! "laptop" never collide, and a session sees teammates' handoffs apart from the user's own.
//!
//! Each handoff records its author (`**Author:**`, the git `user.email`). When this machine's id
//! is already taken on the ref by someone else, this user's handoffs go to `<id>-<user>`.

use crate::handoff::Handoff;
use crate::repo::Repo;
use crate::store::Store;

/// The device id this user writes under: `id`, or `id-<user>` when `id` belongs to another author.
pub fn device_for_author(store: &Store<'_>, id: &str, email: Option<&str>) -> String {
    let Some(email) = email else { return id.to_string() };
    let taken_by_other = store
        .get(id)
        .ok()
        .flatten()
        .and_then(|h| h.author)
        .is_some_and(|a| !a.eq_ignore_ascii_case(email));
    if !taken_by_other {
        return id.to_string();
    }
    let user = email.split('@').next().unwrap_or(email);
    crate::device::sanitize(&format!("{id}-{user}")).unwrap_or_else(|| id.to_string())
}

/// This machine's device id in `repo`, qualified as above.
pub fn my_device(repo: &Repo) -> anyhow::Result<String> {
    let id = crate::device::current()?;
    let store = Store::new(&repo.git, &repo.settings.refname);
    Ok(device_for_author(&store, &id, repo.user_email().as_deref()))
}

/// Split other devices' handoffs into the user's own and teammates' (another author).
pub fn split(handoffs: Vec<Handoff>, my_email: Option<&str>) -> (Vec<Handoff>, Vec<Handoff>) {
    let Some(me) = my_email else {
        return (handoffs, Vec::new());
    };
    handoffs
        .into_iter()
        .partition(|h| h.author.as_deref().is_none_or(|a| a.eq_ignore_ascii_case(me)))
}

/// Teammates' handoffs as a short block: one line each.
pub fn render_teammates(handoffs: &[Handoff], now: chrono::DateTime<chrono::Utc>) -> String {
    if handoffs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Teammates' recent sessions in this repository (for awareness only)\n");
    for h in handoffs.iter().take(10) {
        out.push_str(&format!(
            "- {} ({}, {}, branch {}): {}\n",
            h.author.as_deref().unwrap_or("?"),
            h.device,
            crate::timefmt::ago(h.timestamp, now),
            h.branch.as_deref().unwrap_or("detached"),
            h.task_line(120)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::{format, Section};
    use chrono::Utc;

    fn h(device: &str, author: Option<&str>) -> Handoff {
        Handoff {
            device: device.into(),
            timestamp: Utc::now(),
            commit: None,
            branch: Some("main".into()),
            session: None,
            author: author.map(str::to_string),
            sections: vec![Section {
                title: "Current Task".into(),
                body: format!("{device} work"),
            }],
        }
    }

    #[test]
    fn qualifies_only_when_taken_by_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let store = Store::new(&repo, "refs/convosync/handoffs");
        assert_eq!(device_for_author(&store, "laptop", Some("bob@x.com")), "laptop");
        let alice = h("laptop", Some("alice@x.com"));
        store.put(&alice, "t").unwrap();
        assert_eq!(device_for_author(&store, "laptop", Some("alice@x.com")), "laptop");
        assert_eq!(
            device_for_author(&store, "laptop", Some("Bob.Smith@x.com")),
            "laptop-bob-smith"
        );
        assert_eq!(device_for_author(&store, "laptop", None), "laptop");
        assert!(format::render(&alice).contains("**Author:** alice@x.com"));
    }

    #[test]
    fn splits_teammates() {
        let (mine, team) = split(
            vec![h("a", Some("me@x")), h("b", None), h("c", Some("you@x"))],
            Some("ME@x"),
        );
        assert_eq!(
            mine.iter().map(|h| h.device.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(team.len(), 1);
        assert!(render_teammates(&team, Utc::now()).contains("you@x (c, just now, branch main): c work"));
    }
}
