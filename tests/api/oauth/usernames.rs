//! Usernames are one account per ASCII-case-insensitive name (issue 11, item 11;
//! README "Users"): lookup, uniqueness and throttling use one normalised form,
//! and the migration that introduces it refuses to merge existing collisions.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tessera::config::Layers;
use tessera::domain::Core;

use crate::admin::api::assert_admin_error;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_differing_only_in_case_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await; // creates `root`
    for name in ["ROOT", "Root"] {
        let r = app
            .with_bearer(Method::POST, "/admin/users", &admin)
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_admin_error(r, 409, "conflict").await;
    }
    let (code, _, err) = app.cli(
        &["user", "add", "ROOT", "--password-stdin"],
        Some("a password 123\n"),
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("already exists"), "{err}");
    // Non-ASCII letters are compared as given: `é` and `É` are two names.
    app.user("émile", PASSWORD, &[]).await;
    app.user("Émile", PASSWORD, &[]).await;
}

#[tokio::test]
async fn sign_in_finds_the_user_whatever_the_case_and_the_throttle_counts_once() {
    // `login_wait` 0 and a clock that stands still: the delayed attempt is answered at once.
    let app = TestApp::with(&[("login_max_failures", "4"), ("login_wait", "0")]).await;
    app.advance(std::time::Duration::ZERO);
    app.client("app", true, &["password"], &[], &[]).await;
    let id = app.user("Alice", PASSWORD, &[]).await;
    let login = app.login("app", "aLiCe", PASSWORD).await;
    assert_eq!(
        jwt_parts(login["access_token"].as_str().unwrap()).1["sub"],
        json!(id)
    );
    // Failures under any spelling count against the one user.
    for name in ["alice", "ALICE", "Alice", "aliCE"] {
        let (status, body) = login_at(&app.http, &app.addr, "app", name, "wrong guess").await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
    }
    let (status, body) = login_at(&app.http, &app.addr, "app", "alice", PASSWORD).await;
    assert_eq!((status, &body["error"]), (429, &json!("slow_down")));
}

/// A database at the schema before case-insensitive usernames, holding `names`.
async fn old_database(dir: &tempfile::TempDir, names: &[&str]) -> String {
    let url = fresh_database_url(dir);
    let mut migrator = if on_postgres() {
        sqlx::migrate!("migrations/postgres")
    } else {
        sqlx::migrate!("migrations/sqlite")
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = if on_postgres() {
        tessera::store::Pool::Postgres(sqlx::PgPool::connect(&url).await.unwrap())
    } else {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        tessera::store::Pool::Sqlite(
            sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
                .await
                .unwrap(),
        )
    };
    match &pool {
        tessera::store::Pool::Sqlite(p) => migrator.run(p).await.unwrap(),
        tessera::store::Pool::Postgres(p) => migrator.run(p).await.unwrap(),
    }
    let hash = tessera::domain::passwords::Passwords::new(64, 1, 8)
        .unwrap()
        .hash(PASSWORD.into())
        .await;
    for name in names {
        crate::sql::exec(
            &pool,
            "INSERT INTO users (id, username, password_hash, roles, authz_version, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, '[]', 1, FALSE, 0, 0)",
            &[
                uuid::Uuid::new_v4().to_string().as_str().into(),
                (*name).into(),
                hash.as_str().into(),
            ],
        )
        .await;
    }
    crate::sql::close(pool).await;
    url
}

#[tokio::test]
async fn the_migration_refuses_to_run_over_usernames_differing_in_case() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = old_database(&dir, &["root", "ROOT", "bob"]).await;
    let mut settings = base_settings(&dir);
    settings.insert("database_url", url);
    let mut layers = Layers::default();
    for (k, v) in &settings {
        layers.set_flag(k, k, v.clone());
    }
    layers.set_flag("issuer", "issuer", "http://127.0.0.1:1".into());
    let Err(e) = Core::open(layers.build().unwrap()).await else {
        panic!("the migration ran over `root` and `ROOT`");
    };
    let chain = tessera::error_chain(&e);
    assert!(chain.contains("differ only in letter case"), "{chain}");
    // Nothing was changed; once the operator renames one, the migration runs.
    let pool = crate::sql::connect(&settings["database_url"]).await;
    let renamed = crate::sql::exec(
        &pool,
        "UPDATE users SET username = 'root-2' WHERE username = 'ROOT'",
        &[],
    )
    .await;
    assert_eq!(renamed, 1);
    crate::sql::close(pool).await;
    let app = TestApp::start(dir, settings).await;
    assert!(
        app.core
            .users
            .user_by_name("Root-2")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_migration_keeps_existing_users_reachable() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = old_database(&dir, &["Alice", "bob"]).await;
    let mut settings = base_settings(&dir);
    settings.insert("database_url", url);
    let app = TestApp::start(dir, settings).await;
    app.client("app", true, &["password"], &[], &[]).await;
    app.login("app", "alice", PASSWORD).await;
    app.login("app", "BOB", PASSWORD).await;
    let r = app
        .core
        .users
        .create_user(
            &tessera::domain::audit::Actor::cli(),
            "ALICE",
            PASSWORD.into(),
            vec![],
        )
        .await;
    assert!(r.is_err(), "ALICE exists already");
}
