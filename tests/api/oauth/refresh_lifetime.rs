//! What ends a session and what survives: idle and absolute lifetimes, password and
//! role changes made with the CLI, a restart; and refresh tokens at rest (CONFORMANCE 26).

use std::time::Duration;

use serde_json::json;

use crate::keys::jwks::{fetch_jwks, verify_with_jwks};
use crate::oauth::refresh::{
    assert_invalid_grant, claims, refresh_ok, revocations, rt, session_app,
};
use crate::oauth::token::assert_token_ok;
use crate::oauth::token_grants::password_login;
use crate::support::*;

#[tokio::test]
async fn an_idle_session_expires() {
    let app = session_app(&[("refresh_idle_ttl", "2"), ("refresh_max_ttl", "1h")]).await;
    let r1 = rt(&refresh_ok(&app, &rt(&app.login("app", USER, PASSWORD).await)).await);
    app.advance(Duration::from_millis(2100));
    assert_invalid_grant(&app, &r1).await;
    refresh_ok(&app, &rt(&app.login("app", USER, PASSWORD).await)).await;
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_when_active() {
    let app = session_app(&[("refresh_idle_ttl", "2"), ("refresh_max_ttl", "3")]).await;
    let clock = &app.core.clock;
    let start = clock.wall();
    let mut token = rt(&app.login("app", USER, PASSWORD).await);
    let mut rotations = 0;
    loop {
        // Well inside the idle timeout, so only the absolute lifetime can end the session.
        app.advance(Duration::from_millis(300));
        let r = app.refresh("app", &token).await;
        if r.status() != 200 {
            assert_oauth_error(r, 400, "invalid_grant").await;
            break;
        }
        token = rt(&r.json().await.unwrap());
        rotations += 1;
        assert!(
            clock.wall() - start < Duration::from_secs(5),
            "still alive past refresh_max_ttl"
        );
    }
    let ended = clock.wall() - start;
    assert!(
        ended > Duration::from_secs(2),
        "ended after {ended:?}, before refresh_max_ttl"
    );
    assert!(rotations >= 3, "{rotations} rotations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_the_family() {
    let app = session_app(&[]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let new_password = "a brand new password";
    let (code, out, err) = app.cli(
        &["user", "passwd", USER, "--password-stdin"],
        Some(&format!("{new_password}\n")),
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_invalid_grant(&app, &r0).await;
    let reasons: Vec<_> = revocations(&app)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(reasons, [Some("password_changed".to_string())]);
    assert_oauth_error(
        password_login(&app, USER, PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_token_ok(password_login(&app, USER, new_password).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_ver_are_read_again_at_refresh() {
    let app = session_app(&[("permission_change_policy", "reissue")]).await;
    let login = app.login("app", USER, PASSWORD).await;
    assert_eq!(
        (&claims(&login)["roles"], &claims(&login)["ver"]),
        (&json!(["reader"]), &json!(1))
    );
    let (code, _, err) = app.cli(&["user", "roles", USER, "--set", "editor,admin"], None);
    assert_eq!(code, 0, "{err}");
    let next = refresh_ok(&app, &rt(&login)).await;
    assert_eq!(claims(&next)["roles"], json!(["editor", "admin"]));
    assert_eq!(claims(&next)["ver"], 2);
    assert_eq!(claims(&next)["sid"], claims(&login)["sid"]);
    assert!(revocations(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_under_the_revoke_policy_ends_the_session() {
    let app = session_app(&[]).await;
    let login = app.login("app", USER, PASSWORD).await;
    let (code, _, err) = app.cli(&["user", "roles", USER, "--add", "editor"], None);
    assert_eq!(code, 0, "{err}");
    assert_invalid_grant(&app, &rt(&login)).await;
    let sid = claims(&login)["sid"].as_str().map(String::from);
    assert_eq!(
        revocations(&app).await,
        [(Some("roles_changed".into()), sid)]
    );
    let again = app.login("app", USER, PASSWORD).await;
    assert_eq!(claims(&again)["roles"], json!(["reader", "editor"]));
    assert_eq!(claims(&again)["ver"], 2);
}

#[tokio::test]
async fn sessions_and_keys_survive_a_restart() {
    let app = session_app(&[]).await;
    let login = app.login("app", USER, PASSWORD).await;
    let access = login["access_token"].as_str().unwrap().to_string();
    let before = fetch_jwks(&app).await;
    let app = app.restart().await;
    let after = fetch_jwks(&app).await;
    assert_eq!(before, after, "the same keys after a restart");
    assert!(
        verify_with_jwks(&access, &after),
        "a token from before verifies after"
    );
    let next = refresh_ok(&app, &rt(&login)).await;
    assert_eq!(claims(&next)["sid"], claims(&login)["sid"]);
    assert!(verify_with_jwks(
        next["access_token"].as_str().unwrap(),
        &after
    ));
    refresh_ok(&app, &rt(&next)).await;
}

/// Only hashes of refresh tokens (and of their family's handle) are stored; a
/// grace-window successor is derived again under a key derived from the KEK, so the
/// database alone never yields a usable token.
#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    use base64::Engine;
    let app = session_app(&[]).await;
    let r0 = rt(&app.login("app", USER, PASSWORD).await);
    let first = refresh_ok(&app, &r0).await;
    let r1 = rt(&first);
    assert_eq!(
        rt(&refresh_ok(&app, &r0).await),
        r1,
        "a successor is kept for the grace window"
    );
    let db = crate::keys::jwks::db_bytes(&app).await;
    let found = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(
        found(ring::digest::digest(&ring::digest::SHA256, r1.as_bytes()).as_ref()),
        "the files read hold the token table"
    );
    for token in [&r0, &r1] {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap();
        assert!(
            !found(token.as_bytes()) && !found(&raw),
            "a refresh token in clear in the database"
        );
        assert!(
            !found(&raw[..16]),
            "a family's handle in clear in the database"
        );
    }
    assert!(!found(first["access_token"].as_str().unwrap().as_bytes()));
}

#[tokio::test]
async fn ended_sessions_are_forgotten_a_day_later_and_their_tokens_stay_dead() {
    let app = session_app(&[]).await;
    let ended = rt(&app.login("app", USER, PASSWORD).await);
    let live = rt(&app.login("app", USER, PASSWORD).await);
    let r = app
        .post_form("/revoke", &[("client_id", "app"), ("token", &ended)])
        .await;
    assert_eq!(r.status(), 200);
    let count = |sql: &'static str| {
        let db = app.core.db.writer().clone();
        async move { crate::sql::one::<(i64,)>(&db, sql, &[]).await.0 }
    };
    assert_eq!(count("SELECT COUNT(*) FROM refresh_families").await, 2);

    // Revoked just now: kept (within the day).
    let now = app.core.clock.now();
    tessera::store::sessions::forget_ended(&app.core.db, now - 86_400)
        .await
        .unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM refresh_families").await, 2);

    // A day later: the ended family and its tokens go, the live one stays.
    let gone = tessera::store::sessions::forget_ended(&app.core.db, now + 1)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(count("SELECT COUNT(*) FROM refresh_families").await, 1);
    // A named family keeps no token rows (migration 0015).
    assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens").await, 0);
    assert_invalid_grant(&app, &ended).await;
    refresh_ok(&app, &live).await;
}
