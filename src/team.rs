//! Who is "me", and one repository shared by several people.
//!
//! Each handoff records its author (`**Author:** Name <email>`, from git `user.name` and
//! `user.email`; older handoffs hold the email alone). A handoff is the user's own when its author
//! is the same person as this machine's git identity: the same name (ignoring case and spacing)
//! or the same email, or one of the aliases in `git config convosync.me` (multi-valued, each a
//! name, an email or `Name <email>`). Everyone else is a teammate. [`Me`] is the one place that
//! decides this, for the hooks and every command alike.
//!
//! When this machine's device id is already taken on the ref by someone else, this user's
//! handoffs go to `<id>-<user>`.

use crate::handoff::Handoff;
use crate::repo::Repo;
use crate::store::Store;

/// A handoff's author, or an identity of the user: a name, an email, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Author {
    /// Parse `Name <email>`, `<email>`, a bare email or a bare name. Control characters and
    /// angle brackets never survive (the text may come from the remote).
    pub fn parse(raw: &str) -> Author {
        let clean = |s: &str| -> Option<String> {
            let s: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .filter(|c| *c != '<' && *c != '>')
                .collect();
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            (!s.is_empty()).then_some(s)
        };
        let raw = raw.trim();
        if let (Some(open), true) = (raw.rfind('<'), raw.ends_with('>')) {
            return Author {
                name: clean(&raw[..open]),
                email: clean(&raw[open + 1..raw.len() - 1]).map(|e| e.replace(' ', "")),
            };
        }
        match clean(raw) {
            Some(s) if s.contains('@') && !s.contains(' ') => Author {
                name: None,
                email: Some(s),
            },
            name => Author { name, email: None },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none()
    }

    /// The `**Author:**` value: `Name <email>`, or whichever part is known.
    pub fn render(&self) -> Option<String> {
        match (&self.name, &self.email) {
            (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(e)) => Some(e.clone()),
            (None, None) => None,
        }
    }

    /// The name when known, else the email: how a teammate is shown.
    pub fn display(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| "?".into())
    }

    /// A short handle for device names: the email's user part, else the name.
    pub fn handle(&self) -> Option<String> {
        self.email
            .as_deref()
            .and_then(|e| e.split('@').next())
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .or_else(|| self.name.clone())
    }

    /// Whether two authors are one person: the same name (case and spacing aside) or the same
    /// email (case aside). This needs no local configuration, so every device agrees on it.
    pub fn same_person(&self, other: &Author) -> bool {
        let names = match (&self.name, &other.name) {
            (Some(a), Some(b)) => norm_name(a) == norm_name(b),
            _ => false,
        };
        let emails = match (&self.email, &other.email) {
            (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
            _ => false,
        };
        names || emails
    }
}

/// Lowercase, with runs of whitespace as one space: "Ada  LOVELACE " → "ada lovelace".
fn norm_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The user of this machine: its git identity plus the aliases in `convosync.me`.
#[derive(Debug, Clone, Default)]
pub struct Me {
    /// `user.name` and `user.email` as git has them here.
    pub identity: Author,
    /// Each value of `convosync.me`.
    pub aliases: Vec<Author>,
}

impl Me {
    /// Read `user.name`, `user.email` and every `convosync.me` from the repository's config
    /// (which includes the global and system files).
    pub fn load(repo: &Repo) -> Me {
        let Some(cfg) = repo.config() else {
            return Me::default();
        };
        let get = |key: &str| {
            cfg.get_string(key)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let identity = Author {
            name: get("user.name").and_then(|n| Author::parse(&n).name),
            email: get("user.email").and_then(|e| Author::parse(&e).email),
        };
        let mut aliases = Vec::new();
        if let Ok(mut entries) = cfg.multivar("convosync.me", None) {
            while let Some(Ok(e)) = entries.next() {
                if let Ok(v) = e.value() {
                    let a = Author::parse(v);
                    if !a.is_empty() {
                        aliases.push(a);
                    }
                }
            }
        }
        Me { identity, aliases }
    }

    /// Whether nothing is known about the user (no name, email or alias).
    pub fn is_unknown(&self) -> bool {
        self.identity.is_empty() && self.aliases.is_empty()
    }

    /// Whether a handoff written by `author` (its `**Author:**` value) is the user's own. A
    /// handoff without an author, or a user without any identity, counts as the user's own: with
    /// nothing to tell people apart there is only one.
    pub fn owns(&self, author: Option<&str>) -> bool {
        let Some(author) = author.map(Author::parse).filter(|a| !a.is_empty()) else {
            return true;
        };
        if self.is_unknown() {
            return true;
        }
        std::iter::once(&self.identity)
            .chain(&self.aliases)
            .any(|me| me.same_person(&author))
    }

    /// The `**Author:**` value for handoffs written here.
    pub fn author_line(&self) -> Option<String> {
        self.identity.render()
    }
}

/// The device id this user writes under: `id`, or `id-<user>` when `id` belongs to another author.
pub fn device_for_author(store: &Store<'_>, id: &str, me: &Me) -> String {
    device_for(id, me, |id| store.get(id).ok().flatten().map(|h| h.author))
}

/// [`device_for_author`] with the author of the note filed under `id` from `note_author`
/// (`None`: no readable note there).
fn device_for(id: &str, me: &Me, note_author: impl FnOnce(&str) -> Option<Option<String>>) -> String {
    let Some(handle) = me.identity.handle() else {
        return id.to_string();
    };
    let taken_by_other = note_author(id).is_some_and(|a| !me.owns(a.as_deref()));
    if !taken_by_other {
        return id.to_string();
    }
    crate::device::sanitize(&format!("{id}-{handle}")).unwrap_or_else(|| id.to_string())
}

/// This machine's device id in `repo`, qualified as above.
pub fn my_device(repo: &Repo) -> anyhow::Result<String> {
    my_device_as(repo, &Me::load(repo))
}

/// [`my_device`] for an already loaded [`Me`].
pub fn my_device_as(repo: &Repo, me: &Me) -> anyhow::Result<String> {
    let id = crate::device::current()?;
    let store = Store::new(&repo.git, &repo.settings.refname);
    Ok(device_for_author(&store, &id, me))
}

/// [`my_device_as`] with the notes of the ref already read.
pub fn my_device_among(me: &Me, notes: &[crate::store::Note]) -> anyhow::Result<String> {
    let id = crate::device::current()?;
    Ok(device_for(&id, me, |id| {
        notes
            .iter()
            .find(|n| n.device == id)
            .and_then(|n| n.head.as_ref().ok())
            .map(|h| h.author.clone())
    }))
}

/// At most this many teammates' notes are listed.
pub const TEAMMATES_SHOWN: usize = 10;

/// Teammates' handoffs as a short block: one line each.
pub fn render_teammates(handoffs: &[Handoff], now: chrono::DateTime<chrono::Utc>) -> String {
    if handoffs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Teammates' recent sessions in this repository (for awareness only)\n");
    for h in handoffs.iter().take(TEAMMATES_SHOWN) {
        out.push_str(&format!(
            "- {} ({}, {}, branch {}): {}\n",
            teammate_name(h),
            h.device,
            crate::timefmt::ago(h.timestamp, now),
            h.branch.as_deref().unwrap_or("detached"),
            h.task_line(120)
        ));
    }
    out
}

/// How a teammate is named in one-line lists: their name, else their email.
pub fn teammate_name(h: &Handoff) -> String {
    let name = h
        .author
        .as_deref()
        .map(Author::parse)
        .unwrap_or_default()
        .display();
    crate::timefmt::truncate_chars(&name, 60)
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
            agent: None,
            sections: vec![Section {
                title: "Current Task".into(),
                body: format!("{device} work"),
            }],
        }
    }

    fn me(name: Option<&str>, email: Option<&str>, aliases: &[&str]) -> Me {
        Me {
            identity: Author {
                name: name.map(str::to_string),
                email: email.map(str::to_string),
            },
            aliases: aliases.iter().map(|a| Author::parse(a)).collect(),
        }
    }

    #[test]
    fn parses_every_author_form() {
        let full = Author::parse("Ada  Lovelace <ada@work.example>");
        assert_eq!(full.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(full.email.as_deref(), Some("ada@work.example"));
        assert_eq!(full.render().as_deref(), Some("Ada Lovelace <ada@work.example>"));
        let old = Author::parse("ada@work.example");
        assert_eq!((old.name, old.email.as_deref()), (None, Some("ada@work.example")));
        let name = Author::parse("Ada Lovelace");
        assert_eq!((name.name.as_deref(), name.email), (Some("Ada Lovelace"), None));
        let bracketed = Author::parse("<ada@x>");
        assert_eq!(
            (bracketed.name, bracketed.email.as_deref()),
            (None, Some("ada@x"))
        );
        let hostile = Author::parse("Eve\u{1b}[31m\n<b>");
        assert!(hostile.render().unwrap().chars().all(|c| !c.is_control()));
        assert!(Author::parse("  ").is_empty());
    }

    #[test]
    fn same_name_with_another_email_is_me() {
        let ada = me(Some("ada lovelace"), Some("ada@home.example"), &[]);
        assert!(ada.owns(Some("Ada Lovelace <ada@work.example>")));
        assert!(ada.owns(Some(" ADA\tLOVELACE  <x@y>")));
        assert!(ada.owns(Some("Someone Else <ADA@home.example>")), "same email");
        assert!(ada.owns(Some("ada@home.example")), "an old email-only line");
        assert!(
            !ada.owns(Some("ada@work.example")),
            "an old line with another email"
        );
        assert!(!ada.owns(Some("Grace Hopper <grace@work.example>")));
        assert!(ada.owns(None), "no author recorded");
        assert!(
            me(None, None, &[]).owns(Some("Grace Hopper <g@x>")),
            "nothing known here"
        );
    }

    #[test]
    fn aliases_add_identities() {
        let ada = me(
            Some("Ada Lovelace"),
            Some("ada@home.example"),
            &["ada@work.example", "A. Lovelace", "Countess <countess@x>"],
        );
        assert!(ada.owns(Some("ada@work.example")));
        assert!(ada.owns(Some("a. lovelace <other@x>")));
        assert!(ada.owns(Some("countess@x")));
        assert!(!ada.owns(Some("Grace <grace@x>")));
    }

    #[test]
    fn qualifies_only_when_taken_by_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let store = Store::new(&repo, "refs/convosync/handoffs");
        let bob = me(Some("Bob Smith"), Some("Bob.Smith@x.com"), &[]);
        assert_eq!(device_for_author(&store, "laptop", &bob), "laptop");
        let alice = h("laptop", Some("Alice <alice@x.com>"));
        store.put(&alice, "t").unwrap();
        let alice_home = me(Some("alice"), Some("alice@home.example"), &[]);
        assert_eq!(
            device_for_author(&store, "laptop", &alice_home),
            "laptop",
            "same name"
        );
        assert_eq!(device_for_author(&store, "laptop", &bob), "laptop-bob-smith");
        let bob_no_email = me(Some("Bob"), None, &[]);
        assert_eq!(device_for_author(&store, "laptop", &bob_no_email), "laptop-bob");
        assert_eq!(device_for_author(&store, "laptop", &Me::default()), "laptop");
        assert!(format::render(&alice).contains("**Author:** Alice <alice@x.com>"));
    }

    #[test]
    fn splits_teammates() {
        let who = me(Some("Me"), Some("ME@x"), &[]);
        let (mine, team): (Vec<Handoff>, Vec<Handoff>) = vec![
            h("a", Some("me@x")),
            h("b", None),
            h("c", Some("You <you@x>")),
            h("d", Some("ME <me@elsewhere>")),
        ]
        .into_iter()
        .partition(|h| who.owns(h.author.as_deref()));
        assert_eq!(
            mine.iter().map(|h| h.device.as_str()).collect::<Vec<_>>(),
            ["a", "b", "d"]
        );
        assert_eq!(team.len(), 1);
        assert!(render_teammates(&team, Utc::now()).contains("- You (c, just now, branch main): c work"));
    }
}
