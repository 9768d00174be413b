//! SSF §7.1 metadata and §8.1 stream management: what a receiver sees and may change,
//! and the errors hostile requests get.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::support::*;

#[tokio::test]
async fn ssf_metadata_names_every_endpoint() {
    let t = Transmitter::start().await;
    let r = t
        .app
        .http
        .get(t.app.url("/.well-known/ssf-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    let iss = &t.app.addr;
    assert_eq!(m["spec_version"], "1_0");
    assert_eq!(m["issuer"], json!(iss));
    assert_eq!(m["jwks_uri"], json!(format!("{iss}/.well-known/jwks.json")));
    assert_eq!(m["delivery_methods_supported"], json!([PUSH, POLL]));
    for (k, path) in [
        ("configuration_endpoint", "/ssf/stream"),
        ("status_endpoint", "/ssf/status"),
        ("add_subject_endpoint", "/ssf/subjects/add"),
        ("remove_subject_endpoint", "/ssf/subjects/remove"),
        ("verification_endpoint", "/ssf/verify"),
    ] {
        assert_eq!(m[k], json!(format!("{iss}{path}")), "{k}");
    }
    assert_eq!(
        m["authorization_schemes"],
        json!([{"spec_urn": "urn:ietf:rfc:6749"}])
    );
    assert_eq!(m["default_subjects"], "ALL");
}

#[tokio::test]
async fn ssf_a_stream_is_created_read_updated_replaced_and_deleted() {
    let t = Transmitter::start().await;
    let body = json!({
        "events_requested": [CLAIMS_CHANGE, "urn:example:unknown"],
        "delivery": {"method": POLL},
        "description": "audit",
    });
    let (status, s) = t.call(Method::POST, "/ssf/stream", Some(body)).await;
    assert_eq!(status, 201, "{s}");
    let id = s["stream_id"].as_str().unwrap().to_string();
    assert_eq!(s["iss"], json!(t.app.addr));
    assert_eq!(s["aud"], "rx");
    assert_eq!(s["events_supported"].as_array().unwrap().len(), 5);
    assert_eq!(
        s["events_requested"],
        json!([CLAIMS_CHANGE, "urn:example:unknown"])
    );
    assert_eq!(s["events_delivered"], json!([CLAIMS_CHANGE]));
    assert_eq!(
        s["delivery"],
        json!({"method": POLL, "endpoint_url": format!("{}/ssf/poll/{id}", t.app.addr)})
    );
    assert_eq!(s["description"], "audit");
    assert_eq!(s["min_verification_interval"], 1);

    let (status, one) = t
        .call(Method::GET, &format!("/ssf/stream?stream_id={id}"), None)
        .await;
    assert_eq!((status, &one), (200, &s));
    let (status, all) = t.call(Method::GET, "/ssf/stream", None).await;
    assert_eq!((status, all), (200, json!([s])));

    // Update: what is absent stays.
    let patch = json!({"stream_id": id, "events_requested": [SESSION_REVOKED, CLAIMS_CHANGE]});
    let (status, u) = t.call(Method::PATCH, "/ssf/stream", Some(patch)).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        u["events_delivered"],
        json!([SESSION_REVOKED, CLAIMS_CHANGE])
    );
    assert_eq!(u["description"], "audit");
    // A receiver may send back the configuration it read: the transmitter-supplied
    // members (the poll endpoint among them) are ignored.
    let mut echoed = u.clone();
    echoed["description"] = json!("echoed");
    let (status, e) = t.call(Method::PATCH, "/ssf/stream", Some(echoed)).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        (&e["delivery"], &e["description"]),
        (&u["delivery"], &json!("echoed"))
    );
    let elsewhere = json!({"stream_id": id, "delivery": {"method": POLL, "endpoint_url": "https://rx.example/poll"}});
    let (status, e) = t.call(Method::PATCH, "/ssf/stream", Some(elsewhere)).await;
    assert_eq!(
        (status, &e["delivery"]),
        (200, &u["delivery"]),
        "the transmitter's poll endpoint stays"
    );
    // Replace: what is absent goes.
    let put = json!({"stream_id": id, "events_requested": [ACCOUNT_DISABLED], "delivery": {"method": POLL}});
    let (status, r) = t.call(Method::PUT, "/ssf/stream", Some(put)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["events_delivered"], json!([ACCOUNT_DISABLED]));
    assert!(r.get("description").is_none(), "{r}");

    let status_doc = t.status(&id).await;
    assert_eq!(status_doc["status"], "enabled");
    assert_eq!(status_doc["stream_id"], json!(id));
    let body = json!({"stream_id": id, "status": "paused", "reason": "maintenance"});
    let (code, st) = t.call(Method::POST, "/ssf/status", Some(body)).await;
    assert_eq!(code, 200);
    assert_eq!(
        (st["status"].as_str(), st["reason"].as_str()),
        (Some("paused"), Some("maintenance"))
    );

    let (status, _) = t
        .call(Method::DELETE, &format!("/ssf/stream?stream_id={id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, e) = t
        .call(Method::GET, &format!("/ssf/stream?stream_id={id}"), None)
        .await;
    assert_eq!((status, e["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn ssf_a_client_cannot_read_or_change_another_clients_stream() {
    let t = Transmitter::start().await;
    let id = t.stream(json!({"method": POLL})).await;
    let secret = t.app.service("other", &["ssf"]).await;
    let other = t.app.client_token("other", &secret).await;
    let q = format!("?stream_id={id}");
    let attempts = [
        (Method::GET, format!("/ssf/stream{q}"), None),
        (
            Method::PATCH,
            "/ssf/stream".into(),
            Some(json!({"stream_id": id, "description": "mine"})),
        ),
        (
            Method::PUT,
            "/ssf/stream".into(),
            Some(json!({"stream_id": id})),
        ),
        (Method::DELETE, format!("/ssf/stream{q}"), None),
        (Method::GET, format!("/ssf/status{q}"), None),
        (
            Method::POST,
            "/ssf/status".into(),
            Some(json!({"stream_id": id, "status": "disabled"})),
        ),
        (
            Method::POST,
            "/ssf/subjects/add".into(),
            Some(
                json!({"stream_id": id, "subject": {"format": "iss_sub", "iss": t.app.addr, "sub": "x"}}),
            ),
        ),
        (
            Method::POST,
            "/ssf/verify".into(),
            Some(json!({"stream_id": id})),
        ),
        (
            Method::POST,
            format!("/ssf/poll/{id}"),
            Some(json!({"returnImmediately": true})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, _) = call(&t.app, &other, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (_, list) = call(&t.app, &other, Method::GET, "/ssf/stream", None).await;
    assert_eq!(list, json!([]));
    // Untouched.
    assert_eq!(t.status(&id).await["status"], "enabled");

    // Without capability `ssf`, with a user's token, without a token.
    let secret = t.app.service("plain", &["events"]).await;
    let plain = t.app.client_token("plain", &secret).await;
    let (status, e) = call(&t.app, &plain, Method::GET, "/ssf/stream", None).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    t.app.client("web", true, &["password"], &[], &[]).await;
    t.app.user(USER, PASSWORD, &["viewer"]).await;
    let user = t.app.login("web", USER, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(&t.app, &user, Method::GET, "/ssf/stream", None).await;
    assert_eq!(status, 403);
    let r = t
        .app
        .http
        .get(t.app.url("/ssf/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn ssf_hostile_management_requests_get_errors_never_a_5xx() {
    // The default guard: https to public addresses only.
    let t = Transmitter::with(&[
        ("ssf_max_streams_per_client", "2"),
        ("ssf_max_subjects_per_stream", "1"),
    ])
    .await;
    let huge: Vec<String> = (0..1000).map(|i| format!("urn:x:{i}")).collect();
    let long = "x".repeat(5000);
    let bodies = [
        json!({"events_requested": huge}),
        json!({"events_requested": [long]}),
        json!({"events_requested": "everything"}),
        json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
        json!({"delivery": {"method": PUSH}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "not a url"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "http://receiver.example/ssf"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "https://127.0.0.1/ssf"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "https://[::1]:8443/ssf"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "https://169.254.169.254/latest"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "https://receiver.example/", "authorization_header": "a\nb"}}),
        json!({"events_requested": ["x".repeat(257)]}),
        json!({"delivery": 7}),
        json!({"description": long}),
    ];
    for body in bodies {
        let (status, e) = t
            .call(Method::POST, "/ssf/stream", Some(body.clone()))
            .await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    let r = t
        .app
        .with_bearer(Method::POST, "/ssf/stream", &t.token)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = t
        .app
        .with_bearer(Method::POST, "/ssf/stream", &t.token)
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let id = t.stream(json!({"method": POLL})).await;
    let subject = |s: Value| json!({"stream_id": id, "subject": s});
    for bad in [
        json!({"format": "email", "email": "a@example.com"}),
        json!({"format": "iss_sub", "iss": "https://elsewhere.example", "sub": "u"}),
        json!({"format": "iss_sub", "iss": t.app.addr}),
        json!({"sub": "u"}),
        json!("u"),
    ] {
        let (status, e) = t
            .call(
                Method::POST,
                "/ssf/subjects/add",
                Some(subject(bad.clone())),
            )
            .await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    // Bounded: subjects per stream (with ALL, removals are the exceptions held).
    let user = |sub: &str| subject(json!({"format": "iss_sub", "iss": t.app.addr, "sub": sub}));
    let (status, _) = t
        .call(Method::POST, "/ssf/subjects/remove", Some(user("u1")))
        .await;
    assert_eq!(status, 204);
    let (status, _) = t
        .call(Method::POST, "/ssf/subjects/remove", Some(user("u2")))
        .await;
    assert_eq!(status, 400);
    let (status, _) = t
        .call(Method::POST, "/ssf/subjects/add", Some(user("u1")))
        .await;
    assert_eq!(status, 200);

    for (method, path, body) in [
        (
            Method::POST,
            "/ssf/status",
            json!({"stream_id": id, "status": "sleeping"}),
        ),
        (Method::POST, "/ssf/status", json!({"stream_id": id})),
        (
            Method::PATCH,
            "/ssf/stream",
            json!({"description": "no id"}),
        ),
        (
            Method::PATCH,
            "/ssf/stream",
            json!({"stream_id": id, "delivery": {"method": PUSH, "endpoint_url": "https://10.0.0.1/"}}),
        ),
        (Method::POST, "/ssf/verify", json!({"state": "no id"})),
    ] {
        let (status, e) = t.call(method.clone(), path, Some(body.clone())).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_request")),
            "{method} {path} {body}"
        );
    }
    for path in [
        "/ssf/status",
        "/ssf/stream?stream_id=nope",
        "/ssf/status?stream_id=nope",
    ] {
        let (status, _) = t.call(Method::GET, path, None).await;
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    let (status, _) = t.call(Method::DELETE, "/ssf/stream", None).await;
    assert_eq!(status, 400);
    // Poll errors are RFC 8935's {err, description}.
    for body in [
        json!({"maxEvents": -1}),
        json!({"maxEvents": 1.5}),
        json!({"maxEvents": null}),
        json!({"maxEvents": "1"}),
        json!({"returnImmediately": null}),
        json!({"ack": "jti"}),
        json!({"setErrs": {"j": 1}}),
    ] {
        let (status, e) = t
            .call(Method::POST, &format!("/ssf/poll/{id}"), Some(body.clone()))
            .await;
        assert_eq!(
            (status, e["err"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    // Bounded: streams per client (409, SSF §8.1.1.1).
    t.stream(json!({"method": POLL})).await;
    let (status, e) = t.call(Method::POST, "/ssf/stream", Some(json!({}))).await;
    assert_eq!((status, e["error"].as_str()), (409, Some("conflict")));
}

/// Every member of every management body, replaced in turn by values of the wrong type
/// or size: each answer is a 4xx or a success, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssf_type_confused_bodies_never_get_a_5xx() {
    let t = Transmitter::with(&[("ssf_max_streams_per_client", "3")]).await;
    let id = t.stream(json!({"method": POLL})).await;
    let hostile = [
        Value::Null,
        json!(0),
        json!(-1),
        json!(1e308),
        json!(u64::MAX),
        json!(""),
        json!("x".repeat(3000)),
        json!("\u{0000}\u{202e}"),
        json!([]),
        json!({}),
        json!([[{}]]),
        json!(true),
    ];
    let templates = [
        (
            Method::POST,
            "/ssf/stream".to_string(),
            json!({"events_requested": [CLAIMS_CHANGE], "delivery": {"method": PUSH, "endpoint_url": "https://receiver.example/", "authorization_header": "Bearer x"}, "description": "d"}),
        ),
        (
            Method::PATCH,
            "/ssf/stream".to_string(),
            json!({"stream_id": id, "events_requested": [CLAIMS_CHANGE], "delivery": {"method": POLL}, "description": "d"}),
        ),
        (
            Method::PUT,
            "/ssf/stream".to_string(),
            json!({"stream_id": id, "events_requested": [CLAIMS_CHANGE], "delivery": {"method": POLL}}),
        ),
        (
            Method::POST,
            "/ssf/status".to_string(),
            json!({"stream_id": id, "status": "enabled", "reason": "r"}),
        ),
        (
            Method::POST,
            "/ssf/subjects/add".to_string(),
            json!({"stream_id": id, "subject": {"format": "iss_sub", "iss": t.app.addr, "sub": "u"}}),
        ),
        (
            Method::POST,
            "/ssf/subjects/remove".to_string(),
            json!({"stream_id": id, "subject": {"format": "iss_sub", "iss": t.app.addr, "sub": "u"}}),
        ),
        (
            Method::POST,
            "/ssf/verify".to_string(),
            json!({"stream_id": id, "state": "s"}),
        ),
        (
            Method::POST,
            format!("/ssf/poll/{id}"),
            json!({"maxEvents": 1, "returnImmediately": true, "ack": ["j"], "setErrs": {"j": {"err": "e", "description": "d"}}}),
        ),
    ];
    let mut sent = 0;
    for (method, path, template) in &templates {
        // Each member, and each member of a nested object, in turn.
        let mut paths: Vec<Vec<String>> = Vec::new();
        for (k, v) in template.as_object().unwrap() {
            paths.push(vec![k.clone()]);
            if let Some(inner) = v.as_object() {
                paths.extend(inner.keys().map(|i| vec![k.clone(), i.clone()]));
            }
        }
        for member in &paths {
            for value in &hostile {
                let mut body = template.clone();
                let mut slot = &mut body;
                for key in member {
                    slot = &mut slot[key.as_str()];
                }
                *slot = value.clone();
                // A poll that may wait is told not to: this is about the answer's class.
                if path.starts_with("/ssf/poll/") && member != &["returnImmediately".to_string()] {
                    body["returnImmediately"] = json!(true);
                }
                if path.starts_with("/ssf/poll/") && body["returnImmediately"] != json!(true) {
                    continue;
                }
                let (status, answer) = t.call(method.clone(), path, Some(body.clone())).await;
                assert!(status < 500, "{method} {path} {body}: {status} {answer}");
                assert!(
                    (200..300).contains(&status) || answer.is_object(),
                    "{method} {path} {body}: {status}"
                );
                sent += 1;
            }
        }
    }
    assert!(sent > 300, "{sent}");
}
