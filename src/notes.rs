//! The one view of other devices' notes: which are the user's and which a teammate's, in what
//! order, with which notes about claims and where the code stands, the uncommitted work of other
//! devices, the notes that could not be read, the framing and the size cap.
//!
//! SessionStart, UserPromptSubmit and `convosync resume` all read the notes once and hand them to
//! [`Notes::gather`], then take the text, the one line for the user and the reasons from the
//! [`View`] that [`Notes::render`] returns, so a hook and the command can never disagree about
//! what the other devices left.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::agent::Agent;
use crate::context::{self, Shown};
use crate::handoff::Handoff;
use crate::repo::Repo;
use crate::store::{Entry, Head, Note, NoteError};
use crate::team::Me;
use crate::untrusted::Skipped;

/// Who reads the view, which decides the cap, whether teammates are left out, and how a
/// command is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A session of this agent: capped at the configured limit, teammates as `convosync.team`
    /// says.
    Session(Agent),
    /// `convosync resume`: every note, in full.
    Command,
}

impl Reader {
    /// How this reader runs the convosync command `what` (`resume`, `wip apply laptop`).
    pub fn command(self, what: &str) -> String {
        match self {
            Reader::Session(agent) => agent.command(what),
            Reader::Command => format!("`convosync {what}`"),
        }
    }
}

/// A note of another device that could not be read (its device), and why.
pub type Unreadable = (String, NoteError);

/// One readable note of another device.
struct Item {
    key: String,
    head: Head,
    /// Parsed when shown.
    note: Note,
}

/// The order notes are offered in: those written on `branch` first, then newest first, then by
/// device name. A time in the future counts as `now` (the remote sets it: a note dated next year
/// must not stay first for a year).
fn order(branch: Option<&str>, now: DateTime<Utc>, a: &Item, b: &Item) -> std::cmp::Ordering {
    let same = |h: &Head| branch.is_some() && h.branch.as_deref() == branch;
    let time = |h: &Head| h.timestamp.min(now);
    same(&b.head)
        .cmp(&same(&a.head))
        .then(time(&b.head).cmp(&time(&a.head)))
        .then(a.note.device.cmp(&b.note.device))
}

/// Other devices' notes, gathered once: ordered, split into the user's and teammates', with the
/// keys a session records to know what it already received.
pub struct Notes {
    /// One key per note (`device:blob`), then per uncommitted-work line, then per unreadable note.
    pub keys: Vec<String>,
    /// The user's own other devices, in order.
    own: Vec<Item>,
    teammates: Vec<Item>,
    /// Each with the device whose snapshot `wip apply` brings here.
    wip: Vec<(String, Option<String>)>,
    claims: HashMap<String, String>,
    /// With the key of each.
    unreadable: Vec<(String, Unreadable)>,
    branch: Option<String>,
    now: DateTime<Utc>,
    /// What reading the other devices' uncommitted work skipped: for the hook's log or the
    /// command's warning.
    pub skipped: Skipped,
}

impl Notes {
    /// The view's notes from `notes` (the ref's tip, read once by the caller) and `legacy` (the
    /// original plugin's notes, for devices the ref lacks), leaving out this device `me` unless
    /// `include_me`. Ownership is [`Me::owns`], for every note alike.
    pub fn gather(
        repo: &Repo,
        who: &Me,
        me: &str,
        notes: Vec<Note>,
        legacy: Vec<Handoff>,
        include_me: bool,
        now: DateTime<Utc>,
    ) -> Notes {
        let other = |device: &str| include_me || device != me;
        let (_, branch) = repo.head_info();
        let claims = context::claims(notes.iter().map(|n| (n.device.as_str(), n.claimed.as_deref())));
        // Legacy notes are taken for devices the ref lacks, once each. The legacy file is the
        // repository's content: it proves nothing.
        let mut taken: HashSet<String> = notes.iter().map(|n| n.device.clone()).collect();
        let legacy = legacy
            .into_iter()
            .filter(|h| taken.insert(h.device.clone()))
            .filter_map(|h| {
                Note::of(&Entry {
                    device: h.device.clone(),
                    blob: git2::Oid::ZERO_SHA1,
                    handoff: Ok(h),
                    proven: false,
                    claimed: None,
                })
            });
        let mut keys = Vec::new();
        let mut unreadable = Vec::new();
        let mut items = Vec::new();
        for n in notes.into_iter().chain(legacy).filter(|n| other(&n.device)) {
            let key = format!("{}:{}", n.device, n.blob);
            match n.head.clone() {
                Ok(head) => {
                    keys.push(key.clone());
                    items.push(Item { key, head, note: n });
                }
                // Apart from the key of the same note once it can be read, so a session told that
                // it could not be read still gets it when a key makes it readable.
                Err(reason) => unreadable.push((format!("{key}:unreadable"), (n.device, reason))),
            }
        }
        items.sort_by(|a, b| order(branch.as_deref(), now, a, b));
        let (own, teammates): (Vec<Item>, Vec<Item>) = items
            .into_iter()
            .partition(|i| who.owns(i.head.author.as_deref(), i.head.proven));
        let (wip, skipped) = crate::wip::others_summary(repo, me);
        keys.extend(wip.iter().map(|(line, _)| line.clone()));
        keys.extend(unreadable.iter().map(|(k, _)| k.clone()));
        Notes {
            keys,
            own,
            teammates,
            wip,
            claims,
            unreadable,
            branch,
            now,
            skipped,
        }
    }

    /// Keep only the notes whose keys are in `only` (what a session has not received yet).
    pub fn retain(&mut self, only: &[String]) {
        let only: HashSet<&String> = only.iter().collect();
        self.own.retain(|i| only.contains(&i.key));
        self.teammates.retain(|i| only.contains(&i.key));
        self.wip.retain(|(l, _)| only.contains(l));
        self.unreadable.retain(|(k, _)| only.contains(k));
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.teammates.is_empty() && self.wip.is_empty() && self.unreadable.is_empty()
    }

    /// The devices whose notes this device cannot read for want of a key.
    pub fn lacking_key(&self) -> Vec<String> {
        self.unreadable
            .iter()
            .filter(|(_, (_, reason))| reason.lacks_key())
            .map(|(_, (device, _))| device.clone())
            .collect()
    }

    /// The view for `reader`. `hint`: whether the line for the user says how to add the key
    /// (sessions say it once per repository; the context always says it).
    pub fn render(self, repo: &Repo, reader: Reader, hint: bool) -> View {
        let now = self.now;
        let unreadable: Vec<Unreadable> = self.unreadable.into_iter().map(|(_, u)| u).collect();
        let teammates = match (reader, repo.settings.team) {
            (Reader::Session(_), crate::config::TeamMode::Hide) => Vec::new(),
            _ => self.teammates,
        };
        let mates: Vec<Handoff> = teammates
            .iter()
            .take(crate::team::TEAMMATES_SHOWN)
            .filter_map(|i| i.note.handoff().ok())
            .collect();
        let teammates_line = teammates_message(&mates, teammates.len());
        // Short blocks after the handoffs: other devices' uncommitted work, teammates, then the
        // notes that could not be read.
        let wip = self.wip.iter().map(|(l, device)| match device {
            Some(d) => format!(
                "{l}: run {} to bring them here",
                reader.command(&format!("wip apply {d}"))
            ),
            None => l.clone(),
        });
        let mut blocks = list("Uncommitted work on other devices", wip);
        blocks.push_str(&crate::team::render_teammates(&mates, now));
        // A command says them on stderr, as every command does; a session reads them here.
        if let Reader::Session(_) = reader {
            let lines = unreadable_lines(&unreadable, true);
            blocks.push_str(&list("Notes from other devices that could not be read", lines));
        }
        let total = self.own.len();
        // The short blocks come first in the budget, but never take more than half of it (a
        // remote can hold any number of devices); the user's own devices get the rest.
        let (limit, max) = match reader {
            Reader::Session(_) => {
                let half = repo.settings.context_limit / 2;
                if context::utf16_len(&blocks) > half {
                    blocks = format!("{}\n", context::truncate_utf16(&blocks, half.saturating_sub(1)));
                }
                let rest = repo
                    .settings
                    .context_limit
                    .saturating_sub(context::utf16_len(&blocks));
                (rest, context::MAX_SHOWN)
            }
            Reader::Command => (usize::MAX, usize::MAX),
        };
        // Parsed one at a time, as the rendering reaches them.
        let shown = self
            .own
            .iter()
            .take(max)
            .filter_map(|i| i.note.handoff().ok())
            .map(|h| Shown {
                notes: Vec::new(),
                handoff: h,
            });
        let branch = self.branch.as_deref();
        let claims = &self.claims;
        let mut first = true;
        // Where the code stands costs object lookups: only for the handoffs rendered.
        let rendered = context::render_counted(shown, total, now, limit, &reader.command("resume"), |s| {
            if let Some(c) = claims.get(&s.handoff.device) {
                s.notes.push(c.clone());
            }
            s.notes.extend(context::code_notes(repo, &s.handoff, branch));
            if std::mem::take(&mut first) {
                s.notes.extend(context::behind_upstream(repo));
            }
        });
        let (handoffs, first) = rendered.map_or((String::new(), None), |(t, s)| (t, s.into_iter().next()));
        // Only the user's own notes make this a resumed session; say plainly when they are not
        // there, and never "no notes" when a note could not be read.
        let said = unreadable_lines(&unreadable, hint);
        let said = (!said.is_empty()).then(|| said.join("; "));
        let wip = self.wip.len();
        let noted = format!("uncommitted work on {wip} other device{} noted", plural(wip));
        let primary = first
            .map(|s| context::system_message(&s.handoff, total, now))
            .or(teammates_line);
        let line = match (primary, said) {
            (Some(p), Some(u)) => format!("{p}; {u}"),
            (Some(p), None) => p,
            (None, Some(u)) if wip > 0 => format!("convosync: {u}; {noted}"),
            (None, Some(u)) => format!("convosync: {u}"),
            (None, None) => format!("convosync: no notes from your other devices; {noted}"),
        };
        View {
            handoffs,
            own: total,
            teammates: teammates.len(),
            blocks,
            line: crate::untrusted::line(&line).into_owned(),
            unreadable,
            skipped: self.skipped,
        }
    }
}

/// A block headed `title` with one `- ` line per item; nothing without items.
fn list(title: &str, items: impl IntoIterator<Item = String>) -> String {
    let lines: String = items.into_iter().map(|l| format!("- {l}\n")).collect();
    match lines.is_empty() {
        true => lines,
        false => format!("\n# {title}\n{lines}"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What the reader sees of other devices' notes.
#[derive(Debug, Clone)]
pub struct View {
    /// The user's own notes, framed, after the preamble; empty when there are none.
    pub handoffs: String,
    /// How many of the user's own devices left a note (shown or not).
    pub own: usize,
    /// How many teammates' notes are listed.
    pub teammates: usize,
    /// The short blocks: uncommitted work, teammates and, for a session, the notes that could not
    /// be read.
    pub blocks: String,
    /// The one line for the user.
    pub line: String,
    /// The notes that could not be read, and why.
    pub unreadable: Vec<Unreadable>,
    /// As [`Notes::skipped`].
    pub skipped: Skipped,
}

impl View {
    /// The whole text for the agent, within the cap for a session.
    pub fn text(&self) -> String {
        let head = if self.handoffs.is_empty() {
            context::PREAMBLE
        } else {
            &self.handoffs
        };
        format!("{head}{}", self.blocks)
    }
}

/// The lines that name notes which could not be read, grouped by reason: for the user's one line
/// (joined), the agent's context and the commands' stderr. `hint`: say what to run on a device
/// without the key.
pub fn unreadable_lines<'a>(unreadable: impl IntoIterator<Item = &'a Unreadable>, hint: bool) -> Vec<String> {
    use crate::crypt::{OpenError, KEY_HINT};
    const NO_KEY: NoteError = NoteError::Encrypted(OpenError::NoKey);
    const OTHER_KEY: NoteError = NoteError::Encrypted(OpenError::OtherKey);
    let mut by_reason: Vec<(&NoteError, Vec<String>)> = Vec::new();
    let mut sorted: Vec<&Unreadable> = unreadable.into_iter().collect();
    sorted.sort();
    for (device, reason) in sorted {
        let device = crate::untrusted::line(device).into_owned();
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, devices)) if !devices.contains(&device) => devices.push(device),
            Some(_) => {}
            None => by_reason.push((reason, vec![device])),
        }
    }
    // No key first: it is the one the user can fix here.
    by_reason.sort_by_key(|(r, _)| (**r != NO_KEY, **r != OTHER_KEY));
    // Reasons come from the remote too (each size of a too large file is one): a few lines at
    // most, then a count.
    let rest: usize = by_reason.iter().skip(MAX_REASONS).map(|(_, d)| d.len()).sum();
    by_reason.truncate(MAX_REASONS);
    let mut lines: Vec<String> = by_reason
        .into_iter()
        .map(|(reason, devices)| {
            let n = devices.len();
            let names = names(&devices);
            match reason {
                &NO_KEY if hint => {
                    format!("could not read encrypted notes from {names}: this device has no key; {KEY_HINT}")
                }
                &NO_KEY => format!("could not read encrypted notes from {names}: this device has no key"),
                &OTHER_KEY => format!(
                    "could not read the encrypted note{} from {names} (another person's key)",
                    plural(n)
                ),
                r => format!(
                    "could not read the note{} from {names}: {}",
                    plural(n),
                    crate::timefmt::truncate_chars(&crate::untrusted::line(&r.to_string()), 100)
                ),
            }
        })
        .collect();
    if rest > 0 {
        lines.push(format!(
            "could not read {rest} more note{} from other devices",
            plural(rest)
        ));
    }
    lines
}

/// At most this many reasons are named, each with its devices.
const MAX_REASONS: usize = 3;

/// "a, b, c +2 more": a short list of device names for one line.
fn names(devices: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = devices.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if devices.len() > SHOWN {
        out.push_str(&format!(" +{} more", devices.len() - SHOWN));
    }
    out
}

/// "convosync: teammates' notes loaded: Bob (laptop-bob), …" when only teammates wrote.
fn teammates_message(teammates: &[Handoff], total: usize) -> Option<String> {
    if teammates.is_empty() {
        return None;
    }
    let mut names: Vec<String> = teammates
        .iter()
        .take(3)
        .map(|h| {
            let name = crate::timefmt::truncate_chars(&crate::team::teammate_name(h), 40);
            format!("{name} ({})", h.device)
        })
        .collect();
    if total > 3 {
        names.push(format!("+{} more", total - 3));
    }
    Some(format!(
        "convosync: teammates' notes loaded: {}; none from your other devices",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn item(device: &str, at: DateTime<Utc>, branch: &str) -> Item {
        let h = Handoff {
            device: device.into(),
            timestamp: at,
            commit: None,
            branch: Some(branch.into()),
            session: None,
            author: None,
            agent: None,
            sections: Vec::new(),
        };
        let note = Note::of(&Entry {
            device: device.into(),
            blob: git2::Oid::ZERO_SHA1,
            handoff: Ok(h),
            proven: false,
            claimed: None,
        })
        .unwrap();
        Item {
            key: device.into(),
            head: note.head.clone().unwrap(),
            note,
        }
    }

    #[test]
    fn current_branch_first_then_newest_then_device_with_the_future_as_now() {
        let now = Utc::now();
        let mut items = [
            item("old", now - Duration::hours(5), "feat"),
            item("main-new", now, "main"),
            item("zeta", now - Duration::hours(1), "feat"),
            item("alpha", now - Duration::hours(1), "feat"),
            // Dated next year: counted as now, so it ties with a note written now.
            item("future", now + Duration::days(365), "feat"),
            item("now", now, "feat"),
        ];
        items.sort_by(|a, b| order(Some("feat"), now, a, b));
        let got: Vec<&str> = items.iter().map(|i| i.note.device.as_str()).collect();
        assert_eq!(got, ["future", "now", "alpha", "zeta", "old", "main-new"]);
        // Without a current branch: newest first, ties by device.
        items.sort_by(|a, b| order(None, now, a, b));
        let got: Vec<&str> = items.iter().map(|i| i.note.device.as_str()).collect();
        assert_eq!(got, ["future", "main-new", "now", "alpha", "zeta", "old"]);
    }

    #[test]
    fn short_blocks_never_take_more_than_half_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        let now = Utc::now();
        let notes = Notes {
            keys: Vec::new(),
            own: vec![item("laptop", now, "main")],
            teammates: Vec::new(),
            // A remote can hold any number of snapshot refs.
            wip: (0..2_000)
                .map(|i| {
                    (
                        format!("d{i} left uncommitted changes in 1 file on main"),
                        Some(format!("d{i}")),
                    )
                })
                .collect(),
            claims: HashMap::new(),
            unreadable: Vec::new(),
            branch: None,
            now,
            skipped: Skipped::default(),
        };
        let view = notes.render(&repo, Reader::Session(Agent::Claude), false);
        let limit = repo.settings.context_limit;
        assert!(
            context::utf16_len(&view.blocks) <= limit / 2,
            "{}",
            view.blocks.len()
        );
        assert!(context::utf16_len(&view.text()) <= limit);
        assert!(
            view.text().contains("## From laptop"),
            "the user's note still fits"
        );
    }

    #[test]
    fn unreadable_lines_group_by_reason_and_name_the_fix_when_asked() {
        use crate::crypt::OpenError;
        let u = |d: &str, r: NoteError| (d.to_string(), r);
        let bad = |r: &str| NoteError::BadFormat(r.into());
        let list = [
            u("laptop", NoteError::Encrypted(OpenError::OtherKey)),
            u("desk", NoteError::Encrypted(OpenError::NoKey)),
            u("attic", NoteError::Encrypted(OpenError::NoKey)),
            u(
                "evil",
                NoteError::TooLarge {
                    size: 300000,
                    cap: 262144,
                },
            ),
        ];
        assert_eq!(
            unreadable_lines(&list, false),
            [
                "could not read encrypted notes from attic, desk: this device has no key",
                "could not read the encrypted note from laptop (another person's key)",
                "could not read the note from evil: too large (300000 bytes; a note is read up to 262144 bytes)",
            ]
        );
        assert!(unreadable_lines(&list, true)[0].contains("convosync key add"));
        let many: Vec<Unreadable> = (0..5).map(|i| u(&format!("d{i}"), bad("x"))).collect();
        assert_eq!(
            unreadable_lines(&many, false),
            ["could not read the notes from d0, d1, d2 +2 more: x"]
        );
        // A reason per note (a hostile ref can make each one different): a few lines, then a count.
        let hostile: Vec<Unreadable> = (0..1000)
            .map(|i| {
                u(
                    &format!("d{i:04}"),
                    bad(&format!("too large ({} bytes) {}", 300_000 + i, "y".repeat(500))),
                )
            })
            .collect();
        let lines = unreadable_lines(&hostile, false);
        assert_eq!(lines.len(), MAX_REASONS + 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() < 200), "{lines:?}");
        assert_eq!(
            lines[MAX_REASONS],
            "could not read 997 more notes from other devices"
        );
    }
}
