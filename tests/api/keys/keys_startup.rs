//! Starting with bad key material: the real binary refuses with one clear `error:` line
//! and never silently makes new keys; the KEK file is private.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::keys::keys_lifecycle::{Listed, keys_list, the};
use crate::support::*;

/// Runs the binary with the app's environment, `set` added and `unset` removed; kills it
/// after 20 s. Returns (exit code, stdout, stderr); the code is `None` when it was killed.
fn run(
    app: &TestApp,
    args: &[&str],
    set: &[(&str, &str)],
    unset: &[&str],
) -> (Option<i32>, String, String) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let id = RUNS.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) = (
        app.dir.path().join(format!("run-{id}.out")),
        app.dir.path().join(format!("run-{id}.err")),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).envs(app.cli_env());
    for var in unset {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .envs(set.iter().copied())
        .current_dir(app.dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn tessera");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out_path), read(&err_path))
}

/// Asserts the command failed at once with exactly one `error:` line on stderr that
/// mentions each of `mentions`, and that it never started serving.
fn assert_refused((code, out, err): (Option<i32>, String, String), mentions: &[&str]) -> String {
    let code = code.unwrap_or_else(|| panic!("still running after 20 s (it started?): {err}"));
    assert_ne!(code, 0, "exit status; stderr: {err}");
    assert!(!err.contains("listening"), "it started serving: {err}");
    assert_eq!(out, "", "nothing on stdout");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err:?}");
    for m in mentions {
        assert!(lines[0].contains(m), "{err:?} should mention {m:?}");
    }
    lines[0].to_string()
}

fn free_bind() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `tessera serve` on a free port.
fn serve(app: &TestApp, set: &[(&str, &str)], unset: &[&str]) -> (Option<i32>, String, String) {
    let bind = free_bind();
    let mut set = set.to_vec();
    set.push(("TESSERA_BIND", &bind));
    run(app, &["serve"], &set, unset)
}

fn keys_list_ok(app: &TestApp, set: &[(&str, &str)], unset: &[&str]) -> Vec<Listed> {
    let (code, out, err) = run(app, &["keys", "list"], set, unset);
    assert_eq!(code, Some(0), "keys list: {err}");
    out.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            Listed {
                kid: c[0].into(),
                alg: c[1].into(),
                state: c[2].into(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_kek_stops_the_start_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let keys = keys_list(&app);
    let kek_path = app.dir.path().join("keys").join("kek");
    let kek = std::fs::read_to_string(&kek_path).unwrap();
    let list = ["keys", "list"];

    let short = STANDARD.encode([7u8; 16]);
    assert_refused(
        run(&app, &list, &[("TESSERA_KEK", &short)], &[]),
        &["TESSERA_KEK", "32 bytes"],
    );
    assert_refused(
        serve(&app, &[("TESSERA_KEK", &short)], &[]),
        &["TESSERA_KEK", "32 bytes"],
    );
    assert_refused(
        run(&app, &list, &[("TESSERA_KEK", "not base64 at all!")], &[]),
        &["TESSERA_KEK", "base64"],
    );

    let wrong = STANDARD.encode([7u8; 32]);
    assert_ne!(wrong, kek.trim());
    for outcome in [
        run(&app, &list, &[("TESSERA_KEK", &wrong)], &[]),
        serve(&app, &[("TESSERA_KEK", &wrong)], &[]),
    ] {
        let line = assert_refused(outcome, &["does not match"]);
        assert!(
            !line.contains(&wrong) && !line.contains(kek.trim()),
            "{line}"
        );
    }
    // The right KEK from the environment works, with or without the file.
    assert_eq!(
        keys_list_ok(&app, &[("TESSERA_KEK", kek.trim())], &[]),
        keys
    );

    // A lost KEK file: tessera neither starts nor makes a new KEK or new keys.
    let saved = app.dir.path().join("kek.backup");
    std::fs::rename(&kek_path, &saved).unwrap();
    assert_eq!(
        keys_list_ok(&app, &[("TESSERA_KEK", kek.trim())], &[]),
        keys
    );
    for outcome in [run(&app, &list, &[], &[]), serve(&app, &[], &[])] {
        assert_refused(outcome, &["restore", "backup"]);
        assert!(!kek_path.exists(), "a new KEK file was written");
    }
    std::fs::rename(&saved, &kek_path).unwrap();
    assert_eq!(keys_list(&app), keys, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_private_key_is_named_at_start() {
    let app = TestApp::spawn().await;
    let keys = keys_list(&app);
    for state in ["active", "next"] {
        let kid = the(&keys, state);
        let (sealed,): (Vec<u8>,) = crate::sql::one(
            app.core.db.writer(),
            "SELECT private_sealed FROM signing_keys WHERE kid = $1",
            &[(&kid).into()],
        )
        .await;
        let mut broken = sealed.clone();
        let last = broken.len() - 1;
        broken[last] ^= 1;
        let set = |blob: Vec<u8>| {
            let (db, kid) = (app.core.db.writer().clone(), kid.clone());
            async move {
                crate::sql::exec(
                    &db,
                    "UPDATE signing_keys SET private_sealed = $1 WHERE kid = $2",
                    &[blob.into(), (&kid).into()],
                )
                .await;
            }
        };
        set(broken).await;
        assert_refused(run(&app, &["keys", "list"], &[], &[]), &[&kid]);
        assert_refused(serve(&app, &[], &[]), &[&kid]);
        set(sealed).await;
        assert_eq!(keys_list(&app), keys, "{state}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_algorithms_are_named() {
    let app = TestApp::with(&[("jwks_max_age", "1")]).await;
    let keys = keys_list(&app);
    // No wait for the next key's lead: an HS512 rotation let through would either happen
    // (the last assertion) or be refused as too early, which does not name HS512.
    assert_refused(
        run(&app, &["keys", "rotate", "--alg", "HS512"], &[], &[]),
        &["HS512"],
    );
    assert_refused(
        run(
            &app,
            &["keys", "list"],
            &[("TESSERA_SIGNING_ALG", "HS256")],
            &[],
        ),
        &["TESSERA_SIGNING_ALG"],
    );
    assert_refused(
        serve(&app, &[("TESSERA_SIGNING_ALG", "HS256")], &[]),
        &["TESSERA_SIGNING_ALG"],
    );
    assert_eq!(keys_list(&app), keys, "no rotation happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_next_key_younger_than_jwks_max_age_is_refused() {
    let app = TestApp::spawn().await; // jwks_max_age 600 s
    let keys = keys_list(&app);
    let next = the(&keys, "next");
    let line = assert_refused(run(&app, &["keys", "rotate"], &[], &[]), &[&next]);
    assert!(line.contains("--revoke-current"), "{line}");
    assert_eq!(keys_list(&app), keys, "nothing changed");
}

#[tokio::test]
async fn the_kek_file_is_private_and_an_env_kek_writes_none() {
    let app = TestApp::spawn().await;
    let kek_path = app.dir.path().join("keys").join("kek");
    let mode = std::fs::metadata(&kek_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
    let text = std::fs::read_to_string(&kek_path).unwrap();
    assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);

    // A fresh database with the KEK in the environment: keys are made, no file is written.
    let other_db = if crate::support::on_postgres() {
        crate::support::fresh_database_url(&app.dir)
    } else {
        format!("sqlite://{}/other.db", app.dir.path().display())
    };
    let other_keys = app.dir.path().join("other-keys");
    let env_kek = STANDARD.encode([9u8; 32]);
    let fresh = [
        ("DATABASE_URL", other_db.as_str()),
        ("TESSERA_KEYS_DIR", other_keys.to_str().unwrap()),
    ];
    let with_kek = [fresh[0], fresh[1], ("TESSERA_KEK", env_kek.as_str())];
    let listed = keys_list_ok(&app, &with_kek, &[]);
    let mut states: Vec<&str> = listed.iter().map(|k| k.state.as_str()).collect();
    states.sort_unstable();
    assert_eq!(states, ["active", "next"]);
    assert!(!other_keys.join("kek").exists(), "a KEK file was written");
    // Without it, that database's keys cannot be opened, and no KEK is invented.
    assert_refused(run(&app, &["keys", "list"], &fresh, &[]), &["restore"]);
    assert!(!other_keys.join("kek").exists());
    assert_eq!(keys_list_ok(&app, &with_kek, &[]), listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_after_a_kek_rewrap_is_refused_so_no_instance_bricks() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let keys = keys_list(&app);
    let new_kek = app.rewrap_kek();
    // The rewrap is in the audit trail, with how many keys it re-encrypted.
    let r = app
        .with_bearer(
            reqwest::Method::GET,
            "/admin/audit?action=rewrap_keys",
            &admin,
        )
        .send()
        .await
        .unwrap();
    let trail: serde_json::Value = r.json().await.unwrap();
    let entry = &trail["entries"][0];
    assert!(
        entry["actor"].as_str().unwrap().starts_with("cli:"),
        "{trail}"
    );
    assert_eq!(entry["details"]["signing_keys"], 2, "{trail}");

    // The running server still holds the old KEK: on demand and scheduled alike, a
    // rotation refuses, says why, and changes nothing.
    let err = app
        .core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rewrap") && err.contains("Restart"), "{err}");
    let r = app
        .with_bearer(reqwest::Method::POST, "/admin/keys/rotate", &admin)
        .json(&serde_json::json!({"revoke_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("rewrap"),
        "{body}"
    );
    std::fs::write(app.dir.path().join("keys").join("kek"), &new_kek).unwrap();
    assert_eq!(keys_list(&app), keys, "nothing changed");

    // Restarted with the new KEK, it starts and rotates.
    let app = app.restart().await;
    app.core
        .signing
        .rotate_keys(&tessera::domain::audit::Actor::cli(), None, true)
        .await
        .unwrap();
    let after = keys_list(&app);
    assert_eq!(the(&after, "active"), the(&keys, "next"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_key_that_does_not_open_is_left_out_with_a_warning() {
    let app = TestApp::spawn().await;
    let keys = keys_list(&app);
    let next = the(&keys, "next");
    // A retired key sealed under some other KEK (as an unfixed rotation after a
    // rewrap once left behind), and a fresh next key.
    crate::sql::exec(
        app.core.db.writer(),
        "UPDATE signing_keys SET state = 'retired', retired_at = created_at, private_sealed = $1 \
         WHERE kid = $2",
        &[vec![7u8; 48].into(), (&next).into()],
    )
    .await;
    let (code, out, err) = run(&app, &["keys", "list"], &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&next), "{out}");
    assert!(
        err.contains(&next) && err.contains("retired"),
        "a warning names it: {err}"
    );
    // The active key must still open: the same damage to it stops the start.
    let active = the(&keys, "active");
    crate::sql::exec(
        app.core.db.writer(),
        "UPDATE signing_keys SET private_sealed = $1 WHERE kid = $2",
        &[vec![7u8; 48].into(), (&active).into()],
    )
    .await;
    let (code, _, err) = run(&app, &["keys", "list"], &[], &[]);
    assert_ne!(code, Some(0), "{err}");
    let error = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(error.contains(&active), "{err}");
}
