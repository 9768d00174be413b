//! Configuration: defaults, then `tessera.toml`, then `TESSERA_*` environment
//! variables, then command-line flags (each layer overrides the one before).
//! Every value is validated at start and a bad one is reported by name.
//!
//! Each setting is declared once, in the `settings!` block below: its type, its
//! environment variable, its default, how its text is parsed and checked, the
//! message for a bad value, and its doc (which is also its line in the settings
//! table of `docs/operations.md`, rendered by [`settings_table`] and kept equal by
//! a test). Rules between settings live in [`check_relations`].
//!
//! Hand-written rather than a layering crate: the layers are string maps, and a bad
//! value must be reported by where it came from (`TESSERA_X`, `--flag`, a key in a
//! file), which a generic deserializer's errors do not say.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Why the configuration was refused; the message names the setting's source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value did not parse or broke a rule.
    #[error("{setting}: {problem}")]
    Invalid {
        /// Where the value came from: an environment variable, a flag or a file key.
        setting: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An explicitly named configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or names an unknown setting.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// What a role change does to the user's live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionChangePolicy {
    /// Role changes revoke the user's refresh families.
    Revoke,
    /// Families stay alive; the next refresh carries the new roles.
    Reissue,
}

impl PermissionChangePolicy {
    /// Reads the setting's spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoke" => Some(Self::Revoke),
            "reissue" => Some(Self::Reissue),
            _ => None,
        }
    }

    /// The setting's spelling, as [`Self::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Reissue => "reissue",
        }
    }
}

/// The JWS algorithm of newly generated signing keys (existing keys keep theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// ECDSA on P-256 with SHA-256: the default.
    ES256,
    /// Ed25519: the smallest keys and signatures.
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048-bit keys), for verifiers that know no other.
    RS256,
}

impl SigningAlg {
    /// Reads an `alg` name, case-insensitively (`Ed25519` for `EdDSA` too).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Some(Self::ES256),
            "EDDSA" | "ED25519" => Some(Self::EdDSA),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    /// The JWS `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

/// One setting as declared, for looking up its environment variable and for the
/// docs table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its key in `tessera.toml`, which is also its [`Config`] field.
    pub key: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its default as written, where `{other}` stands for another setting's value;
    /// `None` when it stays unset unless given.
    pub default: Option<&'static str>,
    /// Its doc comment, one line per line.
    pub doc: &'static str,
}

/// Declares every setting once:
///
/// ```text
/// /// Doc: the field's rustdoc and the setting's line in docs/operations.md.
/// key: Type {
///     env: "TESSERA_KEY",
///     default: "30s",            // or `unset` for an `Option` that stays None
///     parse: duration(),         // a `Parse`: text to value, and the message if not
///     check: |v| !v.is_zero() => "must be at least 1s",   // optional
/// }
/// ```
///
/// `key` is the [`Config`] field and the `tessera.toml` key. A default may name an
/// earlier setting's value, as in `"http://{bind}"`. Settings are read, parsed and
/// checked in the order declared; then [`check_relations`] runs.
macro_rules! settings {
    (@shown unset) => { None };
    (@shown $default:literal) => { Some($default) };
    (@value $p:ident, $key:ident, unset, $parse:expr) => {
        $p.optional(stringify!($key), &$parse)?
    };
    (@value $p:ident, $key:ident, $default:literal, $parse:expr) => {
        $p.required(stringify!($key), format!($default), &$parse)?
    };
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty {
            env: $env:literal,
            default: $default:tt,
            parse: $parse:expr
            $(, check: $check:expr => $problem:literal)?
            $(,)?
        }
    )*) => {
        /// The validated configuration, built once at start.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )*
        }

        /// Every setting, in the order declared.
        pub const SETTINGS: &[Setting] = &[ $(
            Setting {
                key: stringify!($key),
                env: $env,
                default: settings!(@shown $default),
                doc: concat!($($doc, "\n"),+),
            },
        )* ];

        impl Layers {
            /// Parses and checks every setting from the layers, then the rules between them.
            pub fn build(&self) -> Result<Config, ConfigError> {
                let p = Parser { layers: self };
                $(
                    let $key: $ty = settings!(@value p, $key, $default, $parse);
                    $(
                        if !holds(&$key, $check) {
                            return Err(p.invalid(stringify!($key), $problem));
                        }
                    )?
                )*
                let cfg = Config { $($key,)* };
                check_relations(&cfg).map_err(|(key, problem)| p.invalid(key, problem))?;
                Ok(cfg)
            }
        }
    };
}

settings! {
    /// listen address
    bind: SocketAddr {
        env: "TESSERA_BIND",
        default: "127.0.0.1:8080",
        parse: socket_addr("127.0.0.1:8080"),
    }
    /// `sqlite:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (see [Running several
    /// instances](#running-several-instances))
    database_url: String {
        env: "DATABASE_URL",
        default: "sqlite://data/tessera.db",
        parse: text(),
        check: |v| ["sqlite:", "postgres://", "postgresql://"].iter().any(|s| v.starts_with(s))
            => "must start with sqlite: or postgres:// (postgresql://)",
    }
    /// `iss` of every token; no trailing slash
    issuer: String {
        env: "TESSERA_ISSUER",
        default: "http://{bind}",
        parse: text(),
        check: |v| (v.starts_with("https://") || v.starts_with("http://"))
            && !v.ends_with('/')
            && !v.contains(['?', '#'])
            => "must be an http(s) URL without a trailing slash, query or fragment",
    }
    /// where the KEK file lives
    keys_dir: PathBuf {
        env: "TESSERA_KEYS_DIR",
        default: "keys",
        parse: path(),
    }
    /// the KEK itself, base64 of 32 bytes; when unset, the file `kek` in `keys_dir`
    kek: Option<String> {
        env: "TESSERA_KEK",
        default: unset,
        parse: text(),
    }
    /// `ES256`, `EdDSA`, `RS256` (for new keys)
    signing_alg: SigningAlg {
        env: "TESSERA_SIGNING_ALG",
        default: "ES256",
        parse: keyword("one of ES256, EdDSA, RS256", SigningAlg::parse),
    }
    /// 1 s – 24 h
    access_token_ttl: Duration {
        env: "TESSERA_ACCESS_TOKEN_TTL",
        default: "300",
        parse: duration(),
        check: |v| (1..=86_400).contains(&v.as_secs())
            => "must be between 1 second and 24 hours",
    }
    /// a refresh token unused this long expires
    refresh_idle_ttl: Duration {
        env: "TESSERA_REFRESH_IDLE_TTL",
        default: "14d",
        parse: duration(),
    }
    /// ≥ idle
    refresh_max_ttl: Duration {
        env: "TESSERA_REFRESH_MAX_TTL",
        default: "30d",
        parse: duration(),
    }
    /// 0 = strict; ≤ 300; a client may set its own (see [The grace
    /// window](protocol.md#the-grace-window))
    refresh_reuse_grace: Duration {
        env: "TESSERA_REFRESH_REUSE_GRACE",
        default: "10",
        parse: duration(),
        check: |v| v.as_secs() <= 300 => "must be at most 300 seconds (0 = strict)",
    }
    /// or `reissue`
    permission_change_policy: PermissionChangePolicy {
        env: "TESSERA_PERMISSION_CHANGE_POLICY",
        default: "revoke",
        parse: keyword("`revoke` or `reissue`", PermissionChangePolicy::parse),
    }
    /// the role the admin API requires
    admin_role: String {
        env: "TESSERA_ADMIN_ROLE",
        default: "admin",
        parse: text(),
        check: |v| !v.is_empty() => "must not be empty",
    }
    /// the `aud` the admin API requires (RFC 8707)
    admin_audience: String {
        env: "TESSERA_ADMIN_AUDIENCE",
        default: "{issuer}/admin",
        parse: text(),
        check: |v| !v.is_empty() && !v.chars().any(char::is_control)
            => "must be a non-empty URI (default {issuer}/admin)",
    }
    /// JWKS cache lifetime; a next key is published at least this long before it signs
    jwks_max_age: Duration {
        env: "TESSERA_JWKS_MAX_AGE",
        default: "600",
        parse: duration(),
    }
    /// scheduled rotation; > `jwks_max_age`
    key_rotation_interval: Duration {
        env: "TESSERA_KEY_ROTATION_INTERVAL",
        default: "30d",
        parse: duration(),
    }
    /// ≥ access-token TTL
    event_retention: Duration {
        env: "TESSERA_EVENT_RETENTION",
        default: "24h",
        parse: duration(),
    }
    /// events each instance keeps in memory for its subscribers; a subscriber further
    /// behind reads the database
    event_tail: usize {
        env: "TESSERA_EVENT_TAIL",
        default: "4096",
        parse: between(1, 1_000_000),
    }
    /// how often an open stream re-reads its caller from the database (revocations,
    /// disables and key revocations end it at once anyway)
    stream_recheck: Duration {
        env: "TESSERA_STREAM_RECHECK",
        default: "30",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// how long an event stream may stay quiet before a heartbeat comment goes out
    /// (keeps proxies from closing it; tessera-verify takes 35 s of silence for a
    /// dead stream)
    stream_heartbeat: Duration {
        env: "TESSERA_STREAM_HEARTBEAT",
        default: "10",
        parse: duration(),
        check: |v| !v.is_zero() && *v <= Duration::from_secs(30) => "must be between 1s and 30s",
    }
    /// argon2id memory (OWASP minimum); tests use 64
    argon2_memory_kib: u32 {
        env: "TESSERA_ARGON2_MEMORY_KIB",
        default: "19456",
        parse: at_least(8).unit("KiB"),
    }
    /// argon2id passes over the memory
    argon2_iterations: u32 {
        env: "TESSERA_ARGON2_ITERATIONS",
        default: "2",
        parse: at_least(1),
    }
    /// sign-ins that may wait for a password worker (one per core); beyond, 503
    /// `temporarily_unavailable` with `Retry-After` at once
    argon2_queue: usize {
        env: "TESSERA_ARGON2_QUEUE",
        default: "32",
        parse: between(1, 100_000),
    }
    /// per request; 503 beyond; ≥ 1 s
    request_timeout: Duration {
        env: "TESSERA_REQUEST_TIMEOUT",
        default: "30",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// pool size: SQLite readers (writes use one connection); PostgreSQL connections
    /// per instance (plus one for `LISTEN`)
    db_max_connections: u32 {
        env: "TESSERA_DB_MAX_CONNECTIONS",
        default: "8",
        parse: between(1, 1000),
    }
    /// how long a request waits for a database connection before it answers 503; also
    /// the connect timeout at start
    db_acquire_timeout: Duration {
        env: "TESSERA_DB_ACQUIRE_TIMEOUT",
        default: "5",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// `full`: a commit survives power loss; `normal`: survives a process crash
    /// (kill -9), not a power cut
    sqlite_synchronous: String {
        env: "TESSERA_SQLITE_SYNCHRONOUS",
        default: "full",
        parse: lowercase(),
        check: |v| matches!(v.as_str(), "full" | "normal" | "extra")
            => "must be `full`, `extra` or `normal`",
    }
    /// failed sign-ins per username per window before 429
    login_max_failures: u32 {
        env: "TESSERA_LOGIN_MAX_FAILURES",
        default: "10",
        parse: at_least(1),
    }
    /// the throttling window; ≥ 1 s
    login_window: Duration {
        env: "TESSERA_LOGIN_WINDOW",
        default: "15m",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// comma-separated proxy IPs whose `X-Forwarded-For` is believed
    trusted_proxies: Vec<std::net::IpAddr> {
        env: "TESSERA_TRUSTED_PROXIES",
        default: "",
        parse: ip_list(),
    }
    /// lifetime of an authorization code; 1 – 60 s
    authorization_code_ttl: Duration {
        env: "TESSERA_AUTHORIZATION_CODE_TTL",
        default: "60",
        parse: duration(),
        check: |v| !v.is_zero() && v.as_secs() <= crate::domain::codes::MAX_CODE_TTL
            => "must be between 1 and 60 seconds",
    }
    /// how long a browser stays signed in at tessera (single sign-on)
    browser_session_ttl: Duration {
        env: "TESSERA_BROWSER_SESSION_TTL",
        default: "12h",
        parse: duration(),
        check: |v| !v.is_zero() => "must be above zero",
    }
    /// the operator listener (`/metrics`, `/healthz`); keep it private
    ops_bind: SocketAddr {
        env: "TESSERA_OPS_BIND",
        default: "127.0.0.1:9090",
        parse: socket_addr("127.0.0.1:9090"),
    }
    /// a request head must be complete this long after the connection opened or
    /// answered its previous request; else it is closed (slowloris)
    header_read_timeout: Duration {
        env: "TESSERA_HEADER_READ_TIMEOUT",
        default: "10",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// a connection with no request in flight is closed this long after its last
    /// response (or `header_read_timeout`, if shorter)
    keep_alive_timeout: Duration {
        env: "TESSERA_KEEP_ALIVE_TIMEOUT",
        default: "5",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// concurrent connections on the public port; more are answered 503 and closed at
    /// once. Keep it below `ulimit -n` minus the database pool
    max_connections: usize {
        env: "TESSERA_MAX_CONNECTIONS",
        default: "1024",
        parse: between(1, 1_000_000),
    }
}

/// The rules between settings (one constrains another), checked once each is valid
/// alone. On a breach: the setting to name, and the problem.
fn check_relations(c: &Config) -> Result<(), (&'static str, &'static str)> {
    if c.refresh_idle_ttl.is_zero() || c.refresh_max_ttl < c.refresh_idle_ttl {
        return Err((
            "refresh_max_ttl",
            "must be at least refresh_idle_ttl, and both above zero",
        ));
    }
    // A next key is published one rotation interval before it signs; verifiers
    // caching the JWKS for max-age must have seen it by then.
    if c.key_rotation_interval <= c.jwks_max_age {
        return Err(("key_rotation_interval", "must be longer than jwks_max_age"));
    }
    // A revocation event must outlive every access token it revokes.
    if c.event_retention < c.access_token_ttl {
        return Err(("event_retention", "must be at least access_token_ttl"));
    }
    Ok(())
}

/// The settings table of `docs/operations.md`, rendered from the declarations.
pub fn settings_table() -> String {
    let mut out = String::from(
        "| `tessera.toml` key | environment | default | |\n| --- | --- | --- | --- |\n",
    );
    for s in SETTINGS {
        let default = match s.default {
            None | Some("") => "(none)".to_string(),
            Some(d) => format!("`{d}`"),
        };
        let doc: Vec<&str> = s.doc.lines().map(str::trim).collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {default} | {} |",
            s.key,
            s.env,
            doc.join(" ")
        );
    }
    out
}

type ParseFn<T> = Box<dyn Fn(&str) -> Option<T>>;

/// How a setting's text becomes its value, and what a refused text should have been
/// (the message reads "expected {expected}, got `text`").
struct Parse<T> {
    parse: ParseFn<T>,
    expected: String,
}

impl<T> Parse<T> {
    fn new(expected: impl Into<String>, parse: impl Fn(&str) -> Option<T> + 'static) -> Self {
        Self {
            parse: Box::new(parse),
            expected: expected.into(),
        }
    }

    /// Names the unit of a number in the message.
    fn unit(mut self, unit: &str) -> Self {
        let _ = write!(self.expected, " ({unit})");
        self
    }
}

/// Text as written, not trimmed (a URL or a name); refused only by its check.
fn text() -> Parse<String> {
    Parse::new("", |s| Some(s.to_string()))
}

/// Text as written, in lower case.
fn lowercase() -> Parse<String> {
    Parse::new("", |s| Some(s.to_ascii_lowercase()))
}

fn path() -> Parse<PathBuf> {
    Parse::new("", |s| Some(PathBuf::from(s)))
}

/// A word read by `parse`, trimmed.
fn keyword<T: 'static>(expected: &str, parse: fn(&str) -> Option<T>) -> Parse<T> {
    Parse::new(expected, move |s| parse(s.trim()))
}

fn duration() -> Parse<Duration> {
    keyword(
        "a duration in seconds or with a unit (90, 15m, 24h, 30d)",
        parse_duration,
    )
}

fn socket_addr(example: &str) -> Parse<SocketAddr> {
    Parse::new(format!("a socket address like {example}"), |s| {
        s.trim().parse().ok()
    })
}

fn between<T>(min: T, max: T) -> Parse<T>
where
    T: FromStr + PartialOrd + Display + 'static,
{
    Parse::new(format!("an integer between {min} and {max}"), move |s| {
        s.trim().parse().ok().filter(|v| *v >= min && *v <= max)
    })
}

fn at_least<T>(min: T) -> Parse<T>
where
    T: FromStr + PartialOrd + Display + 'static,
{
    Parse::new(format!("an integer of at least {min}"), move |s| {
        s.trim().parse().ok().filter(|v| *v >= min)
    })
}

fn ip_list() -> Parse<Vec<std::net::IpAddr>> {
    keyword("a comma-separated list of IP addresses", |s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect()
    })
}

/// Applies a setting's check; a function, so the closure's argument type is known.
fn holds<T>(value: &T, check: impl Fn(&T) -> bool) -> bool {
    check(value)
}

/// Raw string values by setting key, before validation, each with where it came from.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    values: BTreeMap<&'static str, (String, String)>,
}

impl Layers {
    /// Reads `tessera.toml` (or `path`), then the environment.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut layers = Self::default();
        let explicit = path.is_some();
        let path = path
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("tessera.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => layers.apply_toml(&path.display().to_string(), &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        layers.apply_env(|k| std::env::var(k).ok());
        Ok(layers)
    }

    /// Overrides with a `tessera.toml` text; an unknown key is refused, not ignored.
    pub fn apply_toml(&mut self, path: &str, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.into(),
                problem: e.message().to_string(),
            })?;
        for (key, value) in table {
            let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                return Err(ConfigError::File {
                    path: path.into(),
                    problem: format!("unknown setting `{key}`"),
                });
            };
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(ConfigError::File {
                        path: path.into(),
                        problem: format!("`{key}` must be a string or a number"),
                    });
                }
            };
            self.values
                .insert(setting.key, (value, format!("{key} in {path}")));
        }
        Ok(())
    }

    /// Overrides with the environment variables `get` finds.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        for s in SETTINGS {
            if let Some(v) = get(s.env) {
                self.values.insert(s.key, (v, s.env.to_string()));
            }
        }
    }

    /// Sets one value from a command-line flag.
    pub fn set_flag(&mut self, key: &'static str, flag: &str, value: String) {
        self.values.insert(key, (value, flag.to_string()));
    }

    fn get(&self, key: &str) -> Option<&(String, String)> {
        self.values.get(key)
    }
}

struct Parser<'a> {
    layers: &'a Layers,
}

impl Parser<'_> {
    /// Where a setting's value came from, for the message: its environment variable
    /// when it was left at its default.
    fn source(&self, key: &str) -> String {
        match self.layers.get(key) {
            Some((_, source)) => source.clone(),
            None => SETTINGS
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.env.to_string())
                .unwrap_or_else(|| key.to_string()),
        }
    }

    fn invalid(&self, key: &str, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            setting: self.source(key),
            problem: problem.to_string(),
        }
    }

    fn read<T>(&self, key: &str, raw: &str, parse: &Parse<T>) -> Result<T, ConfigError> {
        (parse.parse)(raw)
            .ok_or_else(|| self.invalid(key, &format!("expected {}, got `{raw}`", parse.expected)))
    }

    fn required<T>(&self, key: &str, default: String, parse: &Parse<T>) -> Result<T, ConfigError> {
        match self.layers.get(key) {
            Some((raw, _)) => self.read(key, raw, parse),
            None => self.read(key, &default, parse),
        }
    }

    fn optional<T>(&self, key: &str, parse: &Parse<T>) -> Result<Option<T>, ConfigError> {
        self.layers
            .get(key)
            .map(|(raw, _)| self.read(key, raw, parse))
            .transpose()
    }
}

/// `300`, `300s`, `15m`, `24h`, `30d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order_and_errors_name_the_setting() {
        let mut layers = Layers::default();
        layers
            .apply_toml(
                "tessera.toml",
                "access_token_ttl = 60\nissuer = \"https://a.example\"",
            )
            .unwrap();
        layers.apply_env(|k| (k == "TESSERA_ACCESS_TOKEN_TTL").then(|| "2m".to_string()));
        let cfg = layers.build().unwrap();
        assert_eq!(cfg.access_token_ttl, Duration::from_secs(120));
        assert_eq!(cfg.issuer, "https://a.example");

        layers.set_flag("access_token_ttl", "--access-token-ttl", "soon".into());
        let err = layers.build().unwrap_err().to_string();
        assert!(
            err.starts_with("--access-token-ttl: expected a duration"),
            "{err}"
        );

        let mut bad = Layers::default();
        let err = bad
            .apply_toml("t.toml", "colour = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting `colour`"), "{err}");
    }

    #[test]
    fn listener_defaults_and_bounds() {
        let cfg = Layers::default().build().unwrap();
        assert_eq!(cfg.ops_bind, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(cfg.header_read_timeout, Duration::from_secs(10));
        assert_eq!(cfg.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(cfg.max_connections, 1024);
        for (var, value) in [
            ("TESSERA_HEADER_READ_TIMEOUT", "0"),
            ("TESSERA_KEEP_ALIVE_TIMEOUT", "0"),
            ("TESSERA_MAX_CONNECTIONS", "0"),
            ("TESSERA_OPS_BIND", "localhost"),
        ] {
            let mut layers = Layers::default();
            layers.apply_env(|k| (k == var).then(|| value.to_string()));
            let err = layers.build().unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
    }

    /// Pins each setting's message for a bad value, so declaring the settings
    /// differently cannot change what an operator reads.
    #[test]
    fn every_bad_value_is_refused_with_its_message() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "TESSERA_BIND",
                "x",
                "expected a socket address like 127.0.0.1:8080, got `x`",
            ),
            (
                "DATABASE_URL",
                "mysql://x",
                "must start with sqlite: or postgres:// (postgresql://)",
            ),
            (
                "TESSERA_ISSUER",
                "https://a/",
                "must be an http(s) URL without a trailing slash, query or fragment",
            ),
            (
                "TESSERA_SIGNING_ALG",
                "HS256",
                "expected one of ES256, EdDSA, RS256, got `HS256`",
            ),
            (
                "TESSERA_ACCESS_TOKEN_TTL",
                "0",
                "must be between 1 second and 24 hours",
            ),
            (
                "TESSERA_ACCESS_TOKEN_TTL",
                " soon",
                "expected a duration in seconds or with a unit (90, 15m, 24h, 30d), got ` soon`",
            ),
            (
                "TESSERA_REFRESH_IDLE_TTL",
                "0",
                "must be at least refresh_idle_ttl, and both above zero",
            ),
            (
                "TESSERA_REFRESH_MAX_TTL",
                "1d",
                "must be at least refresh_idle_ttl, and both above zero",
            ),
            (
                "TESSERA_REFRESH_REUSE_GRACE",
                "301",
                "must be at most 300 seconds (0 = strict)",
            ),
            (
                "TESSERA_PERMISSION_CHANGE_POLICY",
                "keep",
                "expected `revoke` or `reissue`, got `keep`",
            ),
            ("TESSERA_ADMIN_ROLE", "", "must not be empty"),
            (
                "TESSERA_ADMIN_AUDIENCE",
                "",
                "must be a non-empty URI (default {issuer}/admin)",
            ),
            (
                "TESSERA_KEY_ROTATION_INTERVAL",
                "600",
                "must be longer than jwks_max_age",
            ),
            (
                "TESSERA_JWKS_MAX_AGE",
                "30d",
                "must be longer than jwks_max_age",
            ),
            (
                "TESSERA_EVENT_RETENTION",
                "299",
                "must be at least access_token_ttl",
            ),
            (
                "TESSERA_EVENT_TAIL",
                "0",
                "expected an integer between 1 and 1000000, got `0`",
            ),
            ("TESSERA_STREAM_RECHECK", "0", "must be at least 1s"),
            (
                "TESSERA_ARGON2_MEMORY_KIB",
                "7",
                "expected an integer of at least 8 (KiB), got `7`",
            ),
            (
                "TESSERA_ARGON2_ITERATIONS",
                "0",
                "expected an integer of at least 1, got `0`",
            ),
            (
                "TESSERA_ARGON2_QUEUE",
                "100001",
                "expected an integer between 1 and 100000, got `100001`",
            ),
            ("TESSERA_REQUEST_TIMEOUT", "0", "must be at least 1s"),
            (
                "TESSERA_DB_MAX_CONNECTIONS",
                "1001",
                "expected an integer between 1 and 1000, got `1001`",
            ),
            ("TESSERA_DB_ACQUIRE_TIMEOUT", "0", "must be at least 1s"),
            (
                "TESSERA_SQLITE_SYNCHRONOUS",
                "off",
                "must be `full`, `extra` or `normal`",
            ),
            (
                "TESSERA_LOGIN_MAX_FAILURES",
                "0",
                "expected an integer of at least 1, got `0`",
            ),
            ("TESSERA_LOGIN_WINDOW", "0s", "must be at least 1s"),
            (
                "TESSERA_TRUSTED_PROXIES",
                "10.0.0.1, x",
                "expected a comma-separated list of IP addresses, got `10.0.0.1, x`",
            ),
            (
                "TESSERA_AUTHORIZATION_CODE_TTL",
                "61",
                "must be between 1 and 60 seconds",
            ),
            ("TESSERA_BROWSER_SESSION_TTL", "0", "must be above zero"),
            (
                "TESSERA_OPS_BIND",
                "localhost",
                "expected a socket address like 127.0.0.1:9090, got `localhost`",
            ),
            ("TESSERA_HEADER_READ_TIMEOUT", "0", "must be at least 1s"),
            ("TESSERA_KEEP_ALIVE_TIMEOUT", "0", "must be at least 1s"),
            (
                "TESSERA_MAX_CONNECTIONS",
                "1000001",
                "expected an integer between 1 and 1000000, got `1000001`",
            ),
        ];
        for (var, value, problem) in cases {
            let mut layers = Layers::default();
            layers.apply_env(|k| (k == *var).then(|| value.to_string()));
            let err = layers.build().expect_err(var).to_string();
            // A cross-setting rule names the setting it constrains.
            let blamed = match *var {
                "TESSERA_REFRESH_IDLE_TTL" => "TESSERA_REFRESH_MAX_TTL",
                "TESSERA_JWKS_MAX_AGE" => "TESSERA_KEY_ROTATION_INTERVAL",
                v => v,
            };
            assert_eq!(err, format!("{blamed}: {problem}"), "{var}={value}");
        }
        // Defaults that follow another setting, and values taken as written.
        let mut layers = Layers::default();
        layers.apply_env(|k| match k {
            "TESSERA_BIND" => Some(" 0.0.0.0:080 ".into()),
            "TESSERA_SQLITE_SYNCHRONOUS" => Some("NORMAL".into()),
            "TESSERA_KEK" => Some(String::new()),
            "TESSERA_TRUSTED_PROXIES" => Some(" 10.0.0.1,,::1 ".into()),
            _ => None,
        });
        let cfg = layers.build().unwrap();
        assert_eq!(cfg.issuer, "http://0.0.0.0:80");
        assert_eq!(cfg.admin_audience, "http://0.0.0.0:80/admin");
        assert_eq!(cfg.sqlite_synchronous, "normal");
        assert_eq!(cfg.kek.as_deref(), Some(""));
        assert_eq!(cfg.trusted_proxies.len(), 2);
        let cfg = Layers::default().build().unwrap();
        assert_eq!(cfg.kek, None);
        assert_eq!(cfg.issuer, "http://127.0.0.1:8080");
        assert_eq!(cfg.keys_dir, PathBuf::from("keys"));
    }

    /// The settings table in docs/operations.md is the declarations rendered; a new or
    /// changed setting fails here until the table is replaced with the printed one.
    #[test]
    fn the_operations_doc_lists_every_setting_as_declared() {
        let doc = include_str!("../docs/operations.md");
        let start = doc
            .find("| `tessera.toml` key")
            .expect("the settings table");
        let table: String = doc[start..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        let declared = settings_table();
        assert!(
            table == declared,
            "docs/operations.md's settings table differs from src/config.rs; replace it with:\n{declared}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("-1"), None);
    }
}
