//! Poll delivery (RFC 8936) and what each change of tessera's maps to.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tessera::domain::permissions::Change;

use super::*;
use crate::support::*;

/// Polls once (acknowledging none), expecting `n` SETs; their (jti, SET) in the order
/// the answer lists them (serde_json's map would sort them by jti).
pub(crate) async fn poll_n(t: &Transmitter, stream: &str, n: usize) -> Vec<(String, String)> {
    let r = t
        .app
        .with_bearer(Method::POST, &format!("/ssf/poll/{stream}"), &t.token)
        .json(&json!({"returnImmediately": true, "maxEvents": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let mut sets: Vec<(String, String)> = answer["sets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    sets.sort_by_key(|(jti, _)| text.find(&format!("\"{jti}\"")));
    assert_eq!(sets.len(), n, "{answer}");
    sets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_role_change_reaches_a_long_poll_within_a_second_verified_with_jose() {
    let t = Transmitter::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    // A long-poll waiting before the change is answered by it.
    let waiting = {
        let (app_url, token) = (t.app.url(&format!("/ssf/poll/{stream}")), t.token.clone());
        let http = t.app.http.clone();
        tokio::spawn(async move {
            let r = http
                .post(app_url)
                .bearer_auth(token)
                .json(&json!({"returnImmediately": false}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            (r.json::<Value>().await.unwrap(), Instant::now())
        })
    };
    // Wait for the poll to be parked: nothing is pending, so it stays open.
    assert!(
        !eventually(Duration::from_millis(200), || async {
            waiting.is_finished()
        })
        .await
    );
    let changed = Instant::now();
    t.roles(&sub, &["editor"]).await;
    let (answer, answered) = waiting.await.unwrap();
    let latency = answered - changed;
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    let sets: Vec<String> = answer["sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(sets.len(), 1, "{answer}");
    assert_eq!(answer["moreAvailable"], false);
    let claims = t.verified(sets).await;
    let (kind, body) = event_of(&claims[0]);
    assert_eq!(kind, CLAIMS_CHANGE);
    assert_eq!(body["claims"]["roles"], json!(["editor"]));
    assert_eq!(
        claims[0]["sub_id"],
        json!({"format": "iss_sub", "iss": t.app.addr, "sub": sub})
    );
    assert_eq!(claims[0]["aud"], "rx");
    assert!(claims[0]["txn"].is_string() && claims[0]["iat"].is_number());
    assert!(claims[0].get("sub").is_none() && claims[0].get("exp").is_none());
    eprintln!("role change → long-poll answered in {latency:?}");
}

#[tokio::test]
async fn ssf_session_revocation_password_change_and_disable_are_mapped() {
    let t = Transmitter::start().await;
    t.app.client("web", true, &["password"], &[], &[]).await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    let login = t.app.login("web", USER, PASSWORD).await;
    let revoked = t
        .app
        .post_form(
            "/revoke",
            &[
                ("client_id", "web"),
                ("token", login["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    t.app.login("web", USER, PASSWORD).await;
    t.change(
        &sub,
        Change::Password("a whole new password".to_string().into()),
    )
    .await;
    t.change(&sub, Change::Disable).await;

    let sets = poll_n(&t, &stream, 4).await;
    let claims = t
        .verified(sets.iter().map(|(_, s)| s.clone()).collect())
        .await;
    let kinds: Vec<String> = claims.iter().map(|c| event_of(c).0).collect();
    // The log's order: the logout, then the password change and the session it ended,
    // then the disable.
    assert_eq!(
        kinds,
        [
            SESSION_REVOKED,
            CREDENTIAL_CHANGE,
            SESSION_REVOKED,
            ACCOUNT_DISABLED
        ]
    );
    assert_eq!(event_of(&claims[0]).0, SESSION_REVOKED);
    assert_eq!(claims[0]["sub_id"]["format"], "complex");
    assert_eq!(claims[0]["sub_id"]["user"]["sub"], json!(sub));
    assert_eq!(claims[0]["sub_id"]["session"]["format"], "opaque");
    let (_, body) = event_of(&claims[1]);
    assert_eq!(
        (
            body["credential_type"].as_str(),
            body["change_type"].as_str()
        ),
        (Some("password"), Some("update"))
    );
    // A change and the session it ended share a txn; the logout is another change.
    assert_eq!(claims[1]["txn"], claims[2]["txn"]);
    assert_ne!(claims[0]["txn"], claims[1]["txn"]);
    // Every jti is distinct.
    let mut jtis: Vec<&str> = claims.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 4);
}

#[tokio::test]
async fn ssf_unacknowledged_sets_come_again_with_the_same_jti_until_acknowledged_across_a_restart()
{
    let t = Transmitter::start().await;
    let sub = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    t.roles(&sub, &["a"]).await;
    t.roles(&sub, &["b"]).await;
    let first = poll_n(&t, &stream, 2).await;
    assert_eq!(
        poll_n(&t, &stream, 2)
            .await
            .iter()
            .map(|(j, _)| j)
            .collect::<Vec<_>>(),
        first.iter().map(|(j, _)| j).collect::<Vec<_>>()
    );
    // maxEvents bounds the answer and says more are waiting; `1.0` is 1, as JSON
    // Schema counts integers.
    let one = t
        .poll(
            &stream,
            json!({"returnImmediately": true, "maxEvents": 1.0}),
        )
        .await;
    assert_eq!(
        (
            one["sets"].as_object().unwrap().len(),
            &one["moreAvailable"]
        ),
        (1, &json!(true))
    );
    assert!(
        one["sets"].get(&first[0].0).is_some(),
        "the oldest first: {one}"
    );

    // A restart loses nothing and keeps the jtis.
    let Transmitter { app, token } = t;
    let app = app.restart_in_place().await;
    let t = Transmitter { app, token };
    t.roles(&sub, &["c"]).await;
    let again = poll_n(&t, &stream, 3).await;
    assert_eq!(
        again[..2].iter().map(|(j, _)| j).collect::<Vec<_>>(),
        first.iter().map(|(j, _)| j).collect::<Vec<_>>()
    );
    let claims = t
        .verified(again.iter().map(|(_, s)| s.clone()).collect())
        .await;
    let roles: Vec<Value> = claims
        .iter()
        .map(|c| event_of(c).1["claims"]["roles"].clone())
        .collect();
    assert_eq!(roles, [json!(["a"]), json!(["b"]), json!(["c"])]);

    // Acknowledged (and rejected) SETs do not come again; a rejection is recorded.
    let ack = json!({"ack": [again[0].0, again[1].0], "setErrs": {again[2].0.clone(): {"err": "invalid_audience", "description": "not us"}}, "returnImmediately": true});
    let answer = t.poll(&stream, ack).await;
    assert_eq!(answer["sets"], json!({}));
    let status = t.status(&stream).await;
    assert_eq!(status["tessera_delivery"]["delivered"], 2);
    assert_eq!(status["tessera_delivery"]["failed"], 1);
    assert_eq!(status["tessera_delivery"]["held"], 0);
    assert_eq!(
        status["tessera_delivery"]["last_error"]["err"],
        "invalid_audience"
    );
    assert_eq!(
        status["tessera_delivery"]["last_error"]["description"],
        "not us"
    );
}

#[tokio::test]
async fn ssf_verification_round_trip_and_its_minimum_interval() {
    let t = Transmitter::start().await;
    let stream = t.stream(json!({"method": POLL})).await;
    let (status, _) = t
        .call(
            Method::POST,
            "/ssf/verify",
            Some(json!({"stream_id": stream, "state": "xyzzy"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, e) = t
        .call(
            Method::POST,
            "/ssf/verify",
            Some(json!({"stream_id": stream})),
        )
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (429, Some("too_many_requests"))
    );
    let sets = poll_n(&t, &stream, 1).await;
    let claims = t.verified(vec![sets[0].1.clone()]).await;
    let (kind, body) = event_of(&claims[0]);
    assert_eq!(kind, VERIFICATION);
    assert_eq!(body["state"], "xyzzy");
    assert_eq!(
        claims[0]["sub_id"],
        json!({"format": "opaque", "id": stream})
    );
    t.app.advance(Duration::from_secs(1));
    let (status, _) = t
        .call(
            Method::POST,
            "/ssf/verify",
            Some(json!({"stream_id": stream})),
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn ssf_subjects_narrow_a_stream() {
    let t = Transmitter::start().await;
    let alice = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let bob = t.app.user("bob", PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    let subject = |sub: &str| json!({"stream_id": stream, "subject": {"format": "iss_sub", "iss": t.app.addr, "sub": sub}});
    let (status, _) = t
        .call(Method::POST, "/ssf/subjects/remove", Some(subject(&bob)))
        .await;
    assert_eq!(status, 204);
    t.roles(&bob, &["x"]).await;
    t.roles(&alice, &["y"]).await;
    let sets = poll_n(&t, &stream, 1).await;
    let claims = t.verified(vec![sets[0].1.clone()]).await;
    assert_eq!(claims[0]["sub_id"]["sub"], json!(alice));

    // With default subjects NONE, only the subjects added.
    let t = Transmitter::with(&[("ssf_default_subjects", "NONE")]).await;
    let alice = t.app.user(USER, PASSWORD, &["viewer"]).await;
    let bob = t.app.user("bob", PASSWORD, &["viewer"]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    let add = json!({"stream_id": stream, "subject": {"format": "iss_sub", "iss": t.app.addr, "sub": bob}});
    let (status, _) = t.call(Method::POST, "/ssf/subjects/add", Some(add)).await;
    assert_eq!(status, 200);
    t.roles(&alice, &["x"]).await;
    t.roles(&bob, &["y"]).await;
    let sets = poll_n(&t, &stream, 1).await;
    let claims = t.verified(vec![sets[0].1.clone()]).await;
    assert_eq!(claims[0]["sub_id"]["sub"], json!(bob));
}

/// A long-poll that finds no SET answers with none once `ssf_poll_wait` has passed (not
/// after the default 25 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_an_empty_long_poll_answers_after_ssf_poll_wait() {
    let t = Transmitter::with(&[("ssf_poll_wait", "300ms")]).await;
    let stream = t.stream(json!({"method": POLL})).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        t.poll(&stream, json!({"returnImmediately": false})),
    )
    .await
    .expect("the long-poll answered within its configured wait, far under 10 s");
    assert_eq!(answer, json!({"sets": {}, "moreAvailable": false}));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for a SET first: {:?}",
        started.elapsed()
    );
}
