//! `POST /introspect` (RFC 7662, CONFORMANCE 45–47) and `GET /userinfo`.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tessera::domain::tokens::{AccessClaims, Audience};

use crate::support::*;

/// Signs alice in through confidential client `web`; returns (access, refresh).
pub(crate) async fn web_login(app: &TestApp, web: &str) -> (String, String) {
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", web),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().into(),
        body["refresh_token"].as_str().unwrap().into(),
    )
}

/// Introspects and asserts 200, JSON and `no-store`; returns the body.
pub(crate) async fn introspect_ok(app: &TestApp, id: &str, secret: &str, token: &str) -> Value {
    let r = app.introspect(id, secret, token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

pub(crate) fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn introspection_needs_an_authenticated_client_with_the_capability() {
    let Introspection { app, rs, .. } = Introspection::start().await;
    let r = app.post_form("/introspect", &[("token", "x")]).await;
    let www = r.headers().get("www-authenticate").cloned();
    assert_oauth_error(r, 401, "invalid_client").await;
    assert!(www.is_some_and(|h| h.to_str().unwrap().starts_with("Basic ")));

    let r = app.introspect("rs", "wrong secret", "x").await;
    assert_oauth_error(r, 401, "invalid_client").await;

    let plain = app.service("plain", &["events"]).await;
    let r = app.introspect("plain", &plain, "x").await;
    assert_oauth_error(r, 400, "unauthorized_client").await;

    let r = app
        .post_form(
            "/introspect",
            &[("client_id", "rs"), ("client_secret", rs.as_str())],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_active_access_token_introspects_with_its_claims() {
    let Introspection {
        app,
        rs,
        web,
        alice,
    } = Introspection::start().await;
    let (at, _) = web_login(&app, &web).await;
    let claims = jwt_parts(&at).1;
    let body = introspect_ok(&app, "rs", &rs, &at).await;
    assert_eq!(
        body,
        json!({
            "active": true,
            "token_type": "Bearer",
            "scope": "read write",
            "client_id": "web",
            "username": "alice",
            "sub": alice,
            "aud": "https://api.example",
            "iss": app.addr,
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
            "roles": ["reader"],
            "sid": claims["sid"],
            "ver": 1,
        })
    );
    assert!(
        body["exp"].is_i64() && body["iat"].is_i64(),
        "integer times"
    );

    // A client's own token: no user fields.
    let secret = app.service("svc", &[]).await;
    let ct = app.client_token("svc", &secret).await;
    let body = introspect_ok(&app, "rs", &rs, &ct).await;
    assert_eq!(
        sorted_keys(&body),
        [
            "active",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "roles",
            "sub",
            "token_type"
        ]
    );
    assert_eq!(
        (&body["sub"], &body["client_id"]),
        (&json!("svc"), &json!("svc"))
    );
}

#[tokio::test]
async fn a_refresh_token_is_active_only_for_its_own_client() {
    let Introspection {
        app,
        rs,
        web,
        alice,
    } = Introspection::start().await;
    let (at, rt) = web_login(&app, &web).await;
    let body = introspect_ok(&app, "web", &web, &rt).await;
    let exp = body["exp"].as_i64().unwrap();
    assert!(exp > app.core.clock.now());
    assert_eq!(
        body,
        json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": "read write",
            "client_id": "web",
            "username": "alice",
            "sub": alice,
            "aud": "https://api.example",
            "iss": app.addr,
            "exp": exp,
            "iat": body["iat"],
            "sid": jwt_parts(&at).1["sid"],
        })
    );
    assert!(body["iat"].is_i64());
    // Not the caller's to see: exactly inactive.
    assert_eq!(
        introspect_ok(&app, "rs", &rs, &rt).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn unknown_garbage_tampered_expired_and_foreign_tokens_are_inactive() {
    let Introspection {
        app,
        rs,
        web,
        alice,
    } = Introspection::start().await;
    let (at, _) = web_login(&app, &web).await;
    let claims = jwt_parts(&at).1;
    let mut tampered = at.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let now = app.core.clock.now();
    let minted = |iss: &str, iat: i64, exp: i64| {
        let c = AccessClaims {
            iss: iss.into(),
            sub: alice.clone(),
            aud: Audience::One("https://api.example".into()),
            client_id: "web".into(),
            scope: Some("read".into()),
            roles: vec!["reader".into()],
            iat,
            exp,
            nbf: None,
            jti: "minted".into(),
            sid: claims["sid"].as_str().map(String::from),
            ver: Some(1),
            amr: None,
        };
        app.core.keys.current().active.sign(&c)
    };
    // Signed by the server's own key, so only the claims make them inactive.
    let expired = minted(&app.addr, now - 600, now - 60);
    let wrong_issuer = minted("https://evil.example", now, now + 300);
    let fine = minted(&app.addr, now, now + 300);
    assert_eq!(introspect_ok(&app, "rs", &rs, &fine).await["active"], true);

    for token in [
        "unknown-opaque-token",
        "a.b.c",
        "....",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        &tampered,
        &expired,
        &wrong_issuer,
        &"x".repeat(4000),
    ] {
        assert_eq!(
            introspect_ok(&app, "rs", &rs, token).await,
            json!({"active": false}),
            "{token:.40}"
        );
    }
}

#[tokio::test]
async fn revoked_consumed_stale_and_disabled_are_inactive() {
    let Introspection {
        app,
        rs,
        web,
        alice,
    } = Introspection::start().await;
    let inactive = json!({"active": false});

    // Consumed: the old refresh token is dead, its successor alive.
    let (_, rt) = web_login(&app, &web).await;
    let r = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("client_secret", web.as_str()),
            ("refresh_token", rt.as_str()),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let rt2 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(introspect_ok(&app, "web", &web, &rt).await, inactive);
    assert_eq!(introspect_ok(&app, "web", &web, &rt2).await["active"], true);

    // Revoked family: both kinds of token.
    let (at, rt) = web_login(&app, &web).await;
    let r = app
        .post_form(
            "/revoke",
            &[
                ("client_id", "web"),
                ("client_secret", &web),
                ("token", &rt),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(introspect_ok(&app, "rs", &rs, &at).await, inactive);
    assert_eq!(introspect_ok(&app, "web", &web, &rt).await, inactive);

    // A stale `ver` alone (family live) makes an access token inactive under `revoke`.
    let (at, _) = web_login(&app, &web).await;
    assert_eq!(introspect_ok(&app, "rs", &rs, &at).await["active"], true);
    crate::sql::exec(
        app.core.db.writer(),
        "UPDATE users SET authz_version = authz_version + 1 WHERE id = $1",
        &[(&alice).into()],
    )
    .await;
    assert_eq!(introspect_ok(&app, "rs", &rs, &at).await, inactive);

    // A disabled user alone (family live) makes both inactive.
    let (at, rt) = web_login(&app, &web).await;
    crate::sql::exec(
        app.core.db.writer(),
        "UPDATE users SET disabled = TRUE WHERE id = $1",
        &[(&alice).into()],
    )
    .await;
    assert_eq!(introspect_ok(&app, "rs", &rs, &at).await, inactive);
    assert_eq!(introspect_ok(&app, "web", &web, &rt).await, inactive);
}

/// A public client authenticates nothing: a `client_id` anyone can send. Letting one
/// hold `introspect` makes the endpoint open to the world (RFC 7662 §2.1, CONFORMANCE 45).
#[tokio::test]
async fn a_public_client_never_gets_to_introspect() {
    let Introspection { app, web, .. } = Introspection::start().await;
    let admin = app.admin_token().await;
    let (at, _) = web_login(&app, &web).await;
    let r = app
        .with_bearer(Method::POST, "/admin/clients", &admin)
        .json(&json!({"id": "spa", "public": true, "capabilities": ["introspect"]}))
        .send()
        .await
        .unwrap();
    let registered = r.status();
    if registered == 400 {
        return; // refused at registration: fine
    }
    assert_eq!(registered, 201);
    let r = app
        .post_form("/introspect", &[("client_id", "spa"), ("token", &at)])
        .await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert!(
        matches!(status, 400 | 401) && body.get("active").is_none(),
        "an unauthenticated public client introspected a token: {status} {body}"
    );
}

async fn userinfo(app: &TestApp, token: Option<&str>) -> Response {
    match token {
        Some(t) => app.with_bearer(Method::GET, "/userinfo", t),
        None => app.http.get(app.url("/userinfo")),
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn userinfo_answers_from_the_database_and_refuses_dead_sessions() {
    let Introspection {
        app, web, alice, ..
    } = Introspection::start().await;
    let (at, rt) = web_login(&app, &web).await;
    let r = userinfo(&app, Some(&at)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"sub": alice, "preferred_username": "alice", "username": "alice", "roles": ["reader"], "ver": 1, "stale": false})
    );

    let r = userinfo(&app, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), r#"Bearer realm="tessera""#);

    let secret = app.service("svc", &[]).await;
    let ct = app.client_token("svc", &secret).await;
    for token in [ct.as_str(), "garbage", "a.b.c"] {
        let r = userinfo(&app, Some(token)).await;
        assert_invalid_token(r, &format!("{token:.20}")).await;
    }

    let r = app
        .post_form(
            "/revoke",
            &[
                ("client_id", "web"),
                ("client_secret", &web),
                ("token", &rt),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = userinfo(&app, Some(&at)).await;
    assert_eq!(r.status(), 401, "the session was revoked");
    assert!(challenge(&r).contains(r#"error="invalid_token""#));
}
