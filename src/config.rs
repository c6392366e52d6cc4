//! Settings, resolved once per run: the `CONVOSYNC_*` environment variable wins, then
//! `git config convosync.*`, then a named default. A bad value falls back to the default, and
//! says so once: a line in the repository's log, and on stderr for a command.

use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_STOP_INTERVAL: Duration = Duration::from_secs(20 * 60);
pub const DEFAULT_CONTEXT_LIMIT: usize = 9_500;
pub const DEFAULT_WIP_LIMIT: u64 = 5 * 1024 * 1024;

/// What the Stop hook does when no draft exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Ask Claude to write the draft (`decision: block`).
    Prompt,
    /// Derive a handoff from the transcript without asking the model.
    Auto,
    /// Only commit drafts that already exist.
    Off,
}

impl StopMode {
    /// The `convosync.stop` value: `prompt`, `auto`, `off` (or `false`/`no`), any case.
    pub fn parse(v: &str) -> Option<StopMode> {
        match v.to_ascii_lowercase().as_str() {
            "prompt" => Some(StopMode::Prompt),
            "auto" => Some(StopMode::Auto),
            "off" | "false" | "no" => Some(StopMode::Off),
            _ => None,
        }
    }
}

/// The setting's own spelling, as `git config convosync.stop` takes it.
impl std::fmt::Display for StopMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopMode::Prompt => "prompt",
            StopMode::Auto => "auto",
            StopMode::Off => "off",
        })
    }
}

/// How SessionStart treats the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Answer at once from the local ref; fetch in a detached process; notes that arrive
    /// reach Claude with the next prompt (UserPromptSubmit).
    Async,
    /// Fetch (within the timeout) before answering.
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamMode {
    Show,
    Hide,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The ref holding `devices/<device>.md`.
    pub refname: String,
    /// Remote to sync with; `None` means "the current branch's upstream remote, else origin".
    pub remote: Option<String>,
    /// Hard budget for each network step in a hook.
    pub timeout: Duration,
    pub stop: StopMode,
    pub start: StartMode,
    pub stop_interval: Duration,
    pub redact: bool,
    pub redact_patterns: Vec<String>,
    pub redact_allow: Vec<String>,
    pub team: TeamMode,
    pub context_limit: usize,
    pub wip_limit: u64,
    /// Whether snapshots of uncommitted work are pushed without being asked
    /// (`convosync.wipPush`): `None` (unset) pushes them only when they are encrypted.
    pub wip_push: Option<bool>,
    /// Whether the remote is a notes repository shared by several projects
    /// (`convosync.notesRepo`; by default, when `convosync.remote` is a URL): the ref then lives
    /// under a namespace of this project, `refs/convosync/p/<project>/handoffs`.
    pub notes_repo: bool,
    /// The project's name in a notes repository (`convosync.project`); by default derived from
    /// the project's own remote (see [`crate::namespace`]).
    pub project: Option<String>,
    /// In a notes repository (unless `convosync.ref` is set), the project's namespace there.
    pub namespace: Option<crate::namespace::Namespace>,
    /// Whether `convosync.ref` was set explicitly (it then wins over the project namespace).
    pub ref_explicit: bool,
    /// Settings that are set but not valid, each as one line naming the key, the value and the
    /// default used instead.
    pub invalid: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refname: crate::refs::DEFAULT_HANDOFFS.to_string(),
            remote: None,
            timeout: DEFAULT_TIMEOUT,
            stop: StopMode::Prompt,
            start: StartMode::Async,
            stop_interval: DEFAULT_STOP_INTERVAL,
            redact: true,
            redact_patterns: Vec::new(),
            redact_allow: Vec::new(),
            team: TeamMode::Show,
            context_limit: DEFAULT_CONTEXT_LIMIT,
            wip_limit: DEFAULT_WIP_LIMIT,
            wip_push: None,
            notes_repo: false,
            project: None,
            namespace: None,
            ref_explicit: false,
            invalid: Vec::new(),
        }
    }
}

impl Settings {
    /// Resolve every setting from a snapshot of a repository's configuration (or from the
    /// environment alone when there is none). A value that is there but not valid gives the
    /// default and one line in [`Settings::invalid`].
    pub fn load(cfg: Option<&git2::Config>) -> Settings {
        let mut r = Reader {
            cfg,
            invalid: Vec::new(),
        };
        let d = Settings::default();
        let remote = r.get("CONVOSYNC_REMOTE", "convosync.remote").map(|(_, v)| v);
        let explicit_ref = r.get("CONVOSYNC_REF", "convosync.ref").map(|(_, v)| v);
        let by_url = remote.as_deref().is_some_and(crate::refs::is_url);
        let on_off = |b: bool| if b { "true" } else { "false" };
        Settings {
            notes_repo: r
                .parse(
                    "CONVOSYNC_NOTES_REPO",
                    "convosync.notesRepo",
                    parse_bool,
                    on_off(by_url),
                )
                .unwrap_or(by_url),
            project: r.get("CONVOSYNC_PROJECT", "convosync.project").map(|(_, v)| v),
            namespace: None,
            ref_explicit: explicit_ref.is_some(),
            refname: explicit_ref
                .map(|r| crate::refs::normalize(&r))
                .unwrap_or(d.refname),
            remote,
            timeout: r
                .parse(
                    "CONVOSYNC_TIMEOUT",
                    "convosync.timeout",
                    parse_duration,
                    &format!("{}s", d.timeout.as_secs_f64()),
                )
                .unwrap_or(d.timeout),
            stop: r
                .parse(
                    "CONVOSYNC_STOP",
                    "convosync.stop",
                    StopMode::parse,
                    &d.stop.to_string(),
                )
                .unwrap_or(d.stop),
            start: r
                .parse(
                    "CONVOSYNC_START",
                    "convosync.start",
                    |v| match v.to_ascii_lowercase().as_str() {
                        "async" => Some(StartMode::Async),
                        "sync" => Some(StartMode::Sync),
                        _ => None,
                    },
                    "async",
                )
                .unwrap_or(d.start),
            stop_interval: r
                .parse(
                    "CONVOSYNC_STOP_INTERVAL",
                    "convosync.stopInterval",
                    parse_duration_minutes,
                    &format!("{} minutes", d.stop_interval.as_secs() / 60),
                )
                .unwrap_or(d.stop_interval),
            redact: r
                .parse(
                    "CONVOSYNC_REDACT",
                    "convosync.redact",
                    parse_bool,
                    on_off(d.redact),
                )
                .unwrap_or(d.redact),
            redact_patterns: r.multi("convosync.redactPattern"),
            redact_allow: r.multi("convosync.redactAllow"),
            team: r
                .parse(
                    "CONVOSYNC_TEAM",
                    "convosync.team",
                    |v| match v.to_ascii_lowercase().as_str() {
                        "show" => Some(TeamMode::Show),
                        "hide" => Some(TeamMode::Hide),
                        _ => None,
                    },
                    "show",
                )
                .unwrap_or(d.team),
            context_limit: r
                .parse(
                    "CONVOSYNC_CONTEXT_LIMIT",
                    "convosync.contextLimit",
                    |v| v.parse().ok().filter(|n: &usize| *n >= 500),
                    &d.context_limit.to_string(),
                )
                .unwrap_or(d.context_limit),
            wip_limit: r
                .parse(
                    "CONVOSYNC_WIP_LIMIT",
                    "convosync.wipLimit",
                    parse_size,
                    &format!("{}MB", d.wip_limit >> 20),
                )
                .unwrap_or(d.wip_limit),
            wip_push: r.parse(
                "CONVOSYNC_WIP_PUSH",
                "convosync.wipPush",
                parse_bool,
                "unset (push only when encrypted)",
            ),
            invalid: r.invalid,
        }
    }
}

/// Reads settings: the `CONVOSYNC_*` variable, else the git config key; notes the bad ones.
struct Reader<'c> {
    cfg: Option<&'c git2::Config>,
    invalid: Vec<String>,
}

impl Reader<'_> {
    /// The trimmed value and where it came from (the variable or the key).
    fn get(&self, env: &'static str, key: &'static str) -> Option<(&'static str, String)> {
        let from_env = std::env::var(env).ok().filter(|v| !v.trim().is_empty());
        let (from, v) = match from_env {
            Some(v) => (env, v),
            None => (key, self.cfg?.get_string(key).ok()?),
        };
        Some((from, v.trim().to_string()))
    }

    /// The value parsed; `None` when it is not set, or when it is set but not valid: then one
    /// line naming the key, the value and `default` (what is used instead) is noted.
    fn parse<T>(
        &mut self,
        env: &'static str,
        key: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
        default: &str,
    ) -> Option<T> {
        let (from, v) = self.get(env, key)?;
        let out = parse(&v);
        if out.is_none() {
            self.invalid.push(format!(
                "invalid {from} value {:?}; using {default}",
                crate::untrusted::line(&v)
            ));
        }
        out
    }

    fn multi(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = self.cfg {
            if let Ok(mut entries) = c.multivar(key, None) {
                while let Some(Ok(e)) = entries.next() {
                    if let Ok(v) = e.value() {
                        out.push(v.to_string());
                    }
                }
            }
        }
        out
    }
}

/// `2`, `2s`, `1.5`, `500ms` → a duration; plain numbers are seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let secs: f64 = num.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0 && secs * scale <= 3600.0).then(|| Duration::from_secs_f64(secs * scale))
}

/// Like [`parse_duration`] but plain numbers are minutes (`convosync.stopInterval = 20`).
fn parse_duration_minutes(v: &str) -> Option<Duration> {
    match v.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 0.0 => Some(Duration::from_secs_f64(m * 60.0)),
        Ok(_) => None,
        Err(_) => parse_duration(v),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `5242880`, `5MB`, `512k` → bytes.
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mult) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
        ("b", 1),
    ]
    .iter()
    .find_map(|(s, m)| v.strip_suffix(s).map(|n| (n.trim().to_string(), *m)))
    .unwrap_or((v.clone(), 1));
    num.parse::<u64>().ok().map(|n| n.saturating_mul(mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration_minutes("20"), Some(Duration::from_secs(1200)));
        assert_eq!(parse_duration_minutes("30s"), Some(Duration::from_secs(30)));
    }

    #[test]
    fn stop_modes_print_as_they_are_set() {
        for m in [StopMode::Prompt, StopMode::Auto, StopMode::Off] {
            assert_eq!(StopMode::parse(&m.to_string()), Some(m));
        }
        assert_eq!(StopMode::parse("No"), Some(StopMode::Off));
        assert_eq!(StopMode::parse("sometimes"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MB"), Some(5 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("100"), Some(100));
    }
}
