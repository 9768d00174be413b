//! "Is this access token still live?": the one check every bearer endpoint
//! (`/userinfo`, `/events` and its open streams, the admin API) and introspection
//! make. The signature, issuer and expiry (and so the signing key) are checked
//! by the key ring before; this is what the database says now.

use super::clients::{Capability, Clients};
use super::tokens::AccessClaims;
use super::users::User;
use crate::store::{self, Db, StoreError};

/// What the database says of a verified access token.
pub enum Liveness {
    /// A user token whose session is live and whose user is enabled: the user as it is now.
    User(User),
    /// A client token whose client exists, and whether it may read the event feed.
    Client {
        /// The client holds the `events` capability.
        events: bool,
    },
    /// A user token whose user is disabled.
    UserDisabled,
    /// A user token whose session is revoked or gone, or whose user is gone; `reason`: why
    /// the session was revoked, when it was (see [`revoked_description`]).
    SessionRevoked {
        /// The family's `revoke_reason`.
        reason: Option<String>,
    },
    /// A client token whose client is gone.
    ClientGone,
}

/// The `error_description` of a revoked session's token: why, for the reasons a
/// client may act on (a role change: sign in again to get the new roles), so that the
/// refusal says what the feed's events would have said had they arrived first.
pub fn revoked_description(reason: Option<&str>) -> &'static str {
    match reason {
        Some("roles_changed") => "the session was revoked (roles changed)",
        Some("password_changed") => "the session was revoked (password changed)",
        Some("disabled") => "the session was revoked (user disabled)",
        Some("signed_out") => "the session was revoked (signed out)",
        Some("revoked_by_client") => "the session was revoked (revoked by the client)",
        Some("refresh_token_reuse") => "the session was revoked (refresh token reuse)",
        _ => "the session was revoked",
    }
}

/// Where a client token's client is read: the cache (requests), or past it (an
/// open event stream re-checking, so that a changed client ends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRead {
    /// Reads through the client cache (a request).
    Cached,
    /// Reads the database (a stream's re-check), so a changed client is seen at once.
    Fresh,
}

/// The liveness check: the database and the client cache, nothing else. Built once by
/// `Core::open` (sharing the server's client cache); cheap to clone.
#[derive(Clone)]
pub struct Live {
    /// The database.
    pub db: Db,
    /// Registered clients (a client token's client), the server's cache.
    pub clients: Clients,
}

impl Live {
    /// The liveness of a verified access token.
    pub async fn liveness(
        &self,
        claims: &AccessClaims,
        read: ClientRead,
    ) -> Result<Liveness, StoreError> {
        let (sub, client_id, sid) = (&claims.sub, &claims.client_id, claims.sid.as_deref());
        self.liveness_of(sub, client_id, sid, read).await
    }

    /// [`Self::liveness`] from the three claims it reads (what an open stream keeps).
    pub async fn liveness_of(
        &self,
        sub: &str,
        client_id: &str,
        sid: Option<&str>,
        read: ClientRead,
    ) -> Result<Liveness, StoreError> {
        let Some(sid) = sid else {
            return self.client_liveness(client_id, read).await;
        };
        let (family, user) = tokio::try_join!(
            store::sessions::family(&self.db.read, sid),
            store::users::by_id(&self.db.read, sub),
        )?;
        Ok(match (family, user) {
            (_, Some(u)) if u.disabled => Liveness::UserDisabled,
            (Some(f), Some(u)) if f.revoked_at.is_none() && f.user_id == u.id => {
                Liveness::User(u.try_into()?)
            }
            (Some(f), _) if f.revoked_at.is_some() => Liveness::SessionRevoked {
                reason: f.revoke_reason,
            },
            _ => Liveness::SessionRevoked { reason: None },
        })
    }

    async fn client_liveness(&self, id: &str, read: ClientRead) -> Result<Liveness, StoreError> {
        let events = match read {
            ClientRead::Cached => self
                .clients
                .get(&self.db, id)
                .await?
                .map(|c| c.can(Capability::Events)),
            ClientRead::Fresh => store::clients::by_id(&self.db.read, id).await?.map(|r| {
                serde_json::from_str::<Vec<String>>(&r.capabilities)
                    .is_ok_and(|c| c.iter().any(|c| c == "events"))
            }),
        };
        Ok(events.map_or(Liveness::ClientGone, |events| Liveness::Client { events }))
    }
}

#[cfg(test)]
mod tests {
    use super::revoked_description;

    #[test]
    fn a_revoked_sessions_refusal_names_the_known_reasons_only() {
        assert_eq!(
            revoked_description(Some("roles_changed")),
            "the session was revoked (roles changed)"
        );
        assert_eq!(revoked_description(None), "the session was revoked");
        // An unknown reason (a newer instance's) is not echoed.
        assert_eq!(
            revoked_description(Some("<script>")),
            "the session was revoked"
        );
    }
}
