//! Database faults: an unreachable database at start, and PostgreSQL restarted
//! under load (requests fail with 503 and recover on their own; no rotation is
//! half-applied).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::oauth::refresh::rt;
use crate::support::*;

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("postgres://tessera:pw-never-printed@127.0.0.1:{port}/tessera"),
        )
        .env("TESSERA_DB_ACQUIRE_TIMEOUT", "2")
        .env("TESSERA_KEYS_DIR", dir.path().join("keys"))
        .env("TESSERA_BIND", "127.0.0.1:0")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        stderr.contains(&format!(
            "cannot reach the database postgres://tessera@127.0.0.1:{port}/tessera"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "the cause is named: {stderr}");
    assert!(!stderr.contains("pw-never-printed"), "{stderr}");
    assert!(!dir.path().join("keys").join("kek").exists(), "no KEK made");
}

/// A cluster of this test's own (it is restarted), stopped on drop.
struct OwnCluster {
    dir: String,
    url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres.sh");

impl OwnCluster {
    fn start() -> Self {
        let out = Command::new("bash")
            .args([SCRIPT, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_string()
        };
        Self {
            dir: var("TESSERA_PG_DIR"),
            url: var("TESSERA_TEST_POSTGRES"),
        }
    }

    fn run(&self, what: &str) {
        let out = Command::new("bash")
            .arg(SCRIPT)
            .args(what.split(' '))
            .env("TESSERA_PG_DIR", &self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.run("stop");
    }
}

/// A cluster of the test's own and a server on it (requests wait at most 1 s for a
/// connection; a 10 s grace window lets a retried refresh find its successor).
/// None, with a visible "skipped: ..." line, when the suite runs on SQLite (the
/// tests that use it are named `postgres_only_*`).
async fn on_own_cluster() -> Option<(OwnCluster, TestApp)> {
    if skip_unless(
        on_postgres(),
        "runs on PostgreSQL only (set TESSERA_TEST_POSTGRES)",
    ) {
        return None;
    }
    let cluster = OwnCluster::start();
    let app = TestApp::with(&[
        ("database_url", cluster.url.as_str()),
        ("db_acquire_timeout", "1"),
        ("refresh_reuse_grace", "10"),
    ])
    .await;
    Some((cluster, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_only_restarted_under_load_gives_503s_then_recovers_with_no_rotation_half_applied()
{
    let Some((cluster, app)) = on_own_cluster().await else {
        return;
    };
    app.client("app", true, &["password"], &[], &[]).await;
    app.user(USER, PASSWORD, &["reader"]).await;
    let mut chains = Vec::new();
    for _ in 0..8 {
        chains.push(rt(&app.login("app", USER, PASSWORD).await));
    }

    // Closed-loop refresh chains; a 503 is retried with the same token, as a client would.
    let stop = Arc::new(AtomicBool::new(false));
    let restarted_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    // Rotations after the restart, all chains together: the test waits for them, not for time.
    let recovering = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|mut token| {
            let (http, base, stop) = (app.http.clone(), app.addr.clone(), stop.clone());
            let (restarted_at, recovering) = (restarted_at.clone(), recovering.clone());
            tokio::spawn(async move {
                let (mut ok_after_restart, mut unavailable, mut other) = (0, 0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = refresh_at(&http, &base, "app", &token).await;
                    match status {
                        200 => {
                            token = rt(&body);
                            if restarted_at.lock().unwrap().is_some() {
                                ok_after_restart += 1;
                                recovering.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        503 => {
                            assert_eq!(body["error"], "temporarily_unavailable");
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        _ => other.push((status, body)),
                    }
                }
                (token, ok_after_restart, unavailable, other)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    // /readyz is polled through the outage: it must fail while the database is down.
    let last_ready = Arc::new(AtomicU16::new(0));
    let ready = {
        let (http, url, stop) = (app.http.clone(), app.url("/readyz"), stop.clone());
        let last_ready = last_ready.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = http.get(&url).send().await.unwrap();
                seen.push(r.status().as_u16());
                last_ready.store(r.status().as_u16(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        })
    };
    let before = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        // Down for longer than a request waits for a connection (1 s here).
        cluster.run("restart 2");
        cluster
    })
    .await
    .unwrap();
    *restarted_at.lock().unwrap() = Some(Instant::now());
    eprintln!("PostgreSQL restart took {:?}", before.elapsed());
    // Until /readyz answers 200 again and the chains have rotated 8 times since.
    eventually(Duration::from_secs(10), || async {
        last_ready.load(Ordering::Relaxed) == 200 && recovering.load(Ordering::Relaxed) >= 8
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let ready = ready.await.unwrap();
    assert!(ready.contains(&503), "/readyz never failed: {ready:?}");
    assert!(ready.iter().all(|s| [200, 503].contains(s)), "{ready:?}");
    assert_eq!(
        ready.last(),
        Some(&200),
        "/readyz did not recover: {ready:?}"
    );
    let mut finals = Vec::new();
    let (mut recovered, mut unavailable) = (0, 0);
    for t in tasks {
        let (token, ok, n503, other) = t.await.unwrap();
        assert!(other.is_empty(), "neither 200 nor 503: {other:?}");
        recovered += ok;
        unavailable += n503;
        finals.push(token);
    }
    eprintln!("503s during the restart: {unavailable}; rotations after it: {recovered}");
    assert!(unavailable > 0, "the outage was not noticed");
    assert!(recovered >= 8, "the server did not recover: {recovered}");
    // No family branched, none was revoked, and every chain goes on.
    let db = crate::sql::connect(&cluster.url).await;
    let branched = crate::sql::branched_families(&db).await;
    assert!(branched.is_empty(), "{branched:?}");
    assert_eq!(crate::sql::revoked_families(&db).await, 0);
    crate::sql::close(db).await;
    for token in finals {
        let r = app.refresh("app", &token).await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_only_an_sse_subscriber_on_another_instance_misses_nothing_across_a_restart() {
    let Some((cluster, app)) = on_own_cluster().await else {
        return;
    };
    let secret = app.service("rs", &["events"]).await;
    let rs = app.client_token("rs", &secret).await;
    let alice = app.user(USER, PASSWORD, &["reader"]).await;
    let admin = app.admin_token().await;
    let b = crate::keys::keys_instances::Instance::start(&app).await;
    let mut sse = crate::feed::events::Sse::open_url(&app.http, &b.url("/events"), &rs).await;
    let change = |i: usize| {
        let req = app
            .with_bearer(
                reqwest::Method::PUT,
                &format!("/admin/users/{alice}/roles"),
                &admin,
            )
            .json(&serde_json::json!({"roles": [format!("r{i}")]}));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    change(0).await;
    let first = sse.next_within(Duration::from_secs(5)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.run("restart 2");
        cluster
    })
    .await
    .unwrap();
    // A's pool reconnects on first use; B's listener on its own.
    let mut worst = Duration::ZERO;
    for i in 1..=5 {
        let start = Instant::now();
        change(i).await;
        let e = sse.next_within(Duration::from_secs(5)).await;
        assert_eq!(e.event, "user.roles_changed");
        assert_eq!(e.id, first.id + i as i64, "an event was lost or repeated");
        assert_eq!(e.data["roles"], serde_json::json!([format!("r{i}")]));
        worst = worst.max(e.received - start);
    }
    eprintln!("after the restart, A commit -> B's SSE, worst of 5: {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    let log = b.log();
    assert!(
        log.contains("event listener"),
        "B's listener did not notice the restart:\n{log}"
    );
    drop(cluster);
}
