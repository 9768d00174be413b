//! The layers a configuration is read from: `tessera.toml`, the environment and
//! command-line flags, each a string map that overrides the one before.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::SETTINGS;

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

    pub(super) fn get(&self, key: &str) -> Option<&(String, String)> {
        self.values.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use crate::config::settings_table;

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
            ("TESSERA_REQUEST_TIMEOUT", "0", "must be more than 0"),
            ("TESSERA_REQUEST_TIMEOUT", "0ms", "must be more than 0"),
            (
                "TESSERA_KEY_CHECK_INTERVAL",
                "50ms",
                "must be between 100ms and 60s",
            ),
            (
                "TESSERA_KEY_CHECK_INTERVAL",
                "2m",
                "must be between 100ms and 60s",
            ),
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
        let doc = include_str!("../../docs/operations.md");
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
            "docs/operations.md's settings table differs from src/config/mod.rs; replace it with:\n{declared}"
        );
    }
}
