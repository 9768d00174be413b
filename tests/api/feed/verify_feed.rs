//! tessera-verify against a real tessera: each kind of change is refused within a
//! second of the admin call (bounded generously here; the figures are in the
//! benchmarks), across restarts, cold starts, outages and token renewals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::json;
use tessera_verify::{Rejection, Settings, StalePolicy, Verifier};

use crate::keys::keys_instances::Instance;
use crate::support::*;

pub(crate) const AUD: &str = "https://api.example";
/// A generous bound on "within a second": the assertion is about the event path, not speed.
const WITHIN: Duration = Duration::from_secs(5);

pub(crate) struct Rig {
    pub app: TestApp,
    pub admin: String,
    pub secret: String,
    pub alice: String,
}

/// An app with public client `app`, user alice (role `reader`), an admin, and
/// service `rs` (capabilities events and introspect).
pub(crate) async fn rig(extra: &[(&'static str, &str)]) -> Rig {
    let app = TestApp::with(extra).await;
    let secret = app.service("rs", &["events", "introspect"]).await;
    app.client("app", true, &["password"], &[], &[]).await;
    let admin = app.admin_token().await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    Rig {
        app,
        admin,
        secret,
        alice,
    }
}

impl Rig {
    pub(crate) fn settings(&self) -> Settings {
        Settings::new(self.app.addr.clone(), AUD, "rs", self.secret.clone())
    }

    pub(crate) async fn verifier(&self) -> Verifier {
        start(self.settings()).await
    }

    /// alice's access token and sid.
    pub(crate) async fn login(&self) -> (String, String) {
        let body = self.app.login("app", "alice", PASSWORD).await;
        let token = body["access_token"].as_str().unwrap().to_string();
        let sid = jwt_parts(&token).1["sid"].as_str().unwrap().to_string();
        (token, sid)
    }

    pub(crate) async fn set_roles(&self, roles: &[&str]) {
        let r = self
            .app
            .with_bearer(
                Method::PUT,
                &format!("/admin/users/{}/roles", self.alice),
                &self.admin,
            )
            .json(&json!({ "roles": roles }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Stops the issuer, runs `offline` against it while it is down, and starts it
    /// again on the same address (a verifier following it reconnects).
    pub(crate) async fn restart_after(self, offline: impl AsyncFnOnce(&TestApp)) -> Rig {
        let Rig {
            mut app,
            admin,
            secret,
            alice,
        } = self;
        app.shutdown().await;
        offline(&app).await;
        let app = app.restart_in_place().await;
        Rig {
            app,
            admin,
            secret,
            alice,
        }
    }

    /// The newest event id in the log.
    pub(crate) async fn last_event(&self) -> i64 {
        tessera::store::events::last_id(&self.app.core.db.read)
            .await
            .unwrap()
    }
}

pub(crate) async fn start(settings: Settings) -> Verifier {
    let v = Verifier::start(settings).await.expect("verifier starts");
    assert!(v.ready(WITHIN).await, "caught up: {:?}", v.health());
    v
}

/// Polls until `token` is refused; returns why. Panics if it is still accepted after `WITHIN`.
pub(crate) async fn refused(v: &Verifier, token: &str) -> Rejection {
    let deadline = Instant::now() + WITHIN;
    loop {
        match v.verify(token).await {
            Err(r) => return r,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "still accepted: {:?}",
                v.health()
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn verify_a_role_change_is_refused_as_roles_changed() {
    let rig = rig(&[("permission_change_policy", "reissue")]).await;
    let v = rig.verifier().await;
    let (token, _) = rig.login().await;
    let claims = v.verify(&token).await.expect("fresh token accepted");
    assert_eq!(
        (claims.sub.as_str(), claims.roles.clone()),
        (rig.alice.as_str(), vec!["reader".to_string()])
    );
    rig.set_roles(&["writer"]).await;
    assert_eq!(refused(&v, &token).await, Rejection::RolesChanged);
    assert_eq!(
        Rejection::RolesChanged.description(),
        "roles changed: refresh"
    );
    // A token minted after the change carries the new ver and is accepted.
    let (fresh, _) = rig.login().await;
    assert_eq!(
        v.verify(&fresh).await.unwrap().roles,
        vec!["writer".to_string()]
    );
}

#[tokio::test]
async fn verify_a_session_revocation_is_refused_as_session_revoked() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (token, sid) = rig.login().await;
    let (other, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    let r = rig
        .app
        .with_bearer(
            Method::DELETE,
            &format!("/admin/sessions/{sid}"),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let why = refused(&v, &token).await;
    assert_eq!(why, Rejection::SessionRevoked);
    assert_eq!(why.description(), "session revoked: sign in again");
    // Only that session.
    v.verify(&other)
        .await
        .expect("another session of the same user");
}

#[tokio::test]
async fn verify_a_disabled_user_is_refused() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    let r = rig
        .app
        .with_bearer(
            Method::POST,
            &format!("/admin/users/{}/disable", rig.alice),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(refused(&v, &token).await, Rejection::UserDisabled);
}

#[tokio::test]
async fn verify_an_emergency_key_revocation_refuses_the_keys_tokens() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    let r = rig
        .app
        .with_bearer(Method::POST, "/admin/keys/rotate", &rig.admin)
        .json(&json!({"revoke_current": true}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(refused(&v, &token).await, Rejection::KeyRevoked);
    // The new active key was published ahead: its tokens verify.
    let (fresh, _) = rig.login().await;
    v.verify(&fresh).await.expect("a token of the new key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_resumes_after_an_issuer_restart_with_no_event_lost() {
    let rig = rig(&[("permission_change_policy", "reissue")]).await;
    let v = rig.verifier().await;
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    // A change while the issuer is down (the CLI writes the database directly).
    let rig = rig
        .restart_after(async |app| {
            let (code, _, err) = app.cli(&["user", "roles", "alice", "--set", "writer"], None);
            assert_eq!(code, 0, "{err}");
        })
        .await;
    assert_eq!(refused(&v, &token).await, Rejection::RolesChanged);
    let last = rig.last_event().await;
    let caught_up = eventually(WITHIN, || async { v.health().last_event_id == Some(last) }).await;
    assert!(caught_up, "{:?} vs {last}", v.health());
    assert!(v.health().connections >= 2, "{:?}", v.health());
}

/// Rewinds the event log to `last` as a restore from an older backup would: the newer
/// events gone, and the id sequence back at `last`, so the next event reuses ids the
/// verifier has already seen.
async fn restore_log_to(app: &TestApp, last: i64) {
    let pool = crate::sql::connect(&app.settings["database_url"]).await;
    crate::sql::exec(
        &pool,
        "DELETE FROM security_events WHERE id > $1",
        &[last.into()],
    )
    .await;
    let rewind = if on_postgres() {
        "SELECT setval(pg_get_serial_sequence('security_events', 'id'), $1)"
    } else {
        "UPDATE sqlite_sequence SET seq = $1 WHERE name = 'security_events'"
    };
    crate::sql::exec(&pool, rewind, &[last.into()]).await;
    crate::sql::close(pool).await;
}

/// After the issuer's database is restored from an older backup, the verifier's last
/// event id is past the newest event: the feed answers 410, the verifier catches up
/// again from the log, and a change made after the restore (whose id the verifier saw
/// once already, for another event) is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_follows_the_feed_after_a_restore_from_an_older_backup() {
    let rig = rig(&[("permission_change_policy", "reissue")]).await;
    let v = rig.verifier().await;
    rig.set_roles(&["a"]).await;
    let backup = rig.last_event().await;
    rig.set_roles(&["b"]).await;
    rig.set_roles(&["reader"]).await;
    let seen = rig.last_event().await;
    let caught_up = eventually(WITHIN, || async { v.health().last_event_id == Some(seen) }).await;
    assert!(caught_up, "{:?} vs {seen}", v.health());
    let (token, _) = rig.login().await;
    v.verify(&token)
        .await
        .expect("a token of the current version");
    let rig = rig
        .restart_after(async |app| restore_log_to(app, backup).await)
        .await;
    rig.set_roles(&["writer"]).await;
    let newest = rig.last_event().await;
    assert!(
        newest <= seen,
        "the restored log reuses ids: {newest} vs {seen}"
    );
    assert_eq!(refused(&v, &token).await, Rejection::RolesChanged);
    let resumed = eventually(WITHIN, || async {
        v.health().last_event_id == Some(newest)
    })
    .await;
    assert!(resumed, "{:?} vs {newest}", v.health());
}

#[tokio::test]
async fn verify_a_cold_start_honours_an_earlier_change() {
    let rig = rig(&[]).await;
    let (revoked, sid) = rig.login().await;
    let (kept, _) = rig.login().await;
    let r = rig
        .app
        .with_bearer(
            Method::DELETE,
            &format!("/admin/sessions/{sid}"),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Started after the change: the catch-up (`since` one token lifetime) delivers it.
    let v = rig.verifier().await;
    assert_eq!(
        v.verify(&revoked).await.err(),
        Some(Rejection::SessionRevoked)
    );
    v.verify(&kept).await.expect("the other session");
}

#[tokio::test]
async fn verify_applies_the_staleness_policy_when_the_feed_goes_away() {
    let mut rig = rig(&[]).await;
    let (token, _) = rig.login().await;
    let budget = Duration::from_millis(500);
    let mut refuse = rig.settings();
    refuse.max_staleness = budget;
    let mut accept = refuse.clone();
    accept.policy = StalePolicy::Accept;
    let (refuse, accept) = (start(refuse).await, start(accept).await);
    assert!(refuse.verify(&token).await.is_ok());
    rig.app.shutdown().await;
    let stale = eventually(WITHIN, || async {
        refuse.health().stale && accept.health().stale
    })
    .await;
    assert!(stale, "{:?}", refuse.health());
    let h = refuse.health();
    assert!(!h.connected && h.lag.unwrap() > budget, "{h:?}");
    let why = refuse.verify(&token).await.unwrap_err();
    assert_eq!(why, Rejection::StateUnknown);
    assert_eq!(
        why.description(),
        "authorization state unknown: try again later"
    );
    accept
        .verify(&token)
        .await
        .expect("the accept policy accepts");
}

#[tokio::test]
async fn verify_falls_back_to_introspection_when_the_feed_is_unreachable() {
    let rig = rig(&[]).await;
    let (token, sid) = rig.login().await;
    let mut s = rig.settings();
    s.policy = StalePolicy::Introspect;
    s.introspect_cache = Duration::ZERO;
    // A feed that cannot be reached: the verifier never catches up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.events_endpoint = Some(format!("http://{}/events", closed.local_addr().unwrap()));
    drop(closed);
    let v = Verifier::start(s).await.unwrap();
    assert!(v.health().stale);
    v.verify(&token).await.expect("introspection says active");
    rig.app
        .with_bearer(
            Method::DELETE,
            &format!("/admin/sessions/{sid}"),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(v.verify(&token).await.err(), Some(Rejection::Inactive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_renews_its_own_token_and_its_stream_without_losing_events() {
    // Two-second tokens: the verifier's own expires several times during the test.
    let rig = rig(&[
        ("access_token_ttl", "2"),
        ("permission_change_policy", "reissue"),
    ])
    .await;
    let v = rig.verifier().await;
    for round in 0..3 {
        let before = v.health().connections;
        // Until the stream has been renewed, it must never count as stale.
        let deadline = Instant::now() + WITHIN;
        while v.health().connections <= before {
            assert!(!v.health().stale, "round {round}: {:?}", v.health());
            assert!(Instant::now() < deadline, "round {round}: never renewed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (token, _) = rig.login().await;
        v.verify(&token).await.expect("accepted");
        // The admin's token has expired too: the CLI makes the change.
        let (code, _, err) = rig.app.cli(
            &["user", "roles", "alice", "--set", &format!("r{round}")],
            None,
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            refused(&v, &token).await,
            Rejection::RolesChanged,
            "round {round}"
        );
    }
    assert_eq!(v.health().last_event_id, Some(rig.last_event().await));
}

/// The issuer ends a stream when its token expires, and that may be up to a second sooner
/// than `expires_in` after the token was asked for (its `exp` is its clock cut to the
/// second). Each change here is made around that moment for the verifier's newest stream, a
/// little earlier or later each round: it is refused within a second, and the verifier is
/// never without an open stream, because it opens the next one ahead of that moment and
/// closes the old one only once the issuer has accepted the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_a_change_as_its_own_token_expires_is_refused_within_a_second_and_no_stream_gap() {
    // Two-second tokens: the verifier's own expires every round.
    let (rig, watch, v) = watched("2").await;
    for (round, offset_ms) in [-100i64, 0, 50, 100, 200, 300].into_iter().enumerate() {
        let (token, _) = rig.login().await;
        v.verify(&token).await.expect("accepted");
        // The admin's token lives two seconds too: a fresh one for each change.
        let admin = fresh_admin_token(&rig.app).await;
        // The moment aimed at, on the issuer's clock: the newest stream's `exp`, and offset.
        let mut aim = Duration::ZERO;
        let ahead = eventually(WITHIN, || {
            let exp = watch.streams().exps.last().copied().unwrap_or(0);
            aim = Duration::from_millis((exp * 1000 + offset_ms) as u64);
            let ahead = aim > rig.app.core.clock.wall();
            async move { ahead }
        })
        .await;
        assert!(ahead, "round {round}: no stream to aim at");
        tokio::time::sleep(aim.saturating_sub(rig.app.core.clock.wall())).await;
        set_roles_as(&rig, &admin, &[&format!("r{round}")]).await;
        let changed = Instant::now();
        let why = refused(&v, &token).await;
        let took = changed.elapsed();
        assert_eq!(why, Rejection::RolesChanged, "round {round}");
        assert!(
            took < Duration::from_secs(1),
            "round {round}: a change {offset_ms} ms from the stream's end refused after {took:?}"
        );
        eprintln!(
            "round {round}: a change {offset_ms} ms from the stream's end refused after {took:?}"
        );
    }
    let streams = watch.streams();
    assert!(
        streams.exps.len() >= 4,
        "{} streams: the token was not renewed",
        streams.exps.len()
    );
    assert_eq!(
        streams.gaps,
        Vec::<Duration>::new(),
        "moments without an open stream between two streams"
    );
    assert_eq!(v.health().last_event_id, Some(rig.last_event().await));
}

/// When the next stream cannot be opened at renewal time (the issuer answers 503), the
/// verifier keeps reading the current one and retries with backoff, so it is never
/// without a stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_keeps_its_stream_while_the_next_cannot_be_opened() {
    // Four-second tokens: the next stream is due 1.5 s after the token was asked for,
    // which may expire 3 s after; two failures back off 100-200 and 200-400 ms.
    let (rig, watch, v) = watched("4").await;
    let first = eventually(WITHIN, || async { watch.streams().exps.len() == 1 }).await;
    assert!(first, "{:?} {:?}", watch.streams(), v.health());
    watch.refuse_next(2);
    let renewed = eventually(WITHIN, || async {
        let s = watch.streams();
        s.exps.len() >= 2 && s.refuse == 0
    })
    .await;
    assert!(renewed, "{:?} {:?}", watch.streams(), v.health());
    assert_eq!(
        watch.streams().open_at_refusals,
        [1, 1],
        "the current stream was kept while the next was refused"
    );
    assert_eq!(
        watch.streams().gaps,
        Vec::<Duration>::new(),
        "moments without an open stream between two streams"
    );
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    let admin = fresh_admin_token(&rig.app).await;
    set_roles_as(&rig, &admin, &["writer"]).await;
    assert_eq!(refused(&v, &token).await, Rejection::RolesChanged);
}

/// A rig whose access tokens live `ttl` seconds (a role change reissues), and a verifier
/// that follows its feed through a [`Watch`] and has caught up.
async fn watched(ttl: &str) -> (Rig, Watch, Verifier) {
    let rig = rig(&[
        ("access_token_ttl", ttl),
        ("permission_change_policy", "reissue"),
    ])
    .await;
    let watch = Watch::start(&rig.app).await;
    let mut s = rig.settings();
    s.events_endpoint = Some(watch.url.clone());
    let v = start(s).await;
    (rig, watch, v)
}

/// root's access token, signed in now (the rig's may have expired with short tokens).
async fn fresh_admin_token(app: &TestApp) -> String {
    app.login("console", "root", "root password 1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn set_roles_as(rig: &Rig, admin: &str, roles: &[&str]) {
    let r = rig
        .app
        .with_bearer(
            Method::PUT,
            &format!("/admin/users/{}/roles", rig.alice),
            admin,
        )
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A relay in front of the issuer's `GET /events` that watches the verifier's streams, as
/// seen between the two: each one from the issuer's 200 until either side ends it. It can
/// answer the next stream requests 503 instead.
struct Watch {
    /// The relay's `/events`, for `Settings::events_endpoint`.
    url: String,
    streams: Arc<Mutex<Streams>>,
}

#[derive(Debug, Default, Clone)]
struct Streams {
    open: usize,
    /// Since when none has been open (once one has been).
    none_since: Option<Instant>,
    /// The `exp` of each stream's token, in the order the issuer accepted them.
    exps: Vec<i64>,
    /// How long the verifier went without an open stream, each time it had none.
    gaps: Vec<Duration>,
    /// The next this many stream requests are answered 503.
    refuse: usize,
    /// How many streams were open at each of those answers.
    open_at_refusals: Vec<usize>,
}

/// One open stream, counted until dropped.
struct Open(Arc<Mutex<Streams>>);

impl Drop for Open {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap();
        s.open -= 1;
        if s.open == 0 {
            s.none_since = Some(Instant::now());
        }
    }
}

impl Watch {
    async fn start(app: &TestApp) -> Self {
        let streams = Arc::new(Mutex::new(Streams::default()));
        let upstream = app.url("/events");
        let http = reqwest::Client::new();
        let seen = streams.clone();
        let relay = axum::routing::get(move |uri: Uri, headers: HeaderMap| {
            relay(http.clone(), upstream.clone(), seen.clone(), uri, headers)
        });
        let app = axum::Router::new().route("/events", relay);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, streams }
    }

    /// What it has seen so far (a copy: an assertion on it fails without the lock held).
    fn streams(&self) -> Streams {
        self.streams.lock().unwrap().clone()
    }

    fn refuse_next(&self, n: usize) {
        self.streams.lock().unwrap().refuse = n;
    }
}

async fn relay(
    http: reqwest::Client,
    upstream: String,
    streams: Arc<Mutex<Streams>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let sse = headers
        .get(header::ACCEPT)
        .is_some_and(|a| a == "text/event-stream");
    if sse {
        let mut s = streams.lock().unwrap();
        if s.refuse > 0 {
            s.refuse -= 1;
            let open = s.open;
            s.open_at_refusals.push(open);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let url = match uri.query() {
        Some(q) => format!("{upstream}?{q}"),
        None => upstream,
    };
    let mut req = http.get(url);
    for name in ["authorization", "accept", "last-event-id"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let Ok(resp) = req.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut answer = Response::builder().status(resp.status());
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
        if let Some(v) = resp.headers().get(&name) {
            answer = answer.header(name, v);
        }
    }
    if !sse || resp.status() != StatusCode::OK {
        let body = resp.bytes().await.unwrap_or_default();
        return answer.body(Body::from(body)).unwrap();
    }
    let bearer = headers[header::AUTHORIZATION].to_str().unwrap();
    let exp = jwt_parts(bearer.trim_start_matches("Bearer ")).1["exp"]
        .as_i64()
        .unwrap();
    let open = {
        let mut s = streams.lock().unwrap();
        if let Some(since) = s.none_since.take() {
            let gap = since.elapsed();
            s.gaps.push(gap);
        }
        s.open += 1;
        s.exps.push(exp);
        Open(streams.clone())
    };
    // Counted as open until the issuer ends it or the verifier drops it (hyper then drops
    // this body, and `open` with it).
    let body = futures_util::stream::unfold((resp, open), |(mut resp, open)| async move {
        match resp.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<_, reqwest::Error>(bytes), (resp, open))),
            _ => None,
        }
    });
    answer.body(Body::from_stream(body)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_a_change_on_one_instance_is_honoured_by_a_verifier_following_another() {
    let rig = rig(&[("permission_change_policy", "reissue")]).await;
    let b = Instance::start(&rig.app).await;
    let mut s = rig.settings();
    s.events_endpoint = Some(b.url("/events"));
    let v = start(s).await;
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    rig.set_roles(&["writer"]).await; // on A
    assert_eq!(refused(&v, &token).await, Rejection::RolesChanged);
}

#[tokio::test]
async fn verify_the_feed_answers_since_a_time_and_the_metadata_says_how_far_back() {
    let rig = rig(&[("access_token_ttl", "120")]).await;
    let meta = rig
        .app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["tessera_access_token_max_ttl"], 120);
    assert_eq!(meta["tessera_events_endpoint"], rig.app.url("/events"));
    let (_, sid) = rig.login().await;
    rig.app
        .with_bearer(
            Method::DELETE,
            &format!("/admin/sessions/{sid}"),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    let token = rig.app.client_token("rs", &rig.secret).await;
    let page = |q: String| {
        let app = &rig.app;
        let token = token.clone();
        async move {
            let r = app
                .with_bearer(Method::GET, &format!("/events?{q}"), &token)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let now = rig.app.core.clock.now();
    let (status, body) = page(format!("since={}", now - 60)).await;
    assert_eq!(status, 200);
    let kinds: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("session.revoked")], "{body}");
    let (_, later) = page(format!("since={}", now + 60)).await;
    assert_eq!(later["events"], json!([]));
    // Beyond the retention window (24 h by default): resynchronise.
    let (status, gone) = page(format!("since={}", now - 2 * 86_400)).await;
    assert_eq!((status, &gone["error"]), (410, &json!("resync_required")));
    let (status, bad) = page(format!("since={}&after=1", now)).await;
    assert_eq!((status, &bad["error"]), (400, &json!("invalid_request")));
    let (status, _) = page("since=yesterday".into()).await;
    assert_eq!(status, 400);
}
