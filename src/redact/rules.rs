//! The rule table: one regex per kind of secret, most of them a provider's token format that
//! alone identifies a secret, the rest a value found by its context (a name before it, a
//! command line, a URL), with the code that decides which part of a match is the secret.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Captures, Match, Regex};

use super::names::{is_placeholder, looks_like_code, secret_name, secret_value, NAME_WORDS};

/// Which part of a match is the secret.
#[derive(Clone, Copy)]
enum Group {
    /// The whole match (a token whose format alone identifies it).
    Whole,
    /// One capture group (a value after a name or inside a URL).
    Index(usize),
    /// Decided by code: the span to redact, or `None` to keep the match.
    Check(Check),
}

/// One kind of secret.
pub(super) struct Rule {
    pub(super) kind: &'static str,
    /// Lowercase strings one of which any match contains: a text without them is not searched.
    keywords: Words,
    /// Compiled on first use: a text without the rule's keywords never pays for it.
    pub(super) pattern: String,
    re: std::sync::OnceLock<Regex>,
    group: Group,
    /// The format alone identifies a secret (a provider's prefix, a private key block): a match
    /// is almost never anything else. Rules that rely on a nearby name are not.
    pub(super) high: bool,
}

/// A token that ends where a token character would not continue it.
const END: &str = r"(?:\b|$)";

type Check = for<'h> fn(&Captures<'h>) -> Option<Match<'h>>;
type Words = &'static [&'static str];

fn rule(kind: &'static str, keywords: Words, pattern: String, group: Group, high: bool) -> Rule {
    Rule {
        kind,
        keywords,
        pattern,
        re: Default::default(),
        group,
        high,
    }
}

fn rules() -> Vec<Rule> {
    // `t`: a high-confidence token matched whole. `v`: a value in group 1, found by context.
    // `c`: a match whose secret `check` picks.
    let t = |kind, keywords, pattern| rule(kind, keywords, pattern, Group::Whole, true);
    let v = |kind, keywords, pattern: &str, high| rule(kind, keywords, pattern.into(), Group::Index(1), high);
    let c = |kind, keywords, pattern: &str, check| {
        rule(kind, keywords, pattern.into(), Group::Check(check), false)
    };
    vec![
        t(
            "private-key",
            &["private key"],
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)".into(),
        ),
        t(
            "age-secret-key",
            &["age-secret-key-1"], r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}".into()),
        // convosync's own key (`convosync key show`), bech32 like age's.
        t(
            "convosync-key",
            &["convosync-key-1"],
            r"(?i)CONVOSYNC-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}".into(),
        ),
        // Webhook URLs carry their secret in the path: the whole URL goes.
        t(
            "slack-webhook",
            &["hooks.slack.com"],
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}".into(),
        ),
        t(
            "discord-webhook",
            &["/api/webhooks/"],
            r"(?:https?://)?(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{5,30}/[A-Za-z0-9_-]{20,}".into(),
        ),
        t(
            "aws-access-key",
            &["akia", "asia", "abia", "acca", "a3t"], format!(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{{16}}{END}")),
        t(
            "gcp-api-key",
            &["aiza"], format!(r"\bAIza[0-9A-Za-z_-]{{35}}{END}")),
        t(
            "google-oauth",
            &["gocspx-", "ya29."], format!(r"\b(?:GOCSPX-[A-Za-z0-9_-]{{28}}|ya29\.[0-9A-Za-z_-]{{20,}}){END}")),
        t(
            "github-token",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            format!(r"\b(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{22,255}}){END}"),
        ),
        t(
            "gitlab-token",
            &["gl"], r"\bgl(?:pat|ptt|dt|rt|oas|cbt|soat|ft|imt|agent)-[A-Za-z0-9_.-]{20,}".into()),
        t(
            "slack-token",
            &["xox", "xapp-"], r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}".into()),
        t(
            "stripe-key",
            &["_live_", "_test_"], format!(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{{16,}}{END}")),
        t(
            "anthropic-key",
            &["sk-ant-"], r"\bsk-ant-[A-Za-z0-9_-]{20,}".into()),
        rule(
            "openai-key",
            &["sk-"], r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}".into(), Group::Check(random_token), true),
        t(
            "huggingface-token",
            &["hf_", "api_org_"], format!(r"\b(?:hf_|api_org_)[A-Za-z0-9]{{34,}}{END}")),
        t(
            "npm-token",
            &["npm_"], format!(r"\bnpm_[A-Za-z0-9]{{36}}{END}")),
        t(
            "pypi-token",
            &["pypi-ag"], r"\bpypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}".into()),
        // An auth token passed beside its account SID (`Client("AC…", "…")`, `AC…:…`): before
        // the SID itself is redacted, so the pair is still seen.
        v(
            "twilio-auth-token",
            &["ac"],
            r#"\bAC[0-9a-fA-F]{32}\b["']?[ \t]*[,:]?[ \t]*["']?([0-9a-fA-F]{32})\b"#,
            true,
        ),
        t(
            "twilio-key",
            &["sk", "ac"], format!(r"\b(?:SK|AC)[0-9a-fA-F]{{32}}{END}")),
        // Both parts: the id is half the credential.
        t(
            "sendgrid-key",
            &["sg."], r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}".into()),
        t(
            "digitalocean-token",
            &["_v1_"], format!(r"\bdo[por]_v1_[a-f0-9]{{64}}{END}")),
        t(
            "shopify-token",
            &["shp"], format!(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{{32}}{END}")),
        t(
            "atlassian-token",
            &["atatt3"], r"\bATATT3[A-Za-z0-9_=-]{150,}".into()),
        t(
            "databricks-token",
            &["dapi"], format!(r"\bdapi[a-f0-9]{{32}}(?:-\d)?{END}")),
        t(
            "heroku-key",
            &["hrku-"], r"\bHRKU-[A-Za-z0-9_-]{58,}".into()),
        t(
            "mailgun-key",
            &["key-"], format!(r"\b(?:pub)?key-[a-f0-9]{{32}}{END}")),
        t(
            "square-token",
            &["sq0", "eaaa"],
            format!(r"\b(?:sq0(?:atp|csp|idp)-[A-Za-z0-9_-]{{22,}}|EAAA[A-Za-z0-9_-]{{60}}{END})"),
        ),
        t(
            "telegram-bot-token",
            &[":aa"], r"\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}".into()),
        t(
            "linear-key",
            &["lin_"], format!(r"\blin_(?:api|oauth)_[A-Za-z0-9]{{40}}{END}")),
        t(
            "grafana-token",
            &["glsa_", "glc_"],
            format!(r"\b(?:glsa_[A-Za-z0-9]{{32}}_[A-Fa-f0-9]{{8}}{END}|glc_[A-Za-z0-9+/]{{32,}}={{0,3}})"),
        ),
        t(
            "postman-key",
            &["pmak-"], format!(r"\bPMAK-[a-f0-9]{{24}}-[a-f0-9]{{34}}{END}")),
        t(
            "doppler-token",
            &["dp."], r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}".into()),
        t(
            "pulumi-token",
            &["pul-"], format!(r"\bpul-[a-f0-9]{{40}}{END}")),
        t(
            "sentry-token",
            &["sntry"], r"\bsntry[us]_[A-Za-z0-9+/=_]{40,}".into()),
        // Service, batch and recovery tokens, short (`hvs.` and 24 characters) or long.
        t(
            "vault-token",
            &["hvs.", "hvb.", "hvr."], r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}".into()),
        t(
            "planetscale-token",
            &["pscale_"], r"\bpscale_(?:pw|tkn|oauth)_[A-Za-z0-9=._-]{32,64}".into()),
        t(
            "rubygems-key",
            &["rubygems_"], format!(r"\brubygems_[a-f0-9]{{48}}{END}")),
        t(
            "shippo-token",
            &["shippo_"], format!(r"\bshippo_(?:live|test)_[a-fA-F0-9]{{40}}{END}")),
        t(
            "alibaba-key",
            &["ltai"], format!(r"\bLTAI[A-Za-z0-9]{{20}}{END}")),
        t(
            "notion-token",
            &["ntn_"], format!(r"\bntn_[0-9]{{11}}[A-Za-z0-9]{{35}}{END}")),
        // Notion's older integration tokens: `secret_` and 43 random characters.
        rule(
            "notion-token",
            &["secret_"], format!(r"\bsecret_[A-Za-z0-9]{{43}}{END}"), Group::Check(random_token), true),
        t(
            "supabase-token",
            &["sbp_"], format!(r"\bsbp_[a-f0-9]{{40}}{END}")),
        t(
            "fly-token",
            &["fo1_"], r"\bfo1_[A-Za-z0-9_-]{43,}".into()),
        t(
            "groq-key",
            &["gsk_"], format!(r"\bgsk_[A-Za-z0-9]{{52}}{END}")),
        t(
            "replicate-token",
            &["r8_"], format!(r"\br8_[A-Za-z0-9]{{37}}{END}")),
        t(
            "xai-key",
            &["xai-"], format!(r"\bxai-[A-Za-z0-9]{{80}}{END}")),
        t(
            "dynatrace-token",
            &["dt0c01."], format!(r"\bdt0c01\.[A-Za-z0-9]{{24}}\.[A-Za-z0-9]{{64}}{END}")),
        t(
            "newrelic-key",
            &["nrak-"], format!(r"\bNRAK-[A-Z0-9]{{27}}{END}")),
        t(
            "terraform-token",
            &[".atlasv1."], r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}".into()),
        t(
            "brevo-key",
            &["xkeysib-"], format!(r"\bxkeysib-[a-f0-9]{{64}}-[A-Za-z0-9]{{16}}{END}")),
        t(
            "mailchimp-key",
            &["-us"], format!(r"\b[0-9a-f]{{32}}-us[0-9]{{1,2}}{END}")),
        t(
            "onepassword-token",
            &["ops_eyj"], r"\bops_eyJ[A-Za-z0-9+/]{100,}={0,3}".into()),
        t(
            "jwt",
            &["eyj"],
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}".into(),
        ),
        v(
            "aws-secret-key",
            &["aws"],
            r#"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
            false,
        ),
        v(
            "gcp-service-account",
            &["private_key_id"], r#"["']private_key_id["']\s*:\s*["']([0-9a-f]{40})["']"#, true),
        v(
            "azure-storage-key",
            &["accountkey="], r"(?i)AccountKey=([A-Za-z0-9+/]{40,}={0,2})", true),
        v(
            "azure-sas",
            &["sig="], r"(?i)[?&]sig=([A-Za-z0-9%+/=]{30,})", false),
        // Provider names whose keys have no prefix of their own: a value right after the name.
        v(
            "provider-key",
            &["heroku", "twilio", "atlassian", "jira", "confluence", "mailgun", "datadog", "cloudflare", "fastly", "netlify", "sumo", "okta", "discord", "telegram"],
            r#"(?i)\b(?:heroku|twilio|atlassian|jira|confluence|mailgun|datadog|cloudflare|fastly|netlify|sumo(?:logic)?|okta|discord|telegram)[\w .-]{0,30}?["']?\s*(?:=|:|:=|=>|\bis\b)\s*["']?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9_=-]{24,80})"#,
            false,
        ),
        v(
            "basic-auth",
            &["basic"], r"(?i)\bBasic\s+([A-Za-z0-9+/]{12,}={0,2})", false),
        v(
            "bearer",
            &["bearer"], r"(?i)\bBearer\s+([A-Za-z0-9._~+/-]{20,}=*)", false),
        v(
            "url-password",
            &["://"], r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\[\]]*:([^\s@/\[\]]+)@", false),
        // Command lines: `mysql -pSECRET`, `sshpass -p SECRET`, `curl -u user:SECRET`,
        // `--password SECRET` / `--password=SECRET` (not psql's `--password`, which takes none).
        c(
            "cli-password",
            &["mysql", "mariadb"],
            r#"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mariadb|mariadb-dump)\b[^\n]*?\s-p(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"]+))"#,
            any_group,
        ),
        c(
            "cli-password",
            &["sshpass"],
            r#"\bsshpass\s+-p\s*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"]+))"#,
            any_group,
        ),
        c(
            "cli-password",
            &["curl"],
            r#"\bcurl\b[^\n]*?\s(?:-u|--user)\s*['"]?[^\s:'"]*:(?:([^\s'"]+)|'([^'\n]+)|"([^"\n]+))"#,
            any_group,
        ),
        c(
            "cli-password",
            &["--"],
            r#"(?m)^([^\n]*?)\s--(?:password|passwd|pass|secret|token|api-key|apikey|client-secret|auth-token)(?:=|\s+)(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"-][^\s'"]*))"#,
            cli_flag,
        ),
        c(
            "assignment",
            &[],
            r#"([A-Za-z_][A-Za-z0-9_.-]*)(["']?)[ \t]*(?:=|:=|=>|:)[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|`([^`\n]*)`|["'`]?([^\s"'`,;]+))"#,
            assignment,
        ),
        c(
            "prose",
            &["pass", "pwd", "secret", "token", "key"],
            r#"(?i)\b(password|passphrase|passcode|passwd|pwd|secret|token|api[ _-]?key|access key|secret key)\s+(?:is|was|=|:|is now|was set to|set to)\s+(?:"([^"\n]+)"|'([^'\n]+)'|`([^`\n]+)`|([^\s"'`]*[^\s"'`.,!?;:)]))"#,
            prose,
        ),
    ]
}

pub(super) static RULES: LazyLock<Vec<Rule>> = LazyLock::new(rules);

/// Every rule keyword and name word.
fn all_keywords() -> impl Iterator<Item = &'static str> {
    RULES
        .iter()
        .flat_map(|r| r.keywords.iter().copied())
        .chain(NAME_WORDS.iter().copied())
}

/// Every rule keyword (and name word) in one search, so a text is scanned once to learn which
/// rules can match at all.
static KEYWORDS: LazyLock<Regex> = LazyLock::new(|| {
    let mut words: Vec<&str> = all_keywords().collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.dedup();
    let alternation: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
    Regex::new(&alternation.join("|")).expect("keyword regex")
});

/// The keywords present in `text` (lowercased). Overlapping keywords (`sk` in `sk-ant-`): a
/// match is also tried as each shorter keyword it contains.
pub(super) fn keywords_in(text: &str) -> HashSet<&'static str> {
    let lower = text.to_ascii_lowercase();
    KEYWORDS
        .find_iter(&lower)
        .flat_map(|m| all_keywords().filter(move |w| m.as_str().contains(w)))
        .collect()
}

/// A whole match that looks generated (a digit and an upper-case letter): `sk-…` keys, not
/// `sk-learn-compatible-estimators`.
fn random_token<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    caps.get(0).filter(|m| {
        m.as_str().chars().any(|c| c.is_ascii_digit()) && m.as_str().chars().any(|c| c.is_ascii_uppercase())
    })
}

/// The first capture group that took part in the match, from 1 on.
fn any_group<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    caps.iter().skip(1).flatten().next()
}

/// `--password X`: the value, unless the line runs psql (whose `--password` only asks for one).
fn cli_flag<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    let before = caps.get(1).map_or("", |m| m.as_str());
    const PSQL: &str = "psql pg_dump pg_restore pg_dumpall createdb dropdb pgbench";
    let psql = |w: &str| PSQL.split(' ').any(|p| w.rsplit('/').next() == Some(p));
    if before.split_whitespace().any(psql) {
        return None;
    }
    caps.iter().skip(2).flatten().next()
}

/// `NAME = value` (also `NAME: value`, `"name": "value"`, `export NAME='value'`) whose name ends
/// in a secret word and whose value looks like one.
fn assignment<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    let name = caps.get(1)?.as_str();
    let is_password = secret_name(name)?;
    let (value, quoted) = quoted_or_bare(caps, 3)?;
    secret_value(value.as_str(), is_password, quoted).then_some(value)
}

/// The value in the first of the three quoted groups from `first` on that took part (quoted),
/// else in the bare group after them.
fn quoted_or_bare<'h>(caps: &Captures<'h>, first: usize) -> Option<(Match<'h>, bool)> {
    match (first..first + 3).find_map(|i| caps.get(i)) {
        Some(q) => Some((q, true)),
        None => Some((caps.get(first + 3)?, false)),
    }
}

/// "the password is X", "my token: X".
fn prose<'h>(caps: &Captures<'h>) -> Option<Match<'h>> {
    let word = caps.get(1)?.as_str().to_ascii_lowercase();
    let is_password = word.starts_with("pass") || word == "pwd";
    let (value, quoted) = quoted_or_bare(caps, 2)?;
    let v = value.as_str();
    // "the token is expired", "the password is stored in Vault": words, not values.
    let word_like = v
        .chars()
        .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '\'')
        && !v.chars().skip(1).any(|c| c.is_ascii_uppercase());
    (quoted || !word_like && v.chars().count() >= 6)
        .then_some(value)
        .filter(|_| secret_value(v, is_password, quoted))
}

impl Rule {
    pub(super) fn may_match(&self, present: &HashSet<&'static str>) -> bool {
        self.keywords.is_empty() || self.keywords.iter().any(|k| present.contains(k))
    }

    pub(super) fn re(&self) -> &Regex {
        self.re
            .get_or_init(|| Regex::new(&self.pattern).unwrap_or_else(|e| panic!("rule {}: {e}", self.kind)))
    }

    /// The secret in one match, or `None` when the match is not one (a placeholder, a word).
    pub(super) fn secret<'h>(&self, caps: &Captures<'h>) -> Option<Match<'h>> {
        let found = match self.group {
            Group::Whole => caps.get(0),
            Group::Index(i) => caps
                .get(i)
                .filter(|m| !is_placeholder(m.as_str()) && !looks_like_code(m.as_str())),
            Group::Check(check) => check(caps).filter(|m| !is_placeholder(m.as_str())),
        };
        // Already redacted (in part): search on after the name.
        found.filter(|m| !m.as_str().contains("[REDACTED:"))
    }

    /// Where to search again after a match that held no secret: right after the name that
    /// started it, so a secret later in the same match is still found (`x: password=…`).
    pub(super) fn resume(&self, caps: &Captures<'_>) -> usize {
        let whole = caps.get(0).expect("match");
        let name = caps.get(1).filter(|_| matches!(self.group, Group::Check(_)));
        let inside = name
            .map(|g| g.end())
            .filter(|&e| e > whole.start() && e < whole.end());
        inside.unwrap_or(whole.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        for rule in RULES.iter() {
            rule.re();
        }
    }
}
