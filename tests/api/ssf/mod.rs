//! Shared Signals: tessera as an SSF transmitter, tested against real receivers (an
//! HTTP push endpoint on 127.0.0.1 and a poll loop) that verify every SET with an
//! independent JOSE library (Node `jose`).

pub(crate) mod ssf_bench;
pub(crate) mod ssf_delivery;
pub(crate) mod ssf_enabled;
pub(crate) mod ssf_instances;
pub(crate) mod ssf_management;
pub(crate) mod ssf_push;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use tessera::domain::permissions::Change;

use crate::support::*;

pub(crate) const PUSH: &str = "urn:ietf:rfc:8935";
pub(crate) const POLL: &str = "urn:ietf:rfc:8936";
pub(crate) const CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
pub(crate) const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub(crate) const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub(crate) const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
pub(crate) const ACCOUNT_ENABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
pub(crate) const VERIFICATION: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub(crate) const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
pub(crate) const ALL_EVENTS: [&str; 5] = [
    CLAIMS_CHANGE,
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
];

/// A tessera with a receiver client `rx` (capability `ssf`) and its token.
pub(crate) struct Transmitter {
    pub app: TestApp,
    pub token: String,
}

impl Transmitter {
    /// Insecure push allowed: the test receivers listen on loopback over http.
    pub(crate) async fn start() -> Self {
        Self::with(&[("ssf_allow_insecure_push", "true")]).await
    }

    pub(crate) async fn with(settings: &[(&'static str, &str)]) -> Self {
        let app = TestApp::with(settings).await;
        let secret = app.service("rx", &["ssf"]).await;
        let token = app.client_token("rx", &secret).await;
        Self { app, token }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(&self.app, &self.token, method, path, body).await
    }

    /// Creates a stream; returns its id.
    pub(crate) async fn stream(&self, delivery: Value) -> String {
        let body = json!({"events_requested": ALL_EVENTS, "delivery": delivery});
        let (status, stream) = self.call(Method::POST, "/ssf/stream", Some(body)).await;
        assert_eq!(status, 201, "{stream}");
        stream["stream_id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn poll(&self, stream: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(Method::POST, &format!("/ssf/poll/{stream}"), Some(body))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    pub(crate) async fn set_status(&self, stream: &str, status: &str) {
        let body = json!({"stream_id": stream, "status": status});
        let (code, answer) = self.call(Method::POST, "/ssf/status", Some(body)).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["status"], status);
    }

    pub(crate) async fn status(&self, stream: &str) -> Value {
        let (code, answer) = self
            .call(
                Method::GET,
                &format!("/ssf/status?stream_id={stream}"),
                None,
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        answer
    }

    pub(crate) async fn change(&self, sub: &str, change: Change) {
        self.app
            .core
            .users
            .change_user(&tessera::domain::audit::Actor::cli(), sub, change)
            .await
            .expect("change");
    }

    pub(crate) async fn roles(&self, sub: &str, roles: &[&str]) {
        self.change(
            sub,
            Change::Roles(roles.iter().map(|r| r.to_string()).collect()),
        )
        .await;
    }

    /// Verifies `sets` with jose against the JWKS; their claims, in order.
    pub(crate) async fn verified(&self, sets: Vec<String>) -> Vec<Value> {
        let jwks = self.app.get_json("/.well-known/jwks.json").await;
        let args = json!({"jwks": jwks, "issuer": self.app.addr, "audience": "rx", "sets": sets});
        let out = tokio::task::spawn_blocking(move || {
            crate::browser::sign_in::node("ssf_verify.mjs", &args)
        })
        .await
        .unwrap();
        out["claims"].as_array().unwrap().clone()
    }
}

pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.with_bearer(method, path, token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The event type and body of a SET's claims.
pub(crate) fn event_of(claims: &Value) -> (String, Value) {
    let (t, body) = claims["events"].as_object().unwrap().iter().next().unwrap();
    (t.clone(), body.clone())
}

/// How a [`Receiver`] answers the next push.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Accept,
    Down,
    Reject,
}

/// An RFC 8935 push endpoint on 127.0.0.1: records each SET it accepts with the
/// request's headers, answers 503 while down, 400 `invalid_key` while rejecting.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    pub mode: Arc<Mutex<Mode>>,
    pub attempts: Arc<Mutex<usize>>,
    /// Requests being answered now, and the most there ever were at once.
    pub in_flight: Arc<Mutex<(usize, usize)>>,
    /// How long each answer takes (a slow receiver makes overlapping pushes visible).
    pub latency: Arc<Mutex<Duration>>,
    /// When each accepted SET arrived.
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let rx = Self {
            url,
            got: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            attempts: Arc::default(),
            in_flight: Arc::default(),
            latency: Arc::default(),
            arrivals: Arc::default(),
        };
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    *state.attempts.lock().unwrap() += 1;
                    {
                        let mut f = state.in_flight.lock().unwrap();
                        f.0 += 1;
                        f.1 = f.1.max(f.0);
                    }
                    let latency = *state.latency.lock().unwrap();
                    tokio::time::sleep(latency).await;
                    state.in_flight.lock().unwrap().0 -= 1;
                    let mode = *state.mode.lock().unwrap();
                    match mode {
                        Mode::Down => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
                        Mode::Reject => (
                            StatusCode::BAD_REQUEST,
                            json!({"err": "invalid_key", "description": "unknown kid"}).to_string(),
                        ),
                        Mode::Accept => {
                            state.got.lock().unwrap().push((body, headers));
                            state
                                .arrivals
                                .lock()
                                .unwrap()
                                .push(std::time::Instant::now());
                            (StatusCode::ACCEPTED, String::new())
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        rx
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub(crate) fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub(crate) fn sets(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// Waits until it has accepted `n` SETs.
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> bool {
        eventually(within, || async { self.count() >= n }).await
    }
}
