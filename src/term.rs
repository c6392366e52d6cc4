//! Terminal conventions: colour only on a terminal and never with `NO_COLOR`; long output
//! through a pager (`$PAGER`, else `less -FRX`) like git's, only on a terminal.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use regex::Regex;

/// Whether to colour standard output.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Whether standard output is a terminal: tables then get a header line; piped output stays
/// one record per line for scripts.
pub fn interactive() -> bool {
    std::io::stdout().is_terminal()
}

/// A table's header line, bold when colouring.
pub fn header(line: &str, colour: bool) -> String {
    format!("{}\n", paint(line.trim_end(), "1", colour))
}

pub fn paint(s: &str, code: &str, on: bool) -> String {
    let s = &crate::untrusted::line(s);
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Output text with nothing a terminal would act on except the colour codes [`paint`] adds (and
/// only when colouring): every string from the ref was cleaned when read, this is the last check.
pub fn clean(text: &str, colour: bool) -> String {
    if !colour {
        return crate::untrusted::text(text).into_owned();
    }
    static SGR: LazyLock<Regex> = LazyLock::new(|| Regex::new("\x1b\\[[0-9;]{0,16}m").expect("valid regex"));
    // The text around each colour code cleaned, the code kept.
    let codes = SGR.find_iter(text).map(|m| m.as_str()).chain([""]);
    let pieces = SGR.split(text).zip(codes);
    pieces
        .map(|(plain, code)| format!("{}{code}", crate::untrusted::text(plain)))
        .collect()
}

/// Print `text`, through a pager when it is long and stdout is a terminal. A closed pipe
/// (`convosync history | head`) is not an error.
pub fn page(text: &str) {
    let text = &clean(text, color());
    if text.lines().count() > 40 && std::io::stdout().is_terminal() {
        let pager = std::env::var("PAGER").ok().filter(|p| !p.trim().is_empty());
        let pager = pager.unwrap_or_else(|| "less -FRX".into());
        let mut parts = pager.split_whitespace();
        let spawned = Command::new(parts.next().unwrap_or_default())
            .args(parts)
            .stdin(Stdio::piped())
            .spawn();
        if let Ok(mut child) = spawned {
            // Written, then closed (dropped), so the pager sees the end of its input.
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(text.as_bytes());
            }
            let _ = child.wait();
            return;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_our_colours() {
        let t = format!(
            "{} \x1b]0;x\x07\x1b[2J\u{9b}1m{}",
            paint("id", "33", true),
            paint("x\x1b[5m", "1", true)
        );
        assert_eq!(clean(&t, true), "\x1b[33mid\x1b[0m \x1b[1mx\x1b[0m");
        assert_eq!(clean(&t, false), "id x");
    }
}
