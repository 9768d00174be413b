//! The console's pages with many users: `cargo bench --bench console -- [USERS] [ROUNDS]`
//! (default 1,000,000 users, 200 rounds). SQLite in a temporary folder, or PostgreSQL when
//! `TESSERA_BENCH_POSTGRES` names a fresh database. Seeds the users in one statement, signs an
//! administrator in (a console session bound to a live tessera session), then requests each
//! page ROUNDS times over loopback and prints p50/p99/max of the response time: the server's
//! render time plus one loopback round trip.

use std::time::{Duration, Instant};

use tessera::config::Layers;
use tessera::domain::audit::Actor;

#[path = "support/seed.rs"]
mod seed;

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let users: i64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let database = std::env::var("TESSERA_BENCH_POSTGRES")
        .unwrap_or_else(|_| format!("sqlite://{}/tessera.db", dir.path().display()));
    let mut layers = Layers::default();
    for (k, v) in [
        ("database_url", database),
        ("keys_dir", dir.path().join("keys").display().to_string()),
        ("argon2_memory_kib", "64".into()),
        ("argon2_iterations", "1".into()),
        ("ops_bind", "127.0.0.1:0".into()),
        ("issuer", base.clone()),
    ] {
        layers.set_flag(k, k, v);
    }
    let cfg = layers.build().expect("config");
    let ops = tokio::net::TcpListener::bind(cfg.ops_bind).await.unwrap();
    let core = tessera::app::build(cfg).await.expect("core");

    let started = Instant::now();
    seed::users(core.db.writer(), users)
        .await
        .expect("seed users");
    println!(
        "seeded {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let admin = core
        .users
        .create_user(
            &Actor::cli(),
            "root",
            "root password 1".to_string().into(),
            vec!["admin".into()],
        )
        .await
        .expect("admin");
    tokio::spawn(tessera::app::serve(
        core.clone(),
        listener,
        ops,
        std::future::pending(),
    ));
    // A live tessera session for the console session to be bound to (a password grant).
    core.clients
        .create(
            &Actor::cli(),
            tessera::domain::clients::NewClient {
                id: "bench".into(),
                public: true,
                grant_types: vec!["password".parse().unwrap()],
                // Its tokens may be for the admin API too (the API pages below).
                audiences: vec![format!("{base}/admin")],
                ..Default::default()
            },
        )
        .await
        .expect("client");
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "bench"),
            ("username", "root"),
            ("password", "root password 1"),
            ("resource", &format!("{base}/admin")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().expect("signed in");
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = access.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let sid = claims["sid"].as_str().unwrap();
    let token = tessera::domain::console::start(&core, &admin.id, sid)
        .await
        .expect("console session");
    let cookie = format!("tessera_console={token}");

    let middle = format!("/console/users?q=user{:07}", users / 2);
    let cursor_page = {
        // The page after the middle of the list: a keyset page deep in the table.
        let html = http
            .get(format!(
                "{base}/console/users?q=user{:03}",
                (users / 2) / 10_000
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.split("rel=\"next\"")
            .next()
            .and_then(|s| s.rsplit("href=\"").next())
            .and_then(|s| s.split('"').next())
            .map(|s| s.replace("&amp;", "&"))
            .unwrap_or_else(|| "/console/users".into())
    };
    // The same list through the admin API: a deep page is the `next_cursor` of a prefix page.
    let api_middle = format!("/admin/users?q=user{:07}", users / 2);
    let api_deep = {
        let page: serde_json::Value = http
            .get(format!(
                "{base}/admin/users?q=user{:03}",
                (users / 2) / 10_000
            ))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match page["next_cursor"].as_str() {
            Some(c) => format!("/admin/users?cursor={c}"),
            None => "/admin/users".into(),
        }
    };
    let pages = [
        ("API: users, first page", "/admin/users".to_string()),
        ("API: users, prefix search", api_middle),
        ("API: users, a page deep in the list", api_deep),
        ("users, first page", "/console/users".to_string()),
        ("users, prefix search", middle),
        ("users, a page deep in the list", cursor_page),
        ("a user", format!("/console/users/{}", admin.id)),
        ("signing keys", "/console/keys".into()),
        ("feed reach", "/console/reach".into()),
    ];
    println!("{users} users, {rounds} requests per page (response time over loopback):");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .bearer_auth(access)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "  {name:32} p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
            pct(&times, 0.50),
            pct(&times, 0.99),
            pct(&times, 1.0)
        );
    }
}
