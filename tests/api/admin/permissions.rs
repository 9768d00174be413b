//! Permission changes take effect: roles under both policies, disabling, password
//! changes, demoted administrators (docs/protocol.md "When roles change").

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) fn str_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

pub(crate) async fn put_roles(app: &TestApp, admin: &str, sub: &str, roles: Value) -> Response {
    app.with_bearer(Method::PUT, &format!("/admin/users/{sub}/roles"), admin)
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .unwrap()
}

async fn userinfo(app: &TestApp, token: &str) -> Response {
    app.with_bearer(Method::GET, "/userinfo", token)
        .send()
        .await
        .unwrap()
}

async fn introspect(app: &TestApp, rs: &str, token: &str) -> Value {
    let r = app.introspect("rs", rs, token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `sub`'s events, in order, as [type, sid, ver, roles, reason].
async fn events_of(app: &TestApp, rs: &str, sub: &str) -> Vec<Value> {
    let token = app.client_token("rs", rs).await;
    let body: Value = app
        .with_bearer(Method::GET, "/events?after=0", &token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["sub"] == sub)
        .map(|e| json!([e["type"], e["sid"], e["ver"], e["roles"], e["reason"]]))
        .collect()
}

pub(crate) async fn assert_insufficient_scope(resp: Response) {
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with(r#"Bearer realm="tessera", error="insufficient_scope""#),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test]
async fn under_revoke_a_role_change_ends_the_session_and_a_new_login_gets_the_new_roles() {
    let Policy {
        app,
        alice,
        rs,
        admin,
    } = Policy::start("revoke").await;
    let first = app.login("app", "alice", PASSWORD).await;
    let (at, rt) = (
        str_of(&first, "access_token"),
        str_of(&first, "refresh_token"),
    );
    let claims = jwt_parts(&at).1;
    assert_eq!(
        (&claims["roles"], &claims["ver"]),
        (&json!(["reader"]), &json!(1))
    );
    assert_eq!(introspect(&app, &rs, &at).await["active"], true);

    let r = put_roles(&app, &admin, &alice, json!(["writer", "auditor"])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": alice, "username": "alice", "roles": ["writer", "auditor"], "ver": 2, "disabled": false})
    );

    // The old family cannot mint anything any more.
    assert_oauth_error(app.refresh("app", &rt).await, 400, "invalid_grant").await;
    assert_eq!(introspect(&app, &rs, &at).await, json!({"active": false}));
    assert_invalid_token(userinfo(&app, &at).await, "/userinfo").await;

    // Signing in again gives the new roles and version.
    let again = app.login("app", "alice", PASSWORD).await;
    let claims = jwt_parts(&str_of(&again, "access_token")).1;
    assert_eq!(claims["roles"], json!(["writer", "auditor"]));
    assert_eq!(claims["ver"], 2);
    assert_ne!(claims["sid"], jwt_parts(&at).1["sid"]);

    let sid = jwt_parts(&at).1["sid"].clone();
    assert_eq!(
        events_of(&app, &rs, &alice).await,
        vec![
            json!([
                "user.roles_changed",
                null,
                2,
                ["writer", "auditor"],
                "roles_changed"
            ]),
            json!(["session.revoked", sid, null, null, "roles_changed"]),
        ]
    );
}

#[tokio::test]
async fn under_reissue_the_session_survives_and_the_next_refresh_carries_the_new_roles() {
    let Policy {
        app,
        alice,
        rs,
        admin,
    } = Policy::start("reissue").await;
    let first = app.login("app", "alice", PASSWORD).await;
    let (at, rt) = (
        str_of(&first, "access_token"),
        str_of(&first, "refresh_token"),
    );
    let sid = jwt_parts(&at).1["sid"].clone();

    let r = put_roles(&app, &admin, &alice, json!(["writer"])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ver"], 2);

    // The old token still identifies the session; userinfo says it is stale.
    let r = userinfo(&app, &at).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"sub": alice, "preferred_username": "alice", "username": "alice", "roles": ["writer"], "ver": 2, "stale": true})
    );

    // The family survives: the next refresh carries the new roles and version.
    let r = app.refresh("app", &rt).await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    let claims = jwt_parts(&str_of(&next, "access_token")).1;
    assert_eq!(claims["roles"], json!(["writer"]));
    assert_eq!(claims["ver"], 2);
    assert_eq!(claims["sid"], sid);
    let r = userinfo(&app, &str_of(&next, "access_token")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["stale"], false);
    let active = introspect(&app, &rs, &str_of(&next, "access_token")).await;
    assert_eq!(
        (&active["active"], &active["ver"]),
        (&json!(true), &json!(2))
    );

    // The change is announced; no session was revoked.
    assert_eq!(
        events_of(&app, &rs, &alice).await,
        vec![json!([
            "user.roles_changed",
            null,
            2,
            ["writer"],
            "roles_changed"
        ])]
    );
    let sessions: Value = app
        .with_bearer(
            Method::GET,
            &format!("/admin/users/{alice}/sessions"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["sid"], sid);
}

#[tokio::test]
async fn disabling_revokes_under_both_policies() {
    for policy in ["revoke", "reissue"] {
        let Policy {
            app,
            alice,
            rs,
            admin,
        } = Policy::start(policy).await;
        let first = app.login("app", "alice", PASSWORD).await;
        let (at, rt) = (
            str_of(&first, "access_token"),
            str_of(&first, "refresh_token"),
        );
        let sid = jwt_parts(&at).1["sid"].clone();

        let r = app
            .with_bearer(
                Method::POST,
                &format!("/admin/users/{alice}/disable"),
                &admin,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{policy}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"id": alice, "username": "alice", "roles": ["reader"], "ver": 2, "disabled": true}),
            "{policy}"
        );

        assert_oauth_error(app.refresh("app", &rt).await, 400, "invalid_grant").await;
        assert_eq!(
            introspect(&app, &rs, &at).await,
            json!({"active": false}),
            "{policy}"
        );
        assert_invalid_token(userinfo(&app, &at).await, "/userinfo").await;
        let login = app
            .token(&[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .await;
        assert_oauth_error(login, 400, "invalid_grant").await;
        assert_eq!(
            events_of(&app, &rs, &alice).await,
            vec![
                json!(["user.disabled", null, 2, ["reader"], "disabled"]),
                json!(["session.revoked", sid, null, null, "disabled"]),
            ],
            "{policy}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_under_both_policies() {
    for policy in ["revoke", "reissue"] {
        let Policy { app, alice, rs, .. } = Policy::start(policy).await;
        let first = app.login("app", "alice", PASSWORD).await;
        let (at, rt) = (
            str_of(&first, "access_token"),
            str_of(&first, "refresh_token"),
        );
        let sid = jwt_parts(&at).1["sid"].clone();

        let (code, out, err) = tokio::task::block_in_place(|| {
            app.cli(
                &["user", "passwd", "alice", "--password-stdin"],
                Some("a brand new password\n"),
            )
        });
        assert_eq!(code, 0, "{policy}: {err}");
        assert_eq!(out, "");

        assert_oauth_error(app.refresh("app", &rt).await, 400, "invalid_grant").await;
        assert_eq!(
            introspect(&app, &rs, &at).await,
            json!({"active": false}),
            "{policy}"
        );
        assert_invalid_token(userinfo(&app, &at).await, "/userinfo").await;
        let old = app
            .token(&[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .await;
        assert_oauth_error(old, 400, "invalid_grant").await;
        let new = app.login("app", "alice", "a brand new password").await;
        assert_eq!(jwt_parts(&str_of(&new, "access_token")).1["ver"], 2);
        assert_eq!(
            events_of(&app, &rs, &alice).await,
            vec![
                json!([
                    "user.password_changed",
                    null,
                    2,
                    ["reader"],
                    "password_changed"
                ]),
                json!(["session.revoked", sid, null, null, "password_changed"]),
            ],
            "{policy}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_role_changes_take_the_same_path() {
    let Policy {
        app,
        alice,
        rs,
        admin,
    } = Policy::start("revoke").await;
    let rt = str_of(&app.login("app", "alice", PASSWORD).await, "refresh_token");
    for (args, roles) in [
        (vec!["--set", "a,b"], json!(["a", "b"])),
        (vec!["--add", "c"], json!(["a", "b", "c"])),
        (vec!["--remove", "a"], json!(["b", "c"])),
    ] {
        let mut argv = vec!["user", "roles", "alice"];
        argv.extend(args);
        let (code, _, err) = tokio::task::block_in_place(|| app.cli(&argv, None));
        assert_eq!(code, 0, "{argv:?}: {err}");
        let user: Value = app
            .with_bearer(Method::GET, &format!("/admin/users/{alice}"), &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(user["roles"], roles, "{argv:?}");
    }
    assert_oauth_error(app.refresh("app", &rt).await, 400, "invalid_grant").await;
    let types: Vec<Value> = events_of(&app, &rs, &alice)
        .await
        .iter()
        .map(|e| json!([e[0], e[2]]))
        .collect();
    assert_eq!(
        types,
        vec![
            json!(["user.roles_changed", 2]),
            json!(["session.revoked", null]),
            json!(["user.roles_changed", 3]),
            json!(["user.roles_changed", 4]),
        ]
    );
}

#[tokio::test]
async fn under_reissue_a_token_behind_the_users_ver_introspects_inactive() {
    let Policy {
        app,
        alice,
        rs,
        admin,
    } = Policy::start("reissue").await;
    let first = app.login("app", "alice", PASSWORD).await;
    let at = str_of(&first, "access_token");
    assert_eq!(introspect(&app, &rs, &at).await["active"], true);
    let r = put_roles(&app, &admin, &alice, json!(["writer"])).await;
    assert_eq!(r.status(), 200);
    // The session lives on under `reissue`, but this token's roles are not the user's.
    assert_eq!(introspect(&app, &rs, &at).await, json!({"active": false}));
    let r = userinfo(&app, &at).await;
    assert_eq!(r.json::<Value>().await.unwrap()["stale"], true);
}
