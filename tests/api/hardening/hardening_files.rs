//! What a local user or a careless operator meets: the SQLite files hold password
//! hashes (private), a KEK file others may read stops the start, zero timeouts are
//! refused, and the CLI applies the running server's permission-change policy.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_only_the_folder_and_files_are_private() {
    if skip_unless(
        !on_postgres(),
        "SQLite file modes, and this run is on PostgreSQL",
    ) {
        return;
    }
    let app = TestApp::spawn().await;
    let data = app.dir.path().join("data").join("nested");
    let db = data.join("t.db");
    let mut env = app.cli_env();
    env.retain(|(k, _)| k != "DATABASE_URL");
    env.push(("DATABASE_URL".into(), format!("sqlite://{}", db.display())));
    let (code, _, err) = run_cli(&env, app.dir.path(), &["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&data), 0o700, "data folder");
    assert_eq!(mode(&db), 0o600, "database file");
    for suffix in ["-wal", "-shm"] {
        let file = data.join(format!("t.db{suffix}"));
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    // A file left world-readable by an older version is narrowed at the next start.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run_cli(&env, app.dir.path(), &["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&db), 0o600);
    // The suite's own database too.
    assert_eq!(mode(&app.db_path()), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_file_others_may_read_stops_the_start_with_the_fix() {
    let app = TestApp::spawn().await;
    let kek = app.dir.path().join("keys").join("kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = app.cli(&["keys", "list"], None);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(&format!("chmod 600 {}", kek.display())),
        "{err}"
    );
    // Group access (as secret mounts grant) is allowed, with a warning.
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) = app.cli(&["keys", "list"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_request_timeout_or_login_window_is_refused_by_name() {
    let app = TestApp::spawn().await;
    for (var, value, message) in [
        ("TESSERA_REQUEST_TIMEOUT", "0", "more than 0"),
        ("TESSERA_LOGIN_WINDOW", "0s", "at least 1s"),
    ] {
        let mut env = app.cli_env();
        env.push((var.into(), value.into()));
        let (code, _, err) = run_cli(&env, app.dir.path(), &["keys", "list"], None);
        assert_ne!(code, 0, "{var}={value} was accepted");
        assert!(err.contains(var) && err.contains(message), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_applies_the_running_servers_policy() {
    let app = TestApp::with(&[("permission_change_policy", "reissue")]).await;
    app.client("web", true, &["password"], &[], &[]).await;
    let alice = app.user("alice", "alice password 1", &["editor"]).await;
    let login = app.login("web", "alice", "alice password 1").await;
    let rt = login["refresh_token"].as_str().unwrap().to_string();
    // A CLI started without the server's TESSERA_PERMISSION_CHANGE_POLICY.
    let mut env = app.cli_env();
    env.retain(|(k, _)| k != "TESSERA_PERMISSION_CHANGE_POLICY");
    let (code, _, err) = run_cli(
        &env,
        app.dir.path(),
        &["user", "roles", "alice", "--set", "viewer"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let live = tessera::store::sessions::live_families_of(
        app.core.db.writer(),
        &alice,
        app.core.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(live.len(), 1, "under reissue the session survives");
    let r = app.refresh("web", &rt).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["roles"], serde_json::json!(["viewer"]));
}
