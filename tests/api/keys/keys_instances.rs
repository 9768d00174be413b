//! Signing keys across processes: scheduled rotation happens once however many servers
//! share the database, and every server serves the rotated key set within seconds.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::keys::jwks::verify_with_jwks;
use crate::keys::keys_lifecycle::*;
use crate::support::*;

/// A second `tessera serve` (the real binary) on the app's database and KEK; killed on drop.
pub(crate) struct Instance {
    child: Child,
    pub addr: String,
    log: PathBuf,
}

impl Instance {
    pub(crate) async fn start(app: &TestApp) -> Self {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = app.dir.path().join(format!("serve-{port}.log"));
            let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
                .arg("serve")
                .envs(app.cli_env())
                .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "info")
                .current_dir(app.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("spawn tessera serve");
            let mut instance = Self {
                child,
                addr: format!("http://127.0.0.1:{port}"),
                log,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = instance.child.try_wait() {
                    let log = instance.log();
                    assert!(
                        log.contains("cannot listen"),
                        "tessera serve exited with {status}: {log}"
                    );
                    break; // the port was taken meanwhile: another one
                }
                let up = app
                    .http
                    .get(format!("{}/healthz", instance.addr))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if up {
                    return instance;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("the second server did not start");
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every key row as (kid, state, activated_at), oldest first.
async fn key_rows(app: &TestApp) -> Vec<(String, String, Option<i64>)> {
    crate::sql::all(
        app.core.db.writer(),
        "SELECT kid, state, activated_at FROM signing_keys ORDER BY created_at, kid",
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_happens_once_across_servers() {
    let app = TestApp::with(&[
        ("key_rotation_interval", "3"),
        ("jwks_max_age", "1"),
        ("key_check_interval", "100ms"),
    ])
    .await;
    let started = Instant::now();
    let second = Instance::start(&app).await;
    let secret = app.service("svc", &[]).await;
    let first = kid_of(&app.client_token("svc", &secret).await);

    let rotated = eventually(Duration::from_secs(6), || async {
        kid_of(&app.client_token("svc", &secret).await) != first
    })
    .await;
    assert!(
        rotated,
        "no scheduled rotation {:?} after start; second server: {}",
        started.elapsed(),
        second.log()
    );
    // Both servers (each checks every 100 ms) get a few more chances to rotate a second time.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let rows = key_rows(&app).await;
    let count = |state: &str| rows.iter().filter(|r| r.1 == state).count();
    assert_eq!(count("active"), 1, "{rows:?}");
    assert_eq!(count("next"), 1, "{rows:?}");
    assert_eq!(count("revoked"), 0, "{rows:?}");
    let events = rotated_events(&app).await;
    assert_eq!(
        events.len(),
        count("retired"),
        "one keys.rotated per retired key: {events:?} {rows:?}"
    );
    assert!(!events.is_empty());
    assert_eq!(events[0], (first.clone(), "rotated".to_string()));
    // Each activation comes a full interval after the one before: no double rotation.
    let mut activations: Vec<i64> = rows.iter().filter_map(|r| r.2).collect();
    activations.sort_unstable();
    assert!(
        activations.windows(2).all(|w| w[1] - w[0] >= 3),
        "activations {activations:?} closer than key_rotation_interval (3 s): {rows:?}"
    );
    let elapsed = started.elapsed().as_secs() as usize;
    assert!(
        events.len() <= elapsed / 3 + 1,
        "{} rotations in {elapsed} s",
        events.len()
    );
    // The token signed now carries the active key's kid, on both servers' JWKS.
    let token = app.client_token("svc", &secret).await;
    let active = rows.iter().find(|r| r.1 == "active").unwrap().0.clone();
    assert_eq!(kid_of(&token), active);
    let theirs = jwks_at(&app.http, &second.addr, 1).await;
    assert!(verify_with_jwks(&token, &theirs), "{theirs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_serves_the_rotated_keys_within_seconds() {
    let app = TestApp::with_keys_aged(LEAD_OVER, &[("jwks_max_age", "1")]).await;
    let admin = app.admin_token().await;
    let second = Instance::start(&app).await;
    let before = jwks_at(&app.http, &second.addr, 1).await;
    assert_eq!(
        kids(&before),
        kids(&jwks(&app).await),
        "same keys from the start"
    );
    let old = kid_of(&admin);

    // The keys are older than the lead: this server rotates at once, on the system's
    // clock, which the second server reads too.
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mine = kids(&jwks(&app).await);
    assert_eq!(mine.len(), 3, "active, next and retired: {mine:?}");
    let caught_up = eventually(Duration::from_secs(3), || async {
        kids(&jwks_at(&app.http, &second.addr, 1).await) == mine
    })
    .await;
    assert!(
        caught_up,
        "the second server still serves {:?} instead of {mine:?}; its log: {}",
        kids(&jwks_at(&app.http, &second.addr, 1).await),
        second.log()
    );

    let fresh = app.login("console", "root", "root password 1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(kid_of(&fresh), old);
    let theirs = jwks_at(&app.http, &second.addr, 1).await;
    for token in [&admin, &fresh] {
        assert!(verify_with_jwks(token, &theirs));
        let r = app
            .http
            .get(second.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the second server accepts the token");
        assert_eq!(r.json::<Value>().await.unwrap()["username"], "root");
    }

    // An emergency revocation through the first server reaches the second one too.
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &fresh)
        .json(&json!({"revoke_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked = kid_of(&fresh);
    let refused = eventually(Duration::from_secs(3), || async {
        app.http
            .get(second.url("/userinfo"))
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap()
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "the second server still accepts a token of revoked key {revoked}; its log: {}",
        second.log()
    );
    assert!(!kids(&jwks_at(&app.http, &second.addr, 1).await).contains(&revoked));
}

/// SQLite: a second handle on the database in the server's process (as a restart in
/// place opens, or [`TestApp::with_keys_aged`]) must leave the server its file locks.
/// Without them the CLI, closing, takes the database for unused and deletes the WAL
/// under the server, whose commits from then on reach no other process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_handle_in_the_servers_process_keeps_its_commits_visible_to_the_cli() {
    if skip_unless(!on_postgres(), "SQLite's file locks") {
        return;
    }
    let app = TestApp::with_keys_aged(LEAD_OVER, &[("jwks_max_age", "1")]).await;
    let again = tessera::store::Db::connect(&app.core.cfg)
        .await
        .expect("a second handle");
    keys_list(&app);
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await
        .unwrap();
    let listed = the(&keys_list(&app), "active");
    assert_eq!(
        listed,
        app.core.keys.current().active.kid,
        "the CLI does not see the server's rotation"
    );
    again.close().await;
}
