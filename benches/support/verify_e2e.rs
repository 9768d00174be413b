//! `-s verify`: a resource server's view of a permission change. A `tessera-verify`
//! verifier follows the driver-started server's feed; for each of K role changes
//! through the admin API, the time from the admin call until a resource server built on
//! it (axum, the verifier's extractor, on a loopback port) answers 401 to the user's old
//! access token (polled over HTTP every 0.5 ms), p50/p99/max.
//!
//! With `--instances 2` (PostgreSQL) the verifier follows the second instance's feed
//! while the changes go to the first one's admin API: what crosses between them is the
//! database's `NOTIFY`. Metadata and keys still come from the issuer URL (the first
//! instance, standing for the load balancer).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) struct VerifyE2e<'a> {
    pub(crate) base: &'a str,
    pub(crate) admin_token: &'a str,
    /// The driver's client (password grant, audience `urn:bench:api`).
    pub(crate) client: &'a (String, String),
    pub(crate) changes: usize,
    pub(crate) label: &'a str,
    /// Another instance on the same database, whose feed the verifier follows.
    pub(crate) feed: Option<&'a str>,
}

pub(crate) async fn run(v: VerifyE2e<'_>) -> Value {
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", v.base))
            .bearer_auth(v.admin_token)
    };
    let secret = super::fanout::events_client(&http, v.base, v.admin_token, "verify-e2e").await;
    let user: Value = admin(reqwest::Method::POST, "/admin/users")
        .json(&json!({"username": "verify-e2e", "password": "verify-e2e-pw", "roles": ["r0"]}))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("user JSON");
    let uid = user["id"].as_str().expect("user id").to_string();
    let mut settings = tessera_verify::Settings::new(v.base, "urn:bench:api", "verify-e2e", secret);
    settings.events_endpoint = v.feed.map(|b| format!("{b}/events"));
    let instances = if v.feed.is_some() { 2 } else { 1 };
    let verifier = tessera_verify::Verifier::start(settings)
        .await
        .expect("verifier starts");
    assert!(
        verifier.ready(Duration::from_secs(10)).await,
        "verifier synced"
    );
    // A resource server as `verify/examples/resource_server.rs` builds it: the
    // verifier's axum extractor on `GET /whoami`, on a loopback port.
    async fn whoami(auth: tessera_verify::Authenticated) -> String {
        auth.sub.clone()
    }
    let api = axum::Router::new()
        .route("/whoami", axum::routing::get(whoami))
        .with_state(verifier.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("resource server port");
    let whoami_url = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });
    let status = |token: String| {
        let (http, url) = (http.clone(), whoami_url.clone());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("resource server")
                .status()
        }
    };

    let mut lat_us: Vec<u32> = Vec::with_capacity(v.changes);
    let mut missed = 0usize;
    for i in 1..=v.changes {
        let login: Value = http
            .post(format!("{}/token", v.base))
            .basic_auth(&v.client.0, Some(&v.client.1))
            .form(&[
                ("grant_type", "password"),
                ("username", "verify-e2e"),
                ("password", "verify-e2e-pw"),
            ])
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("token JSON");
        let token = login["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        assert_eq!(
            status(token.clone()).await,
            200,
            "a fresh token is accepted"
        );
        let at = Instant::now();
        super::set_roles(&http, v.base, v.admin_token, &uid, &[format!("r{i}")]).await;
        let deadline = at + Duration::from_secs(5);
        loop {
            if status(token.clone()).await == 401 {
                lat_us.push(at.elapsed().as_micros() as u32);
                break;
            }
            if Instant::now() >= deadline {
                missed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    lat_us.sort_unstable();
    let pct = super::pct;
    println!(
        "{:<10} {:<19} {} role changes ({instances} instance(s)): refused {}/{} (missed {missed})  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        v.label,
        "verify",
        v.changes,
        lat_us.len(),
        v.changes,
        pct(&lat_us, 0.5),
        pct(&lat_us, 0.99),
        pct(&lat_us, 1.0),
    );
    json!({"server": v.label, "scenario": "verify", "instances": instances, "changes": v.changes, "refused": lat_us.len(),
           "missed": missed, "p50_ms": pct(&lat_us, 0.5), "p99_ms": pct(&lat_us, 0.99),
           "max_ms": pct(&lat_us, 1.0)})
}
