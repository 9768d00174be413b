//! Signing in to the console, the live admin check on every request, and CSRF.

use tessera::domain::audit::{Actor, AuditSearch, Trail};
use tessera::domain::permissions::Change;

use super::{admin_browser, csrf_of, location, post_with, same_origin, sign_in};
use crate::helpers::*;
use crate::oauth::code_flow::Browser;

fn headers<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn an_admin_signs_in_through_the_code_flow_and_finds_a_user_by_prefix() {
    let app = TestApp::spawn().await;
    for i in 0..60 {
        app.user(&format!("member{i:03}"), "member password", &[])
            .await;
    }
    app.user("zelda", "zelda password 1", &[]).await;
    let mut b = Browser::new(&app);
    admin_browser(&mut b).await;
    let cookie = b.cookies.keys().find(|k| k.contains("console")).cloned();
    assert_eq!(cookie.as_deref(), Some("tessera_console"));

    let page = b.get("/console/users?q=zel").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(">zelda</a>"), "{html}");
    assert!(
        !html.contains("member000"),
        "a prefix search lists only its matches"
    );

    // 62 users: a first page of 50 and a link to the next.
    let first = b.get("/console/users").await.text().await.unwrap();
    assert_eq!(
        first.matches("<tr>").count(),
        1 + 50,
        "a header row and 50 users"
    );
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .and_then(|s| s.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    let second = b.get(&next).await.text().await.unwrap();
    assert!(
        second.contains(">zelda</a>") && second.contains(">root</a>"),
        "{second}"
    );
}

#[tokio::test]
async fn a_user_without_the_admin_role_is_refused() {
    let app = TestApp::spawn().await;
    app.user("mallory", "mallory password", &["editor"]).await;
    let mut b = Browser::new(&app);
    let page = sign_in(&mut b, "mallory", "mallory password").await;
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("does not hold the admin role"), "{html}");
    assert_eq!(b.get("/console/keys").await.status(), 403);
}

#[tokio::test]
async fn signed_out_requests_are_sent_to_sign_in_and_a_forged_callback_is_refused() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let r = b.get("/console/reach").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/console/login".into())
    );
    // A callback this browser did not start (no flow cookie, or another state).
    let r = b.get("/console/callback?code=abc&state=xyz").await;
    assert_eq!(r.status(), 400);
    b.get("/console/login").await;
    let r = b
        .get("/console/callback?code=abc&state=not-the-state")
        .await;
    assert_eq!(r.status(), 400);
    // A forged session cookie is no session.
    b.cookies.insert("tessera_console".into(), "forged".into());
    assert_eq!(b.get("/console/users").await.status(), 303);
}

/// Under `revoke` (the default) the role change ends the console's tessera session: the next
/// request is sent to sign in, and signing in again is refused; under `reissue` the session
/// stays and the next request is refused at once. Either way the form changes nothing.
#[tokio::test]
async fn an_admin_whose_role_is_removed_is_refused_on_the_next_request() {
    for (policy, next) in [("revoke", 303), ("reissue", 403)] {
        let app = TestApp::with(&[("permission_change_policy", policy)]).await;
        let mut b = Browser::new(&app);
        let csrf = admin_browser(&mut b).await;
        let root = app.core.users.user_by_name("root").await.unwrap().unwrap();
        let target = app.user("target", "target password", &["viewer"]).await;
        app.core
            .users
            .change_user(
                &Actor::cli(),
                &root.id,
                Change::Roles(vec!["viewer".into()]),
            )
            .await
            .unwrap();
        assert_eq!(b.get("/console/users").await.status(), next, "{policy}");
        let same = same_origin(&app);
        let r = post_with(
            &mut b,
            &format!("/console/users/{target}/roles"),
            &[("csrf", &csrf), ("roles", "admin")],
            &headers(&same),
        )
        .await;
        assert_eq!(r.status(), next, "{policy}");
        let after = app.core.users.user(&target).await.unwrap().unwrap();
        assert_eq!(after.roles, ["viewer"], "nothing changed");
        if policy == "revoke" {
            let again = super::sign_in(&mut Browser::new(&app), "root", "root password 1").await;
            assert_eq!(again.status(), 403);
        }
    }
}

#[tokio::test]
async fn a_role_change_needs_the_sessions_csrf_token_and_the_consoles_origin() {
    let app = TestApp::spawn().await;
    app.client("app", true, &["password"], &[], &[]).await;
    let target = app.user("target", "target password", &["viewer"]).await;
    app.login("app", "target", "target password").await;
    let mut b = Browser::new(&app);
    let csrf = admin_browser(&mut b).await;
    let path = format!("/console/users/{target}/roles");
    let same = same_origin(&app);
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("no token", vec![("origin", app.addr.as_str())]),
        ("another site", vec![("origin", "https://evil.example")]),
        ("cross-site fetch", vec![("sec-fetch-site", "cross-site")]),
        (
            "same-site, another origin",
            vec![("sec-fetch-site", "same-site")],
        ),
    ];
    for (what, hs) in cases {
        let form: Vec<(&str, &str)> = if what == "no token" {
            vec![("roles", "editor")]
        } else {
            vec![("csrf", &csrf), ("roles", "editor")]
        };
        let r = post_with(&mut b, &path, &form, &hs).await;
        assert_eq!(r.status(), 403, "{what}");
    }
    let wrong = post_with(
        &mut b,
        &path,
        &[("csrf", "A".repeat(43).as_str()), ("roles", "editor")],
        &headers(&same),
    )
    .await;
    assert_eq!(wrong.status(), 403, "another token");
    assert_eq!(
        app.core.users.user(&target).await.unwrap().unwrap().roles,
        ["viewer"]
    );

    let before = app
        .core
        .users
        .live_sessions(&target)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.len(), 1);
    let ok = post_with(
        &mut b,
        &path,
        &[("csrf", &csrf), ("roles", "editor, auditor")],
        &headers(&same),
    )
    .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), format!("/console/users/{target}?done=roles"));
    let user = app.core.users.user(&target).await.unwrap().unwrap();
    assert_eq!(user.roles, ["editor", "auditor"]);
    let page = b.get(&location(&ok)).await.text().await.unwrap();
    assert!(
        page.contains("Roles saved") && page.contains("No live session."),
        "{page}"
    );
    assert_eq!(csrf_of(&page), csrf, "one token per console session");

    // The change is in the audit trail, by the signed-in admin through the console, and the
    // console's trail page lists it.
    let root = app.core.users.user_by_name("root").await.unwrap().unwrap();
    let trail = Trail {
        db: app.core.db.clone(),
    };
    let search = AuditSearch {
        target: Some(target.clone()),
        ..Default::default()
    };
    let entries = trail.page(&search, 10).await.unwrap().entries;
    let set = entries
        .iter()
        .find(|e| e.action == "set_roles")
        .expect("a set_roles entry");
    assert_eq!(
        (set.actor.as_str(), set.via.as_str()),
        (root.id.as_str(), "console")
    );
    assert_eq!(
        set.details["roles"],
        serde_json::json!(["editor", "auditor"])
    );
    let page = b
        .get(&format!("/console/audit?target={target}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("set_roles") && page.contains(&root.id),
        "{page}"
    );
}

#[tokio::test]
async fn sign_out_ends_the_console_session_and_its_tessera_session() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let csrf = admin_browser(&mut b).await;
    let root = app.core.users.user_by_name("root").await.unwrap().unwrap();
    let sessions = app
        .core
        .users
        .live_sessions(&root.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].client_id, "tessera-console");
    let same = same_origin(&app);
    let r = post_with(
        &mut b,
        "/console/logout",
        &[("csrf", &csrf)],
        &headers(&same),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/end_session?"),
        "{}",
        location(&r)
    );
    assert!(
        app.core
            .users
            .live_sessions(&root.id)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.get("/console/users").await.status(), 303, "signed out");
}

/// A plain-http issuer on a public name cannot register the console's redirect URI: the server
/// still starts and serves, and the console says why it is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_plain_http_public_issuer_the_console_is_unavailable_not_the_server() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let env = Served::env_for(&dir, &[]);
    let s = Served::start(dir.clone(), env, "console.log").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(s.url("/console/login")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("issuer must be https"));
    assert_eq!(
        http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("the web console is unavailable"), "{log}");
}

#[tokio::test]
async fn a_user_is_disabled_enabled_and_deleted_after_a_confirmation() {
    let app = TestApp::spawn().await;
    let target = app.user("target", "target password", &["viewer"]).await;
    let mut b = Browser::new(&app);
    let csrf = admin_browser(&mut b).await;
    let same = same_origin(&app);
    let base = format!("/console/users/{target}");
    for (action, disabled) in [("disable", true), ("enable", false)] {
        let r = post_with(
            &mut b,
            &format!("{base}/{action}"),
            &[("csrf", &csrf)],
            &headers(&same),
        )
        .await;
        assert_eq!(r.status(), 303, "{action}");
        assert_eq!(
            app.core
                .users
                .user(&target)
                .await
                .unwrap()
                .unwrap()
                .disabled,
            disabled
        );
    }
    let page = b.get(&base).await.text().await.unwrap();
    assert!(
        page.contains("user.disabled") && page.contains("user.enabled"),
        "their events: {page}"
    );
    let confirm = b.get(&format!("{base}/delete")).await;
    assert_eq!(confirm.status(), 200);
    let r = post_with(
        &mut b,
        &format!("{base}/delete"),
        &[("csrf", &csrf)],
        &headers(&same),
    )
    .await;
    assert_eq!(r.status(), 400, "no confirmation");
    let r = post_with(
        &mut b,
        &format!("{base}/delete"),
        &[("csrf", &csrf), ("confirm", "delete")],
        &headers(&same),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(app.core.users.user(&target).await.unwrap().is_none());
    assert_eq!(b.get(&base).await.status(), 404);
}
