//! `tessera user enable|delete`, `tessera sessions list|revoke` and `tessera events
//! [--follow]`: text for people, `--json` (one object per line, the API's shape) for
//! scripts, each change audited as `cli:<os user>`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn ok(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (String, String) {
    let (code, out, err) = app.cli(args, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    (out, err)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn audit_actions(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let search = tessera::domain::audit::AuditSearch {
        target: Some(target.into()),
        ..Default::default()
    };
    let trail = tessera::domain::audit::Trail {
        db: app.core.db.clone(),
    };
    let page = trail.page(&search, 50).await.unwrap();
    page.entries
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_enable_and_delete_from_the_command_line() {
    let app = TestApp::spawn().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &["reader"]).await;
    ok(&app, &["user", "disable", "alice"], None);
    let (out, err) = ok(&app, &["user", "enable", "alice"], None);
    assert_eq!(out, "");
    assert!(err.contains("alice: enabled (ver 3)"), "{err}");
    let (_, err) = ok(&app, &["user", "enable", "alice"], None);
    assert!(err.contains("already enabled"), "{err}");
    app.login("web", "alice", PASSWORD).await;

    // Without --yes the username must be typed back.
    let (code, out, err) = app.cli(&["user", "delete", "alice"], Some("bob\n"));
    assert_ne!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("not confirmed"), "{err}");
    assert!(app.core.users.user(&alice).await.unwrap().is_some());
    ok(&app, &["user", "delete", "alice"], Some("alice\n"));
    assert!(app.core.users.user(&alice).await.unwrap().is_none());
    let (code, _, err) = app.cli(&["user", "delete", "alice", "--yes"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no user named `alice`"), "{err}");
    let actions = audit_actions(&app, &alice).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        ["delete_user", "enable_user", "disable_user", "create_user"]
    );
    assert!(actions[0].1.starts_with("cli:"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_and_revoke_from_the_command_line() {
    let app = TestApp::spawn().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let login = app.login("web", "alice", PASSWORD).await;
    let sid = jwt_parts(login["access_token"].as_str().unwrap()).1["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let (out, _) = ok(
        &app,
        &["sessions", "list", "--user", "alice", "--json"],
        None,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["sid"], sid.as_str());
    assert_eq!(lines[0]["user_id"], alice.as_str());
    assert_eq!(lines[0]["client_id"], "web");
    let mut keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "created_at",
            "expires_at",
            "last_used_at",
            "sid",
            "user_id"
        ]
    );
    let (out, _) = ok(&app, &["sessions", "list", "--client", "web"], None);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("SID"), "{out}");
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[1].starts_with(&sid) && rows[1].contains(&alice),
        "{out}"
    );

    let (code, _, err) = app.cli(&["sessions", "list"], None);
    assert_ne!(code, 0, "--user or --client is required: {err}");
    let (code, _, err) = app.cli(&["sessions", "list", "--client", "nobody"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no such client"), "{err}");
    let (code, _, err) = app.cli(&["sessions", "revoke", "not-a-sid"], None);
    assert_ne!(code, 0);
    assert!(err.contains("malformed session id"), "{err}");

    ok(&app, &["sessions", "revoke", &sid], None);
    let (out, _) = ok(
        &app,
        &["sessions", "list", "--user", "alice", "--json"],
        None,
    );
    assert_eq!(out, "");
    let (code, _, err) = app.cli(&["sessions", "revoke", &sid], None);
    assert_ne!(code, 0);
    assert!(err.contains("no live session"), "{err}");
    assert_eq!(audit_actions(&app, &sid).await[0].0, "revoke_session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_text_and_json_filtered() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    let bob = app.user("bob", PASSWORD, &[]).await;
    ok(&app, &["user", "roles", "alice", "--set", "a1"], None);
    ok(&app, &["user", "roles", "bob", "--set", "b1"], None);
    ok(&app, &["user", "disable", "alice"], None);

    // Newest last; the JSON is the API's (and the feed's) event.
    let (out, _) = ok(&app, &["events", "--sub", "alice", "--json"], None);
    let events = json_lines(&out);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user.roles_changed", "user.disabled"]);
    assert_eq!(events[0]["sub"], alice.as_str());
    assert_eq!(events[0]["roles"], json!(["a1"]));
    let mut keys: Vec<&str> = events[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "at", "id", "kid", "reason", "roles", "sid", "sub", "type", "ver"
        ]
    );
    // By id as well as by name; by type; --limit keeps the newest.
    let (by_id, _) = ok(&app, &["events", "--sub", &alice, "--json"], None);
    assert_eq!(by_id, out);
    let (out, _) = ok(
        &app,
        &[
            "events",
            "--type",
            "user.roles_changed",
            "--json",
            "--limit",
            "1",
        ],
        None,
    );
    let events = json_lines(&out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["sub"], bob.as_str());
    let (out, _) = ok(&app, &["events", "--since", "9999999999"], None);
    assert_eq!(out.lines().count(), 1, "the header alone: {out}");
    let (out, _) = ok(&app, &["events"], None);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].contains("TYPE") && rows[0].contains("SUB"), "{out}");
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows[3].contains("user.disabled") && rows[3].contains(&alice),
        "{out}"
    );

    for (args, mentions) in [
        (vec!["events", "--since", "yesterday"], "since and until"),
        (vec!["events", "--sub", "nobody"], "no user named"),
        (vec!["events", "--follow", "--until", "0"], "--until"),
    ] {
        let (code, out, err) = app.cli(&args, None);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(out, "");
        assert!(err.contains(mentions), "{args:?}: {err}");
    }
}

/// A line from the child's stdout within `within`, else `None`.
fn next_line(lines: &std::sync::mpsc::Receiver<String>, within: Duration) -> Option<String> {
    lines.recv_timeout(within).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_prints_a_change_made_after_it_started() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", PASSWORD, &[]).await;
    app.user("bob", PASSWORD, &[]).await;
    ok(&app, &["user", "roles", "alice", "--set", "a1"], None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["events", "--follow", "--json", "--sub", "alice"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(app.cli_env())
        .current_dir(app.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tessera events --follow");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The event before it started: printed first, so the follow has begun.
    let first = next_line(&lines, Duration::from_secs(30)).expect("the existing event");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["roles"], json!(["a1"]));

    // Changes after: bob's is filtered out, alice's arrive in order, through the API
    // (this process) and the command line (another).
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            tessera::domain::permissions::Change::Roles(vec!["a2".into()]),
        )
        .await
        .unwrap();
    ok(&app, &["user", "roles", "bob", "--set", "b2"], None);
    ok(&app, &["user", "disable", "alice"], None);
    let started = Instant::now();
    let second: Value =
        serde_json::from_str(&next_line(&lines, Duration::from_secs(10)).expect("the role change"))
            .unwrap();
    assert_eq!(
        (second["type"].as_str(), &second["roles"]),
        (Some("user.roles_changed"), &json!(["a2"]))
    );
    let third: Value =
        serde_json::from_str(&next_line(&lines, Duration::from_secs(10)).expect("the disable"))
            .unwrap();
    // Bob's change, committed between the two, was not printed.
    assert_eq!(third["type"], "user.disabled");
    assert_eq!(third["sub"], alice.as_str());
    eprintln!(
        "events --follow printed both within {:?}",
        started.elapsed()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
