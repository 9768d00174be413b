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
    /// A user token whose session is revoked or gone, or whose user is gone.
    SessionRevoked,
    /// A client token whose client is gone.
    ClientGone,
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
        let Some(sid) = &claims.sid else {
            return self.client_liveness(&claims.client_id, read).await;
        };
        let (family, user) = tokio::try_join!(
            store::sessions::family(&self.db.read, sid),
            store::users::by_id(&self.db.read, &claims.sub),
        )?;
        Ok(match (family, user) {
            (_, Some(u)) if u.disabled => Liveness::UserDisabled,
            (Some(f), Some(u)) if f.revoked_at.is_none() && f.user_id == u.id => {
                Liveness::User(u.try_into()?)
            }
            _ => Liveness::SessionRevoked,
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
