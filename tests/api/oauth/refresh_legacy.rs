//! Sessions started before refresh tokens named their family (migration 0015): their
//! tokens are rows of `refresh_tokens`, 43 characters, and they go on rotating, retrying
//! within the grace window, being revoked and being forgotten as before, on the locked path.

use std::time::Duration;

use crate::oauth::refresh::{assert_invalid_grant, refresh_ok, revocations, rt, session_app};
use crate::support::*;

/// Turns the session of a fresh login into one as migration 0015 found it: no handle
/// or head in the family's row, one unconsumed `refresh_tokens` row. Returns its token
/// and `sid`.
async fn legacy_session(app: &TestApp) -> (String, String) {
    let login = app.login("app", USER, PASSWORD).await;
    let sid = jwt_parts(login["access_token"].as_str().unwrap()).1["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let db = app.core.db.writer();
    crate::sql::exec(
        db,
        "UPDATE refresh_families SET handle_hash = NULL, head_hash = NULL, prev_hash = NULL, \
         rotated_at = NULL WHERE id = $1",
        &[(&sid).into()],
    )
    .await;
    let token = tessera::crypto::random_token();
    let hash = tessera::crypto::sha256(token.as_bytes()).to_vec();
    crate::sql::exec(
        db,
        "INSERT INTO refresh_tokens (hash, family_id, scope, created_at) \
         SELECT $1, id, scope, created_at FROM refresh_families WHERE id = $2",
        &[hash.into(), (&sid).into()],
    )
    .await;
    (token, sid)
}

#[tokio::test]
async fn a_legacy_session_rotates_retries_and_is_revoked_on_reuse() {
    let app = session_app(&[("refresh_reuse_grace", "1")]).await;
    let (r0, sid) = legacy_session(&app).await;
    let first = refresh_ok(&app, &r0).await;
    let r1 = rt(&first);
    assert_eq!(r1.len(), 43, "a legacy family goes on with legacy tokens");
    assert_eq!(
        jwt_parts(first["access_token"].as_str().unwrap()).1["sid"],
        sid.as_str()
    );
    assert_eq!(rt(&refresh_ok(&app, &r0).await), r1, "the sealed successor");
    let r2 = rt(&refresh_ok(&app, &r1).await);
    app.advance(Duration::from_millis(2100));
    assert_invalid_grant(&app, &r0).await;
    assert_invalid_grant(&app, &r2).await;
    assert_eq!(
        revocations(&app).await,
        [(Some("refresh_token_reuse".into()), Some(sid))]
    );
}

#[tokio::test]
async fn a_legacy_token_is_revoked_at_revoke_and_its_rows_forgotten() {
    let app = session_app(&[]).await;
    let (r0, sid) = legacy_session(&app).await;
    let r1 = rt(&refresh_ok(&app, &r0).await);
    let r = app
        .post_form("/revoke", &[("client_id", "app"), ("token", &r1)])
        .await;
    assert_eq!(r.status(), 200);
    assert_invalid_grant(&app, &r1).await;
    assert_eq!(
        revocations(&app).await,
        [(Some("revoked_by_client".into()), Some(sid))]
    );
    let rows = || async {
        crate::sql::one::<(i64,)>(
            app.core.db.writer(),
            "SELECT COUNT(*) FROM refresh_tokens",
            &[],
        )
        .await
        .0
    };
    assert_eq!(rows().await, 2);
    let now = app.core.clock.now();
    let gone = tessera::store::sessions::forget_ended(&app.core.db, now + 1)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(rows().await, 0);
}
