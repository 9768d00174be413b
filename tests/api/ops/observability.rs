//! `/metrics`, `/readyz` and request ids.

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::oauth::token::basic;
use crate::support::*;

/// The value of one series line (`name{labels} value`), if present.
fn series(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_tokens_errors_reuse_and_latency() {
    let app = TestApp::with(&[("refresh_reuse_grace", "0")]).await;
    let secret = app
        .client("svc", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    app.client("app", true, &["password"], &[], &[]).await;
    app.user("alice", PASSWORD, &[]).await;

    let r = app.http.get(app.ops_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(
        ctype, "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "OpenMetrics text, which Prometheus scrapes"
    );
    let before = r.text().await.unwrap();
    assert_eq!(
        series(&before, "tessera_refresh_reuse_total"),
        Some(0.0),
        "{before}"
    );

    // One /token request each: client_credentials, a failed login, a login, a refresh, a reuse.
    let r = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic("svc", &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let login = app.login("app", "alice", PASSWORD).await;
    let rt = login["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh("app", rt).await.status(), 200);
    assert_eq!(app.refresh("app", rt).await.status(), 400, "reuse");

    let text = app.metrics().await;
    let expect = [
        (
            "tessera_tokens_issued_total{grant=\"client_credentials\",client=\"svc\"}",
            1.0,
        ),
        (
            "tessera_tokens_issued_total{grant=\"password\",client=\"app\"}",
            1.0,
        ),
        (
            "tessera_tokens_issued_total{grant=\"refresh_token\",client=\"app\"}",
            1.0,
        ),
        // The wrong password and the reuse.
        (
            "tessera_oauth_errors_total{endpoint=\"token\",error=\"invalid_grant\"}",
            2.0,
        ),
        ("tessera_refresh_reuse_total", 1.0),
        (
            "tessera_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/token\"}",
            5.0,
        ),
        (
            "tessera_http_request_duration_seconds_count{route=\"/token\"}",
            5.0,
        ),
        (
            "tessera_http_responses_total{route=\"/token\",class=\"2xx\"}",
            3.0,
        ),
        (
            "tessera_http_responses_total{route=\"/token\",class=\"4xx\"}",
            2.0,
        ),
    ];
    for (line, value) in expect {
        assert_eq!(series(&text, line), Some(value), "{line} in\n{text}");
    }
    // Buckets are cumulative and end at the count.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("tessera_http_request_duration_seconds_bucket{")
                && l.contains("route=\"/token\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 13, "{text}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(text.contains("# TYPE tessera_http_request_duration_seconds histogram"));
    // OpenMetrics names the counter family without `_total`; its samples keep it.
    assert!(text.contains("# TYPE tessera_tokens_issued counter"));
    assert!(text.ends_with("# EOF\n"), "{text}");
    // No secret or token ever reaches the metrics.
    assert!(!text.contains(&secret) && !text.contains(rt));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let requests = [
        app.http.get(app.url("/healthz")),
        app.http.get(app.url("/nowhere")),
        app.http.delete(app.url("/token")),
        app.http.get(app.url("/userinfo")),
        app.with_bearer(Method::GET, "/admin/keys", "garbage"),
        app.http.post(app.url("/token")).body("x"),
        app.http.get(app.url("/.well-known/jwks.json")),
        app.http.get(app.url("/metrics")),
        app.http.get(app.url("/events")),
    ];
    let mut ids = std::collections::HashSet::new();
    for req in requests {
        let r = req.send().await.unwrap();
        let id = r
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {} {}", r.url(), r.status()))
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        assert!(ids.insert(id), "request ids repeat");
    }
}

#[tokio::test]
async fn sane_request_ids_are_echoed_and_hostile_ones_replaced() {
    let app = TestApp::spawn().await;
    let send = |id: HeaderValue| {
        app.http
            .get(app.url("/healthz"))
            .header("x-request-id", id)
            .send()
    };
    for sane in ["abc-123_XYZ", "a", &"z".repeat(64)] {
        let r = send(HeaderValue::from_str(sane).unwrap()).await.unwrap();
        assert_eq!(r.headers()["x-request-id"], sane);
    }
    let hostile: Vec<Vec<u8>> = vec![
        "z".repeat(65).into_bytes(),
        "a".repeat(4096).into_bytes(),
        b"has spaces in it".to_vec(),
        b"semi;colon".to_vec(),
        b"../../etc/passwd".to_vec(),
        b"quote\"d".to_vec(),
        b"id\ttab".to_vec(),
        b"caf\xc3\xa9".to_vec(),
        b"\xff\xfe".to_vec(),
        b"%0d%0aSet-Cookie: x=1".to_vec(),
    ];
    for value in hostile {
        let r = send(HeaderValue::from_bytes(&value).unwrap())
            .await
            .unwrap();
        let echoed = r.headers()["x-request-id"].as_bytes().to_vec();
        assert_ne!(
            echoed,
            value,
            "{:?} echoed",
            String::from_utf8_lossy(&value)
        );
        assert_eq!(echoed.len(), 22, "a generated id replaces it");
    }
}

#[tokio::test]
async fn readyz_reports_the_database() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "database": "ok"}));
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
