//! The secrets corpus shared by the redaction unit tests and the end-to-end test: one realistic
//! sample per kind of secret, and look-alikes that must survive untouched.
//!
//! Samples are generated at run time from a fixed seed (random-looking, so entropy rules are
//! exercised) and assembled from parts, so the repository itself holds no string that a secret
//! scanner would take for a live credential.

/// A deterministic generator (xorshift64*): the same samples on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` characters drawn from `set`.
    pub fn from(&mut self, set: &str, n: usize) -> String {
        let set: Vec<char> = set.chars().collect();
        (0..n)
            .map(|_| set[(self.next() % set.len() as u64) as usize])
            .collect()
    }

    pub fn alnum(&mut self, n: usize) -> String {
        self.from(ALNUM, n)
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.from("0123456789abcdef", n)
    }

    pub fn upper(&mut self, n: usize) -> String {
        self.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n)
    }

    pub fn digits(&mut self, n: usize) -> String {
        let first = self.from("123456789", 1);
        first + &self.from("0123456789", n - 1)
    }

    pub fn url_safe(&mut self, n: usize) -> String {
        self.from(&format!("{ALNUM}_-"), n)
    }

    pub fn b64(&mut self, n: usize) -> String {
        self.from(&format!("{ALNUM}+/"), n)
    }

    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One secret of the corpus.
pub struct Secret {
    pub kind: &'static str,
    /// The text as it would appear in a note (a line of code, a command, a URL …).
    pub text: String,
    /// Parts of `text` that must not survive redaction.
    pub raw: Vec<String>,
}

fn s(kind: &'static str, text: String, raw: &[&str]) -> Secret {
    let raw: Vec<String> = raw.iter().map(|r| r.to_string()).collect();
    for r in &raw {
        assert!(text.contains(r.as_str()), "{kind}: sample lacks {r}");
    }
    Secret { kind, text, raw }
}

/// The secret kinds, one sample each.
pub fn secrets() -> Vec<Secret> {
    let mut g = Rng::new(0x5eed_c0de_2026);
    let mut out = Vec::new();
    macro_rules! tok {
        ($kind:expr, $value:expr) => {{
            let v: String = $value;
            out.push(s($kind, v.clone(), &[&v]));
        }};
    }
    tok!("aws-access-key", format!("{}{}", "AK", "IA") + &g.upper(16));
    let v = g.b64(40);
    out.push(s("aws-secret-key", format!("aws_secret_access_key = {v}"), &[&v]));
    tok!("gcp-api-key", format!("{}{}", "AI", "za") + &g.url_safe(35));
    tok!("github-token", format!("{}_", "ghp") + &g.alnum(36));
    tok!(
        "github-fine-grained",
        format!("{}_pat_", "github") + &g.alnum(22) + "_" + &g.alnum(59)
    );
    tok!("gitlab-token", format!("{}-", "glpat") + &g.url_safe(20));
    tok!(
        "slack-token",
        format!("{}b-{}-{}-", "xox", g.digits(11), g.digits(13)) + &g.alnum(24)
    );
    let path = format!("T{}/B{}/{}", g.upper(8), g.upper(10), g.alnum(24));
    out.push(s(
        "slack-webhook",
        format!("https://hooks.{}.com/services/{path}", "slack"),
        &[&path],
    ));
    let hook = format!("{}/{}", g.digits(18), g.url_safe(68));
    out.push(s(
        "discord-webhook",
        format!("https://{}.com/api/webhooks/{hook}", "discord"),
        &[&hook],
    ));
    tok!("stripe-key", format!("{}_live_", "sk") + &g.alnum(24));
    tok!("anthropic-key", format!("{}-ant-api03-", "sk") + &g.url_safe(93));
    tok!("openai-key", format!("{}-proj-", "sk") + &g.url_safe(48));
    let jwt = format!(
        "{}J{}.{}J{}.{}",
        "ey",
        g.url_safe(30),
        "ey",
        g.url_safe(40),
        g.url_safe(43)
    );
    tok!("jwt", jwt);
    tok!(
        "huggingface-token",
        format!("{}_", "hf") + &g.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
    );
    tok!("npm-token", format!("{}_", "npm") + &g.alnum(36));
    tok!(
        "pypi-token",
        format!("{}-AgEIcHlwaS5vcmc", "pypi") + &g.url_safe(70)
    );
    tok!("twilio-api-key", format!("{}K", "S") + &g.hex(32));
    let sid = format!("{}C", "A") + &g.hex(32);
    let auth = g.hex(32);
    out.push(s(
        "twilio-account",
        format!("TWILIO_ACCOUNT_SID={sid} TWILIO_AUTH_TOKEN={auth}"),
        &[&sid, &auth],
    ));
    let (id, key) = (g.url_safe(22), g.url_safe(43));
    out.push(s("sendgrid-key", format!("{}.{id}.{key}", "SG"), &[&id, &key]));
    tok!("digitalocean-pat", format!("{}_v1_", "dop") + &g.hex(64));
    tok!("digitalocean-oauth", format!("{}_v1_", "doo") + &g.hex(64));
    tok!("digitalocean-refresh", format!("{}_v1_", "dor") + &g.hex(64));
    tok!("shopify-access-token", format!("{}_", "shpat") + &g.hex(32));
    tok!("shopify-shared-secret", format!("{}_", "shpss") + &g.hex(32));
    tok!("atlassian-token", format!("{}3", "ATATT") + &g.url_safe(186));
    let v = g.alnum(24);
    out.push(s("jira-token", format!("JIRA_API_TOKEN={v}"), &[&v]));
    tok!("databricks-token", format!("{}i", "dap") + &g.hex(32));
    tok!("heroku-key", format!("{}-AA", "HRKU") + &g.url_safe(58));
    let v = g.uuid();
    out.push(s("heroku-legacy-key", format!("heroku api key: {v}"), &[&v]));
    tok!("mailgun-key", format!("{}-", "key") + &g.hex(32));
    tok!("square-access-token", format!("{}atp-", "sq0") + &g.url_safe(22));
    tok!("square-secret", format!("{}csp-", "sq0") + &g.url_safe(43));
    tok!("square-oauth", format!("{}AA", "EA") + &g.url_safe(60));
    tok!(
        "telegram-bot-token",
        format!("{}:{}", g.digits(10), "AA") + &g.url_safe(33)
    );
    let body = g.b64(64);
    out.push(s(
        "private-key",
        format!(
            "-----BEGIN {}PRIVATE KEY-----\n{body}\n{}\n-----END OPENSSH PRIVATE KEY-----",
            "OPENSSH ",
            g.b64(64)
        ),
        &[&body],
    ));
    let v = g.alnum(14);
    out.push(s(
        "url-password",
        format!("postgres://app:{v}@db.internal:5432/app"),
        &[&v],
    ));
    let v = g.alnum(40);
    out.push(s(
        "bearer",
        format!("curl -H 'Authorization: Bearer {v}' https://api.example.com"),
        &[&v],
    ));
    let v = g.b64(24) + "==";
    out.push(s("basic-auth", format!("Authorization: Basic {v}"), &[&v]));
    let v = g.alnum(12);
    out.push(s("env-password", format!("DB_PASSWORD={v}"), &[&v]));
    let v = g.alnum(32);
    out.push(s("export-key", format!("export STRIPE_API_KEY=\"{v}\""), &[&v]));
    let v = g.alnum(28);
    out.push(s("yaml-secret", format!("  client_secret: {v}"), &[&v]));
    out.push(s(
        "json-password",
        r#"{"user": "app", "password": "correct horse battery 9"}"#.to_string(),
        &["correct horse battery 9"],
    ));
    let v = g.alnum(30);
    out.push(s("camel-token", format!("const accessToken = '{v}';"), &[&v]));
    let v = format!("{}!{}", g.alnum(6), g.digits(3));
    out.push(s(
        "mysql-p",
        format!("mysql -u root -p{v} -h db.internal app"),
        &[&v],
    ));
    let v = g.alnum(11);
    out.push(s(
        "mysql-password-flag",
        format!("mysqldump --user=root --password={v} app > dump.sql"),
        &[&v],
    ));
    let v = g.alnum(10);
    out.push(s(
        "pgpassword",
        format!("PGPASSWORD={v} psql -h db.internal -U app"),
        &[&v],
    ));
    let v = g.alnum(9);
    out.push(s(
        "curl-user",
        format!("curl -u deploy:{v} https://ci.example.com/api/json"),
        &[&v],
    ));
    let v = g.alnum(10);
    out.push(s(
        "sshpass",
        format!("sshpass -p '{v}' ssh deploy@10.0.0.5"),
        &[&v],
    ));
    let v = format!("{}#{}", g.alnum(5), g.alnum(5));
    out.push(s(
        "password-flag",
        format!("./deploy --password {v} --env prod"),
        &[&v],
    ));
    let (a, b) = (g.b64(16) + "==", g.b64(20));
    out.push(s(
        "kubernetes-secret",
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-creds\ntype: Opaque\ndata:\n  username: {a}\n  password: {b}\n"
        ),
        &[&a, &b],
    ));
    let v = format!("{}{}", g.alnum(7), g.digits(2));
    out.push(s("prose-password", format!("The password is {v}."), &[&v]));
    let v = format!("{}-{}-{}", g.alnum(5), g.alnum(5), g.digits(3));
    out.push(s(
        "prose-passphrase",
        format!("the passphrase is {v}, keep it safe"),
        &[&v],
    ));
    let v = g.alnum(26);
    out.push(s("prose-token", format!("my token is {v}"), &[&v]));
    tok!(
        "age-secret-key",
        format!("{}-SECRET-KEY-1", "AGE") + &g.from("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
    );
    tok!(
        "convosync-key",
        format!("{}-KEY-1", "CONVOSYNC") + &g.from("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
    );
    tok!("vault-token", format!("{}.", "hvs") + &g.url_safe(95));
    let v = g.hex(40);
    out.push(s(
        "gcp-service-account",
        format!("\"private_key_id\": \"{v}\""),
        &[&v],
    ));
    let v = g.b64(86) + "==";
    out.push(s(
        "azure-storage-key",
        format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={v}"),
        &[&v],
    ));
    tok!("linear-key", format!("{}_api_", "lin") + &g.alnum(40));
    tok!(
        "grafana-token",
        format!("{}_", "glsa") + &g.alnum(32) + "_" + &g.hex(8)
    );
    tok!(
        "postman-key",
        format!("{}-", "PMAK") + &g.hex(24) + "-" + &g.hex(34)
    );
    tok!("doppler-token", format!("{}.pt.", "dp") + &g.alnum(43));
    tok!("google-oauth-secret", format!("{}-", "GOCSPX") + &g.url_safe(28));
    tok!("pulumi-token", format!("{}-", "pul") + &g.hex(40));
    tok!("rubygems-key", format!("{}_", "rubygems") + &g.hex(48));
    tok!("newrelic-key", format!("{}-", "NRAK") + &g.upper(27));
    tok!("sentry-token", format!("{}u_", "sntry") + &g.hex(64));
    tok!("planetscale-token", format!("{}_pw_", "pscale") + &g.url_safe(43));
    tok!("shippo-token", format!("{}_live_", "shippo") + &g.hex(40));
    tok!("alibaba-key", format!("{}I", "LTA") + &g.alnum(20));
    tok!(
        "notion-token",
        format!("{}_", "ntn") + &g.digits(11) + &g.alnum(35)
    );
    tok!(
        "dynatrace-token",
        format!("{}01.", "dt0c") + &g.upper(24) + "." + &g.upper(64)
    );
    tok!(
        "terraform-token",
        g.alnum(14) + &format!(".{}v1.", "atlas") + &g.url_safe(67)
    );
    tok!(
        "brevo-key",
        format!("{}-", "xkeysib") + &g.hex(64) + "-" + &g.alnum(16)
    );
    tok!("mailchimp-key", g.hex(32) + "-us21");
    tok!("onepassword-token", format!("{}_eyJ", "ops") + &g.b64(260));
    tok!("notion-secret", format!("{}_", "secret") + &g.alnum(43));
    let v = g.alnum(20);
    out.push(s(
        "url-password-empty-user",
        format!("{}://:{v}@cache.internal:6379/0", "redis"),
        &[&v],
    ));
    tok!("supabase-token", format!("{}_", "sbp") + &g.hex(40));
    tok!("fly-token", format!("{}_", "fo1") + &g.url_safe(43));
    tok!("groq-key", format!("{}_", "gsk") + &g.alnum(52));
    tok!("replicate-token", format!("{}_", "r8") + &g.alnum(37));
    tok!("xai-key", format!("{}-", "xai") + &g.alnum(80));
    tok!("vault-token-short", format!("{}.", "hvs") + &g.url_safe(24));
    tok!("vault-token-long", format!("{}.CAES", "hvs") + &g.url_safe(91));
    let v = g.url_safe(32);
    out.push(s(
        "cookie",
        format!("curl -H 'Cookie: theme=dark; sessionid={v}' https://app.example.com/api"),
        &[&v],
    ));
    let (sid, token) = (g.hex(32), g.hex(32));
    out.push(s(
        "twilio-auth-token",
        format!("client = Client(\"{}{sid}\", \"{token}\")", "AC"),
        &[&sid, &token],
    ));
    out
}

/// Text that looks like a secret to a careless rule and must survive untouched.
pub fn look_alikes() -> Vec<String> {
    let mut g = Rng::new(0x100c_a1ec);
    let mut out: Vec<String> = [
        "tokenizer = AutoTokenizer.from_pretrained(\"bert-base-uncased-v2-large\")",
        "token_count = 4096",
        "max_tokens: 1024",
        "tokens_used=1532",
        "ALTER TABLE orders ADD CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users(id);",
        "id SERIAL PRIMARY KEY, the primary key of the table",
        "password_policy: strict",
        "password_policy = \"min-length-12\"",
        "KEY_LENGTH=32",
        "API_KEY_LENGTH: 64",
        "api_key_header = \"X-Api-Key\"",
        "password=${DB_PASSWORD}",
        "token: <your-token>",
        "api_key: \"<YOUR_API_KEY>\"",
        "password: changeme",
        "API_KEY=xxx",
        "SECRET_KEY=xxxxxxxxxxxxxxxx",
        "password: ****",
        "password: \"\"",
        "token = os.environ[\"GITHUB_TOKEN\"]",
        "api_key: process.env.API_KEY",
        "The password reset flow stores a token in Redis.",
        "the password is stored in Vault",
        "the token is expired, so refresh it",
        "The API key is documented in the wiki.",
        "Bearer tokens expire after 7 days.",
        "password: string",
        "token: String,",
        "fn token_for(user: &User) -> Token { todo!() }",
        "secret_key_base = Rails.application.credentials.secret_key_base",
        "sort_key = created_at",
        "monkey=banana42",
        "bypass_cache=true",
        "keyboard_layout = us-intl",
        "docker run -p 8080:80 nginx",
        "mkdir -p src/bin && ssh -p 2222 deploy@host",
        "psql --password -h db.internal -U app",
        "curl -u \"$CI_USER:$CI_TOKEN\" https://ci.example.com",
        "kubectl get secret db-creds -o yaml",
        "kind: ConfigMap\ndata:\n  LOG_LEVEL: debug\n  FEATURE_FLAGS: alpha,beta",
        "hf_hub_download(repo_id=\"gpt2\", filename=\"config.json\")",
        "npm_config_cache=/tmp/npm-cache",
        "SKIP_TESTS=1 ACCEPT_EULA=Y",
        "a key-value store with key-based sharding",
        "The heroku app is at https://shop.herokuapp.com",
        "version 1.2.3-beta.4, node v20.20.2",
        "Listening on 127.0.0.1:8080 at 12:30:45",
        "passwordHash = bcrypt(password, 12)",
        "See https://user@github.com/x and https://example.com/a:b for details.",
        "src/auth/token_store.rs and ~/.config/app/secret_rotation.md",
        "ssl_key: /etc/ssl/private/server.key",
        "[REDACTED:github-token] was removed",
        "- Using JWT tokens with 7-day expiry (balanced security vs UX)",
        "export PATH=$HOME/.cargo/bin:$PATH",
        "pip install sk-learn-compatible-estimators-extra",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push(format!("Fixed in commit {} (see {}).", g.hex(40), g.hex(7)));
    out.push(format!("Request id {} failed.", g.uuid()));
    out.push(format!("Image sha256:{} pulled.", g.hex(64)));
    out.push(format!("git checkout {} -- src/auth/token.rs", g.hex(40)));
    out.push(format!("session_token_ttl = {}", g.digits(4)));
    out.push(format!("cache_key: v2-deps-{}", g.hex(64)));
    out.push("Cookie: theme=dark; lang=en".to_string());
    out
}
