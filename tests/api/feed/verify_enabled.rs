//! tessera-verify and a user's way back and out: a verifier that refused a disabled
//! user accepts the re-enabled user's new tokens (and still refuses the old ones), and
//! refuses a deleted user's outstanding tokens at once.

use reqwest::Method;
use tessera_verify::Rejection;

use super::verify_feed::{refused, rig};
use crate::support::*;

#[tokio::test]
async fn verify_accepts_a_re_enabled_users_new_tokens_only() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (old, _) = rig.login().await;
    v.verify(&old).await.expect("accepted");
    let admin = |path: String| rig.app.with_bearer(Method::POST, &path, &rig.admin).send();
    let r = admin(format!("/admin/users/{}/disable", rig.alice))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(refused(&v, &old).await, Rejection::UserDisabled);
    let r = admin(format!("/admin/users/{}/enable", rig.alice))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (fresh, _) = rig.login().await;
    // The new token is accepted once the verifier has seen `user.enabled`.
    let accepted = eventually(std::time::Duration::from_secs(5), || async {
        v.verify(&fresh).await.is_ok()
    })
    .await;
    assert!(accepted, "{:?}", v.verify(&fresh).await);
    // The token minted before the disable stays refused (its `ver` is stale).
    assert!(v.verify(&old).await.is_err());
}

#[tokio::test]
async fn verify_refuses_a_deleted_users_tokens_at_once() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (token, _) = rig.login().await;
    v.verify(&token).await.expect("accepted");
    let r = rig
        .app
        .with_bearer(
            Method::DELETE,
            &format!("/admin/users/{}", rig.alice),
            &rig.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(refused(&v, &token).await, Rejection::UserDisabled);
}
