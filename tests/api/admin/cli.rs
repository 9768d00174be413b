//! The `tessera` command line against a running server's database: what scripts rely
//! on (docs/operations.md "Command line"): ids and secrets alone on stdout, one-line failures.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::keys::jwks::fetch_jwks;
use crate::oauth::token::{assert_token_ok, basic};
use crate::support::*;

/// Asserts a failed command: non-zero, nothing on stdout, one `error: ...` line on stderr.
fn assert_failure((code, out, err): (i32, String, String), mentions: &str) {
    assert_ne!(code, 0, "stderr: {err}");
    assert_eq!(out, "", "nothing on stdout when failing");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        err.contains(mentions),
        "{err:?} should mention {mentions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_prints_the_id_alone() {
    let app = TestApp::spawn().await;
    app.client("web", true, &["password"], &[], &[]).await;
    let (code, out, err) = app.cli(
        &[
            "user",
            "add",
            "bob",
            "--role",
            "editor",
            "--role",
            "ops",
            "--password-stdin",
        ],
        Some("bob's password\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    let id = out.trim_end();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a UUID: {id:?}");
    let login = app.login("web", "bob", "bob's password").await;
    let claims = jwt_parts(login["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["roles"], json!(["editor", "ops"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_add_prints_the_secret_alone_and_it_authenticates() {
    let app = TestApp::spawn().await;
    let args = [
        "client",
        "add",
        "reports",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
        "--scope",
        "write",
        "--audience",
        "https://reports.example",
        "--role",
        "ops",
    ];
    let (code, out, err) = app.cli(&args, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    let secret = out.trim_end();
    assert_eq!(secret.len(), 43, "256 bits, base64url: {secret:?}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(!err.contains(secret), "the secret goes to stdout only");
    let r = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic("reports", secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    let claims = jwt_parts(assert_token_ok(r).await["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["sub"], "reports");
    assert_eq!(claims["roles"], json!(["ops"]));
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], "https://reports.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_prints_nothing() {
    let app = TestApp::spawn().await;
    let (code, out, err) = app.cli(
        &["client", "add", "web", "--public", "--grant", "password"],
        None,
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = app.cli(
        &["user", "add", "carol", "--password-stdin"],
        Some("carol's password"),
    );
    assert_eq!(code, 0, "{err}");
    let login = app.login("web", "carol", "carol's password").await;
    assert!(login["refresh_token"].is_string(), "{login}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_non_zero_with_one_line() {
    let app = TestApp::spawn().await;
    let pw = Some("a good password\n");
    assert_eq!(
        app.cli(&["user", "add", "dave", "--password-stdin"], pw).0,
        0
    );
    assert_eq!(app.cli(&["client", "add", "svc"], None).0, 0);
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["user", "add", "dave", "--password-stdin"],
            pw,
            "already exists",
        ),
        (
            &["user", "add", "erin", "--password-stdin"],
            Some("short\n"),
            "password must be",
        ),
        (
            &["user", "roles", "nobody", "--add", "x"],
            None,
            "no user named `nobody`",
        ),
        (
            &["user", "disable", "nobody"],
            None,
            "no user named `nobody`",
        ),
        (
            &["user", "passwd", "nobody", "--password-stdin"],
            pw,
            "no user named `nobody`",
        ),
        (
            &["user", "passwd", "dave", "--password-stdin"],
            Some("short\n"),
            "password must be",
        ),
        (
            &["client", "add", "web", "--grant", "implicit"],
            None,
            "unknown grant `implicit`",
        ),
        (
            &[
                "client",
                "add",
                "web",
                "--public",
                "--grant",
                "client_credentials",
            ],
            None,
            "public client",
        ),
        (
            &["client", "add", "web", "--can", "fly"],
            None,
            "unknown capability `fly`",
        ),
        (&["client", "add", "svc"], None, "already exists"),
        (
            &["client", "add", "6f1c2a4e-8d43-4b7a-9e0f-2b5d7c9a1e33"],
            None,
            "UUID",
        ),
    ];
    for (args, stdin, mentions) in cases {
        assert_failure(app.cli(args, *stdin), mentions);
    }
    // Nothing was half-done: the short password did not create erin, nor change dave's.
    assert_failure(
        app.cli(&["user", "disable", "erin"], None),
        "no user named `erin`",
    );
    app.client("web", true, &["password"], &[], &[]).await;
    app.login("web", "dave", "a good password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_shows_the_active_and_the_next_key() {
    let app = TestApp::spawn().await;
    let (code, out, err) = app.cli(&["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two keys: {out}");
    assert!(lines[0].starts_with("KID"), "{out}");
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mut states: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    states.sort();
    assert_eq!(states, ["active", "next"]);
    assert!(rows.iter().all(|r| r[1] == "ES256"), "{out}");
    let mut listed: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    listed.sort();
    let jwks = fetch_jwks(&app).await;
    let mut published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    published.sort();
    assert_eq!(listed, published);
}

/// Runs the binary with the app's environment plus `extra`.
fn cli_with_env(app: &TestApp, args: &[&str], extra: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .envs(app.cli_env())
        .envs(extra.iter().copied())
        .current_dir(app.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_fails_naming_the_setting() {
    let app = TestApp::spawn().await;
    let bad_ttl = cli_with_env(
        &app,
        &["keys", "list"],
        &[("TESSERA_ACCESS_TOKEN_TTL", "soon")],
    );
    assert_failure(bad_ttl, "TESSERA_ACCESS_TOKEN_TTL");
    let bad_alg = cli_with_env(&app, &["keys", "list"], &[("TESSERA_SIGNING_ALG", "HS256")]);
    assert_failure(bad_alg, "TESSERA_SIGNING_ALG");
    let bad_flag = cli_with_env(&app, &["--issuer", "ftp://x.example", "keys", "list"], &[]);
    assert_failure(bad_flag, "--issuer");
    let (code, out, err) = cli_with_env(
        &app,
        &["keys", "list"],
        &[("TESSERA_ACCESS_TOKEN_TTL", "90s")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rewrap_moves_every_key_to_a_new_kek() {
    let app = TestApp::spawn().await;
    let secret = app
        .client("svc", false, &["client_credentials"], &[], &[])
        .await
        .unwrap();
    let before: serde_json::Value = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = before["access_token"].as_str().unwrap().to_string();
    let keys_dir = app.dir.path().join("keys");
    let old_kek = std::fs::read_to_string(keys_dir.join("kek")).unwrap();

    use base64::Engine;
    let new_kek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let new_file = app.dir.path().join("kek.new");
    std::fs::write(&new_file, &new_kek).unwrap();
    let (code, out, err) = app.cli(
        &[
            "keys",
            "rewrap",
            "--new-kek-file",
            new_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("2 keys re-encrypted"), "{err}");

    // The old KEK no longer opens the database; a process refuses to start with it.
    assert_failure(app.cli(&["keys", "list"], None), "does not match");
    // The database never holds the new KEK, and the private keys are still encrypted.
    assert!(
        !crate::keys::jwks::db_bytes(&app)
            .await
            .windows(new_kek.len())
            .any(|w| w == new_kek.as_bytes())
    );

    std::fs::write(keys_dir.join("kek"), &new_kek).unwrap();
    let (code, out, _) = app.cli(&["keys", "list"], None);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "header, active, next: {out}");
    assert_ne!(old_kek.trim(), new_kek);

    // A server started with the new KEK signs with the same keys: old tokens still verify.
    let app = app.restart().await;
    let jwks = fetch_jwks(&app).await;
    assert!(crate::keys::jwks::verify_with_jwks(&token, &jwks));
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fresh = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_token_ok(fresh).await;
}

/// Each command builds only what it needs: on a fresh data folder, adding a user or a
/// client writes no key-encryption key and generates no signing key (only `serve` and
/// `keys …` do).
#[tokio::test]
async fn user_and_client_commands_touch_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_cli(
        &[],
        dir.path(),
        &[
            "user",
            "add",
            "alice",
            "--role",
            "editor",
            "--password-stdin",
        ],
        Some("alice's password\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(uuid::Uuid::parse_str(out.trim_end()).is_ok(), "{out:?}");
    let (code, _, err) = run_cli(
        &[],
        dir.path(),
        &["user", "roles", "alice", "--add", "ops"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let args = ["user", "passwd", "alice", "--password-stdin"];
    let (code, _, err) = run_cli(&[], dir.path(), &args, Some("a new password\n"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_cli(&[], dir.path(), &["user", "disable", "alice"], None);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_cli(&[], dir.path(), &["client", "add", "svc"], None);
    assert_eq!(code, 0, "{err}");
    assert!(!dir.path().join("keys").join("kek").exists(), "no KEK file");
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("data").join("tessera.db").display()
    ))
    .await
    .unwrap();
    let count = async |table: &str| -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert_eq!(count("signing_keys").await, 0, "no signing keys");
    assert_eq!(count("users").await, 1);
    assert_eq!(count("clients").await, 1);
}
