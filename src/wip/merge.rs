//! Merging one path of a snapshot three ways: its base, this worktree and the snapshot.

use anyhow::{Context, Result};

use super::mode::Mode;

/// One side of a three-way merge: a file's content and git mode, or `None` when absent.
pub(super) type Side = Option<(Vec<u8>, Mode)>;

/// The outcome of merging one path.
pub(super) enum Merged {
    /// The result: content and mode, or deleted.
    Clean(Side),
    /// A conflict, with the content holding conflict markers when markers can stand for it.
    Conflict(&'static str, Side),
}

/// Merge one path three ways.
pub(super) fn merge3(rel: &str, device: &str, base: &Side, ours: &Side, theirs: &Side) -> Result<Merged> {
    let (Some((o, om)), Some((t, tm))) = (ours, theirs) else {
        let reason = if ours.is_some() {
            "deleted in the snapshot, changed here"
        } else {
            "changed in the snapshot, deleted here"
        };
        return Ok(Merged::Conflict(reason, None));
    };
    let (b, bm) = match base {
        Some((b, m)) => (b.as_slice(), Some(*m)),
        None => (&[][..], None),
    };
    let mode = if om == tm || Some(*om) != bm {
        // Same on both sides, or only this side changed it.
        if om != tm && Some(*tm) != bm {
            return Ok(Merged::Conflict(
                "its mode or type changed differently on each side",
                None,
            ));
        }
        *om
    } else {
        *tm
    };
    let link = Mode::Symlink;
    let unchanged = |x: &Vec<u8>| base.is_some() && x.as_slice() == b;
    if o == t || unchanged(t) {
        return Ok(Merged::Clean(Some((o.clone(), mode))));
    }
    if unchanged(o) {
        return Ok(Merged::Clean(Some((t.clone(), mode))));
    }
    if *om == link || *tm == link || bm == Some(link) {
        return Ok(Merged::Conflict("a symlink changed on both sides", None));
    }
    if is_binary(b) || is_binary(o) || is_binary(t) {
        return Ok(Merged::Conflict("a binary file changed on both sides", None));
    }
    let [bi, oi, ti] = [b, o, t].map(|content| {
        let mut input = git2::MergeFileInput::new();
        input.content(content).path(rel);
        input
    });
    let mut mopts = git2::MergeFileOptions::new();
    mopts.our_label("local").their_label(device);
    let merged = git2::merge_file(&bi, &oi, &ti, Some(&mut mopts))
        .with_context(|| format!("could not merge {rel}"))?;
    let side = Some((merged.content().to_vec(), mode));
    Ok(match base {
        _ if merged.is_automergeable() => Merged::Clean(side),
        None => Merged::Conflict("added on both sides with different content", side),
        Some(_) => Merged::Conflict("both sides changed the same lines", side),
    })
}

fn is_binary(b: &[u8]) -> bool {
    b.iter().take(8000).any(|&c| c == 0)
}
