//! The real binary: what it logs, and how it shuts down (DESIGN "Bad input and faults",
//! README "Abuse and limits").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};

use crate::oauth::token::basic;
use crate::support::*;

/// Every secret a run handled, by name, to look for in the log.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{what} too short to search for: {value:?}"
        );
        self.0.push((what.into(), value.into()));
    }

    /// Adds a token response's tokens; returns (access, refresh).
    fn tokens(&mut self, what: &str, body: &Value) -> (String, Option<String>) {
        let at = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        self.add(&format!("{what} access token"), &at);
        // The signature alone identifies a token too.
        self.add(
            &format!("{what} access token signature"),
            at.rsplit('.').next().unwrap(),
        );
        let rt = body["refresh_token"].as_str().map(String::from);
        if let Some(rt) = &rt {
            self.add(&format!("{what} refresh token"), rt);
        }
        (at, rt)
    }
}

async fn post(
    http: &Client,
    url: String,
    auth: Option<String>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http
        .post(url)
        .header("x-request-id", "hygiene-check-1")
        .form(form);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Drives every secret-bearing path through the binary, stops it, and searches its log.
async fn logs_hold_no_secrets(json_format: bool) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut extra = vec![
        ("RUST_LOG", "tessera=trace,info"),
        ("TESSERA_JWKS_MAX_AGE", "1"),
    ];
    if json_format {
        extra.push(("TESSERA_LOG_FORMAT", "json"));
    }
    let env = Served::env_for(&dir, &extra);
    let setting = |var: &str| env.iter().find(|(k, _)| k == var).unwrap().1.clone();
    let stored = HashMap::from([
        ("database_url", setting("DATABASE_URL")),
        ("keys_dir", setting("TESSERA_KEYS_DIR")),
    ]);
    // The CLI rotates below without waiting out the next key's lead.
    keys_created_ago(&stored, crate::keys::keys_lifecycle::LEAD_OVER).await;
    let mut s = Served::start(dir.clone(), env, "server.log").await;
    let http = Client::new();
    let mut secrets = Secrets::default();
    let mut cli_stderr = String::new();
    let mut cli = |args: &[&str], stdin: Option<&str>| {
        let (code, out, err) = s.cli(args, stdin);
        assert_eq!(code, 0, "tessera {args:?}: {err}");
        cli_stderr.push_str(&err);
        out.trim().to_string()
    };

    // Its tokens are for the admin API too: root's calls below are admin calls.
    let admin_audience = format!("{SERVED_ISSUER}/admin");
    cli(
        &[
            "client",
            "add",
            "app",
            "--public",
            "--grant",
            "password",
            "--audience",
            &admin_audience,
        ],
        None,
    );
    let svc = cli(
        &[
            "client",
            "add",
            "svc",
            "--grant",
            "client_credentials",
            "--can",
            "introspect",
        ],
        None,
    );
    secrets.add("svc's client secret", &svc);
    let (alice_pw, root_pw) = ("alice-Pa55word-7f3k", "root-Pa55word-q9z1");
    secrets.add("alice's password", alice_pw);
    secrets.add("root's password", root_pw);
    cli(
        &["user", "add", "alice", "--password-stdin"],
        Some(&format!("{alice_pw}\n")),
    );
    cli(
        &["user", "add", "root", "--role", "admin", "--password-stdin"],
        Some(&format!("{root_pw}\n")),
    );

    let token = s.url("/token");
    let (st, body) = post(
        &http,
        token.clone(),
        None,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", alice_pw),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (alice_at, alice_rt) = secrets.tokens("alice's", &body);
    let wrong_pw = "wrong-Pa55word-guess-1";
    secrets.add("a wrong password", wrong_pw);
    let (st, _) = post(
        &http,
        token.clone(),
        None,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", wrong_pw),
        ],
    )
    .await;
    assert_eq!(st, 400);
    let (st, body) = post(
        &http,
        token.clone(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", &alice_rt.unwrap()),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, alice_rt2) = secrets.tokens("alice's refreshed", &body);
    let alice_rt2 = alice_rt2.unwrap();
    let (st, body) = post(
        &http,
        token.clone(),
        Some(basic("svc", &svc)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (svc_at, _) = secrets.tokens("svc's", &body);
    let wrong_secret = "wrong-client-secret-guess-0123456789";
    secrets.add("a wrong client secret", wrong_secret);
    let (st, _) = post(
        &http,
        token.clone(),
        Some(basic("svc", wrong_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(st, 401);
    for t in [&alice_at, &alice_rt2, &svc_at] {
        let (st, _) = post(
            &http,
            s.url("/introspect"),
            Some(basic("svc", &svc)),
            &[("token", t)],
        )
        .await;
        assert_eq!(st, 200);
    }
    let (st, body) = post(
        &http,
        token.clone(),
        None,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "root"),
            ("password", root_pw),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (root_at, _) = secrets.tokens("root's", &body);

    // Admin calls, one of them creating a user with a password and a client with a secret.
    let admin_pw = "admin-made-Pa55word-x1";
    secrets.add("a password set through the admin API", admin_pw);
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, s.url(path))
            .bearer_auth(&root_at)
            .header("x-request-id", "hygiene-check-1")
    };
    let r = admin(reqwest::Method::POST, "/admin/users")
        .json(&json!({"username": "carol", "password": admin_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let carol: Value = r.json().await.unwrap();
    let r = admin(reqwest::Method::POST, "/admin/clients")
        .json(&json!({"id": "svc2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let svc2: Value = r.json().await.unwrap();
    secrets.add(
        "svc2's client secret",
        svc2["client_secret"].as_str().unwrap(),
    );
    for path in [
        "/admin/keys".to_string(),
        format!("/admin/users/{}", carol["id"].as_str().unwrap()),
    ] {
        assert_eq!(
            admin(reqwest::Method::GET, &path)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = admin(reqwest::Method::GET, "/userinfo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Key rotation by the CLI (the keys are older than the next key's lead).
    let jwks = || async {
        let r = http.get(s.url("/.well-known/jwks.json")).send().await;
        r.unwrap().text().await.unwrap()
    };
    let jwks_before = jwks().await;
    let (code, _, err) = s.cli(&["keys", "rotate"], None);
    cli_stderr.push_str(&err);
    assert_eq!(code, 0, "keys rotate: {err}");
    let (st, _) = post(
        &http,
        s.url("/revoke"),
        None,
        &[("client_id", "app"), ("token", &alice_rt2)],
    )
    .await;
    assert_eq!(st, 200);
    // Let the server notice the rotation (it re-reads the keys every second): it then
    // publishes the fresh next key.
    eventually(Duration::from_secs(5), || async {
        jwks().await != jwks_before
    })
    .await;

    s.signal("TERM");
    let status = s
        .wait_exit(Duration::from_secs(12))
        .await
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");

    let kek = std::fs::read_to_string(dir.path().join("keys").join("kek")).unwrap();
    secrets.add("the KEK", kek.trim());
    let log = s.log_text();
    for (what, value) in &secrets.0 {
        assert!(!log.contains(value.as_str()), "the server log holds {what}");
        assert!(
            !cli_stderr.contains(value.as_str()),
            "the CLI's stderr holds {what}"
        );
    }
    // Not vacuous: the log has the request lines, with our request id.
    assert!(log.contains("tessera listening"), "{log}");
    assert!(
        log.contains("hygiene-check-1"),
        "request id missing from the log:\n{log}"
    );
    let request_lines = log
        .lines()
        .filter(|l| l.contains("request done") && l.contains("hygiene-check-1"))
        .count();
    assert!(request_lines >= 10, "{request_lines} request lines:\n{log}");
    assert!(log.contains("signing keys reloaded"), "{log}");
    if json_format {
        let mut with_span = 0;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
            if v["span"]["id"] == "hygiene-check-1" {
                assert_eq!(v["span"]["name"], "request", "{line}");
                with_span += 1;
            }
        }
        assert!(
            with_span >= 10,
            "{with_span} lines carry the request span:\n{log}"
        );
    } else {
        assert!(log.contains("request{id=hygiene-check-1"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_log_holds_no_secrets() {
    logs_hold_no_secrets(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_holds_no_secrets_and_parses() {
    logs_hold_no_secrets(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_ends_streams_and_exits_zero() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let env = Served::env_for(&dir, &[]);
    let mut s = Served::start(dir.clone(), env, "server.log").await;
    let secret = s.cli_ok(&["client", "add", "rs", "--can", "events"], None);
    let http = Client::new();
    let r = http
        .post(s.url("/token"))
        .header("authorization", basic("rs", &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rs = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let poll = |wait: u64, after: i64| {
        http.get(s.url(&format!("/events?after={after}&wait={wait}")))
            .bearer_auth(&rs)
            .header("accept", "application/json")
            .send()
    };
    let last = poll(0, 0).await.unwrap().json::<Value>().await.unwrap()["next_after"]
        .as_i64()
        .unwrap();

    let mut sse = http
        .get(s.url("/events"))
        .bearer_auth(&rs)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let long_poll = tokio::spawn(poll(2, last));
    // Let the long-poll reach the server before the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.signal("TERM");

    let r = long_poll
        .await
        .unwrap()
        .expect("the in-flight long-poll is answered");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["events"].is_array() && body["next_after"].is_i64(),
        "{body}"
    );

    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream did not end after SIGTERM");

    let status = s
        .wait_exit(Duration::from_secs(12))
        .await
        .expect("the server exits within 12 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}\n{}", s.log_text());
    let refused = tokio::net::TcpStream::connect(s.socket()).await;
    assert!(refused.is_err(), "still accepting connections after exit");
    assert!(s.log_text().contains("shutting down"));
}
