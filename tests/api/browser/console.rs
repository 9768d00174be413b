//! The console in Chromium (tests/browser/console.mjs): an admin signs in through the login
//! page, finds a user by prefix among 300, changes their roles (their sessions revoked, the
//! change delivered to the feed's subscribers, seen on the reach page), visits the keys; a
//! forged form from another origin is refused; an admin demoted in another tab is refused on
//! the next action. Screenshots go to target/console/ (copied into docs/ by hand).

use std::time::Duration;

use serde_json::json;

use crate::browser::sign_in::{CHROMIUM, chromium_present, node, target_dir};
use crate::feed::events::Sse;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_a_user_changes_their_roles_and_watches_the_change_reach_the_feed() {
    if !chromium_present() {
        return;
    }
    let app = TestApp::spawn().await;
    app.user("root", "root password 1", &["admin"]).await;
    for i in 0..300 {
        app.user(&format!("user{i:04}"), "member password", &["viewer"])
            .await;
    }
    let target = app
        .user("target-alice", "alice password", &["viewer"])
        .await;
    app.client("app", true, &["password"], &[], &[]).await;
    app.login("app", "target-alice", "alice password").await;
    app.login("app", "target-alice", "alice password").await;
    // Two verifiers follow the feed while the operator works.
    let mut streams = Vec::new();
    for id in ["orders-api", "billing-api"] {
        let secret = app.service(id, &["events"]).await;
        let token = app.client_token(id, &secret).await;
        streams.push(Sse::open(&app, &token, "", None).await);
    }

    let old_secret = app.service("reports", &["introspect"]).await;
    let profile = tempfile::tempdir().unwrap();
    let shots = target_dir().join("console");
    std::fs::create_dir_all(&shots).unwrap();
    let args = json!({
        "base": app.addr,
        "chromium": CHROMIUM,
        "userDataDir": profile.path(),
        "shots": shots,
        "admin": {"username": "root", "password": "root password 1"},
        "target": "target-alice",
        "prefix": "target",
        "forgedPort": super::free_port(),
        "client": "reports",
    });
    let out = tokio::task::spawn_blocking(move || node("console.mjs", &args))
        .await
        .unwrap();
    println!("screenshots: {}\n{out:#}", shots.display());

    assert_eq!(out["loginTitle"], "Sign in · tessera", "{out:#}");
    assert_eq!(out["signedInAs"], "root");
    assert_eq!(out["usersOnFirstPage"], 50);
    assert_eq!(out["scripts"], 0);
    assert_eq!(out["searchRows"], 1, "the prefix finds one user among 302");
    assert_eq!(out["sessionsBefore"], 2);
    assert!(
        out["notice"].as_str().unwrap().starts_with("Roles saved"),
        "{out:#}"
    );
    assert_eq!(
        (out["sessionsAfter"].as_i64(), out["noLiveSession"].as_i64()),
        (Some(0), Some(1))
    );
    // The user's page lists the change and the revocations it caused.
    let events = out["newestEventOfUser"].as_array().unwrap();
    assert!(events.contains(&json!("user.roles_changed")), "{out:#}");
    assert_eq!(
        events.iter().filter(|e| *e == "session.revoked").count(),
        2,
        "{out:#}"
    );
    let mut reached: Vec<&str> = out["reachSubscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    reached.sort_unstable();
    assert_eq!(reached, ["billing-api", "orders-api"], "{out:#}");
    // The verifiers did receive the change the page says reached them.
    let newest: i64 = out["reachNewest"].as_str().unwrap().parse().unwrap();
    for s in &mut streams {
        let mut last = 0;
        while last < newest {
            last = s.next_within(Duration::from_secs(5)).await.id;
        }
        assert_eq!(last, newest);
    }
    let audit = &out["auditFirst"];
    assert_eq!(
        (audit[2].as_str(), audit[3].as_str()),
        (Some("console"), Some("set_roles")),
        "{out:#}"
    );
    assert_eq!(audit[4], target.as_str());
    assert_eq!(
        out["unlabelled"],
        json!([]),
        "every field of the clients form is labelled"
    );
    assert!(out["keyRows"].as_i64().unwrap() >= 2, "{out:#}");
    assert_eq!(out["revokeButton"], 1);
    assert_eq!(out["forgedStatus"], 403, "{out:#}");
    assert_eq!(out["forgedText"], "Refused");
    // The demoted admin's last form changed nothing; signing in again is refused.
    let roles = app.core.users.user(&target).await.unwrap().unwrap().roles;
    assert_eq!(roles, ["viewer", "auditor"], "{out:#}");
    let text = out["afterDemotionText"].as_str().unwrap();
    assert!(
        out["signInAgainStatus"] == 403 || text.contains("Refused"),
        "{out:#}"
    );
    assert_eq!(out["cspErrors"], json!([]), "{out:#}");

    // The secret rotated in the console: the new one works, the old one until the overlap
    // (`client_secret_overlap`, 1 h by default) ends, then is refused.
    let new_secret = out["newSecret"].as_str().unwrap();
    assert_eq!(new_secret.len(), 43, "{out:#}");
    assert!(
        out["secretNotice"]
            .as_str()
            .unwrap()
            .contains("accepted until"),
        "{out:#}"
    );
    app.client_token("reports", new_secret).await;
    app.client_token("reports", &old_secret).await;
    app.advance(Duration::from_secs(3601));
    let refused = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "reports"),
            ("client_secret", &old_secret),
        ])
        .await;
    assert_eq!(refused.status(), 401, "the old secret after the overlap");
    app.client_token("reports", new_secret).await;
}
