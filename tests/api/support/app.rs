//! `TestApp`: the real server on port 0 with a fresh database and keys folder.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;
use tessera::config::Layers;
use tessera::domain::Core;
use tessera::domain::clients::NewClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::run_cli;

pub struct TestApp {
    pub addr: String,
    /// The operator listener (`/metrics`), `http://127.0.0.1:port`.
    pub ops_addr: String,
    pub core: Arc<Core>,
    pub http: Client,
    /// A client that opens a new connection for every request, so a stream request
    /// is its connection's first (tessera's own stream path, not hyper's).
    pub streams: Client,
    pub dir: Arc<TempDir>,
    pub settings: HashMap<&'static str, String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A refresh grant for public client `client_id` at the server at `base` (any
/// instance); returns the status and the JSON body.
pub async fn refresh_at(http: &Client, base: &str, client_id: &str, token: &str) -> (u16, Value) {
    let r = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", token),
        ])
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.expect("JSON body"))
}

/// 16 refreshes of one token at once, spread round-robin over `bases` (servers of
/// one database); returns (status, body) of each.
pub async fn race_at(http: &Client, bases: &[&str], token: &str) -> Vec<(u16, Value)> {
    let tasks = (0..16).map(|i| {
        let (http, base, token) = (
            http.clone(),
            bases[i % bases.len()].to_string(),
            token.to_string(),
        );
        tokio::spawn(async move { refresh_at(&http, &base, "app", &token).await })
    });
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// A password grant for `user` through public client `client_id` at the server at
/// `base` (any instance); returns the status and the JSON body.
pub async fn login_at(
    http: &Client,
    base: &str,
    client_id: &str,
    user: &str,
    password: &str,
) -> (u16, Value) {
    let r = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.expect("JSON body"))
}

/// Whether the suite runs on PostgreSQL: `TESSERA_TEST_POSTGRES` names a server
/// (`postgres://user@127.0.0.1:port/postgres`) where every test gets a fresh database.
pub fn on_postgres() -> bool {
    std::env::var("TESSERA_TEST_POSTGRES").is_ok_and(|v| !v.is_empty())
}

/// A fresh, empty database: a new PostgreSQL database when the suite runs on
/// PostgreSQL, else an SQLite file in `dir`.
pub fn fresh_database_url(dir: &TempDir) -> String {
    let Some(admin) = std::env::var("TESSERA_TEST_POSTGRES")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return format!("sqlite://{}/tessera.db", dir.path().display());
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (url, create) = (admin.clone(), format!("CREATE DATABASE {name}"));
    // Works from sync and async callers alike: its own thread, its own runtime.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("TESSERA_TEST_POSTGRES is reachable");
                sqlx::query(&create)
                    .execute(&mut c)
                    .await
                    .expect("create database");
                c.close().await.ok();
            })
    })
    .join()
    .unwrap();
    let (base, _) = admin
        .rsplit_once('/')
        .expect("a database in TESSERA_TEST_POSTGRES");
    format!("{base}/{name}")
}

/// Creates the first signing keys of the database and keys folder `settings` name,
/// dated `age` ago, as a deployment that ran before has them: once `age` passes the
/// next key's lead (`jwks_max_age` + 1 s, whole seconds), any process may rotate at
/// once, the CLI too (it reads the system clock, which no test can move).
pub async fn keys_created_ago(settings: &HashMap<&'static str, String>, age: std::time::Duration) {
    let cfg = config(settings);
    let db = tessera::store::Db::connect(&cfg).await.expect("database");
    db.migrate().await.expect("migrations");
    let created = std::time::SystemTime::now() - age;
    let created = created.duration_since(std::time::UNIX_EPOCH).unwrap();
    tessera::domain::keys::KeyRing::init(&cfg, &db, created.as_secs() as i64)
        .await
        .expect("the first signing keys");
    db.close().await;
}

/// A fresh folder and the settings of a test app there: the base ones, then `extra`.
fn fresh(extra: &[(&'static str, &str)]) -> (Arc<TempDir>, HashMap<&'static str, String>) {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut settings = base_settings(&dir);
    for (k, v) in extra {
        settings.insert(k, v.to_string());
    }
    (dir, settings)
}

/// The configuration `settings` make, each given as a flag.
fn config(settings: &HashMap<&'static str, String>) -> tessera::config::Config {
    let mut layers = Layers::default();
    for (k, v) in settings {
        layers.set_flag(k, k, v.clone());
    }
    layers.build().expect("test config")
}

/// Settings every test app gets: cheap argon2, a short grace window unless asked.
pub fn base_settings(dir: &TempDir) -> HashMap<&'static str, String> {
    HashMap::from([
        ("database_url", fresh_database_url(dir)),
        ("keys_dir", dir.path().join("keys").display().to_string()),
        ("argon2_memory_kib", "64".into()),
        ("argon2_iterations", "1".into()),
        ("bind", "127.0.0.1:0".into()),
        ("ops_bind", "127.0.0.1:0".into()),
    ])
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::with(&[]).await
    }

    /// Starts with extra settings, e.g. `[("refresh_reuse_grace", "0")]`.
    pub async fn with(extra: &[(&'static str, &str)]) -> Self {
        let (dir, settings) = fresh(extra);
        Self::start(dir, settings).await
    }

    /// Starts on a database whose first signing keys were created `age` ago: see
    /// [`keys_created_ago`].
    pub async fn with_keys_aged(age: std::time::Duration, extra: &[(&'static str, &str)]) -> Self {
        let (dir, settings) = fresh(extra);
        keys_created_ago(&settings, age).await;
        Self::start(dir, settings).await
    }

    /// Starts with the issuer `http://localhost:PORT` (its port bound first): WebAuthn
    /// refuses an IP address as RP id, so passkeys need a host name.
    pub async fn on_localhost() -> Self {
        let (dir, mut settings) = fresh(&[]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        settings.insert("issuer", format!("http://localhost:{port}"));
        Self::start_on(dir, settings, listener).await
    }

    pub async fn start(dir: Arc<TempDir>, settings: HashMap<&'static str, String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::start_on(dir, settings, listener).await
    }

    async fn start_on(
        dir: Arc<TempDir>,
        mut settings: HashMap<&'static str, String>,
        listener: tokio::net::TcpListener,
    ) -> Self {
        let addr = match settings.get("issuer") {
            Some(issuer) => issuer.clone(),
            None => format!("http://{}", listener.local_addr().unwrap()),
        };
        settings.insert("issuer", addr.clone());
        let cfg = config(&settings);
        let ops = tokio::net::TcpListener::bind(cfg.ops_bind)
            .await
            .expect("bind ops");
        let ops_addr = format!("http://{}", ops.local_addr().unwrap());
        let core = tessera::app::build(cfg).await.expect("core");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tessera::app::serve(
            core.clone(),
            listener,
            ops,
            async move {
                let _ = stopped.await;
            },
        ));
        let task = tokio::spawn(async move {
            task.await.expect("server task").expect("server");
        });
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let streams = Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Self {
            addr,
            ops_addr,
            core,
            http,
            streams,
            dir,
            settings,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and starts a new one on the same database and keys.
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let mut settings = self.settings.clone();
        settings.remove("issuer");
        Self::start(self.dir.clone(), settings).await
    }

    /// Like [`TestApp::restart`], listening on the same address again (so the issuer
    /// and its URLs stay the same for a verifier following it).
    pub async fn restart_in_place(mut self) -> Self {
        self.shutdown().await;
        let listener = tokio::net::TcpListener::bind(self.addr.trim_start_matches("http://"))
            .await
            .expect("bind the same address again");
        let mut settings = self.settings.clone();
        settings.remove("issuer");
        Self::start_on(self.dir.clone(), settings, listener).await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// A URL on the operator listener.
    pub fn ops_url(&self, path: &str) -> String {
        format!("{}{}", self.ops_addr, path)
    }

    /// `GET /metrics` on the operator listener; the text.
    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(self.ops_url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "/metrics on the operator listener");
        r.text().await.unwrap()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tessera.db")
    }

    /// Environment for running the `tessera` binary against this app's database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let var = tessera::config::SETTINGS
                    .iter()
                    .find(|s| s.key == *k)
                    .unwrap()
                    .env;
                (var.to_string(), v.clone())
            })
            .collect();
        env.push(("RUST_LOG".into(), "warn".into()));
        env
    }

    /// Runs the real binary; returns (status, stdout, stderr).
    /// Blocks the calling thread until the command exits, so the test must run on the
    /// multi-thread runtime: on a current-thread one the server, a task of the same
    /// runtime, stands still meanwhile, and a command waiting for a lock the server
    /// holds (PostgreSQL's advisory lock) waits forever.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread,
            "a test that runs the CLI beside its server needs #[tokio::test(flavor = \"multi_thread\")]"
        );
        run_cli(&self.cli_env(), self.dir.path(), args, stdin)
    }

    /// `tessera keys rewrap` to a new KEK given in a file; returns the new KEK (base64).
    /// The instance keeps the old one until restarted with it.
    pub fn rewrap_kek(&self) -> String {
        use base64::Engine;
        let new_kek = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
        let new_file = self.dir.path().join("kek.new");
        std::fs::write(&new_file, &new_kek).unwrap();
        let args = [
            "keys",
            "rewrap",
            "--new-kek-file",
            new_file.to_str().unwrap(),
        ];
        let (code, _, err) = self.cli(&args, None);
        assert_eq!(code, 0, "{err}");
        new_kek
    }

    /// Registers a client; returns its secret (None for a public one).
    pub async fn client(
        &self,
        id: &str,
        public: bool,
        grants: &[&str],
        scopes: &[&str],
        roles: &[&str],
    ) -> Option<String> {
        let new = NewClient {
            id: id.into(),
            public,
            grant_types: grants.iter().map(|s| s.parse().unwrap()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: vec!["https://api.example".into()],
            roles: roles.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        self.client_with(new).await
    }

    pub async fn client_with(&self, new: NewClient) -> Option<String> {
        use secrecy::ExposeSecret;
        self.core
            .clients
            .create(&tessera::domain::audit::Actor::cli(), new)
            .await
            .expect("create client")
            .map(|s| s.expose_secret().to_string())
    }

    /// Creates a user; returns the `sub`.
    pub async fn user(&self, name: &str, password: &str, roles: &[&str]) -> String {
        self.core
            .users
            .create_user(
                &tessera::domain::audit::Actor::cli(),
                name,
                password.to_string().into(),
                roles.iter().map(|s| s.to_string()).collect(),
            )
            .await
            .expect("create user")
            .id
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> Response {
        self.post_form("/token", form).await
    }

    /// Signs in with the password grant through public client `client_id`; returns the JSON.
    pub async fn login(&self, client_id: &str, user: &str, password: &str) -> Value {
        let r = self
            .token(&[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", user),
                ("password", password),
            ])
            .await;
        assert_eq!(r.status(), 200, "login failed");
        r.json().await.unwrap()
    }

    pub async fn refresh(&self, client_id: &str, rt: &str) -> Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", rt),
        ])
        .await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Permission changes, events, introspection and the admin API.
impl TestApp {
    /// A request to `path` with `Authorization: Bearer token`.
    pub fn with_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// Registers public password-grant client `console`, whose only audience is the
    /// admin API's, as an operator does to get admin tokens.
    pub async fn admin_console(&self) {
        self.client_with(NewClient {
            id: "console".into(),
            public: true,
            grant_types: vec!["password".parse().unwrap()],
            audiences: vec![self.admin_audience()],
            ..Default::default()
        })
        .await;
    }

    /// The audience `/admin` requires.
    pub fn admin_audience(&self) -> String {
        self.core.cfg.admin_audience.clone()
    }

    /// Creates public client `console` and user `root` (role `admin`), signs root in;
    /// returns root's access token.
    pub async fn admin_token(&self) -> String {
        self.admin_console().await;
        self.user("root", "root password 1", &["admin"]).await;
        self.login("console", "root", "root password 1").await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Registers a confidential `client_credentials` client with `capabilities`
    /// (`introspect`, `events`); returns its secret.
    pub async fn service(&self, id: &str, capabilities: &[&str]) -> String {
        self.client_with(NewClient {
            id: id.into(),
            grant_types: vec!["client_credentials".parse().unwrap()],
            audiences: vec!["https://api.example".into()],
            capabilities: capabilities.iter().map(|s| s.parse().unwrap()).collect(),
            ..Default::default()
        })
        .await
        .expect("confidential client")
    }

    /// A `client_credentials` access token (client_secret_post).
    pub async fn client_token(&self, id: &str, secret: &str) -> String {
        let r = self
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .await;
        assert_eq!(r.status(), 200, "client_credentials failed");
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `POST /introspect` as confidential client `id` (client_secret_post).
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> Response {
        self.post_form(
            "/introspect",
            &[
                ("client_id", id),
                ("client_secret", secret),
                ("token", token),
            ],
        )
        .await
    }
}

impl TestApp {
    /// `GET path`; the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

// The app's clock (r-domain): tests move time instead of waiting for it.
impl TestApp {
    /// Moves this server's clock forward by `by` (pinning it first): it then moves
    /// only when told. Other processes (the CLI, a `Served` binary) keep the system's.
    pub fn advance(&self, by: std::time::Duration) {
        self.core.clock.advance(by);
    }

    /// Moves this server's clock forward to `wall` (since the unix epoch); never back.
    pub fn advance_to(&self, wall: std::time::Duration) {
        self.advance(wall.saturating_sub(self.core.clock.wall()));
    }

    /// Steps this server's clock back by `by` and pins it there, as an NTP step would:
    /// for the rules that must hold when time runs backwards.
    pub fn step_back(&self, by: std::time::Duration) {
        self.core
            .clock
            .pin(self.core.clock.wall().saturating_sub(by));
    }
}
