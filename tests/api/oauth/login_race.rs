//! A sign-in in flight while the user changes (password, disable, roles under policy
//! `revoke`) must not leave a working session behind. The password grant is held at a
//! pause point between its password check and the session insert, so the change
//! certainly commits in between.

use serde_json::Value;
use tessera::domain::permissions::Change;

use crate::support::*;

const OLD: &str = "old password 1";

/// Public client `web` (password, refresh_token) and user alice (`editor`, password [`OLD`]).
struct WithAlice {
    app: TestApp,
    /// Alice's `sub`.
    alice: String,
}

async fn app_with_alice(extra: &[(&'static str, &str)]) -> WithAlice {
    let app = TestApp::with(extra).await;
    app.client("web", true, &["password", "refresh_token"], &[], &[])
        .await;
    let alice = app.user("alice", OLD, &["editor"]).await;
    WithAlice { app, alice }
}

/// Starts a sign-in with the old password, waits until it is held after the
/// password check, runs `change`, releases it; returns the sign-in's answer.
async fn sign_in_across<F: std::future::Future<Output = ()>>(
    app: &TestApp,
    change: impl FnOnce() -> F,
) -> (u16, Value) {
    let gate = app.core.signin.pauses.before_session.arm();
    let (http, base) = (app.http.clone(), app.addr.clone());
    let login = tokio::spawn(async move { login_at(&http, &base, "web", "alice", OLD).await });
    gate.wait_reached().await;
    change().await;
    gate.release();
    login.await.unwrap()
}

async fn assert_no_session_left(app: &TestApp, alice: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let live = tessera::store::sessions::live_families_of(
        app.core.db.writer(),
        alice,
        app.core.clock.now(),
    )
    .await
    .unwrap();
    assert!(
        live.is_empty(),
        "a session survived the change: {}",
        live.len()
    );
}

#[tokio::test]
async fn a_sign_in_in_flight_during_a_password_change_gets_no_session() {
    let WithAlice { app, alice } = app_with_alice(&[]).await;
    let answer = sign_in_across(&app, || async {
        let env = app.cli_env();
        let dir = app.dir.clone();
        let (code, _, err) = tokio::task::spawn_blocking(move || {
            let args = ["user", "passwd", "alice", "--password-stdin"];
            run_cli(&env, dir.path(), &args, Some("new password 2\n"))
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "{err}");
    })
    .await;
    assert_no_session_left(&app, &alice, answer).await;
    // Once nothing is in flight, the new password signs in and the old one does not.
    let (status, _) = login_at(&app.http, &app.addr, "web", "alice", "new password 2").await;
    assert_eq!(status, 200);
    let (status, _) = login_at(&app.http, &app.addr, "web", "alice", OLD).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_sign_in_in_flight_during_a_disable_gets_no_session() {
    let WithAlice { app, alice } = app_with_alice(&[]).await;
    let answer = sign_in_across(&app, || async {
        app.core
            .users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &alice,
                Change::Disable,
            )
            .await
            .unwrap();
    })
    .await;
    assert_no_session_left(&app, &alice, answer).await;
}

#[tokio::test]
async fn a_sign_in_in_flight_during_a_role_change_gets_no_session_under_revoke() {
    let WithAlice { app, alice } = app_with_alice(&[("permission_change_policy", "revoke")]).await;
    let answer = sign_in_across(&app, || async {
        app.core
            .users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &alice,
                Change::Roles(vec!["viewer".into()]),
            )
            .await
            .unwrap();
    })
    .await;
    assert_no_session_left(&app, &alice, answer).await;
    // Signing in again gets the new roles.
    let (status, body) = login_at(&app.http, &app.addr, "web", "alice", OLD).await;
    assert_eq!(status, 200);
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["roles"], serde_json::json!(["viewer"]));
}

#[tokio::test]
async fn a_sign_in_held_with_nothing_changing_succeeds() {
    let WithAlice { app, .. } = app_with_alice(&[]).await;
    let (status, body) = sign_in_across(&app, || async {}).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
}
