//! Who is "me", and one repository shared by several people.
//!
//! [`Me::owns`] is the one place that decides whether a note is the user's own, for the hooks and
//! every command alike:
//! - On a device with a key, a note is the user's own only when it was decrypted with that key,
//!   which proves it was written with it (see [`crate::crypt`]). Anything else (plain, encrypted
//!   with another key, claiming the user's name) is not: it is shown as a teammate's, unverified.
//! - Without a key, the author line (`**Author:** Name <email>`, from git `user.name` and
//!   `user.email`; older handoffs hold the email alone) is a label: a note is the user's own when
//!   its author is the same person as this machine's git identity (the same name, ignoring case
//!   and spacing, or the same email, or one of the aliases in `git config convosync.me`, each a
//!   name, an email or `Name <email>`). A note without an author is not, unless nothing at all is
//!   known of the user (no git identity, no alias): then labels tell no one apart.
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
            (n, e) => n.clone().or_else(|| e.clone()),
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
        let same = |a: &Option<String>, b: &Option<String>, norm: fn(&str) -> String| matches!((a, b), (Some(a), Some(b)) if norm(a) == norm(b));
        same(&self.name, &other.name, norm_name) || same(&self.email, &other.email, str::to_lowercase)
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
    /// Whether this device has the person's key: then only a proven note is theirs.
    pub keyed: bool,
}

/// Whose a note is, as [`Me::whose`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The user's own: proven by their key, or (without a key) labelled with their name.
    Mine,
    /// Labelled with the user's name but not proven by the key this device has: not shown as the
    /// user's, yet a device file holding it is the user's to overwrite.
    Unproven,
    /// Someone else's.
    Theirs,
}

impl Me {
    /// Read `user.name`, `user.email` and every `convosync.me` from the repository's config
    /// (which includes the global and system files).
    pub fn load(repo: &Repo) -> Me {
        let Some(cfg) = repo.config.as_ref() else {
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
        if let Ok(entries) = cfg.multivar("convosync.me", None) {
            let known = |v: &str| Some(Author::parse(v)).filter(|a| !a.is_empty());
            let _ = entries.for_each(|e| aliases.extend(e.value().ok().and_then(known)));
        }
        Me {
            identity,
            aliases,
            keyed: crate::crypt::key().is_some(),
        }
    }

    /// Whether nothing is known about the user (no name, email or alias).
    pub fn is_unknown(&self) -> bool {
        self.identity.is_empty() && self.aliases.is_empty()
    }

    /// Whether a note by `author` (its `**Author:**` value) is the user's own; `proven`: it was
    /// decrypted with this device's key (never taken from the note's text).
    pub fn owns(&self, author: Option<&str>, proven: bool) -> bool {
        self.whose(author, proven) == Whose::Mine
    }

    /// The one decision behind [`Me::owns`] (see the module's rules).
    pub fn whose(&self, author: Option<&str>, proven: bool) -> Whose {
        if self.keyed && proven {
            return Whose::Mine;
        }
        let labelled = match author.map(Author::parse).filter(|a| !a.is_empty()) {
            // With nothing known of the user (no git identity, no alias), labels tell no one
            // apart: every note could be theirs, and their own notes carry no author either.
            _ if self.is_unknown() => true,
            None => false,
            Some(a) => std::iter::once(&self.identity)
                .chain(&self.aliases)
                .any(|me| me.same_person(&a)),
        };
        match (labelled, self.keyed) {
            (true, false) => Whose::Mine,
            (true, true) => Whose::Unproven,
            (false, _) => Whose::Theirs,
        }
    }
}

/// The device id this user writes under: `id`, or `id-<user>` when `id` belongs to another author.
pub fn device_for_author(store: &Store<'_>, id: &str, me: &Me) -> String {
    device_for(id, me, |id| {
        let e = store.entry(id).ok().flatten()?;
        whose_note(me, e.handoff.as_ref().map(|h| (h.author.as_deref(), e.proven)))
    })
}

/// Whose a note is, from its author and whether it is `proven`; an unreadable one is known to
/// be another person's only when it is encrypted with their key.
fn whose_note(me: &Me, note: Result<(Option<&str>, bool), &crate::store::NoteError>) -> Option<Whose> {
    use crate::{crypt::OpenError, store::NoteError};
    match note {
        Ok((author, proven)) => Some(me.whose(author, proven)),
        Err(r) => matches!(r, NoteError::Encrypted(OpenError::OtherKey)).then_some(Whose::Theirs),
    }
}

/// [`device_for_author`] with whose the note filed under `id` is from `note_whose` (`None`: no
/// note there, or one that cannot tell).
fn device_for(id: &str, me: &Me, note_whose: impl FnOnce(&str) -> Option<Whose>) -> String {
    match me.identity.handle() {
        Some(handle) if note_whose(id) == Some(Whose::Theirs) => {
            crate::device::sanitize(&format!("{id}-{handle}")).unwrap_or_else(|| id.to_string())
        }
        _ => id.to_string(),
    }
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
        let n = notes.iter().find(|n| n.device == id)?;
        whose_note(me, n.head.as_ref().map(|h| (h.author.as_deref(), h.proven)))
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
        let (name, when) = (teammate_name(h), crate::timefmt::ago(h.timestamp, now));
        let (branch, task) = (h.branch.as_deref().unwrap_or("detached"), h.task_line(120));
        let device = &h.device;
        out.push_str(&format!("- {name} ({device}, {when}, branch {branch}): {task}\n"));
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
            keyed: false,
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
        assert!(ada.owns(Some("Ada Lovelace <ada@work.example>"), false));
        assert!(ada.owns(Some(" ADA\tLOVELACE  <x@y>"), false));
        assert!(
            ada.owns(Some("Someone Else <ADA@home.example>"), false),
            "same email"
        );
        assert!(
            ada.owns(Some("ada@home.example"), false),
            "an old email-only line"
        );
        assert!(
            !ada.owns(Some("ada@work.example"), false),
            "an old line with another email"
        );
        assert!(!ada.owns(Some("Grace Hopper <grace@work.example>"), false));
        assert!(!ada.owns(None, false), "no author recorded: not the user's");
        assert!(
            me(None, None, &[]).owns(Some("Grace Hopper <g@x>"), false),
            "nothing known here"
        );
        assert!(me(None, None, &[]).owns(None, false), "nothing known here either");
    }

    #[test]
    fn with_a_key_only_proof_counts() {
        let ada = Me {
            keyed: true,
            ..me(Some("Ada Lovelace"), Some("ada@home.example"), &[])
        };
        for author in [None, Some("Ada Lovelace <ada@home.example>"), Some("Grace <g@x>")] {
            assert!(ada.owns(author, true), "{author:?}: decrypted with the key");
        }
        assert!(
            !ada.owns(Some("Ada Lovelace <ada@home.example>"), false),
            "a claim"
        );
        assert!(!ada.owns(None, false));
        assert_eq!(ada.whose(Some("ada lovelace"), false), Whose::Unproven);
        assert_eq!(ada.whose(Some("Grace <g@x>"), false), Whose::Theirs);
        assert_eq!(ada.whose(None, false), Whose::Theirs);
        // Without a key, "proven" cannot arise and changes nothing.
        let keyless = me(Some("Ada Lovelace"), None, &[]);
        assert!(!keyless.owns(Some("Grace <g@x>"), true));
    }

    #[test]
    fn aliases_add_identities() {
        let ada = me(
            Some("Ada Lovelace"),
            Some("ada@home.example"),
            &["ada@work.example", "A. Lovelace", "Countess <countess@x>"],
        );
        assert!(ada.owns(Some("ada@work.example"), false));
        assert!(ada.owns(Some("a. lovelace <other@x>"), false));
        assert!(ada.owns(Some("countess@x"), false));
        assert!(!ada.owns(Some("Grace <grace@x>"), false));
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
        .partition(|h| who.owns(h.author.as_deref(), false));
        assert_eq!(
            mine.iter().map(|h| h.device.as_str()).collect::<Vec<_>>(),
            ["a", "d"]
        );
        assert_eq!(team.len(), 2);
        assert!(render_teammates(&team, Utc::now()).contains("- You (c, just now, branch main): c work"));
    }
}
