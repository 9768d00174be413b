//! One liveness check for every bearer endpoint (`domain::liveness`): the token of
//! a revoked session is refused by each of them at once, with the same answer.

use reqwest::{Method, header};
use serde_json::Value;

use crate::support::PASSWORD;
use crate::support::fixtures::Feed;

#[tokio::test]
async fn a_revoked_sessions_token_is_refused_by_the_feed_and_userinfo() {
    let Feed { app, .. } = Feed::start(&[]).await;
    let login = app.login("app", "alice", PASSWORD).await;
    let at = login["access_token"].as_str().unwrap().to_string();
    let rt = login["refresh_token"].as_str().unwrap();
    let r = app
        .post_form("/revoke", &[("client_id", "app"), ("token", rt)])
        .await;
    assert_eq!(r.status(), 200);
    // Before one check served them all, the feed only asked whether the user was enabled.
    for (path, accept) in [
        ("/events?after=0", "application/json"),
        ("/events?after=0", "text/event-stream"),
        ("/userinfo", "application/json"),
    ] {
        let r = app
            .with_bearer(Method::GET, path, &at)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} {accept}");
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{path} {accept}");
        // The same answer everywhere, with why: what the feed's event would have said.
        assert_eq!(
            body["error_description"], "the session was revoked (revoked by the client)",
            "{path} {accept}"
        );
    }
}
