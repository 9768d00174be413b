//! The signing-key lifecycle (docs/operations.md "Signing keys and the KEK",
//! CONFORMANCE 37–39): next → active → retired → deleted, or revoked; the pre-publication
//! invariant; retirement; emergency revocation; changing the algorithm.

use std::time::Duration;

use reqwest::{Client, Method, header};
use serde_json::Value;
use tessera::config::SigningAlg;
use tessera::domain::keys::KeyError;

use crate::keys::jwks::verify_with_jwks;
use crate::support::*;

/// A key as `tessera keys list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub kid: String,
    pub alg: String,
    pub state: String,
}

/// `tessera keys list` (the real binary on the app's database), parsed.
pub(crate) fn keys_list(app: &TestApp) -> Vec<Listed> {
    let (code, out, err) = app.cli(&["keys", "list"], None);
    assert_eq!(code, 0, "keys list failed: {err}");
    let mut lines = out.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("KID")), "{out}");
    lines
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Listed {
                kid: cols[0].into(),
                alg: cols[1].into(),
                state: cols[2].into(),
            }
        })
        .collect()
}

/// The kids in `state`, in listing order.
pub(crate) fn in_state(keys: &[Listed], state: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k.state == state)
        .map(|k| k.kid.clone())
        .collect()
}

/// The one kid in `state`.
pub(crate) fn the(keys: &[Listed], state: &str) -> String {
    let kids = in_state(keys, state);
    assert_eq!(kids.len(), 1, "exactly one {state} key: {keys:?}");
    kids[0].clone()
}

/// `GET {base}/.well-known/jwks.json`; asserts 200 and a `max-age` of `max_age` seconds.
pub(crate) async fn jwks_at(http: &Client, base: &str, max_age: u64) -> Value {
    let r = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[header::CACHE_CONTROL],
        format!("public, max-age={max_age}").as_str()
    );
    r.json().await.unwrap()
}

/// The app's JWKS; every test here runs with `jwks_max_age` = 1 s.
pub(crate) async fn jwks(app: &TestApp) -> Value {
    jwks_at(&app.http, &app.addr, 1).await
}

/// The kids of a JWKS, sorted.
pub(crate) fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

pub(crate) fn sorted(kids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = kids.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

/// The `kid` in a JWS header.
pub(crate) fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().unwrap().to_string()
}

/// Waits until the server signs with `kid` (it reloads the key rows every second).
pub(crate) async fn wait_until_signing(app: &TestApp, kid: &str) {
    let signs = eventually(Duration::from_secs(3), || async {
        app.core.keys.current().active.kid == kid
    })
    .await;
    assert!(
        signs,
        "the server still signs with {} instead of {kid}",
        app.core.keys.current().active.kid
    );
}

/// How old the first keys of [`TestApp::with_keys_aged`] are where the next key's
/// lead must be over for the CLI: its `created_at` is a whole second (published at
/// 10.9 s, it reads 10), so a full `jwks_max_age` (1 s here) is certain only from
/// `created_at + jwks_max_age + 1`; 3 s back that is already past on any clock.
pub(crate) const LEAD_OVER: Duration = Duration::from_secs(3);

/// Moves this process's server's clock to when a full lead of the next key is
/// certain, for a rotation by this server (the CLI and other servers keep the
/// system clock: see [`LEAD_OVER`] for them).
pub(crate) async fn pass_the_lead(app: &TestApp) {
    let (created,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT created_at FROM signing_keys WHERE state = 'next'",
        &[],
    )
    .await;
    app.advance_to(Duration::from_secs(created as u64 + 2) + Duration::from_millis(20));
}

/// A rotation by this process's server to `alg` (default: the configured one), its
/// clock first moved past the next key's lead; the rotation's message.
pub(crate) async fn rotate_after_the_lead(app: &TestApp, alg: Option<SigningAlg>) -> String {
    pass_the_lead(app).await;
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), alg, false)
        .await
        .expect("a rotation after the lead")
}

pub(crate) async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.with_bearer(Method::GET, "/userinfo", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET /admin/keys` as a JSON list.
pub(crate) async fn admin_keys(app: &TestApp, admin: &str) -> Vec<Value> {
    let r = app
        .with_bearer(Method::GET, "/admin/keys", admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["keys"]
        .as_array()
        .unwrap()
        .clone()
}

/// `keys.rotated` events as (kid, reason), from the database.
pub(crate) async fn rotated_events(app: &TestApp) -> Vec<(String, String)> {
    tessera::store::events::after(app.core.db.writer(), 0, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "keys.rotated")
        .map(|e| (e.kid.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_key_is_published_before_it_signs_and_old_tokens_keep_verifying() {
    let app = TestApp::with_keys_aged(LEAD_OVER, &[("jwks_max_age", "1")]).await;
    let admin = app.admin_token().await;
    let secret = app.service("svc", &[]).await;
    let before = app.client_token("svc", &secret).await;

    let keys = keys_list(&app);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (active, next) = (the(&keys, "active"), the(&keys, "next"));
    assert_eq!(kid_of(&before), active, "tokens carry the active kid");
    assert_eq!(kid_of(&admin), active);
    let published = jwks(&app).await;
    assert_eq!(
        kids(&published),
        sorted(&[&active, &next]),
        "the next key is published before it signs"
    );
    assert!(verify_with_jwks(&before, &published));

    let (code, _, err) = app.cli(&["keys", "rotate"], None);
    assert_eq!(code, 0, "keys rotate: {err}");
    // The CLI is another process: the server picks the change up within a second.
    wait_until_signing(&app, &next).await;
    let after = app.client_token("svc", &secret).await;
    assert_eq!(kid_of(&after), next, "new tokens carry the former next kid");

    let keys = keys_list(&app);
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(the(&keys, "retired"), active);
    assert_eq!(the(&keys, "active"), next);
    let fresh = the(&keys, "next");
    assert!(fresh != active && fresh != next, "a new next key: {keys:?}");

    let now = jwks(&app).await;
    assert_eq!(kids(&now), sorted(&[&active, &next, &fresh]), "{now}");
    assert!(
        verify_with_jwks(&before, &now),
        "a token of the retired key still verifies"
    );
    assert!(verify_with_jwks(&after, &now));
    assert_eq!(
        userinfo_status(&app, &admin).await,
        200,
        "the server still accepts a token of the retired key"
    );
    assert_eq!(rotated_events(&app).await, [(active, "rotated".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_key_leaves_the_jwks_only_after_its_tokens_and_caches_expired() {
    let app = TestApp::with(&[("access_token_ttl", "1"), ("jwks_max_age", "1")]).await;
    let secret = app.service("svc", &[]).await;
    let token = app.client_token("svc", &secret).await;
    let old = kid_of(&token);
    pass_the_lead(&app).await;
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await
        .unwrap();

    let published = jwks(&app).await;
    assert!(kids(&published).contains(&old), "retired but published");
    assert!(verify_with_jwks(&token, &published));
    app.core.signing.maintain_keys().await.unwrap();
    assert!(
        kids(&jwks(&app).await).contains(&old),
        "maintenance right after the rotation keeps the retired key"
    );

    // Kept until retired_at + access_token_ttl (1) + jwks_max_age (1) + 60 s: 55 s ago is too recent.
    app.advance(Duration::from_secs(55));
    app.core.signing.maintain_keys().await.unwrap();
    assert!(
        kids(&jwks(&app).await).contains(&old),
        "removed before retired_at + ttl + max_age + 60 s"
    );
    assert!(in_state(&keys_list(&app), "retired").contains(&old));

    app.advance(Duration::from_secs(1000 - 55));
    app.core.signing.maintain_keys().await.unwrap();
    let now = jwks(&app).await;
    assert!(!kids(&now).contains(&old), "still published: {now}");
    assert_eq!(kids(&now).len(), 2, "active and next remain: {now}");
    let keys = keys_list(&app);
    assert!(keys.iter().all(|k| k.kid != old), "still listed: {keys:?}");
    assert_eq!(in_state(&keys, "active").len(), 1);
    assert_eq!(in_state(&keys, "next").len(), 1);
}

/// Moves the app's clock to `at` ms into the next second.
fn advance_to_millis(app: &TestApp, at: u64) {
    let secs = app.core.clock.wall().as_secs() + 1;
    app.advance_to(Duration::from_secs(secs) + Duration::from_millis(at));
}

/// README: "A key signs only after it has been published as `next` for at least
/// `jwks_max_age`". A next key published late in one second must not be activated early
/// in the next one: a verifier that fetched the JWKS just before the publication caches
/// it for a whole `jwks_max_age` and would meet an unknown kid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_publication_lead_is_measured_in_full_seconds() {
    let app = TestApp::with(&[("jwks_max_age", "1")]).await;
    pass_the_lead(&app).await;
    advance_to_millis(&app, 800);
    let published = app.core.clock.instant();
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await
        .unwrap();
    advance_to_millis(&app, 50);
    let lead = app.core.clock.instant() - published;
    let outcome = app
        .core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await;
    let fresh = app.core.keys.current().active.kid.clone();
    assert!(
        matches!(outcome, Err(KeyError::TooEarly { .. })) || lead >= Duration::from_secs(1),
        "next key {fresh} was activated {lead:?} after it was published, less than \
         jwks_max_age (1 s): {outcome:?}"
    );
    pass_the_lead(&app).await;
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, false)
        .await
        .expect("a full lead later the rotation goes through");
}
