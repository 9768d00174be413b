//! Hostile traffic: a few hundred malformed requests, and never a 5xx
//! (DESIGN "Bad input and faults": the protocol's own error, never a 500).

use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder};

use serde_json::json;

use crate::support::*;

const UUID: &str = "00000000-0000-4000-8000-000000000000";
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Sends and asserts the answer is no 5xx; returns the status.
async fn no_5xx(req: RequestBuilder, what: &str) -> u16 {
    let r = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(status < 500, "{what}: {status} {body}");
    status
}

fn route(path: &str) -> String {
    path.replace("{id}", UUID).replace("{sid}", UUID)
}

#[tokio::test]
async fn wrong_methods_on_every_route_are_405() {
    let app = TestApp::spawn().await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    for (method, path) in tessera::http::ROUTES {
        for m in &methods {
            if m.as_str() == *method || tessera::http::ROUTES.contains(&(m.as_str(), *path)) {
                continue;
            }
            let what = format!("{m} {path}");
            let status = no_5xx(app.http.request(m.clone(), app.url(&route(path))), &what).await;
            assert_eq!(status, 405, "{what}");
        }
        for m in [
            Method::OPTIONS,
            Method::TRACE,
            Method::from_bytes(b"BREW").unwrap(),
        ] {
            no_5xx(
                app.http.request(m.clone(), app.url(&route(path))),
                &format!("{m} {path}"),
            )
            .await;
        }
    }
}

#[tokio::test]
async fn random_and_badly_encoded_bodies_get_4xx() {
    let app = TestApp::spawn().await;
    app.client("app", true, &["password"], &[], &[]).await;
    let admin = app.admin_token().await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let form_routes = ["/token", "/introspect", "/revoke"];
    for i in 0..60 {
        let path = form_routes[i % 3];
        let body = rng.bytes(if i % 10 == 0 { 40_000 } else { 600 });
        let req = app
            .http
            .post(app.url(path))
            .header("content-type", FORM)
            .body(body);
        let status = no_5xx(req, &format!("random body #{i} to {path}")).await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let json_routes = [
        (Method::POST, "/admin/users".to_string()),
        (Method::POST, "/admin/clients".to_string()),
        (Method::PUT, format!("/admin/users/{UUID}/roles")),
        (Method::POST, "/admin/keys/rotate".to_string()),
    ];
    for i in 0..60 {
        let (method, path) = &json_routes[i % json_routes.len()];
        let body = rng.bytes(if i % 10 == 0 { 80_000 } else { 600 });
        let req = app
            .with_bearer(method.clone(), path, &admin)
            .header("content-type", "application/json")
            .body(body);
        let status = no_5xx(req, &format!("random JSON #{i} to {method} {path}")).await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let encodings: &[&[u8]] = &[
        b"%",
        b"%%",
        b"%zz=1",
        b"a=%f",
        b"a=%ff",
        b"a=%c3%28",
        b"a=%ed%a0%80",
        b"\xff\xfe=\x00",
        b"grant_type=password&grant_type=password",
        b"=&=&=",
        b"&&&",
        b"grant_type",
        b"a=b=c",
        b"grant_type=%00",
        b"\xef\xbb\xbfgrant_type=password",
        b"grant_type=client_credentials&client_id=%80",
        b"client_id=app&grant_type=password&username=%FF&password=x",
        b";;;",
        b"grant_type=password\r\n",
    ];
    for body in encodings {
        let req = app
            .http
            .post(app.url("/token"))
            .header("content-type", FORM)
            .body(body.to_vec());
        let status = no_5xx(req, &format!("{:?}", String::from_utf8_lossy(body))).await;
        assert!((400..500).contains(&status), "{status}");
    }
    let ctypes: &[&[u8]] = &[
        b"application/json",
        b"text/plain",
        b"multipart/form-data; boundary=x",
        b"",
        b"application/x-www-form-urlencodedX",
        b"application/x-www-form-urlencoded\xff",
        b"application/x-www-form-urlencoded; charset=utf-16",
        b";;;;",
        b"*/*",
    ];
    for ctype in ctypes {
        for path in form_routes {
            let req = app
                .http
                .post(app.url(path))
                .header("content-type", HeaderValue::from_bytes(ctype).unwrap())
                .body("grant_type=client_credentials&client_id=app&token=x");
            no_5xx(
                req,
                &format!("{path} as {:?}", String::from_utf8_lossy(ctype)),
            )
            .await;
        }
        let req = app
            .with_bearer(Method::POST, "/admin/users", &admin)
            .header("content-type", HeaderValue::from_bytes(ctype).unwrap())
            .body(r#"{"username":"x","password":"long enough"}"#);
        no_5xx(
            req,
            &format!("admin as {:?}", String::from_utf8_lossy(ctype)),
        )
        .await;
    }
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn hostile_headers_get_no_5xx() {
    let app = TestApp::with(&[("trusted_proxies", "127.0.0.1")]).await;
    app.client("app", true, &["password"], &[], &[]).await;
    let paths = [
        "/token",
        "/userinfo",
        "/events",
        "/admin/keys",
        "/healthz",
        "/nowhere",
    ];
    let huge = "a".repeat(16 * 1024);
    let mut values: Vec<(&str, Vec<u8>)> = vec![
        ("authorization", format!("Bearer {huge}").into_bytes()),
        ("authorization", format!("Basic {huge}").into_bytes()),
        ("authorization", b"Basic \xff\xfe\xfd".to_vec()),
        ("authorization", b"Bearer \x80abc".to_vec()),
        ("x-request-id", huge.clone().into_bytes()),
        ("x-request-id", b"\xc3\x28".to_vec()),
        ("x-forwarded-for", "1.2.3.4, ".repeat(1600).into_bytes()),
        (
            "x-forwarded-for",
            b"not-an-ip, \xff, 999.1.1.1, ::1".to_vec(),
        ),
        (
            "content-type",
            b"application/x-www-form-urlencoded\xff".to_vec(),
        ),
        ("accept", huge.clone().into_bytes()),
        ("accept", b"text/event-stream\xff".to_vec()),
        ("last-event-id", b"\xff\xff".to_vec()),
        ("last-event-id", b"-1".to_vec()),
        ("last-event-id", b"99999999999999999999999".to_vec()),
        ("cookie", huge.clone().into_bytes()),
        ("user-agent", b"\x01\x7f".iter().map(|b| b | 0x80).collect()),
    ];
    values.push(("x-custom", vec![b'z'; 16 * 1024]));
    for path in paths {
        for (name, value) in &values {
            let req = app
                .http
                .post(app.url(path))
                .header(*name, HeaderValue::from_bytes(value).unwrap())
                .header("content-type", FORM)
                .body("grant_type=password&client_id=app&username=u&password=p");
            no_5xx(req, &format!("POST {path} with a hostile {name}")).await;
            let req = app
                .http
                .get(app.url(path))
                .header(*name, HeaderValue::from_bytes(value).unwrap());
            no_5xx(req, &format!("GET {path} with a hostile {name}")).await;
        }
        // Many headers: within hyper's limit they are served, beyond it refused with a 4xx.
        for count in [90, 200] {
            let mut req = app.http.get(app.url(path));
            for i in 0..count {
                req = req.header(format!("x-h-{i}"), "v");
            }
            match req.send().await {
                Ok(r) => assert!(r.status().as_u16() < 500, "{count} headers: {}", r.status()),
                Err(e) => assert!(count > 100, "{count} headers on {path}: {e}"),
            }
        }
    }
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Control characters (NUL above all: PostgreSQL refuses it in text) in an
/// identifier are the protocol's 400 on every endpoint and both backends.
#[tokio::test]
async fn control_characters_in_identifiers_are_400() {
    let app = TestApp::spawn().await;
    app.client("app", true, &["password"], &[], &[]).await;
    let secret = app.service("rs", &["introspect"]).await;
    let admin = app.admin_token().await;
    // A raw form body (`bad` stays percent-encoded), with a Basic header if given.
    let post = |path: &str, body: String, basic: Option<String>| {
        let mut req = app.http.post(app.url(path)).header("content-type", FORM);
        if let Some(b) = basic {
            req = req.header("authorization", b);
        }
        req.body(body).send()
    };
    for bad in ["al%00ice", "al%01ice", "alice%0A", "%7F", "a%C2%85b"] {
        let body = format!("grant_type=password&client_id=app&username={bad}&password=pw");
        let r = post("/token", body, None).await.unwrap();
        let e = assert_oauth_error(r, 400, "invalid_request").await;
        assert!(e.to_string().contains("`username`"), "{e}");
        for path in ["/token", "/revoke", "/introspect"] {
            let body = format!("grant_type=client_credentials&client_id={bad}&token=x");
            let r = post(path, body, None).await.unwrap();
            let e = assert_oauth_error(r, 400, "invalid_request").await;
            assert!(e.to_string().contains("`client_id`"), "{e}");
            // In the Basic header too (its halves are form-urlencoded).
            let basic = crate::oauth::token::basic_raw(&format!("rs{bad}:{secret}"));
            let body = "grant_type=client_credentials&token=x".to_string();
            let r = post(path, body, Some(basic)).await.unwrap();
            assert_oauth_error(r, 400, "invalid_request").await;
        }
    }
    // The admin API's JSON: a NUL in a username or a client id, or in a path id.
    for (path, body) in [
        (
            "/admin/users",
            json!({"username": "al\u{0}ice", "password": "long enough"}),
        ),
        ("/admin/clients", json!({"id": "cl\u{0}ient"})),
    ] {
        let r = app
            .with_bearer(Method::POST, path, &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    for path in ["/admin/users/al%00ice", "/admin/users/al%00ice/sessions"] {
        let r = app
            .with_bearer(Method::GET, path, &admin)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
    }
}
