//! Named set-ups several test files share: each field says what it holds.

use tessera::domain::clients::NewClient;

use super::{PASSWORD, TestApp, USER};

/// A server with an events-capable service `rs` (also `introspect`), public client
/// `app` (password grant) and user alice (`reader`).
pub struct Feed {
    pub app: TestApp,
    /// An access token of service `rs`, for `/events`.
    pub rs: String,
    /// Alice's `sub`.
    pub alice: String,
}

impl Feed {
    pub async fn start(extra: &[(&'static str, &str)]) -> Self {
        let app = TestApp::with(extra).await;
        let secret = app.service("rs", &["events", "introspect"]).await;
        let rs = app.client_token("rs", &secret).await;
        app.client("app", true, &["password"], &[], &[]).await;
        let alice = app.user("alice", PASSWORD, &["reader"]).await;
        Self { app, rs, alice }
    }
}

/// A server with introspecting service `rs` and an administrator (user `root`).
pub struct Guarded {
    pub app: TestApp,
    /// Service `rs`'s client secret.
    pub rs: String,
    /// Root's admin access token.
    pub admin: String,
}

impl Guarded {
    pub async fn start() -> Self {
        let app = TestApp::spawn().await;
        let rs = app.service("rs", &["introspect"]).await;
        let admin = app.admin_token().await;
        Self { app, rs, admin }
    }
}

/// Service `rs` (introspect), confidential app `web` (password grant, scopes
/// `read write`, also introspect) and public app `app` (scope `read`); user alice
/// (`reader`).
pub struct Introspection {
    pub app: TestApp,
    /// Service `rs`'s client secret.
    pub rs: String,
    /// Client `web`'s secret.
    pub web: String,
    /// Alice's `sub`.
    pub alice: String,
}

impl Introspection {
    pub async fn start() -> Self {
        let app = TestApp::spawn().await;
        let rs = app.service("rs", &["introspect"]).await;
        let web = app
            .client_with(NewClient {
                id: "web".into(),
                grant_types: vec!["password".parse().unwrap()],
                scopes: vec!["read".into(), "write".into()],
                audiences: vec!["https://api.example".into()],
                capabilities: vec!["introspect".parse().unwrap()],
                ..Default::default()
            })
            .await
            .unwrap();
        app.client("app", true, &["password"], &["read"], &[]).await;
        let alice = app.user("alice", PASSWORD, &["reader"]).await;
        Self {
            app,
            rs,
            web,
            alice,
        }
    }
}

/// A server under permission-change policy `policy` with public client `app`, user
/// alice (`reader`), service `rs` (introspect, events) and an administrator.
pub struct Policy {
    pub app: TestApp,
    /// Alice's `sub`.
    pub alice: String,
    /// Service `rs`'s client secret.
    pub rs: String,
    /// Root's admin access token.
    pub admin: String,
}

impl Policy {
    pub async fn start(policy: &str) -> Self {
        let app = TestApp::with(&[("permission_change_policy", policy)]).await;
        app.client("app", true, &["password"], &[], &[]).await;
        let alice = app.user("alice", PASSWORD, &["reader"]).await;
        let rs = app.service("rs", &["introspect", "events"]).await;
        let admin = app.admin_token().await;
        Self {
            app,
            alice,
            rs,
            admin,
        }
    }
}

/// A confidential client `svc` (client_credentials, scopes `read write`, roles
/// `svc-role`), a public client `app` (password, hence refresh_token) and user
/// [`USER`] (`reader`).
pub struct Grants {
    pub app: TestApp,
    /// Client `svc`'s secret.
    pub secret: String,
    /// The user's `sub`.
    pub sub: String,
}

impl Grants {
    pub async fn start() -> Self {
        let app = TestApp::spawn().await;
        let secret = app
            .client(
                "svc",
                false,
                &["client_credentials"],
                &["read", "write"],
                &["svc-role"],
            )
            .await
            .unwrap();
        app.client("app", true, &["password"], &["read", "write"], &[])
            .await;
        let sub = app.user(USER, PASSWORD, &["reader"]).await;
        Self { app, secret, sub }
    }
}
