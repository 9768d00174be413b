//! A re-enabled user reaches Shared Signals receivers as RISC `account-enabled`, and
//! a deleted one as `account-disabled` with the sessions it ended.

use serde_json::json;

use super::ssf_delivery::poll_n;
use super::*;

#[tokio::test]
async fn ssf_enable_is_account_enabled_and_delete_is_account_disabled() {
    let t = Transmitter::start().await;
    t.app.client("web", true, &["password"], &[], &[]).await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    t.change(&sub, Change::Disable).await;
    let (_, changed) = t
        .app
        .core
        .users
        .enable_user(&tessera::domain::audit::Actor::cli(), &sub)
        .await
        .unwrap();
    assert!(changed);
    t.app.login("web", USER, PASSWORD).await;
    t.app
        .core
        .users
        .delete_user(&tessera::domain::audit::Actor::cli(), &sub)
        .await
        .unwrap();

    let sets = poll_n(&t, &stream, 4).await;
    let claims = t.verified(sets.into_iter().map(|(_, s)| s).collect()).await;
    let kinds: Vec<String> = claims.iter().map(|c| event_of(c).0).collect();
    assert_eq!(
        kinds,
        [
            ACCOUNT_DISABLED,
            ACCOUNT_ENABLED,
            ACCOUNT_DISABLED,
            SESSION_REVOKED
        ]
    );
    assert_eq!(
        claims[1]["sub_id"],
        json!({"format": "iss_sub", "iss": t.app.addr, "sub": sub})
    );
    assert_eq!(event_of(&claims[1]).1, json!({}));
    // The deletion's disable and the session it ended are one change.
    assert_eq!(claims[2]["txn"], claims[3]["txn"]);
    assert_eq!(claims[3]["sub_id"]["user"]["sub"], json!(sub));
}
