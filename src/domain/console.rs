//! The web console's sign-in: the first-party client tessera registers for itself, the
//! console sessions it keeps (the cookie holds a random token, the database its SHA-256),
//! and the check every console request makes, live: the session, its tessera session
//! (refresh family), the user, the admin role.

use super::Core;
use super::audit::Actor;
use super::clients::{ClientChange, GrantType, NewClient, NewClientError};
use super::users::User;
use crate::crypto::{self, b64, sha256};
use crate::store::{self, StoreError};

/// The console's `client_id`.
pub const CLIENT_ID: &str = "tessera-console";

/// Where `/authorize` sends the operator back to.
pub fn redirect_uri(issuer: &str) -> String {
    format!("{}/console/callback", issuer.trim_end_matches('/'))
}

/// Where tessera's sign-out sends the operator back to.
pub fn signed_out_uri(issuer: &str) -> String {
    format!("{}/console/signed-out", issuer.trim_end_matches('/'))
}

/// Registers the console's client, or points it at the current issuer: run at every start.
/// Public (PKCE, no secret to keep), first-party (no consent page), the code flow only. An
/// issuer its redirect URI cannot be registered under (plain http on a public name) leaves
/// the console unavailable, with a warning, and the server running.
pub async fn register(core: &Core) -> Result<(), StoreError> {
    let redirect = redirect_uri(&core.cfg.issuer);
    let new = NewClient {
        id: CLIENT_ID.into(),
        public: true,
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![redirect.clone()],
        post_logout_redirect_uris: vec![signed_out_uri(&core.cfg.issuer)],
        ..Default::default()
    };
    // The server's own client: registered by the server, as its scheduled work is.
    let by = Actor::server();
    let result = match core.clients.create(&by, new.clone()).await {
        Err(NewClientError::Exists) => moved(core, &by, new).await,
        other => other.map(|_| ()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(NewClientError::Store(e)) => Err(e),
        // A plain-http issuer on a public name (behind a TLS proxy set up without an https
        // issuer): its redirect URI breaks the rules every client follows; no console then.
        Err(e) => {
            tracing::warn!(reason = %e, "the web console is unavailable: set an https issuer");
            Ok(())
        }
    }
}

/// The console's client registered before: its redirect URIs follow the issuer (changed, or
/// the client edited); nothing is written (nor audited) when they already do.
async fn moved(core: &Core, by: &Actor, new: NewClient) -> Result<(), NewClientError> {
    let Some(client) = core
        .clients
        .client(CLIENT_ID)
        .await
        .map_err(NewClientError::Store)?
    else {
        return Err(NewClientError::NotFound);
    };
    if client.redirect_uris == new.redirect_uris
        && client.post_logout_redirect_uris == new.post_logout_redirect_uris
    {
        return Ok(());
    }
    let mut change = serde_json::Map::new();
    change.insert("redirect_uris".into(), serde_json::json!(new.redirect_uris));
    change.insert(
        "post_logout_redirect_uris".into(),
        serde_json::json!(new.post_logout_redirect_uris),
    );
    core.clients
        .update(by, CLIENT_ID, ClientChange(change))
        .await
        .map(|_| ())
}

/// What a console request's cookie stands for, checked now.
#[derive(Debug)]
pub enum Operator {
    /// No console session, or it ended: sign in again.
    SignedOut,
    /// Signed in, but the user is disabled or no longer holds the admin role.
    NotAdmin(User),
    /// An administrator, now; `sid` is the tessera session the sign-in started.
    Admin {
        /// The administrator as they are now.
        user: User,
        /// The tessera session (refresh family) of the sign-in.
        sid: String,
    },
}

/// Starts a console session for a user signed in through the code flow (`sid`: the refresh
/// family it started); returns the cookie value.
pub async fn start(core: &Core, user_id: &str, sid: &str) -> Result<String, StoreError> {
    let token = crypto::random_token();
    let now = core.clock.now();
    let expires = now + core.cfg.browser_session_ttl.as_secs() as i64;
    let hash = sha256(token.as_bytes());
    store::console::insert_session(core.db.writer(), &hash, user_id, sid, now, expires).await?;
    Ok(token)
}

/// The operator a console cookie names, checked live: the console session is unexpired, its
/// tessera session is neither revoked nor expired, the user exists and is enabled, and holds
/// the admin role (`admin_role`) now.
pub async fn operator(core: &Core, token: &str) -> Result<Operator, StoreError> {
    let now = core.clock.now();
    let hash = sha256(token.as_bytes());
    let Some((user_id, sid)) = store::console::session(&core.db.read, &hash, now).await? else {
        return Ok(Operator::SignedOut);
    };
    let (family, user) = tokio::try_join!(
        store::sessions::family(&core.db.read, &sid),
        core.users.user(&user_id),
    )?;
    let live = family.is_some_and(|f| f.revoked_at.is_none() && f.expires_at > now);
    Ok(match user {
        Some(user) if live && !user.disabled && user.roles.contains(&core.cfg.admin_role) => {
            Operator::Admin { user, sid }
        }
        Some(user) if live => Operator::NotAdmin(user),
        _ => Operator::SignedOut,
    })
}

/// Ends a console session and the tessera session it started (sign-out: the operator's own
/// session, not an administrative change, so no audit entry).
pub async fn end(core: &Core, token: &str) -> Result<(), StoreError> {
    let hash = sha256(token.as_bytes());
    let now = core.clock.now();
    let mut tx = core.db.begin().await?;
    if let Some((_, sid)) = store::console::session(&mut tx, &hash, now).await? {
        if let Some(family) = store::sessions::family(&mut tx, &sid).await? {
            super::sessions::revoke_family(&core.clock, &mut tx, &family, "signed_out").await?;
        }
    }
    store::console::delete_session(&mut tx, &hash, now).await?;
    tx.commit().await?;
    core.events.wake();
    Ok(())
}

/// The CSRF token of a console session: derived from the cookie's secret (which a page on
/// another origin cannot read), so nothing more is stored.
pub fn csrf_token(session: &str) -> String {
    let mut input = b"tessera console csrf v1\0".to_vec();
    input.extend_from_slice(session.as_bytes());
    b64(&sha256(&input))
}

/// Whether a form's CSRF token is its session's, compared in constant time.
pub fn csrf_matches(session: &str, presented: &str) -> bool {
    crypto::ct_eq(csrf_token(session).as_bytes(), presented.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_is_its_sessions_and_no_others() {
        let (a, b) = (crypto::random_token(), crypto::random_token());
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&a, &csrf_token(&b)));
        assert!(!csrf_matches(&a, ""));
        assert_ne!(csrf_token(&a), a, "the token is not the cookie");
    }

    #[test]
    fn the_redirect_uri_is_under_the_issuer() {
        assert_eq!(
            redirect_uri("https://id.example/"),
            "https://id.example/console/callback"
        );
    }
}
