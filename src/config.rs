//! Configuration: defaults, then `tessera.toml`, then `TESSERA_*` environment
//! variables, then command-line flags (each layer overrides the one before).
//! Every value is validated at start and a bad one is reported by name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {problem}")]
    Invalid { setting: String, problem: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionChangePolicy {
    /// Role changes revoke the user's refresh families.
    Revoke,
    /// Families stay alive; the next refresh carries the new roles.
    Reissue,
}

impl PermissionChangePolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoke" => Some(Self::Revoke),
            "reissue" => Some(Self::Reissue),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Reissue => "reissue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Some(Self::ES256),
            "EDDSA" | "ED25519" => Some(Self::EdDSA),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
}

/// Declares every setting once: its typed [`Config`] field, whose name is its key
/// in `tessera.toml`, and its environment variable. The value is read and
/// validated in [`Layers::build`].
macro_rules! settings {
    ($( $(#[$doc:meta])* $key:ident: $ty:ty = $env:literal, )*) => {
        /// The validated configuration, built once at start.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[$doc])* pub $key: $ty, )*
        }

        /// Every setting: its key in `tessera.toml` and its environment variable.
        pub const SETTINGS: &[(&str, &str)] = &[ $( (stringify!($key), $env), )* ];
    };
}

settings! {
    bind: SocketAddr = "TESSERA_BIND",
    database_url: String = "DATABASE_URL",
    issuer: String = "TESSERA_ISSUER",
    keys_dir: PathBuf = "TESSERA_KEYS_DIR",
    /// Base64 key-encryption key from the environment; when unset it lives in `keys_dir`.
    kek: Option<String> = "TESSERA_KEK",
    signing_alg: SigningAlg = "TESSERA_SIGNING_ALG",
    access_token_ttl: Duration = "TESSERA_ACCESS_TOKEN_TTL",
    refresh_idle_ttl: Duration = "TESSERA_REFRESH_IDLE_TTL",
    refresh_max_ttl: Duration = "TESSERA_REFRESH_MAX_TTL",
    refresh_reuse_grace: Duration = "TESSERA_REFRESH_REUSE_GRACE",
    permission_change_policy: PermissionChangePolicy = "TESSERA_PERMISSION_CHANGE_POLICY",
    admin_role: String = "TESSERA_ADMIN_ROLE",
    /// The `aud` an access token must carry to be accepted by `/admin` (RFC 8707).
    admin_audience: String = "TESSERA_ADMIN_AUDIENCE",
    jwks_max_age: Duration = "TESSERA_JWKS_MAX_AGE",
    key_rotation_interval: Duration = "TESSERA_KEY_ROTATION_INTERVAL",
    event_retention: Duration = "TESSERA_EVENT_RETENTION",
    /// Events each instance keeps in memory for its subscribers.
    event_tail: usize = "TESSERA_EVENT_TAIL",
    /// How often an open stream re-reads its caller from the database (the feed
    /// itself ends it at once on a revocation, a disable or a key revocation).
    stream_recheck: Duration = "TESSERA_STREAM_RECHECK",
    argon2_memory_kib: u32 = "TESSERA_ARGON2_MEMORY_KIB",
    argon2_iterations: u32 = "TESSERA_ARGON2_ITERATIONS",
    /// Sign-ins that may wait for a password worker; beyond, 503 at once.
    argon2_queue: usize = "TESSERA_ARGON2_QUEUE",
    request_timeout: Duration = "TESSERA_REQUEST_TIMEOUT",
    db_max_connections: u32 = "TESSERA_DB_MAX_CONNECTIONS",
    /// How long a request waits for a database connection before answering 503.
    db_acquire_timeout: Duration = "TESSERA_DB_ACQUIRE_TIMEOUT",
    sqlite_synchronous: String = "TESSERA_SQLITE_SYNCHRONOUS",
    login_max_failures: u32 = "TESSERA_LOGIN_MAX_FAILURES",
    login_window: Duration = "TESSERA_LOGIN_WINDOW",
    /// Peers whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<std::net::IpAddr> = "TESSERA_TRUSTED_PROXIES",
    /// The operator listener (`/metrics`), apart from the public port.
    ops_bind: SocketAddr = "TESSERA_OPS_BIND",
    /// How long a connection has to send a complete request head, from its opening
    /// or the end of its previous response (slowloris).
    header_read_timeout: Duration = "TESSERA_HEADER_READ_TIMEOUT",
    /// How long a connection with no request in flight stays open after its last response.
    keep_alive_timeout: Duration = "TESSERA_KEEP_ALIVE_TIMEOUT",
    /// Concurrent connections on the public port; more are answered 503 and closed.
    max_connections: usize = "TESSERA_MAX_CONNECTIONS",
    /// How long an authorization code lives (at most 60 s).
    authorization_code_ttl: Duration = "TESSERA_AUTHORIZATION_CODE_TTL",
    /// How long a browser stays signed in at tessera (single sign-on).
    browser_session_ttl: Duration = "TESSERA_BROWSER_SESSION_TTL",
}

/// Raw string values by setting key, before validation.
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

    pub fn apply_toml(&mut self, path: &str, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.into(),
                problem: e.message().to_string(),
            })?;
        for (key, value) in table {
            let Some((name, _)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
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
                .insert(name, (value, format!("{key} in {path}")));
        }
        Ok(())
    }

    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        for (key, var) in SETTINGS {
            if let Some(v) = get(var) {
                self.values.insert(key, (v, (*var).to_string()));
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

    pub fn build(&self) -> Result<Config, ConfigError> {
        let p = Parser { layers: self };
        let bind: SocketAddr = p.parse(
            "bind",
            "127.0.0.1:8080",
            |s| s.parse().ok(),
            "a socket address like 127.0.0.1:8080",
        )?;
        let issuer = p.string("issuer", &format!("http://{bind}"));
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.ends_with('/')
            || issuer.contains(['?', '#'])
        {
            return Err(p.invalid(
                "issuer",
                "must be an http(s) URL without a trailing slash, query or fragment",
            ));
        }
        let access_token_ttl = p.duration("access_token_ttl", "300")?;
        if access_token_ttl < Duration::from_secs(1)
            || access_token_ttl > Duration::from_secs(86_400)
        {
            return Err(p.invalid("access_token_ttl", "must be between 1 second and 24 hours"));
        }
        let refresh_idle_ttl = p.duration("refresh_idle_ttl", "14d")?;
        let refresh_max_ttl = p.duration("refresh_max_ttl", "30d")?;
        if refresh_idle_ttl.is_zero() || refresh_max_ttl < refresh_idle_ttl {
            return Err(p.invalid(
                "refresh_max_ttl",
                "must be at least refresh_idle_ttl, and both above zero",
            ));
        }
        let refresh_reuse_grace = p.duration("refresh_reuse_grace", "10")?;
        if refresh_reuse_grace > Duration::from_secs(300) {
            return Err(p.invalid(
                "refresh_reuse_grace",
                "must be at most 300 seconds (0 = strict)",
            ));
        }
        let authorization_code_ttl = p.duration("authorization_code_ttl", "60")?;
        if authorization_code_ttl.is_zero()
            || authorization_code_ttl.as_secs() > crate::domain::codes::MAX_CODE_TTL
        {
            return Err(p.invalid("authorization_code_ttl", "must be between 1 and 60 seconds"));
        }
        let browser_session_ttl = p.duration("browser_session_ttl", "12h")?;
        if browser_session_ttl.is_zero() {
            return Err(p.invalid("browser_session_ttl", "must be above zero"));
        }
        let policy = p.parse(
            "permission_change_policy",
            "revoke",
            PermissionChangePolicy::parse,
            "`revoke` or `reissue`",
        )?;
        let jwks_max_age = p.duration("jwks_max_age", "600")?;
        let key_rotation_interval = p.duration("key_rotation_interval", "30d")?;
        if key_rotation_interval <= jwks_max_age {
            // A next key is published one rotation interval before it signs; verifiers
            // caching the JWKS for max-age must have seen it by then.
            return Err(p.invalid("key_rotation_interval", "must be longer than jwks_max_age"));
        }
        let event_retention = p.duration("event_retention", "24h")?;
        let stream_recheck = p.duration("stream_recheck", "30")?;
        if stream_recheck.is_zero() {
            return Err(p.invalid("stream_recheck", "must be at least 1s"));
        }
        if event_retention < access_token_ttl {
            return Err(p.invalid("event_retention", "must be at least access_token_ttl"));
        }
        let sqlite_synchronous = p.string("sqlite_synchronous", "full").to_ascii_lowercase();
        if !matches!(sqlite_synchronous.as_str(), "full" | "normal" | "extra") {
            return Err(p.invalid("sqlite_synchronous", "must be `full`, `extra` or `normal`"));
        }
        let database_url = p.string("database_url", "sqlite://data/tessera.db");
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            return Err(p.invalid(
                "database_url",
                "must start with sqlite: or postgres:// (postgresql://)",
            ));
        }
        let db_acquire_timeout = p.duration("db_acquire_timeout", "5")?;
        if db_acquire_timeout.is_zero() {
            return Err(p.invalid("db_acquire_timeout", "must be at least 1s"));
        }
        let admin_role = p.string("admin_role", "admin");
        if admin_role.is_empty() {
            return Err(p.invalid("admin_role", "must not be empty"));
        }
        let admin_audience = p.string("admin_audience", &format!("{issuer}/admin"));
        if admin_audience.is_empty() || admin_audience.chars().any(char::is_control) {
            return Err(p.invalid(
                "admin_audience",
                "must be a non-empty URI (default {issuer}/admin)",
            ));
        }
        let request_timeout = p.duration("request_timeout", "30")?;
        if request_timeout.is_zero() {
            return Err(p.invalid("request_timeout", "must be at least 1s"));
        }
        let login_window = p.duration("login_window", "15m")?;
        if login_window.is_zero() {
            return Err(p.invalid("login_window", "must be at least 1s"));
        }
        let ops_bind: SocketAddr = p.parse(
            "ops_bind",
            "127.0.0.1:9090",
            |s| s.parse().ok(),
            "a socket address like 127.0.0.1:9090",
        )?;
        let header_read_timeout = p.duration("header_read_timeout", "10")?;
        if header_read_timeout.is_zero() {
            return Err(p.invalid("header_read_timeout", "must be at least 1s"));
        }
        let keep_alive_timeout = p.duration("keep_alive_timeout", "5")?;
        if keep_alive_timeout.is_zero() {
            return Err(p.invalid("keep_alive_timeout", "must be at least 1s"));
        }
        Ok(Config {
            ops_bind,
            header_read_timeout,
            keep_alive_timeout,
            max_connections: p.parse(
                "max_connections",
                "1024",
                |s| s.parse().ok().filter(|v| (1..=1_000_000).contains(v)),
                "an integer between 1 and 1000000",
            )?,
            bind,
            database_url,
            issuer,
            keys_dir: PathBuf::from(p.string("keys_dir", "keys")),
            kek: p.layers.get("kek").map(|(v, _)| v.clone()),
            signing_alg: p.parse(
                "signing_alg",
                "ES256",
                SigningAlg::parse,
                "one of ES256, EdDSA, RS256",
            )?,
            access_token_ttl,
            refresh_idle_ttl,
            refresh_max_ttl,
            refresh_reuse_grace,
            authorization_code_ttl,
            browser_session_ttl,
            permission_change_policy: policy,
            admin_role,
            admin_audience,
            jwks_max_age,
            key_rotation_interval,
            event_retention,
            event_tail: p.parse(
                "event_tail",
                "4096",
                |s| s.parse().ok().filter(|v| (1..=1_000_000).contains(v)),
                "an integer between 1 and 1000000",
            )?,
            stream_recheck,
            argon2_memory_kib: p.parse(
                "argon2_memory_kib",
                "19456",
                |s| s.parse().ok().filter(|v| *v >= 8),
                "an integer of at least 8 (KiB)",
            )?,
            argon2_iterations: p.parse(
                "argon2_iterations",
                "2",
                |s| s.parse().ok().filter(|v| *v >= 1),
                "an integer of at least 1",
            )?,
            argon2_queue: p.parse(
                "argon2_queue",
                "32",
                |s| s.parse().ok().filter(|v| (1..=100_000).contains(v)),
                "an integer between 1 and 100000",
            )?,
            request_timeout,
            db_max_connections: p.parse(
                "db_max_connections",
                "8",
                |s| s.parse().ok().filter(|v| (1..=1000).contains(v)),
                "an integer between 1 and 1000",
            )?,
            db_acquire_timeout,
            sqlite_synchronous,
            login_max_failures: p.parse(
                "login_max_failures",
                "10",
                |s| s.parse().ok().filter(|v| *v >= 1),
                "an integer of at least 1",
            )?,
            login_window,
            trusted_proxies: p.parse(
                "trusted_proxies",
                "",
                |s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| s.parse().ok())
                        .collect()
                },
                "a comma-separated list of IP addresses",
            )?,
        })
    }
}

struct Parser<'a> {
    layers: &'a Layers,
}

impl Parser<'_> {
    fn source(&self, key: &str) -> String {
        match self.layers.get(key) {
            Some((_, source)) => source.clone(),
            None => SETTINGS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, env)| env.to_string())
                .unwrap_or_else(|| key.to_string()),
        }
    }

    fn invalid(&self, key: &str, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            setting: self.source(key),
            problem: problem.to_string(),
        }
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.layers
            .get(key)
            .map(|(v, _)| v.clone())
            .unwrap_or_else(|| default.to_string())
    }

    fn parse<T>(
        &self,
        key: &str,
        default: &str,
        f: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let raw = self.string(key, default);
        f(raw.trim()).ok_or_else(|| self.invalid(key, &format!("expected {expected}, got `{raw}`")))
    }

    fn duration(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        self.parse(
            key,
            default,
            parse_duration,
            "a duration in seconds or with a unit (90, 15m, 24h, 30d)",
        )
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("-1"), None);
    }
}
