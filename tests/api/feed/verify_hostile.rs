//! Hostile tokens against tessera-verify (CONFORMANCE 31–36): each differs from an
//! accepted token in exactly the property under test, and an unknown-kid flood
//! costs the issuer at most one JWKS fetch per interval. A feed that leaves a stream
//! request unanswered, or ends each stream as soon as it opens, costs the verifier a
//! bounded wait and a backoff, never a stall or a hot loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use tessera_verify::{Rejection, Settings, Verifier};

use crate::feed::verify_feed::{AUD, rig};
use crate::hardening::hardening_jwt::{Signer, hs256};
use crate::support::*;

#[tokio::test]
async fn verify_refuses_forged_and_mistyped_tokens() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (genuine, _) = rig.login().await;
    v.verify(&genuine).await.expect("the genuine token");
    let (header, claims) = jwt_parts(&genuine);
    let kid = header["kid"].as_str().unwrap().to_string();
    let payload = genuine.split('.').nth(1).unwrap();
    let invalid = |why| Err(Rejection::Invalid(why));

    for alg in ["none", "None"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let token = format!("{}.{payload}.", B64.encode(h.to_string()));
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("malformed"),
            "alg {alg}"
        );
    }
    // HS256 keyed with the public key (its JWK and its point).
    let jwks = rig.app.get_json("/.well-known/jwks.json").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let point = [
        vec![4u8],
        B64.decode(jwk["x"].as_str().unwrap()).unwrap(),
        B64.decode(jwk["y"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    for secret in [jwk.to_string().into_bytes(), point] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
        let token = hs256(&secret, &h, &claims);
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("alg does not match the key")
        );
    }

    let server = Signer::server(&rig.app).await;
    let sign = |header: serde_json::Value, claims: serde_json::Value| server.sign(&header, &claims);
    let ok_header = server.header();
    // typ: missing or plain JWT refused; at+jwt in any case, with or without application/.
    for typ in [None, Some("JWT"), Some("jwt")] {
        let mut h = ok_header.clone();
        match typ {
            Some(t) => h["typ"] = json!(t),
            None => drop(h.as_object_mut().unwrap().remove("typ")),
        }
        let token = sign(h, claims.clone());
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("typ must be at+jwt"),
            "{typ:?}"
        );
    }
    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        let mut h = ok_header.clone();
        h["typ"] = json!(typ);
        v.verify(&sign(h, claims.clone())).await.expect(typ);
    }
    // jku, x5u and jwk headers are never followed: the attacker's key does not verify.
    let attacker = Signer::attacker();
    let mut h = attacker.header();
    h["kid"] = json!(kid);
    h["jwk"] = attacker.public_jwk();
    h["jku"] = json!("http://127.0.0.1:1/jwks.json");
    h["x5u"] = json!("http://127.0.0.1:1/cert.pem");
    let token = attacker.sign(&h, &claims);
    assert_eq!(v.verify(&token).await.map(|_| ()), invalid("bad signature"));
    // Genuine signature, wrong claims.
    let mut c = claims.clone();
    c["iss"] = json!(format!("{}/", rig.app.addr));
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("wrong issuer")
    );
    let mut c = claims.clone();
    c["aud"] = json!(["https://other.example"]);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("wrong audience")
    );
    let mut c = claims.clone();
    c["aud"] = json!(["https://other.example", AUD]);
    v.verify(&sign(ok_header.clone(), c))
        .await
        .expect("aud includes ours");
    let now = rig.app.core.clock.now();
    let mut c = claims.clone();
    c["exp"] = json!(now - 10);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.err(),
        Some(Rejection::Expired)
    );
    let mut c = claims.clone();
    c["exp"] = json!(now - 3); // within the leeway
    v.verify(&sign(ok_header.clone(), c))
        .await
        .expect("within the leeway");
    let mut c = claims.clone();
    c["iat"] = json!(now + 60);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("issued in the future")
    );
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove("jti");
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("claims missing or malformed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_an_unknown_kid_flood_fetches_the_jwks_at_most_once_per_interval() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (genuine, _) = rig.login().await;
    let before = v.health().jwks_fetches;
    let attacker = Signer::attacker();
    let claims = jwt_parts(&genuine).1;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let mut h = attacker.header();
            h["kid"] = json!(format!("random-{i}"));
            let token = attacker.sign(&h, &claims);
            let v = v.clone();
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().err(),
            Some(Rejection::Invalid("unknown key"))
        );
    }
    let fetched = v.health().jwks_fetches - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 200 unknown kids");
    v.verify(&genuine)
        .await
        .expect("the genuine token still verifies");
}

/// An issuer that accepts a stream request and never answers it (a stalled issuer, or a
/// proxy in between): the verifier gives the attempt up after its head timeout (10 s) and
/// tries again, rather than waiting on it for ever. Real time: the timeout is a constant
/// of the crate, so this test takes about 10 s.
#[tokio::test]
async fn verify_gives_up_a_stream_request_the_feed_never_answers_and_retries() {
    let fake = FakeIssuer::start(StreamAnswer::Never).await;
    let v = fake.verifier().await;
    let retried = eventually(Duration::from_secs(15), || async {
        fake.stream_requests().len() >= 2
    })
    .await;
    let requests = fake.stream_requests();
    assert!(retried, "{} stream requests in 15 s", requests.len());
    // Not before the head timeout (less a margin for the first request's way there).
    let waited = requests[1] - requests[0];
    assert!(
        waited >= Duration::from_millis(9_500),
        "retried after {waited:?}"
    );
    let h = v.health();
    assert!(!h.connected && h.connections == 0, "{h:?}");
}

/// An issuer that answers each stream request 200 and ends the stream at once: a stream
/// that ends within a second of opening counts as a failure, so the verifier backs off
/// (100 ms doubling) instead of reconnecting in a loop (hundreds a second).
#[tokio::test]
async fn verify_backs_off_from_a_feed_that_ends_each_stream_at_once() {
    let fake = FakeIssuer::start(StreamAnswer::EndAtOnce).await;
    let v = fake.verifier().await;
    let reconnected = eventually(Duration::from_secs(5), || async {
        v.health().connections >= 2
    })
    .await;
    assert!(reconnected, "{:?}", v.health());
    let before = fake.stream_requests().len();
    // A window to count attempts in, not a readiness wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = fake.stream_requests().len() - before;
    // Backoff from 100 ms doubling: at most about five in two seconds; a loop is hundreds.
    assert!(attempts <= 10, "{attempts} stream requests in 2 s");
}

/// A stand-in issuer for what tessera never does with a stream request: its metadata, a
/// token for any client, an empty key set and an empty log (the verifier's catch-up), and
/// a stream request answered as `answer` says, each one's arrival recorded.
struct FakeIssuer {
    url: String,
    streams: Arc<Mutex<Vec<Instant>>>,
}

#[derive(Clone, Copy)]
enum StreamAnswer {
    /// No response head, ever.
    Never,
    /// 200 and an SSE head, then the end of the body.
    EndAtOnce,
}

impl FakeIssuer {
    async fn start(answer: StreamAnswer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let meta = json!({
            "issuer": url,
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
            "tessera_events_endpoint": format!("{url}/events"),
            "tessera_access_token_max_ttl": 300,
        });
        let streams = Arc::new(Mutex::new(Vec::new()));
        let seen = streams.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { axum::Json(meta) }),
            )
            .route("/jwks", get(|| async { axum::Json(json!({ "keys": [] })) }))
            .route(
                "/token",
                post(|| async {
                    axum::Json(json!({
                        "access_token": "fake",
                        "token_type": "Bearer",
                        "expires_in": 300,
                    }))
                }),
            )
            .route(
                "/events",
                get(move |headers: HeaderMap| fake_events(answer, seen.clone(), headers)),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, streams }
    }

    /// A verifier of it that has caught up.
    async fn verifier(&self) -> Verifier {
        let v = Verifier::start(Settings::new(self.url.clone(), AUD, "rs", "secret"))
            .await
            .expect("verifier starts");
        assert!(v.ready(Duration::from_secs(5)).await, "{:?}", v.health());
        v
    }

    /// When each stream request arrived.
    fn stream_requests(&self) -> Vec<Instant> {
        self.streams.lock().unwrap().clone()
    }
}

async fn fake_events(
    answer: StreamAnswer,
    streams: Arc<Mutex<Vec<Instant>>>,
    headers: HeaderMap,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .is_some_and(|a| a == "text/event-stream");
    if !sse {
        return axum::Json(json!({ "events": [], "next_after": 0 })).into_response();
    }
    streams.lock().unwrap().push(Instant::now());
    match answer {
        StreamAnswer::Never => std::future::pending().await,
        StreamAnswer::EndAtOnce => {
            ([(header::CONTENT_TYPE, "text/event-stream")], "").into_response()
        }
    }
}
