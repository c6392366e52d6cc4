//! Time: the clock convosync reads (overridable for tests with `CONVOSYNC_NOW`) and the
//! "3 hours ago" phrasing users see.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time, or `CONVOSYNC_NOW` (RFC 3339) when set, so tests and the demo are reproducible.
pub fn now() -> DateTime<Utc> {
    std::env::var("CONVOSYNC_NOW")
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

/// `2026-11-24T20:31:07Z`, the form stored in handoffs.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago", "in the future".
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    let (n, unit) = match secs {
        ..=-61 => return "in the future".to_string(),
        -60..=59 => return "just now".to_string(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=2_591_999 => (secs / 86_400, "day"),
        2_592_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Cut `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) => s.chars().take(max.saturating_sub(1)).chain(['…']).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn ago_phrases() {
        let now = Utc::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(ago(now - Duration::hours(3), now), "3 hours ago");
        assert_eq!(ago(now - Duration::days(2), now), "2 days ago");
        assert_eq!(ago(now + Duration::hours(2), now), "in the future");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
        assert_eq!(truncate_chars("short", 10), "short");
    }
}
