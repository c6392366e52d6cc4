//! Settings, resolved once per run: the `CONVOSYNC_*` environment variable wins, then
//! `git config convosync.*`, then a named default. A bad value falls back to the default, and
//! says so once: a line in the repository's log, and on stderr for a command.

use std::time::Duration;

use clap::ValueEnum;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_STOP_INTERVAL: Duration = Duration::from_secs(20 * 60);
pub const DEFAULT_CONTEXT_LIMIT: usize = 9_500;
pub const DEFAULT_WIP_LIMIT: u64 = 5 * 1024 * 1024;

/// What the Stop hook does when no draft exists (`convosync.stop`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StopMode {
    /// Ask Claude to write the draft (`decision: block`).
    Prompt,
    /// Derive a handoff from the transcript without asking the model.
    Auto,
    /// Only commit drafts that already exist (also `false` or `no`).
    #[value(alias = "false", alias = "no")]
    Off,
}

/// The setting's own spelling, as `git config convosync.stop` takes it.
impl std::fmt::Display for StopMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_possible_value()
            .map_or(Ok(()), |v| f.write_str(v.get_name()))
    }
}

/// How SessionStart treats the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartMode {
    /// Answer at once from the local ref; fetch in a detached process; notes that arrive
    /// reach Claude with the next prompt (UserPromptSubmit).
    Async,
    /// Fetch (within the timeout) before answering.
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

impl Settings {
    /// Resolve every setting from a snapshot of a repository's configuration (or from the
    /// environment alone when there is none). A value that is there but not valid gives the
    /// default and one line in [`Settings::invalid`].
    pub fn load(cfg: Option<&git2::Config>) -> Settings {
        let mut r = Reader {
            cfg,
            invalid: Vec::new(),
        };
        let remote = r.get("convosync.remote").map(|(_, v)| v);
        let explicit_ref = r.get("convosync.ref").map(|(_, v)| v);
        let by_url = remote.as_deref().is_some_and(crate::refs::is_url);
        let timeout = format!("{}s", DEFAULT_TIMEOUT.as_secs_f64());
        let interval = format!("{} minutes", DEFAULT_STOP_INTERVAL.as_secs() / 60);
        let wip_limit = format!("{}MB", DEFAULT_WIP_LIMIT >> 20);
        Settings {
            notes_repo: r.or("convosync.notesRepo", parse_bool, by_url, by_url),
            project: r.get("convosync.project").map(|(_, v)| v),
            namespace: None,
            ref_explicit: explicit_ref.is_some(),
            refname: explicit_ref.map_or(crate::refs::DEFAULT_HANDOFFS.to_string(), |r| {
                crate::refs::normalize(&r)
            }),
            remote,
            timeout: r.or("convosync.timeout", parse_duration, DEFAULT_TIMEOUT, timeout),
            stop: r.or("convosync.stop", mode, StopMode::Prompt, "prompt"),
            start: r.or("convosync.start", mode, StartMode::Async, "async"),
            stop_interval: r.or(
                "convosync.stopInterval",
                parse_duration_minutes,
                DEFAULT_STOP_INTERVAL,
                interval,
            ),
            redact: r.or("convosync.redact", parse_bool, true, true),
            redact_patterns: r.multi("convosync.redactPattern"),
            redact_allow: r.multi("convosync.redactAllow"),
            team: r.or("convosync.team", mode, TeamMode::Show, "show"),
            context_limit: r.or(
                "convosync.contextLimit",
                // At least 500 characters.
                |v| v.parse().ok().filter(|n| *n >= 500),
                DEFAULT_CONTEXT_LIMIT,
                DEFAULT_CONTEXT_LIMIT,
            ),
            wip_limit: r.or("convosync.wipLimit", parse_size, DEFAULT_WIP_LIMIT, wip_limit),
            wip_push: r.parse(
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
    /// The trimmed value of `key` and where it came from: the variable named after it
    /// (`convosync.stopInterval` → `CONVOSYNC_STOP_INTERVAL`), else the key itself.
    fn get(&self, key: &str) -> Option<(String, String)> {
        let mut env = String::new();
        for c in key.chars() {
            if c.is_ascii_uppercase() || c == '.' {
                env.push('_');
            }
            env.extend((c != '.').then(|| c.to_ascii_uppercase()));
        }
        let (from, v) = match std::env::var(&env).ok().filter(|v| !v.trim().is_empty()) {
            Some(v) => (env, v),
            None => (key.to_string(), self.cfg?.get_string(key).ok()?),
        };
        Some((from, v.trim().to_string()))
    }

    /// The value parsed; `None` when it is not set, or when it is set but not valid: then one
    /// line naming the key, the value and `default` (what is used instead) is noted.
    fn parse<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        default: impl std::fmt::Display,
    ) -> Option<T> {
        let (from, v) = self.get(key)?;
        let out = parse(&v);
        if out.is_none() {
            self.invalid.push(format!(
                "invalid {from} value {:?}; using {default}",
                crate::untrusted::line(&v)
            ));
        }
        out
    }

    /// [`Reader::parse`], with `default` when not set or not valid (`shown`: how the line names it).
    fn or<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        default: T,
        shown: impl std::fmt::Display,
    ) -> T {
        self.parse(key, parse, shown).unwrap_or(default)
    }

    fn multi(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(Ok(entries)) = self.cfg.map(|c| c.multivar(key, None)) {
            let _ = entries.for_each(|e| out.extend(e.value().ok().map(str::to_string)));
        }
        out
    }
}

/// One of a mode's names (or aliases), any case.
fn mode<T: ValueEnum>(v: &str) -> Option<T> {
    T::from_str(v, true).ok()
}

/// `2`, `2s`, `1.5`, `500ms` → a duration; plain numbers are seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0)]
        .into_iter()
        .find_map(|(unit, scale)| Some((v.strip_suffix(unit)?, scale)))
        .unwrap_or((v, 1.0));
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
    // `b` may follow the unit (`5mb`) or stand alone (`100b`).
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (num, shift) = [('g', 30), ('m', 20), ('k', 10)]
        .into_iter()
        .find_map(|(unit, shift)| Some((v.strip_suffix(unit)?, shift)))
        .unwrap_or((v, 0));
    num.trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(1 << shift))
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
            assert_eq!(mode(&m.to_string()), Some(m));
        }
        assert_eq!(mode("No"), Some(StopMode::Off));
        assert_eq!(mode::<StopMode>("sometimes"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MB"), Some(5 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2 gb"), Some(2 << 30));
        assert_eq!(parse_size("64b"), Some(64));
        assert_eq!(parse_size("5bb"), None);
    }
}
