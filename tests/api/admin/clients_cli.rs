//! `tessera client list|show|update|rotate-secret|remove`: the API's shapes in `--json`,
//! secrets alone on stdout, one-line failures; seen by the running server at once.

use reqwest::Method;
use serde_json::{Value, json};

use super::clients::json_of;
use crate::support::*;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_show_print_a_table_or_the_apis_json() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.service("svc", &["introspect"]).await;
    app.client("web", true, &["password"], &["read"], &[]).await;

    let (code, out, err) = app.cli(&["client", "list"], None);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("CLIENT_ID"), "{out}");
    // The three, and the console's own client (every server registers it at start).
    assert_eq!(rows.len(), 5, "a header and four clients: {out}");
    assert!(
        rows[2].starts_with("svc") && rows[2].contains("confidential"),
        "{out}"
    );
    assert!(rows[3].starts_with("tessera-console"), "{out}");
    assert!(rows[4].contains("password,refresh_token"), "{out}");

    let (code, out, _) = app.cli(&["client", "list", "--json", "--limit", "2"], None);
    assert_eq!(code, 0);
    let listed = lines(&out);
    let (_, api) = json_of(&app, &admin, Method::GET, "/admin/clients?limit=2", None).await;
    assert_eq!(json!(listed), api["clients"], "the same objects as the API");
    let (_, out, err) = app.cli(&["client", "list", "--json", "--limit", "2"], None);
    let cursor = api["next_cursor"].as_str().unwrap();
    assert!(err.contains(&format!("--cursor {cursor}")), "{err}");
    let (_, rest, _) = app.cli(&["client", "list", "--json", "--cursor", cursor], None);
    assert_eq!(lines(&rest).len(), 2, "{out} then {rest}");

    let (code, out, _) = app.cli(&["client", "show", "svc", "--json"], None);
    assert_eq!(code, 0);
    let (_, svc) = json_of(&app, &admin, Method::GET, "/admin/clients/svc", None).await;
    assert_eq!(lines(&out), [svc]);
    let (code, out, _) = app.cli(&["client", "show", "svc"], None);
    assert_eq!(code, 0);
    assert!(out.contains("capabilities:    introspect"), "{out}");
    assert!(out.contains("previous_secret: none"), "{out}");

    let (code, out, err) = app.cli(&["client", "show", "nobody"], None);
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert_eq!(err.trim_end(), "error: no client `nobody`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_rotate_and_remove_from_the_command_line() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let old = app.service("svc", &["introspect"]).await;
    // The server caches svc; the CLI's changes must reach it.
    let token = app.client_token("svc", &old).await;
    assert_eq!(app.introspect("svc", &old, &token).await.status(), 200);

    let (code, out, err) = app.cli(
        &[
            "client",
            "update",
            "svc",
            "--remove-can",
            "introspect",
            "--add-scope",
            "a",
            "--add-scope",
            "b",
            "--add-role",
            "reporter",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let changed = lines(&out);
    assert_eq!(changed[0]["capabilities"], json!([]));
    assert_eq!(changed[0]["scopes"], json!(["a", "b"]));
    assert!(err.contains("0 sessions revoked"), "{err}");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            app.introspect("svc", &old, &token).await.status() == 400
        })
        .await,
        "the server still serves the old client from its cache"
    );

    for (args, mentions) in [
        (
            vec!["--remove-scope", "zzz"],
            "`zzz` is not among its scopes",
        ),
        (vec!["--add-grant", "teleport"], "teleport"),
        (vec![], "nothing to change"),
        (
            vec!["--add-redirect-uri", "http://evil.example/"],
            "redirect",
        ),
    ] {
        let mut argv = vec!["client", "update", "svc"];
        argv.extend(args);
        let (code, out, err) = app.cli(&argv, None);
        assert_ne!(code, 0, "{argv:?}");
        assert_eq!(out, "");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(mentions), "{argv:?}: {err}");
    }

    let (code, out, err) = app.cli(&["client", "rotate-secret", "svc"], None);
    assert_eq!(code, 0, "{err}");
    let new = out.trim_end();
    assert_eq!(out.lines().count(), 1, "the secret alone: {out:?}");
    assert!(err.contains("the previous one works until"), "{err}");
    // The server's cache serves the rotated client once its version poll drops the
    // old one (a failed authentication meanwhile would be throttled: wait without one).
    let core = &app.core;
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            let cached = core.clients.get(&core.db, "svc").await.unwrap().unwrap();
            cached.previous_secret_expires_at.is_some()
        })
        .await,
        "the server still serves the client as it was before the rotation"
    );
    app.client_token("svc", new).await;
    app.client_token("svc", &old).await;

    let (code, _, err) = app.cli(&["client", "remove", "svc"], Some(""));
    assert_ne!(code, 0);
    assert!(err.contains("--yes"), "{err}");
    let (code, out, err) = app.cli(&["client", "remove", "svc", "--yes"], None);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            app.token(&[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", new),
            ])
            .await
            .status()
                == 401
        })
        .await,
        "the server still knows the removed client"
    );
    let (_, trail) = json_of(&app, &admin, Method::GET, "/admin/audit?target=svc", None).await;
    let entries: Vec<(&str, &str)> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["via"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("delete_client", "cli"),
            ("rotate_client_secret", "cli"),
            ("update_client", "cli"),
            ("create_client", "cli")
        ]
    );
}
