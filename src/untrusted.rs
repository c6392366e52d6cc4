//! Strings that came from the remote or from a transcript, made safe to show.
//!
//! Anyone who can push to the remote can put any bytes on `refs/convosync/*`, and Claude writes
//! drafts from conversations that may hold terminal escapes. Before such text reaches a terminal,
//! `systemMessage` or `additionalContext` it goes through [`text`] (bodies: newlines and tabs kept)
//! or [`line`] (branch, commit subject, device, author: one line). Both drop every C0 and C1
//! control character, DEL, whole escape sequences (CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and
//! 8-bit forms, and two-character ESC sequences) and the Unicode bidirectional controls that can
//! make text display differently from what it is ("trojan source"). They are the one cleaner:
//! git's own messages, snapshot trailers and everything else from outside go through them. The
//! one variant is [`shown`], for a patch a person reads before applying it: there a control
//! character is made visible (`\u{1b}`) instead of dropped, so a file's hidden bytes are seen.
//!
//! Objects are read through the same door: [`blob`], [`tree`] and [`commit`] check an object's
//! size from its header, before it is inflated, against the cap of its kind ([`Object`]), so a
//! few kilobytes pushed to a ref that inflate to gigabytes cost nothing.
//!
//! Invalid entries met while reading the ref are returned with what was read, in a [`Skipped`]:
//! hooks write them to their log and commands print one warning line ([`Skipped::warning`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use git2::{Blob, Commit, ObjectType, Oid, Repository, Tree};
use regex::Regex;

use crate::handoff::Handoff;

/// The kinds of object read from a convosync ref (the handoff ref, the wip refs and their
/// history), each with the largest size read. Anything larger is skipped, unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A device's note (`devices/<device>.md`) or a key record (`keys/<recipient>`): 256 KiB.
    Note,
    /// A sealed snapshot's `meta.age` (branch and file list): 1 MiB.
    WipMeta,
    /// A snapshot's `snapshot.age` or one of its files: 64 MiB (snapshots are made under
    /// `convosync.wipLimit`, 5 MiB by default).
    WipFile,
    /// A tree: 4 MiB, and at most [`MAX_TREE_ENTRIES`] entries.
    Tree,
    /// A commit: 1 MiB (a snapshot's message lists its files).
    Commit,
}

/// The most entries a tree from a convosync ref may hold.
pub const MAX_TREE_ENTRIES: usize = 100_000;

impl Object {
    /// The largest size, in bytes, read of this kind, its git type, and its name in messages.
    const fn spec(self) -> (usize, ObjectType, &'static str) {
        match self {
            Object::Note => (256 * 1024, ObjectType::Blob, "note"),
            Object::WipMeta => (1 << 20, ObjectType::Blob, "snapshot's file list"),
            Object::WipFile => (64 << 20, ObjectType::Blob, "snapshot file"),
            Object::Tree => (4 << 20, ObjectType::Tree, "tree"),
            Object::Commit => (1 << 20, ObjectType::Commit, "commit"),
        }
    }
}

/// Why an object from a ref was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// Another kind of object than the place expects.
    #[error("a {} where a {} belongs", .found.str(), .expected.str())]
    Kind { found: ObjectType, expected: ObjectType },
    #[error("too large ({size} bytes; a {what} is read up to {cap} bytes)")]
    TooLarge {
        size: usize,
        cap: usize,
        what: &'static str,
    },
    #[error("a tree of {0} entries (at most {MAX_TREE_ENTRIES} are read)")]
    TooManyEntries(usize),
}

impl From<git2::Error> for Refused {
    fn from(e: git2::Error) -> Refused {
        Refused::Unreadable(e.message().to_string())
    }
}

/// The size of object `id` from its header (nothing inflated), when it is of `object`'s kind
/// and within its cap. A reader that reports what it skipped records the refusal with
/// [`Skipped::refused`].
pub fn check(repo: &Repository, id: Oid, object: Object) -> Result<usize, Refused> {
    let (cap, expected, what) = object.spec();
    let (size, found) = repo.odb()?.read_header(id)?;
    if found != expected {
        return Err(Refused::Kind { found, expected });
    }
    if size > cap {
        return Err(Refused::TooLarge { size, cap, what });
    }
    Ok(size)
}

/// The blob `id` of kind `what`, read only when its header says it is within the cap.
pub fn blob<'r>(repo: &'r Repository, id: Oid, what: Object) -> Result<Blob<'r>, Refused> {
    check(repo, id, what)?;
    Ok(repo.find_blob(id)?)
}

/// The tree `id`, read only when its header says it is within [`Object::Tree`]'s cap, and kept
/// only with at most [`MAX_TREE_ENTRIES`] entries.
pub fn tree<'r>(repo: &'r Repository, id: Oid) -> Result<Tree<'r>, Refused> {
    check(repo, id, Object::Tree)?;
    let t = repo.find_tree(id)?;
    if t.len() > MAX_TREE_ENTRIES {
        return Err(Refused::TooManyEntries(t.len()));
    }
    Ok(t)
}

/// The commit `id`, read only when its header says it is within [`Object::Commit`]'s cap.
pub fn commit<'r>(repo: &'r Repository, id: Oid) -> Result<Commit<'r>, Refused> {
    check(repo, id, Object::Commit)?;
    Ok(repo.find_commit(id)?)
}

/// Whether `c` may stay in a body: not a control character, a bidirectional formatting
/// character (embedding, override, isolate, mark) or a line or paragraph separator.
fn allowed(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => keep_newlines,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' => false,
        '\u{2028}' | '\u{2029}' => false,
        _ => !c.is_control(),
    }
}

/// Whether `s` is already clean; the common case costs one scan and no allocation. Printable
/// ASCII is recognised eight bytes at a time; only a word that holds something else is looked at
/// a character at a time.
fn clean(s: &str, keep_newlines: bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        let end = (i + 8).min(s.len());
        let word = <[u8; 8]>::try_from(&s.as_bytes()[i..end]);
        if word.is_ok_and(|w| printable8(u64::from_le_bytes(w))) {
            i = end;
            continue;
        }
        // `i` starts a character: every byte before it belongs to a whole one.
        for c in s[i..].chars() {
            if !allowed(c, keep_newlines) {
                return false;
            }
            i += c.len_utf8();
            if i >= end {
                break;
            }
        }
    }
    true
}

/// Whether all eight bytes of `w` are printable ASCII (0x20 to 0x7e). A byte below 0x20, and
/// only such a byte, borrows into its clear top bit when 0x20 is taken from it; a byte of 0x7f or
/// more has its top bit set already or once 1 is added (a carry out of a byte comes only from
/// 0xff, itself caught).
fn printable8(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const TOPS: u64 = ONES * 0x80;
    let below = w.wrapping_sub(ONES * 0x20) & !w & TOPS;
    let above = (w.wrapping_add(ONES) | w) & TOPS;
    below | above == 0
}

/// Drop the rest of a control string (OSC, DCS, SOS, PM, APC) up to its terminator: BEL, ST
/// (`ESC \` or U+009C), or the end of the line (kept), so an unterminated one hides one line at
/// most.
fn skip_control_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next_if(|&c| c != '\n') {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// Drop the rest of a CSI sequence: parameter bytes, intermediate bytes, one final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| ('\u{20}'..='\u{3f}').contains(c)).is_some() {}
    chars.next_if(|c| ('\u{40}'..='\u{7e}').contains(c));
}

/// `s` without control characters and escape sequences; borrowed when it is already clean.
/// Without `keep_newlines`, line breaks and tabs become one space and the ends are trimmed.
fn strip(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if clean(s, keep_newlines) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI (7-bit and 8-bit), then OSC, DCS, SOS, PM and APC.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{1b}' if chars.next_if_eq(&'[').is_some() => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_control_string(&mut chars),
            '\u{1b}'
                if chars
                    .next_if(|c| matches!(c, ']' | 'P' | 'X' | '^' | '_'))
                    .is_some() =>
            {
                skip_control_string(&mut chars)
            }
            // ESC, intermediates, one final character (`ESC c`, `ESC ( B`, `ESC 7`).
            '\u{1b}' => {
                while chars.next_if(|x| ('\u{20}'..='\u{2f}').contains(x)).is_some() {}
                chars.next_if(|x| ('\u{30}'..='\u{7e}').contains(x));
            }
            // CRLF and lone CR end a line; they never overwrite one.
            '\r' if keep_newlines && chars.peek() != Some(&'\n') => out.push('\n'),
            '\u{2028}' | '\u{2029}' if keep_newlines => out.push('\n'),
            '\n' | '\t' | '\r' | '\u{2028}' | '\u{2029}' if !keep_newlines && !out.ends_with(' ') => {
                out.push(' ')
            }
            c if allowed(c, keep_newlines) => out.push(c),
            _ => {}
        }
    }
    if !keep_newlines {
        out = out.trim().to_string();
    }
    Cow::Owned(out)
}

/// A body: control characters and escape sequences removed, newlines and tabs kept.
pub fn text(s: &str) -> Cow<'_, str> {
    strip(s, true)
}

/// A single-line field (branch, commit subject, device, author): as [`text`], and line breaks
/// and tabs become one space.
pub fn line(s: &str) -> Cow<'_, str> {
    strip(s, false)
}

/// [`line`] as an owned string.
pub fn line_owned(s: &str) -> String {
    line(s).into_owned()
}

/// A body for a person to review (a patch): as [`text`] keeps it, except that each control
/// character other than newline and tab is written out escaped (`\u{1b}`) rather than dropped,
/// so what a file holds is seen, and nothing in it acts on the terminal.
pub fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match allowed(c, true) {
            true => out.push(c),
            false => out.extend(c.escape_default()),
        }
    }
    out
}

/// Every field of a handoff read from the ref (or written from a transcript), cleaned.
pub fn handoff(mut h: Handoff) -> Handoff {
    let own_line = |s: &mut String| *s = changed_or(std::mem::take(s), line);
    own_line(&mut h.device);
    if let Some(c) = h.commit.as_mut() {
        own_line(&mut c.sha);
        own_line(&mut c.subject);
    }
    let optional = [&mut h.branch, &mut h.session, &mut h.author, &mut h.agent];
    for f in optional.into_iter().flatten() {
        own_line(f);
    }
    for s in &mut h.sections {
        own_line(&mut s.title);
        s.body = changed_or(std::mem::take(&mut s.body), text);
    }
    h
}

/// Every string in a hook's JSON reply cleaned as a body ([`text`]), and `<system-reminder>`
/// tags made inert: the last check before anything reaches Claude or the user's screen.
pub fn json(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(neutralize_tags_in(changed_or(s, text))),
        Value::Array(a) => Value::Array(a.into_iter().map(json).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, json(v))).collect()),
        other => other,
    }
}

/// The entries of a convosync ref that a read left out, one cleaned line each: returned with what
/// was read, for the hook's log or the command's one warning line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped(Vec<String>);

/// At most this many lines are kept (a hostile ref can hold any number of bad entries).
const MAX_SKIPPED: usize = 100;

impl Skipped {
    /// Record an entry that was left out (once per distinct line).
    pub fn note(&mut self, what: impl std::fmt::Display) {
        let msg = line(&what.to_string()).into_owned();
        if !self.0.contains(&msg) && self.0.len() < MAX_SKIPPED {
            self.0.push(msg);
        }
    }

    /// Record that the object at `at` was refused for its size or length, the refusals that
    /// protect the reader; the others are the reader's to report (as an unreadable note, say).
    pub fn refused(&mut self, at: &dyn std::fmt::Display, e: &Refused) {
        if matches!(e, Refused::TooLarge { .. } | Refused::TooManyEntries(_)) {
            self.note(format_args!("skipped {at}: {e}"));
        }
    }

    /// Take in what another read skipped.
    pub fn extend(&mut self, other: Skipped) {
        other.0.into_iter().for_each(|s| self.note(s));
    }

    /// One line per entry left out, for a log.
    pub fn lines(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The one warning line a command prints, naming the first few; `None` when nothing was
    /// skipped.
    pub fn warning(&self) -> Option<String> {
        let n = self.0.len();
        let plural = if n == 1 { "y" } else { "ies" };
        let more = match n.saturating_sub(3) {
            0 => String::new(),
            more => format!("; and {more} more"),
        };
        let first = self.0[..n.min(3)].join("; ");
        (n > 0).then(|| {
            format!("convosync: warning: {n} invalid entr{plural} on the ref ignored: {first}{more}")
        })
    }
}

/// A name from the ref for a message: cleaned and cut short, in quotes.
pub fn quoted(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    format!("{:?}", crate::timefmt::truncate_chars(&line(&s), 60))
}

/// `<system-reminder>`, `</system-reminder>` and look-alikes (case, spaces) made inert, so text
/// from the ref can neither close the block Claude Code wraps context in nor open one.
pub fn neutralize_tags(text: &str) -> std::borrow::Cow<'_, str> {
    if !may_hold_tag(text) {
        return Cow::Borrowed(text);
    }
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)<(\s*/?\s*system[-_\s]*reminder)").expect("valid regex"));
    TAG.replace_all(text, "&lt;$1")
}

/// [`neutralize_tags`] of an owned string, without a copy when there is nothing to change.
pub fn neutralize_tags_in(text: String) -> String {
    changed_or(text, neutralize_tags)
}

/// `f(s)` as an owned string, reusing `s` when `f` changed nothing.
fn changed_or(s: String, f: impl for<'a> Fn(&'a str) -> Cow<'a, str>) -> String {
    if let Cow::Owned(c) = f(&s) {
        return c;
    }
    s
}

/// Whether `text` could hold what [`neutralize_tags`] looks for: a `<` and, in any case,
/// `reminder` (whose letters have no case variants outside ASCII: tested below). Most text has
/// neither, and is passed over without building the pattern.
fn may_hold_tag(text: &str) -> bool {
    text.contains('<') && text.to_ascii_lowercase().contains("reminder")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn no_controls(s: &str, keep_newlines: bool) -> bool {
        s.chars().all(|c| allowed(c, keep_newlines))
    }

    #[test]
    fn strips_sequences() {
        assert_eq!(text("a\x1b[31mred\x1b[0m b"), "ared b");
        assert_eq!(text("x\x1b]0;title\x07y"), "xy");
        assert_eq!(text("x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\y"), "xlinky");
        assert_eq!(text("x\x1bP1;2|data\x1b\\y"), "xy");
        assert_eq!(text("x\u{9b}2Jy"), "xy");
        assert_eq!(text("x\u{9d}0;t\u{9c}y"), "xy");
        assert_eq!(text("x\x1bcy\x1b(Bz"), "xyz");
        assert_eq!(text("tail\x1b"), "tail");
        assert_eq!(text("a\x07b\x08c\x7fd\0e"), "abcde");
        assert_eq!(text("a\r\nb\rc"), "a\nb\nc");
        assert_eq!(text("keep\n\ttabs"), "keep\n\ttabs");
        assert_eq!(text("un\x1b]0;terminated\nnext"), "un\nnext");
        assert_eq!(text("if a \u{202E}{ } \u{2066}x\u{2069}"), "if a { } x");
        assert!(matches!(text("plain ünïcode ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_door_reads_nothing_over_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let small = repo.blob(b"note").unwrap();
        let big = repo.blob(&vec![b'x'; Object::Note.spec().0 + 1]).unwrap();
        assert_eq!(blob(&repo, small, Object::Note).unwrap().content(), b"note");
        assert_eq!(
            blob(&repo, big, Object::Note).unwrap_err(),
            Refused::TooLarge {
                size: Object::Note.spec().0 + 1,
                cap: Object::Note.spec().0,
                what: "note"
            }
        );
        assert!(blob(&repo, big, Object::WipFile).is_ok());
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        assert!(matches!(
            blob(&repo, empty, Object::Note),
            Err(Refused::Kind {
                found: ObjectType::Tree,
                ..
            })
        ));
        assert!(tree(&repo, empty).is_ok());
        assert!(matches!(tree(&repo, small), Err(Refused::Kind { .. })));
        assert!(matches!(commit(&repo, empty), Err(Refused::Kind { .. })));
        assert!(matches!(
            blob(
                &repo,
                Oid::from_str("1234567890123456789012345678901234567890").unwrap(),
                Object::Note
            ),
            Err(Refused::Unreadable(_))
        ));
        // A tree of more entries than are read, each 28 bytes: under the byte cap, over the count.
        let mut raw = Vec::new();
        for i in 0..=MAX_TREE_ENTRIES {
            raw.extend_from_slice(format!("100644 f{i:07}\0").as_bytes());
            raw.extend_from_slice(small.as_bytes());
        }
        assert!(raw.len() < Object::Tree.spec().0);
        let wide = repo.odb().unwrap().write(ObjectType::Tree, &raw).unwrap();
        assert_eq!(
            tree(&repo, wide).unwrap_err(),
            Refused::TooManyEntries(MAX_TREE_ENTRIES + 1)
        );
    }

    #[test]
    fn shown_makes_controls_visible() {
        assert_eq!(shown("a\x1b[31mb\n\tc"), "a\\u{1b}[31mb\n\tc");
        assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(shown("plain ✓\n"), "plain ✓\n");
        assert!(no_controls(&shown("\x07\x1b]0;t\x07\u{9b}\r"), true));
    }

    #[test]
    fn lines_lose_breaks() {
        assert_eq!(line("main\n## Handoff from x"), "main ## Handoff from x");
        assert_eq!(line("a\tb\r\nc"), "a b c");
        assert_eq!(line("\x1b[2Jdev"), "dev");
    }

    #[test]
    fn handoff_fields() {
        let h = crate::handoff::format::parse(
            "## Handoff from x\u{1b}[31m\n**Timestamp:** 2026-01-01T00:00:00Z\n**Commit:** abc (s\u{9b}1mub)\n**Branch:** b\u{7}r\n**Author:** a\u{202e}b\n**Agent:** Codex\u{1b}[2J 1.0\n\n### T\u{1b}]0;x\u{7}itle\nbody\u{1b}[2J\n\tok\n",
        )
        .unwrap();
        let h = handoff(h);
        assert_eq!(h.device, "x");
        assert_eq!(h.commit.as_ref().unwrap().subject, "sub");
        assert_eq!(h.branch.as_deref(), Some("br"));
        assert_eq!(h.author.as_deref(), Some("ab"));
        assert_eq!(h.agent.as_deref(), Some("Codex 1.0"));
        assert_eq!(h.sections[0].title, "Title");
        assert_eq!(h.sections[0].body, "body\n\tok");
    }

    #[test]
    fn eight_bytes_at_a_time() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let expect = (0x20..0x7f).contains(&b);
                assert_eq!(printable8(u64::from_le_bytes(word)), expect, "{b:#x} at {at}");
                // Next to the bytes that carry or borrow.
                for other in [0x00, 0x1f, 0x7e, 0x7f, 0xff] {
                    word[(at + 1) % 8] = other;
                    let both = expect && (0x20..0x7f).contains(&other);
                    assert_eq!(printable8(u64::from_le_bytes(word)), both, "{b:#x} {other:#x}");
                    word[(at + 1) % 8] = b'a';
                }
            }
        }
    }

    #[test]
    fn reminder_tags_are_made_inert() {
        for t in [
            "<system-reminder>",
            "</system-reminder>",
            "< / SYSTEM_Reminder >",
            "x <system reminder> y",
            "<System-REMINDER",
        ] {
            let out = neutralize_tags(t);
            assert!(!out.contains('<'), "{t:?} -> {out:?}");
        }
        for t in ["Vec<String>", "a reminder", "<b>reminders</b> are not tags", ""] {
            assert!(matches!(neutralize_tags(t), Cow::Borrowed(_)), "{t:?}");
        }
    }

    /// The quick test before the pattern is sound: no character outside ASCII matches a letter
    /// of `reminder` case-insensitively, as the pattern's Unicode case folding sees it.
    #[test]
    fn tag_prefilter_misses_nothing() {
        let all: String = (0u32..=0x10FFFF).filter_map(char::from_u32).collect();
        let letters = regex::Regex::new("(?i)[reminder]").unwrap();
        let odd: Vec<char> = letters
            .find_iter(&all)
            .flat_map(|m| m.as_str().chars())
            .filter(|c| !c.is_ascii())
            .collect();
        assert!(odd.is_empty(), "{odd:?}");
        // And the pattern itself needs a literal `<` and these letters.
        assert!(!may_hold_tag("\u{FF1C}system-reminder>"));
        assert!(may_hold_tag("<system-REMINDER"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn tags_found_with_or_without_the_prefilter(s in "[<>/ a-zA-Z_-]{0,12}(system)?[-_ ]{0,2}(reminder|REMINDER|Reminder)?[<>a-z]{0,4}") {
            static TAG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
            let re = TAG.get_or_init(|| regex::Regex::new(r"(?i)<(\s*/?\s*system[-_\s]*reminder)").unwrap());
            prop_assert_eq!(neutralize_tags(&s).into_owned(), re.replace_all(&s, "&lt;$1").into_owned());
        }

        #[test]
        fn nothing_unsafe_survives(s in any::<String>(), t in "(\u{1b}|\u{9b}|\u{9d}|\u{7}|\\[|\\]|[0-9;]|\u{202e}|\n|\r|\t|a|\u{9c}|\\\\|P)*") {
            for input in [s.as_str(), t.as_str()] {
                let body = text(input);
                prop_assert!(no_controls(&body, true), "{:?} -> {:?}", input, body);
                let one = line(input);
                prop_assert!(no_controls(&one, false), "{:?} -> {:?}", input, one);
                prop_assert!(!one.contains('\n'));
                // Idempotent: cleaning clean text changes nothing.
                prop_assert_eq!(text(&body), body.clone());
                prop_assert_eq!(line(&one), one.clone());
            }
        }

        #[test]
        fn ordinary_text_is_untouched(s in "[^\\p{C}\u{2028}\u{2029}]*") {
            prop_assert_eq!(text(&s), s.clone());
        }
    }
}
