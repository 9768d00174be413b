//! Key-location headers (`jku`, `x5u`, `jwk`) and the `Authorization: Bearer`
//! grammar (CONFORMANCE 35–36, RFC 6750 §2.1, §3).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::hardening::hardening_jwt::{Signer, assert_accepted, assert_refused, with_header};
use crate::support::*;

/// A listener that counts the connections made to it.
async fn trap() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn key_location_headers_are_ignored_and_never_fetched() {
    let Guarded { app, rs, admin } = Guarded::start().await;
    let (_, claims) = jwt_parts(&admin);
    let server = Signer::server(&app).await;
    let attacker = Signer::attacker();
    let (trap_url, hits) = trap().await;
    let jku = format!("{trap_url}/jwks.json");
    let x5u = format!("{trap_url}/cert.pem");

    // Signed by the server's key: the extra headers are ignored, the token is fine.
    let h = json!({"alg": "ES256", "kid": server.kid, "typ": "at+jwt", "jku": jku, "x5u": x5u});
    assert_accepted(
        &app,
        &rs,
        &server.sign(&h, &claims),
        "jku/x5u on a genuine token",
    )
    .await;

    let mut attacker_jwk = attacker.public_jwk();
    attacker_jwk["kid"] = json!(server.kid);
    let forgeries = [
        (
            "attacker key, embedded jwk, server kid",
            json!({"alg": "ES256", "kid": server.kid, "typ": "at+jwt", "jwk": attacker_jwk}),
        ),
        (
            "attacker key, jku, server kid",
            json!({"alg": "ES256", "kid": server.kid, "typ": "at+jwt", "jku": jku}),
        ),
        (
            "attacker key, jku, own kid",
            json!({"alg": "ES256", "kid": "attacker", "typ": "at+jwt", "jku": jku}),
        ),
        (
            "attacker key, x5u",
            json!({"alg": "ES256", "kid": "attacker", "typ": "at+jwt", "x5u": x5u}),
        ),
        (
            "attacker key, jwk, no kid",
            json!({"alg": "ES256", "typ": "at+jwt", "jwk": attacker.public_jwk()}),
        ),
    ];
    for (what, h) in &forgeries {
        assert_refused(&app, &rs, &attacker.sign(h, &claims), what).await;
    }
    // A genuine token whose header gained a jku: the signature no longer matches.
    let (header, _) = jwt_parts(&admin);
    let mut h = header.clone();
    h["jku"] = json!(jku);
    assert_refused(
        &app,
        &rs,
        &with_header(&admin, &h),
        "jku added to a genuine header",
    )
    .await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the server fetched a key URL"
    );
}

#[tokio::test]
async fn bearer_header_edge_cases() {
    let Guarded { app, admin, .. } = Guarded::start().await;
    let get = |auth: Vec<u8>| {
        app.http
            .get(app.url("/userinfo"))
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(&auth).unwrap(),
            )
            .send()
    };
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let r = get(format!("{scheme} {admin}").into_bytes()).await.unwrap();
        assert_eq!(r.status(), 200, "scheme {scheme}");
    }
    // RFC 6750 §2.1: `"Bearer" 1*SP b64token`.
    let r = get(format!("Bearer  {admin}").into_bytes()).await.unwrap();
    assert_eq!(r.status(), 200, "two spaces before the token");

    let mut bad: Vec<Vec<u8>> = vec![
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer  ".to_vec(),
        format!("Bearer {admin}$").into_bytes(),
        format!("Bearer {admin} extra").into_bytes(),
        format!("Bearer \"{admin}\"").into_bytes(),
        format!("Bearer {admin},").into_bytes(),
        b"Bearer a;b".to_vec(),
    ];
    let mut non_ascii = format!("Bearer {admin}").into_bytes();
    non_ascii.push(0xE9);
    bad.push(non_ascii);
    for auth in bad {
        let shown = String::from_utf8_lossy(&auth).into_owned();
        let r = get(auth).await.unwrap();
        assert_invalid_token(r, &format!("{shown:.60}")).await;
    }
    // Another scheme is no bearer credential at all: a bare challenge (RFC 6750 §3.1).
    for auth in [
        format!("Basic {}", STANDARD.encode("a:b")),
        "Digest x=1".into(),
    ] {
        let r = get(auth.into_bytes()).await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="tessera""#);
    }
}
