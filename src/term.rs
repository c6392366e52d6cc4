//! Terminal conventions: colour only on a terminal and never with `NO_COLOR`; long output
//! through a pager (`$PAGER`, else `less -FRX`) like git's, only on a terminal.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};

/// Whether to colour standard output.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn paint(s: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Print `text`, through a pager when it is long and stdout is a terminal. A closed pipe
/// (`convosync history | head`) is not an error.
pub fn page(text: &str) {
    let long = text.lines().count() > 40;
    if long && std::io::stdout().is_terminal() {
        let pager = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "less -FRX".into());
        let mut parts = pager.split_whitespace();
        if let Some(prog) = parts.next() {
            if let Ok(mut child) = Command::new(prog).args(parts).stdin(Stdio::piped()).spawn() {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(text.as_bytes());
                }
                let _ = child.wait();
                return;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
