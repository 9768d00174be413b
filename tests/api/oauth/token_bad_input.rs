//! `POST /token` with malformed, oversized and random input: always the protocol's own
//! JSON error (RFC 6749 §5.2), never a 5xx.

use reqwest::{Response, header};
use serde_json::Value;

use crate::oauth::token::{FORM, basic_raw, post_raw};
use crate::support::*;

/// Asserts a 4xx JSON error with the no-store headers; returns status and body.
async fn assert_json_4xx(r: Response, what: &str) -> (u16, Value) {
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "{what}: status {status}, body {text}"
    );
    assert_no_store_json(&h, &format!("{what}: {text}"));
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn malformed_percent_encoding_is_invalid_request() {
    let Grants { app, .. } = Grants::start().await;
    for body in [
        "grant_type=password&client_id=app&username=alice&password=%zz",
        "grant_type=password&client_id=app&username=alice%4",
        "grant_type%zz=password&client_id=app",
        "grant_type=client_credentials&client_id=%",
        "grant_type=client_credentials&client_id=app%G1",
    ] {
        let r = post_raw(&app, Some(FORM), body).await;
        let body = assert_oauth_error(r, 400, "invalid_request").await;
        assert_eq!(body["error_description"], "malformed form encoding");
    }
}

#[tokio::test]
async fn invalid_utf8_is_invalid_request() {
    let Grants { app, .. } = Grants::start().await;
    let encoded = "grant_type=password&client_id=app&username=%ff%fe&password=x";
    assert_oauth_error(
        post_raw(&app, Some(FORM), encoded).await,
        400,
        "invalid_request",
    )
    .await;
    let mut raw = b"grant_type=password&client_id=app&username=".to_vec();
    raw.extend_from_slice(&[0xc3, 0x28, 0xff, 0x80]);
    raw.extend_from_slice(b"&password=12345678");
    assert_oauth_error(
        post_raw(&app, Some(FORM), raw).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_content_type_is_invalid_request() {
    let Grants { app, .. } = Grants::start().await;
    let json = r#"{"grant_type":"password","client_id":"app","username":"alice","password":"correct horse battery"}"#;
    let form =
        format!("grant_type=password&client_id=app&username={USER}&password=correct+horse+battery");
    let cases = [
        (Some("application/json"), json.to_string()),
        (Some("application/json"), form.clone()),
        (Some("text/plain"), form.clone()),
        (Some("multipart/form-data; boundary=x"), form.clone()),
        (Some("application/x-www-form-urlencodedx"), form.clone()),
        (None, form.clone()),
    ];
    for (ctype, body) in cases {
        let r = post_raw(&app, ctype, body).await;
        let body = assert_oauth_error(r, 400, "invalid_request").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("content type"),
            "{ctype:?}"
        );
    }
    // Parameters on the media type and its case do not matter.
    for ctype in [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
    ] {
        let r = post_raw(&app, Some(ctype), form.clone()).await;
        assert_eq!(r.status(), 200, "{ctype}");
    }
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_json() {
    let Grants { app, .. } = Grants::start().await;
    let huge = format!(
        "grant_type=password&client_id=app&username={}",
        "a".repeat(2 * 1024 * 1024)
    );
    let r = post_raw(&app, Some(FORM), huge).await;
    let body = assert_oauth_error(r, 413, "invalid_request").await;
    assert_eq!(body["error_description"], "request body too large");
    // The limit is exactly 16 KiB: one byte more is refused, the limit itself is parsed.
    let filler = |n: usize| {
        format!(
            "grant_type=client_credentials&client_id=app&pad={}",
            "p".repeat(n)
        )
    };
    let base = filler(0).len();
    let over = post_raw(&app, Some(FORM), filler(16 * 1024 - base + 1)).await;
    assert_oauth_error(over, 413, "invalid_request").await;
    let at = post_raw(&app, Some(FORM), filler(16 * 1024 - base)).await;
    assert_oauth_error(at, 401, "invalid_client").await;
}

#[tokio::test]
async fn ten_kilobyte_fields_get_ordinary_errors() {
    let Grants { app, secret, .. } = Grants::start().await;
    let long = "x".repeat(10 * 1024);
    let login = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", &long),
        ("password", PASSWORD),
    ];
    assert_oauth_error(app.token(&login).await, 400, "invalid_grant").await;
    let password = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("username", USER),
        ("password", &long),
    ];
    assert_oauth_error(app.token(&password).await, 400, "invalid_grant").await;
    let scope = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", &secret),
        ("scope", &long),
    ];
    assert_oauth_error(app.token(&scope).await, 400, "invalid_scope").await;
    let client = [
        ("grant_type", "client_credentials"),
        ("client_id", &long),
        ("client_secret", "x"),
    ];
    assert_oauth_error(app.token(&client).await, 401, "invalid_client").await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", &long),
    ];
    assert_oauth_error(app.token(&refresh).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_invalid_client() {
    let Grants { app, .. } = Grants::start().await;
    let headers = [
        "Basic !!!".to_string(),
        "Basic".to_string(),
        "Bearer abc".to_string(),
        basic_raw("no-colon"),
        basic_raw(":secret"),
        basic_raw("svc%zz:secret"),
        format!("Basic {}", "A".repeat(5000)),
    ];
    for auth in headers {
        let r = app
            .http
            .post(app.url("/token"))
            .header(header::AUTHORIZATION, &auth)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["www-authenticate"],
            crate::oauth::token::CHALLENGE,
            "{auth}"
        );
        assert_oauth_error(r, 401, "invalid_client").await;
    }
}

/// xorshift64*: reproducible "random" input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn random_bodies_never_get_a_5xx() {
    let Grants { app, .. } = Grants::start().await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Raw bytes, and bodies built from the form's own syntax so that the parser is reached deeply.
    let alphabet: &[&[u8]] = &[
        b"grant_type",
        b"password",
        b"refresh_token",
        b"client_credentials",
        b"client_id",
        b"app",
        b"svc",
        b"username",
        b"alice",
        b"scope",
        b"read",
        b"resource",
        b"client_secret",
        b"=",
        b"&",
        b"%",
        b"%2",
        b"%41",
        b"%ff",
        b"%00",
        b"+",
        b" ",
        b"\xff",
        b"\xc3",
        b"\0",
        b";",
    ];
    let ctypes = [
        Some(FORM),
        Some("application/json"),
        None,
        Some("application/x-www-form-urlencoded; charset=latin1"),
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        let len = rng.below(200);
        let body: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            (0..len / 4)
                .flat_map(|_| alphabet[rng.below(alphabet.len())].to_vec())
                .collect()
        };
        let ctype = if i % 3 == 0 {
            ctypes[rng.below(ctypes.len())]
        } else {
            Some(FORM)
        };
        let what = format!("case {i} ({ctype:?}): {}", String::from_utf8_lossy(&body));
        let (status, body) = assert_json_4xx(post_raw(&app, ctype, body).await, &what).await;
        *statuses
            .entry((status, body["error"].as_str().unwrap().to_string()))
            .or_insert(0) += 1;
    }
    // The generator reached beyond the first check.
    assert!(statuses.len() >= 2, "{statuses:?}");
}
