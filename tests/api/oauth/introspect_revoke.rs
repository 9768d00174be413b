//! `POST /revoke` (RFC 7009, CONFORMANCE 41–44). A token of another client is
//! ignored: 200, and nothing happens to it.

use reqwest::{Method, Response, header};
use serde_json::{Value, json};

use crate::oauth::introspect::{introspect_ok, web_login};
use crate::support::*;

/// `POST /revoke` as confidential client `web`.
async fn revoke_as_web(app: &TestApp, web: &str, extra: &[(&str, &str)]) -> Response {
    let mut form = vec![("client_id", "web"), ("client_secret", web)];
    form.extend_from_slice(extra);
    app.post_form("/revoke", &form).await
}

/// Asserts RFC 7009's success: 200, no body to speak of, not cacheable.
fn assert_revoked_ok(r: &Response) {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// Every event so far (service `events` reads the whole feed).
async fn all_events(app: &TestApp) -> Vec<Value> {
    let id = format!("feed-{}", uuid::Uuid::new_v4().simple());
    let secret = app.service(&id, &["events"]).await;
    let token = app.client_token(&id, &secret).await;
    let body: Value = app
        .with_bearer(Method::GET, "/events?after=0", &token)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["events"].as_array().unwrap().clone()
}

async fn refresh_web(app: &TestApp, web: &str, rt: &str) -> Response {
    app.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "web"),
        ("client_secret", web),
        ("refresh_token", rt),
    ])
    .await
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_whole_family() {
    let Introspection {
        app,
        rs,
        web,
        alice,
    } = Introspection::start().await;
    let (at1, rt1) = web_login(&app, &web).await;
    let r = refresh_web(&app, &web, &rt1).await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    let (at2, rt2) = (
        next["access_token"].as_str().unwrap(),
        next["refresh_token"].as_str().unwrap(),
    );

    let r = revoke_as_web(
        &app,
        &web,
        &[("token", rt2), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_revoked_ok(&r);
    assert_eq!(r.text().await.unwrap(), "");

    assert_oauth_error(refresh_web(&app, &web, rt2).await, 400, "invalid_grant").await;
    for at in [at1.as_str(), at2] {
        assert_eq!(
            introspect_ok(&app, "rs", &rs, at).await,
            json!({"active": false})
        );
    }
    let events = all_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            &events[0]["type"],
            &events[0]["sub"],
            &events[0]["sid"],
            &events[0]["reason"]
        ),
        (
            &json!("session.revoked"),
            &json!(alice),
            &jwt_parts(&at1).1["sid"],
            &json!("revoked_by_client")
        )
    );
}

#[tokio::test]
async fn a_public_client_revokes_its_session_with_an_access_token() {
    let Introspection { app, .. } = Introspection::start().await;
    let login = app.login("app", "alice", PASSWORD).await;
    let (at, rt) = (
        login["access_token"].as_str().unwrap(),
        login["refresh_token"].as_str().unwrap(),
    );
    let r = app
        .post_form("/revoke", &[("client_id", "app"), ("token", at)])
        .await;
    assert_revoked_ok(&r);
    assert_oauth_error(app.refresh("app", rt).await, 400, "invalid_grant").await;
    let events = all_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["sid"], jwt_parts(at).1["sid"]);
}

#[tokio::test]
async fn the_hint_is_only_a_hint() {
    let Introspection { app, web, .. } = Introspection::start().await;
    for hint in ["access_token", "no_such_hint", ""] {
        let (_, rt) = web_login(&app, &web).await;
        let r = revoke_as_web(&app, &web, &[("token", &rt), ("token_type_hint", hint)]).await;
        assert_revoked_ok(&r);
        assert_oauth_error(refresh_web(&app, &web, &rt).await, 400, "invalid_grant").await;
    }
    let (at, rt) = web_login(&app, &web).await;
    let r = revoke_as_web(
        &app,
        &web,
        &[("token", &at), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_revoked_ok(&r);
    assert_oauth_error(refresh_web(&app, &web, &rt).await, 400, "invalid_grant").await;
    assert_eq!(all_events(&app).await.len(), 4);
}

#[tokio::test]
async fn unknown_garbage_and_already_revoked_tokens_answer_200_and_change_nothing() {
    let Introspection { app, web, .. } = Introspection::start().await;
    let (at, rt) = web_login(&app, &web).await;
    assert_revoked_ok(&revoke_as_web(&app, &web, &[("token", &rt)]).await);
    assert_eq!(all_events(&app).await.len(), 1);

    let (_, live) = web_login(&app, &web).await;
    for token in [
        rt.as_str(),
        at.as_str(),
        "no-such-token",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"z".repeat(5000),
    ] {
        let r = revoke_as_web(&app, &web, &[("token", token)]).await;
        assert_revoked_ok(&r);
    }
    assert_eq!(all_events(&app).await.len(), 1, "nothing else was revoked");
    assert_eq!(refresh_web(&app, &web, &live).await.status(), 200);
}

#[tokio::test]
async fn another_clients_tokens_are_ignored() {
    let Introspection { app, rs, web, .. } = Introspection::start().await;
    let theirs = app.login("app", "alice", PASSWORD).await;
    let (at, rt) = (
        theirs["access_token"].as_str().unwrap(),
        theirs["refresh_token"].as_str().unwrap(),
    );
    for token in [rt, at] {
        assert_revoked_ok(&revoke_as_web(&app, &web, &[("token", token)]).await);
    }
    assert!(all_events(&app).await.is_empty());
    assert_eq!(introspect_ok(&app, "rs", &rs, at).await["active"], true);
    assert_eq!(
        app.refresh("app", rt).await.status(),
        200,
        "app's family is alive"
    );
}

#[tokio::test]
async fn revocation_needs_a_token_and_an_authenticated_client() {
    let Introspection { app, web, .. } = Introspection::start().await;
    let (_, rt) = web_login(&app, &web).await;
    assert_oauth_error(revoke_as_web(&app, &web, &[]).await, 400, "invalid_request").await;
    assert_oauth_error(
        revoke_as_web(&app, &web, &[("token", "")]).await,
        400,
        "invalid_request",
    )
    .await;
    let r = app.post_form("/revoke", &[("token", &rt)]).await;
    assert_oauth_error(r, 401, "invalid_client").await;
    let r = app
        .post_form(
            "/revoke",
            &[
                ("client_id", "web"),
                ("client_secret", "wrong"),
                ("token", &rt),
            ],
        )
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    // A confidential client cannot pass as public by leaving the secret out.
    let r = app
        .post_form("/revoke", &[("client_id", "web"), ("token", &rt)])
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    assert_eq!(
        refresh_web(&app, &web, &rt).await.status(),
        200,
        "still alive"
    );
}
