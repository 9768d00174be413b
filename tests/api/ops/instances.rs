//! Several instances on one database (issue: PostgreSQL and several instances).
//! `A` is the in-process test server, `B` a second `tessera serve` process on the
//! same database and KEK. Run with `TESSERA_TEST_POSTGRES` for the PostgreSQL case;
//! on SQLite the same properties hold for two processes sharing one file.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::feed::events::Sse;
use crate::keys::jwks::verify_with_jwks;
use crate::keys::keys_instances::Instance;
use crate::keys::keys_lifecycle::LEAD_OVER;
use crate::oauth::refresh::{claims, rt, session_app};
use crate::support::*;

async fn jwks_at(app: &TestApp, base: &str) -> Value {
    app.http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_from_a_verifies_with_bs_jwks_and_a_rotation_on_b_then_reuse_on_a_revokes_for_both()
{
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let b = Instance::start(&app).await;
    let first = app.login("app", USER, PASSWORD).await;
    let at = first["access_token"].as_str().unwrap();
    assert!(verify_with_jwks(at, &jwks_at(&app, &b.addr).await));
    // B accepts A's token where it checks it live.
    let r = app
        .http
        .get(b.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r0 = rt(&first);
    let (status, on_b) = refresh_at(&app.http, &b.addr, "app", &r0).await;
    assert_eq!(status, 200, "{on_b}");
    let r1 = rt(&on_b);
    assert!(verify_with_jwks(
        on_b["access_token"].as_str().unwrap(),
        &jwks_at(&app, &app.addr).await
    ));
    // Reuse of the consumed token on A: the family is revoked, B's successor with it.
    let (status, reuse) = refresh_at(&app.http, &app.addr, "app", &r0).await;
    assert_eq!((status, &reuse["error"]), (400, &json!("invalid_grant")));
    for base in [&app.addr, &b.addr] {
        let (status, body) = refresh_at(&app.http, base, "app", &r1).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_grant")),
            "{base}"
        );
    }
    let revoked = crate::oauth::refresh::revocations(&app).await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].0.as_deref(), Some("refresh_token_reuse"));
    assert_eq!(revoked[0].1.as_deref(), claims(&first)["sid"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_split_across_instances_have_one_winner_in_strict_mode() {
    let app = session_app(&[("refresh_reuse_grace", "0")]).await;
    let b = Instance::start(&app).await;
    for round in 0..3 {
        let r0 = rt(&app.login("app", USER, PASSWORD).await);
        let results = race_at(&app.http, &[&app.addr, &b.addr], &r0).await;
        let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
            // Never a 5xx: a lost race is reuse, and reuse is invalid_grant.
            assert_eq!((*status, &body["error"]), (400, &json!("invalid_grant")));
        }
        // The losers revoked the family: the winner's successor is dead on both.
        let (status, _) = refresh_at(&app.http, &b.addr, "app", &rt(&winners[0].1)).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_split_across_instances_share_one_successor_within_grace() {
    let app = session_app(&[]).await;
    let b = Instance::start(&app).await;
    for round in 0..3 {
        let r0 = rt(&app.login("app", USER, PASSWORD).await);
        let results = race_at(&app.http, &[&app.addr, &b.addr], &r0).await;
        assert!(
            results.iter().all(|(s, _)| *s == 200),
            "round {round}: {results:?}"
        );
        let successors: HashSet<String> = results.iter().map(|(_, b)| rt(b)).collect();
        assert_eq!(successors.len(), 1, "the family branched: {successors:?}");
        // The one successor works, on either instance.
        let next = successors.into_iter().next().unwrap();
        let (status, body) = refresh_at(&app.http, &b.addr, "app", &next).await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(crate::oauth::refresh::revocations(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_change_on_a_reaches_an_sse_subscriber_on_b_within_a_second() {
    let Feed { app, rs, alice } = Feed::start(&[]).await;
    let b = Instance::start(&app).await;
    let admin = app.admin_token().await;
    let mut sse = Sse::open_url(&app.http, &b.url("/events"), &rs).await;
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let start = Instant::now();
        let r = app
            .with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
            .json(&json!({"roles": [format!("r{i}")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let e = sse.next_within(Duration::from_secs(5)).await;
        assert_eq!(e.event, "user.roles_changed");
        assert_eq!(e.data["roles"], json!([format!("r{i}")]));
        worst = worst.max(e.received - start);
    }
    eprintln!("A commit -> B's SSE, worst of 10: {worst:?}");
    assert!(worst < Duration::from_secs(1), "worst {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotation_through_a_is_served_by_b() {
    // Keys older than their lead: A rotates at once on the system clock, which B reads too.
    let app = TestApp::with_keys_aged(LEAD_OVER, &[("jwks_max_age", "1")]).await;
    app.client("app", true, &["password"], &["read", "write"], &[])
        .await;
    app.user(USER, PASSWORD, &["reader"]).await;
    let b = Instance::start(&app).await;
    let admin = app.admin_token().await;
    let before: HashSet<Value> = jwks_at(&app, &b.addr).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    let r = app
        .with_bearer(Method::POST, "/admin/keys/rotate", &admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A signs with the new key; B serves a JWKS that verifies it (B caches its
    // serialised JWKS and must have picked the change up).
    let token = app.login("app", USER, PASSWORD).await;
    let at = token["access_token"].as_str().unwrap().to_string();
    // The kids B served last, for the failure message.
    let kids = std::cell::RefCell::new(HashSet::new());
    let picked_up = eventually(Duration::from_secs(3), || async {
        let jwks = jwks_at(&app, &b.addr).await;
        let served: HashSet<Value> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        let changed = served != before;
        *kids.borrow_mut() = served;
        verify_with_jwks(&at, &jwks) && changed
    })
    .await;
    assert!(picked_up, "B still serves {:?}", kids.borrow());
    // And B signs with the rotated key too.
    let (status, body) = login_at(&app.http, &b.addr, "app", USER, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let kid_b = jwt_parts(body["access_token"].as_str().unwrap()).0["kid"].clone();
    assert_eq!(kid_b, jwt_parts(&at).0["kid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permission_changes_racing_refreshes_across_instances_never_answer_5xx() {
    let app = session_app(&[]).await;
    let b = Instance::start(&app).await;
    let admin = app.admin_token().await;
    let alice = app
        .core
        .users
        .user_by_name(USER)
        .await
        .unwrap()
        .expect("alice")
        .id;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Eight chains on A and B; a revoked session signs in again and goes on.
    let chains: Vec<_> = (0..8)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.addr.clone()
            } else {
                b.addr.clone()
            };
            let (http, stop) = (app.http.clone(), stop.clone());
            tokio::spawn(async move {
                let login = || async {
                    // A sign-in that read alice before a role change committed is
                    // refused (its session would escape the revocation): sign in again.
                    for attempt in 1.. {
                        let (status, body) = login_at(&http, &base, "app", USER, PASSWORD).await;
                        if status == 400 && body["error"] == "invalid_grant" && attempt < 50 {
                            continue;
                        }
                        assert_eq!(status, 200, "{body}");
                        return rt(&body);
                    }
                    unreachable!()
                };
                let (mut token, mut counts) = (login().await, (0, 0));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, body) = refresh_at(&http, &base, "app", &token).await;
                    match status {
                        200 => {
                            token = rt(&body);
                            counts.0 += 1;
                        }
                        400 => {
                            assert_eq!(body["error"], "invalid_grant");
                            counts.1 += 1;
                            token = login().await;
                        }
                        _ => panic!("{status} {body}"),
                    }
                }
                counts
            })
        })
        .collect();
    for i in 0..40 {
        let r = app
            .with_bearer(Method::PUT, &format!("/admin/users/{alice}/roles"), &admin)
            .json(&json!({"roles": [format!("r{i}")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut rotated, mut revoked) = (0, 0);
    for c in chains {
        let (ok, gone) = c.await.unwrap();
        rotated += ok;
        revoked += gone;
    }
    eprintln!("{rotated} rotations, {revoked} refreshes of revoked sessions, 40 role changes");
    assert!(rotated > 0 && revoked > 0, "{rotated} {revoked}");
    // No family has two live tokens.
    let branched = crate::sql::branched_families(app.core.db.writer()).await;
    assert!(branched.is_empty(), "{branched:?}");
}
