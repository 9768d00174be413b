//! Registering a client in the console: the secret shown once, bad input a 4xx page.

use super::{admin_browser, post_with, same_origin};
use crate::helpers::*;
use crate::oauth::code_flow::Browser;

#[tokio::test]
async fn a_confidential_clients_secret_is_shown_once_and_works() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app);
    let csrf = admin_browser(&mut b).await;
    let same = same_origin(&app);
    let hs: Vec<(&str, &str)> = same.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_with(
        &mut b,
        "/console/clients",
        &[
            ("csrf", &csrf),
            ("id", "reports"),
            ("grant_types", "client_credentials"),
            ("audiences", "https://api.example"),
            ("capabilities", "events, introspect"),
        ],
        &hs,
    )
    .await;
    assert_eq!(r.status(), 201);
    let page = r.text().await.unwrap();
    let secret = page
        .split("id=\"secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the secret on the page");
    assert_eq!(secret.len(), 43, "{page}");
    app.client_token("reports", secret).await;
    let client = app
        .core
        .clients
        .get(&app.core.db, "reports")
        .await
        .unwrap()
        .unwrap();
    assert!(client.can("events".parse().unwrap()) && client.can("introspect".parse().unwrap()));

    for (form, status) in [
        (vec![("id", "reports")], 409),
        (vec![("id", "x"), ("grant_types", "magic")], 400),
        (
            vec![("id", "x"), ("public", "yes"), ("capabilities", "events")],
            400,
        ),
        (vec![("id", "")], 400),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let r = post_with(&mut b, "/console/clients", &form, &hs).await;
        assert_eq!(r.status(), status, "{form:?}");
    }
    let public = post_with(
        &mut b,
        "/console/clients",
        &[
            ("csrf", &csrf),
            ("id", "spa"),
            ("public", "yes"),
            ("grant_types", "authorization_code"),
            ("redirect_uris", "https://spa.example/cb"),
        ],
        &hs,
    )
    .await;
    assert_eq!(public.status(), 201);
    assert!(public.text().await.unwrap().contains("it has no secret"));
}

#[tokio::test]
async fn a_client_is_listed_edited_its_secret_rotated_and_removed() {
    let app = TestApp::with(&[("client_secret_overlap", "60s")]).await;
    let old = app.service("reports", &["introspect"]).await;
    let mut b = Browser::new(&app);
    let csrf = admin_browser(&mut b).await;
    let same = same_origin(&app);
    let hs: Vec<(&str, &str)> = same.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list = b.get("/console/clients").await.text().await.unwrap();
    assert!(
        list.contains(">reports</a>") && list.contains(">tessera-console</a>"),
        "{list}"
    );

    let edit = post_with(
        &mut b,
        "/console/clients/reports",
        &[
            ("csrf", &csrf),
            ("grant_types", "client_credentials"),
            ("capabilities", "events"),
            ("audiences", "https://api.example"),
        ],
        &hs,
    )
    .await;
    assert_eq!(edit.status(), 303);
    let client = app.core.clients.client("reports").await.unwrap().unwrap();
    assert_eq!(client.capabilities, ["events".parse().unwrap()]);
    let bad = post_with(
        &mut b,
        "/console/clients/reports",
        &[("csrf", &csrf), ("grant_types", "magic")],
        &hs,
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        post_with(
            &mut b,
            "/console/clients/nobody/secret",
            &[("csrf", &csrf)],
            &hs
        )
        .await
        .status(),
        404
    );

    let rotated = post_with(
        &mut b,
        "/console/clients/reports/secret",
        &[("csrf", &csrf)],
        &hs,
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let page = rotated.text().await.unwrap();
    let secret = page
        .split("id=\"secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    app.client_token("reports", secret).await;
    app.client_token("reports", &old).await;
    app.advance(std::time::Duration::from_secs(61));
    let r = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "reports"),
            ("client_secret", &old),
        ])
        .await;
    assert_eq!(r.status(), 401, "the old secret after the overlap");

    assert_eq!(b.get("/console/clients/reports/delete").await.status(), 200);
    let unconfirmed = post_with(
        &mut b,
        "/console/clients/reports/delete",
        &[("csrf", &csrf)],
        &hs,
    )
    .await;
    assert_eq!(unconfirmed.status(), 400);
    let removed = post_with(
        &mut b,
        "/console/clients/reports/delete",
        &[("csrf", &csrf), ("confirm", "remove")],
        &hs,
    )
    .await;
    assert_eq!(removed.status(), 303);
    assert!(app.core.clients.client("reports").await.unwrap().is_none());
}
