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

#[macro_use]
mod declare;
mod layers;
mod parse;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use declare::{Setting, settings_table};
pub use layers::{ConfigError, Layers};
pub use parse::parse_duration;
use parse::{
    Parser, at_least, between, duration, fine_duration, holds, ip_list, keyword, lowercase, path,
    socket_addr, text,
};
pub use values::{PermissionChangePolicy, SigningAlg};

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
    /// how long a client's previous secret still works after `POST
    /// /admin/clients/{id}/secret` or `tessera client rotate-secret`; 0 = refused at
    /// once; ≤ 30 d
    client_secret_overlap: Duration {
        env: "TESSERA_CLIENT_SECRET_OVERLAP",
        default: "1h",
        parse: duration(),
        check: |v| v.as_secs() <= 30 * 86_400 => "must be at most 30 days (0 = at once)",
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
    /// how often each instance re-reads the signing keys and runs the scheduled rotation
    /// (on PostgreSQL a key change reaches the others at once anyway); 100ms – 60 s
    key_check_interval: Duration {
        env: "TESSERA_KEY_CHECK_INTERVAL",
        default: "1",
        parse: fine_duration(),
        check: |v| (100..=60_000).contains(&v.as_millis()) => "must be between 100ms and 60s",
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
    /// sign-ins from one source address (IPv6: one /64) that may wait for or hold a
    /// password worker at once; more wait (`login_wait`), then 429
    argon2_address_share: u32 {
        env: "TESSERA_ARGON2_ADDRESS_SHARE",
        default: "8",
        parse: between(1, 100_000),
    }
    /// per request; 503 beyond; more than 0 (`500ms` allowed)
    request_timeout: Duration {
        env: "TESSERA_REQUEST_TIMEOUT",
        default: "30",
        parse: fine_duration(),
        check: |v| !v.is_zero() => "must be more than 0",
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
    /// the log lines on stderr: `text` (human-readable) or `json` (one object per line,
    /// with the request span's fields)
    log_format: String {
        env: "TESSERA_LOG_FORMAT",
        default: "text",
        parse: lowercase(),
        check: |v| matches!(v.as_str(), "text" | "json") => "must be `text` or `json`",
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
    /// failed sign-ins per username (and per device cookie) before its attempts are
    /// delayed; 5× this per source address (IPv6: per /64) before 429 (see [Throttling
    /// and lockouts](#throttling-and-lockouts))
    login_max_failures: u32 {
        env: "TESSERA_LOGIN_MAX_FAILURES",
        default: "10",
        parse: at_least(1),
    }
    /// failures are forgotten this long after the last one; ≥ 1 s
    login_window: Duration {
        env: "TESSERA_LOGIN_WINDOW",
        default: "15m",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// the longest delay between two attempts at a username past its failures (1 s
    /// after the limit, doubling with each failure); ≥ 1 s
    login_max_delay: Duration {
        env: "TESSERA_LOGIN_MAX_DELAY",
        default: "60",
        parse: duration(),
        check: |v| !v.is_zero() => "must be at least 1s",
    }
    /// how long a sign-in or client authentication may wait for a throttle slot
    /// (attempts in flight, a short delay) before 429; at most half `request_timeout`;
    /// 0 = never wait
    login_wait: Duration {
        env: "TESSERA_LOGIN_WAIT",
        default: "5",
        parse: duration(),
        check: |v| v.as_secs() <= 20 => "must be at most 20 seconds",
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
    /// of those, concurrent connections from one client address (an IPv4 address or an
    /// IPv6 /64; trusted proxies exempt); more are answered 429 and closed at once
    max_connections_per_address: usize {
        env: "TESSERA_MAX_CONNECTIONS_PER_ADDRESS",
        default: "256",
        parse: between(1, 1_000_000),
    }
    /// `true` lets Shared Signals push to `http` and to loopback or private addresses
    /// (development, tests); otherwise only `https` to public addresses
    ssf_allow_insecure_push: bool {
        env: "TESSERA_SSF_ALLOW_INSECURE_PUSH",
        default: "false",
        parse: keyword("`true` or `false`", parse_bool),
    }
    /// Shared Signals streams one client may have
    ssf_max_streams_per_client: usize {
        env: "TESSERA_SSF_MAX_STREAMS_PER_CLIENT",
        default: "10",
        parse: between(1, 10_000),
    }
    /// subjects added to (or, with `ALL`, removed from) one stream
    ssf_max_subjects_per_stream: usize {
        env: "TESSERA_SSF_MAX_SUBJECTS_PER_STREAM",
        default: "10000",
        parse: between(1, 10_000_000),
    }
    /// SETs a stream holds undelivered (paused, receiver down, not acknowledged); at
    /// the bound it reads no further from the event log until some are delivered
    ssf_max_held: usize {
        env: "TESSERA_SSF_MAX_HELD",
        default: "10000",
        parse: between(1, 10_000_000),
    }
    /// longest a Shared Signals long-poll (`returnImmediately` false) waits for a SET
    /// before answering with none (seconds, or `500ms`)
    ssf_poll_wait: Duration {
        env: "TESSERA_SSF_POLL_WAIT",
        default: "25",
        parse: fine_duration(),
        check: |v| (100..=300_000).contains(&v.as_millis()) => "must be between 100ms and 300s",
    }
    /// `ALL`: a new stream gets every user's events (remove subjects to narrow it);
    /// `NONE`: only the subjects added to it
    ssf_default_subjects: String {
        env: "TESSERA_SSF_DEFAULT_SUBJECTS",
        default: "ALL",
        parse: text(),
        check: |v| matches!(v.as_str(), "ALL" | "NONE") => "must be `ALL` or `NONE`",
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
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
