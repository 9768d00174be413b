//! A client change that narrows what it may do revokes what it may no longer hold, a
//! rotated secret overlaps, a removed client is gone with its sessions; each seen on
//! another instance too.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tessera::domain::clients::NewClient;
use tessera::store::codes::CodeRow;

use super::clients::{call, json_of};
use crate::keys::keys_instances::Instance;
use crate::oauth::refresh::{claims, revocations, rt};
use crate::support::*;

/// Signs alice in through confidential client `svc` (password grant, `scope`).
async fn login_svc(app: &TestApp, secret: &str, scope: &str) -> Value {
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "svc"),
            ("client_secret", secret),
            ("username", USER),
            ("password", PASSWORD),
            ("scope", scope),
        ])
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn refresh_svc(app: &TestApp, secret: &str, token: &str) -> u16 {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "svc"),
        ("client_secret", secret),
        ("refresh_token", token),
    ])
    .await
    .status()
    .as_u16()
}

/// Admin token, user alice and confidential client `svc` (password and
/// client_credentials grants, scopes read and write); returns (admin, secret).
async fn svc_app(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    app.user(USER, PASSWORD, &["reader"]).await;
    let secret = app
        .client_with(NewClient {
            id: "svc".into(),
            grant_types: vec![
                "password".parse().unwrap(),
                "client_credentials".parse().unwrap(),
            ],
            scopes: vec!["read".into(), "write".into()],
            audiences: vec!["https://api.example".into(), "https://other.example".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    (admin, secret)
}

fn sid(body: &Value) -> String {
    claims(body)["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn removing_the_refresh_grant_revokes_the_clients_sessions_on_the_feed() {
    let app = TestApp::spawn().await;
    let (admin, secret) = svc_app(&app).await;
    let session = login_svc(&app, &secret, "read").await;
    let (status, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grant_types"], json!(["client_credentials"]));
    assert_eq!(body["revoked_sessions"], 1);
    assert_eq!(refresh_svc(&app, &secret, &rt(&session)).await, 400);
    assert!(
        revocations(&app)
            .await
            .contains(&(Some("client_narrowed".into()), Some(sid(&session))))
    );
    // Its access token is refused where it is checked live.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The feed announces it to verifiers.
    let rs = app.service("rs", &["events"]).await;
    let token = app.client_token("rs", &rs).await;
    let feed: Value = app
        .with_bearer(Method::GET, "/events?after=0", &token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revoked = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sid"] == sid(&session).as_str())
        .unwrap_or_else(|| panic!("{feed}"));
    assert_eq!(revoked["type"], "session.revoked");
    assert_eq!(revoked["reason"], "client_narrowed");
}

#[tokio::test]
async fn removing_a_scope_or_an_audience_revokes_only_the_sessions_carrying_it() {
    let app = TestApp::spawn().await;
    let (admin, secret) = svc_app(&app).await;
    let reader = login_svc(&app, &secret, "read").await;
    let writer = login_svc(&app, &secret, "read write").await;
    let (_, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"scopes": ["read"]})),
    )
    .await;
    assert_eq!(body["revoked_sessions"], 1, "{body}");
    assert_eq!(refresh_svc(&app, &secret, &rt(&writer)).await, 400);
    let reader_rt = rt(&reader);
    let status = refresh_svc(&app, &secret, &reader_rt).await;
    assert_eq!(status, 200, "the session without `write` lives on");
    // Both sessions carry both audiences: removing one revokes the rest.
    let (_, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"audiences": ["https://api.example"]})),
    )
    .await;
    assert_eq!(body["revoked_sessions"], 1, "{body}");
    let reasons: Vec<_> = revocations(&app)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        reasons,
        [
            Some("client_narrowed".into()),
            Some("client_narrowed".into())
        ]
    );
}

#[tokio::test]
async fn removing_a_redirect_uri_drops_the_codes_issued_for_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app.user(USER, PASSWORD, &["reader"]).await;
    app.client_with(NewClient {
        id: "spa".into(),
        public: true,
        grant_types: vec!["authorization_code".parse().unwrap()],
        redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
        ..Default::default()
    })
    .await;
    let now = app.core.clock.now();
    for (i, uri) in ["https://a.example/cb", "https://b.example/cb"]
        .iter()
        .enumerate()
    {
        let code = CodeRow {
            hash: vec![i as u8; 32],
            client_id: "spa".into(),
            user_id: alice.clone(),
            authz_version: 1,
            redirect_uri: uri.to_string(),
            code_challenge: "x".into(),
            scope: "openid".into(),
            nonce: None,
            auth_time: now,
            created_at: now,
            expires_at: now + 60,
            consumed_at: None,
            family_id: None,
            amr: "pwd".into(),
        };
        tessera::store::codes::insert(app.core.db.writer(), &code)
            .await
            .unwrap();
    }
    let (status, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/spa",
        Some(json!({"redirect_uris": ["https://a.example/cb"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["forgotten_codes"], 1);
    assert_eq!(body["revoked_sessions"], 0);
    let left: Vec<(String,)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT redirect_uri FROM authorization_codes",
        &[],
    )
    .await;
    assert_eq!(left, [("https://a.example/cb".to_string(),)]);
}

#[tokio::test]
async fn a_rotated_secret_overlaps_with_the_old_one_then_only_the_new_one_works() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let old = app.service("svc", &[]).await;
    app.client_token("svc", &old).await;
    let (status, body) = json_of(
        &app,
        &admin,
        Method::POST,
        "/admin/clients/svc/secret",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new = body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let until = body["previous_secret_expires_at"].as_str().unwrap();
    let (_, svc) = json_of(&app, &admin, Method::GET, "/admin/clients/svc", None).await;
    assert_eq!(svc["previous_secret_expires_at"], until);
    app.client_token("svc", &old).await;
    app.client_token("svc", &new).await;
    let (_, trail) = json_of(&app, &admin, Method::GET, "/admin/audit?target=svc", None).await;
    assert_eq!(
        trail["entries"][0]["action"], "rotate_client_secret",
        "{trail}"
    );
    assert!(!trail.to_string().contains(&new), "no secret in the trail");
    // The default overlap is one hour.
    app.advance(Duration::from_secs(3599));
    app.client_token("svc", &old).await;
    app.advance(Duration::from_secs(1));
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &old),
        ])
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    app.client_token("svc", &new).await;
}

#[tokio::test]
async fn with_no_overlap_the_old_secret_is_refused_at_once() {
    let app = TestApp::with(&[("client_secret_overlap", "0")]).await;
    let admin = app.admin_token().await;
    let old = app.service("svc", &[]).await;
    app.client_token("svc", &old).await;
    let (_, body) = json_of(
        &app,
        &admin,
        Method::POST,
        "/admin/clients/svc/secret",
        None,
    )
    .await;
    assert_eq!(body["previous_secret_expires_at"], Value::Null);
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &old),
        ])
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    app.client_token("svc", body["client_secret"].as_str().unwrap())
        .await;
}

#[tokio::test]
async fn a_removed_client_loses_its_sessions_and_its_id_may_be_registered_again() {
    let app = TestApp::spawn().await;
    let (admin, secret) = svc_app(&app).await;
    let session = login_svc(&app, &secret, "read").await;
    let alice = claims(&session)["sub"].as_str().unwrap().to_string();
    tessera::store::browser::insert_consent(app.core.db.writer(), &alice, "svc", "read", 0)
        .await
        .unwrap();
    crate::sql::exec(
        app.core.db.writer(),
        "INSERT INTO ssf_streams (id, client_id, config, status, cursor, created_at)
         VALUES ('st1', 'svc', '{}', 'enabled', 0, 0)",
        &[],
    )
    .await;
    let r = call(&app, &admin, Method::DELETE, "/admin/clients/svc", None).await;
    assert_eq!(r.status(), 204);
    assert!(
        revocations(&app)
            .await
            .contains(&(Some("client_removed".into()), Some(sid(&session))))
    );
    assert_eq!(refresh_svc(&app, &secret, &rt(&session)).await, 401);
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", &secret),
        ])
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    let r = call(&app, &admin, Method::GET, "/admin/clients/svc", None).await;
    assert_eq!(r.status(), 404);
    for table in [
        "ssf_streams",
        "consents",
        "refresh_families",
        "authorization_codes",
    ] {
        let (n,): (i64,) = crate::sql::one(
            app.core.db.writer(),
            &format!("SELECT COUNT(*) FROM {table} WHERE client_id = 'svc'"),
            &[],
        )
        .await;
        assert_eq!(n, 0, "{table}");
    }
    let r = call(&app, &admin, Method::DELETE, "/admin/clients/svc", None).await;
    assert_eq!(r.status(), 404);
    let (status, body) = json_of(
        &app,
        &admin,
        Method::POST,
        "/admin/clients",
        Some(json!({"id": "svc"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let fresh = body["client_secret"].as_str().unwrap();
    app.client_token("svc", fresh).await;
    let (_, trail) = json_of(&app, &admin, Method::GET, "/admin/audit?target=svc", None).await;
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create_client", "delete_client", "create_client"]);
    assert_eq!(trail["entries"][1]["details"]["revoked_sessions"], 1);
}

/// Instance B (another process on the same database) caches the client on a first use;
/// a rotation without overlap and a removal on A are seen by B within the poll or, on
/// PostgreSQL, the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_instance_stops_serving_a_changed_client_from_its_cache() {
    let app = TestApp::with(&[("client_secret_overlap", "0")]).await;
    let admin = app.admin_token().await;
    let old = app.service("svc", &[]).await;
    let b = Instance::start(&app).await;
    let on_b = |secret: String| {
        let http = app.http.clone();
        let url = b.url("/token");
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "svc"),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(on_b(old.clone()).await, 200, "B caches svc");
    let (_, body) = json_of(
        &app,
        &admin,
        Method::POST,
        "/admin/clients/svc/secret",
        None,
    )
    .await;
    let new = body["client_secret"].as_str().unwrap().to_string();
    let rotated = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            on_b(old.clone()).await == 401
        })
        .await,
        "B still accepts the replaced secret"
    );
    // A figure for the report, not a speed assertion.
    eprintln!(
        "B refused the replaced secret {:?} after the rotation",
        rotated.elapsed()
    );
    assert_eq!(on_b(new.clone()).await, 200);
    let r = call(&app, &admin, Method::DELETE, "/admin/clients/svc", None).await;
    assert_eq!(r.status(), 204);
    assert!(
        eventually(Duration::from_secs(5), || async {
            on_b(new.clone()).await == 401
        })
        .await,
        "B still knows the removed client"
    );
}

/// A client that starts requiring a second factor ends the sessions signed in without one.
#[tokio::test]
async fn requiring_mfa_revokes_the_sessions_signed_in_without_a_second_factor() {
    let app = TestApp::spawn().await;
    let (admin, secret) = svc_app(&app).await;
    let session = login_svc(&app, &secret, "read").await;
    let (status, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"require_mfa": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["require_mfa"], true);
    assert_eq!(body["revoked_sessions"], 1);
    assert_eq!(refresh_svc(&app, &secret, &rt(&session)).await, 400);
    assert!(
        revocations(&app)
            .await
            .contains(&(Some("client_narrowed".into()), Some(sid(&session))))
    );
    // Turning it off again revokes nothing.
    let (status, body) = json_of(
        &app,
        &admin,
        Method::PATCH,
        "/admin/clients/svc",
        Some(json!({"require_mfa": false})),
    )
    .await;
    assert_eq!((status, &body["revoked_sessions"]), (200, &json!(0)));
}
