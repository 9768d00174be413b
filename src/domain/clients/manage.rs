//! What an operator does with a registered client: list and read it, change it (by the
//! registration's rules; a change that narrows what it may do revokes what it may no
//! longer hold), rotate its secret (the old one kept for `client_secret_overlap`), and
//! remove it. Each change is audited and bumps the client version in its transaction.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::registration::{NewClientError, validate};
use super::{CHANGED, Capability, Client, Clients, GrantType, NewClient};
use crate::crypto::{self, sha256};
use crate::domain::audit::Actor;
use crate::domain::sessions::revoke_family;
use crate::domain::ssf;
use crate::store::{self, StoreError, Tx, sessions::FamilyRow};

/// Why sessions end when their client narrows, and when it is removed (the feed's reason).
pub const REASON_NARROWED: &str = "client_narrowed";
/// See [`REASON_NARROWED`].
pub const REASON_REMOVED: &str = "client_removed";
/// A stream's status `reason` when its client lost the `ssf` capability.
const SSF_REVOKED: &str = "the client no longer has the ssf capability";

/// A change to a client: a JSON object with the members of a registration to replace
/// (JSON Merge Patch, RFC 7396: a list is replaced whole, `null` resets a member to
/// its default). `id` and `public` cannot change.
#[derive(Debug, Clone, Default)]
pub struct ClientChange(pub Map<String, Value>);

/// A search of the client list.
#[derive(Debug, Clone, Default)]
pub struct ClientSearch {
    /// Only ids starting with this (exactly, byte for byte).
    pub prefix: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of clients in id order.
#[derive(Debug, Clone)]
pub struct ClientPage {
    /// At most the limit asked for.
    pub clients: Vec<Client>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a page of the client list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListClientsError {
    /// The cursor is not one a page handed out.
    #[error("malformed cursor: pass the next_cursor of the previous page unchanged")]
    BadCursor,
    /// The prefix cannot start any client id.
    #[error("q must be at most 128 printable ASCII characters")]
    BadPrefix,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a change took away, and so revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowed {
    /// Refresh families (sessions) revoked, each announced on the feed.
    pub revoked_sessions: usize,
    /// Unredeemed authorization codes dropped (their redirect URI was removed).
    pub forgotten_codes: u64,
    /// Shared Signals streams disabled (the client lost the `ssf` capability).
    pub disabled_streams: u64,
}

fn is_client_id(s: &str) -> bool {
    s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic())
}

impl Clients {
    /// The client `id` as the database has it now (past the cache).
    pub async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        store::clients::by_id(&self.db.read, id)
            .await?
            .map(Client::from_row)
            .transpose()
    }

    /// A page of at most `limit` clients in id order. The cursor is the last id listed,
    /// base64url: opaque, and stable when clients are added between pages.
    pub async fn list(
        &self,
        search: &ClientSearch,
        limit: u32,
    ) -> Result<ClientPage, ListClientsError> {
        use base64::Engine;
        let after = match &search.cursor {
            None => None,
            Some(c) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|id| is_client_id(id))
                    .ok_or(ListClientsError::BadCursor)?,
            ),
        };
        if search.prefix.as_deref().is_some_and(|p| !is_client_id(p)) {
            return Err(ListClientsError::BadPrefix);
        }
        let mut rows = store::clients::page(
            &self.db.read,
            search.prefix.as_deref(),
            after.as_deref(),
            i64::from(limit) + 1,
        )
        .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(crypto::b64(last.id.as_bytes())),
            _ => None,
        };
        let clients = rows
            .into_iter()
            .map(Client::from_row)
            .collect::<Result<_, _>>()?;
        Ok(ClientPage {
            clients,
            next_cursor,
        })
    }

    /// Changes a client by the registration's rules; what it may no longer do is
    /// revoked in the same transaction (see [`narrow`]). Returns the client as changed.
    pub async fn update(
        &self,
        by: &Actor,
        id: &str,
        change: ClientChange,
    ) -> Result<(Client, Narrowed), NewClientError> {
        let invalid = |m: String| NewClientError::Invalid(m);
        for fixed in ["id", "public"] {
            if change.0.contains_key(fixed) {
                return Err(invalid(format!("{fixed} cannot be changed")));
            }
        }
        let mut tx = self.db.begin().await.map_err(NewClientError::Store)?;
        let old = current(&mut tx, id).await?;
        let mut doc = serde_json::to_value(old.settings()).expect("a registration serialises");
        let members = doc.as_object_mut().expect("a registration is an object");
        for (k, v) in change.0 {
            if v.is_null() {
                members.remove(&k);
            } else {
                members.insert(k, v);
            }
        }
        let mut new: NewClient = serde_json::from_value(doc)
            .map_err(|e| invalid(format!("invalid client change: {e}")))?;
        let id_token_alg = validate(&self.cfg, &mut new).map_err(invalid)?;
        let now = self.clock.now();
        let mut row = new.row(None, id_token_alg, now);
        row.created_at = old.created_at;
        store::clients::update(&mut tx, &row)
            .await
            .map_err(NewClientError::Store)?;
        let narrowed = narrow(self, &mut tx, &old, &new)
            .await
            .map_err(NewClientError::Store)?;
        let details = changed_members(&old.settings(), &new, &narrowed);
        by.record(&mut tx, "update_client", Some(id), Some(details), now)
            .await
            .map_err(NewClientError::Store)?;
        self.commit_change(tx).await?;
        let client = self
            .client(id)
            .await
            .map_err(NewClientError::Store)?
            .ok_or(NewClientError::NotFound)?;
        Ok((client, narrowed))
    }

    /// A new secret for a confidential client, shown once; the one it replaces is
    /// accepted for `client_secret_overlap` more (0: refused at once). Returns the
    /// secret and when the old one stops working.
    pub async fn rotate_secret(
        &self,
        by: &Actor,
        id: &str,
    ) -> Result<(SecretString, Option<i64>), NewClientError> {
        let mut tx = self.db.begin().await.map_err(NewClientError::Store)?;
        if current(&mut tx, id).await?.is_public() {
            return Err(NewClientError::Conflict(
                "a public client has no secret to rotate",
            ));
        }
        let now = self.clock.now();
        let overlap = self.cfg.client_secret_overlap.as_secs() as i64;
        let until = (overlap > 0).then_some(now + overlap);
        let secret = crypto::random_token();
        store::clients::replace_secret(&mut tx, id, &sha256(secret.as_bytes()), until)
            .await
            .map_err(NewClientError::Store)?;
        let details = serde_json::json!({ "previous_secret_expires_at": until });
        by.record(
            &mut tx,
            "rotate_client_secret",
            Some(id),
            Some(details),
            now,
        )
        .await
        .map_err(NewClientError::Store)?;
        self.commit_change(tx).await?;
        Ok((SecretString::from(secret), until))
    }

    /// Removes a client: its sessions revoked (announced on the feed), then its codes,
    /// consents, sessions and Shared Signals streams deleted; its id may be registered
    /// again. Returns how many sessions were revoked.
    pub async fn remove(&self, by: &Actor, id: &str) -> Result<usize, NewClientError> {
        let store = NewClientError::Store;
        let mut tx = self.db.begin().await.map_err(store)?;
        current(&mut tx, id).await?;
        let families = store::clients::live_families(&mut tx, id)
            .await
            .map_err(store)?;
        let revoked = revoke_all(self, &mut tx, &families, REASON_REMOVED)
            .await
            .map_err(store)?;
        store::clients::delete(&mut tx, id).await.map_err(store)?;
        let details = serde_json::json!({ "revoked_sessions": revoked });
        by.record(
            &mut tx,
            "delete_client",
            Some(id),
            Some(details),
            self.clock.now(),
        )
        .await
        .map_err(store)?;
        self.commit_change(tx).await?;
        Ok(revoked)
    }

    /// Counts the change, tells the other instances, commits, drops this cache, wakes
    /// this instance's feed.
    async fn commit_change(&self, mut tx: Tx) -> Result<(), NewClientError> {
        let store = NewClientError::Store;
        store::clients::bump_version(&mut tx).await.map_err(store)?;
        store::events::notify(&mut tx, CHANGED)
            .await
            .map_err(store)?;
        tx.commit().await.map_err(|e| store(e.into()))?;
        self.forget_cached();
        // In the server (which gives Clients its keys, and so the event bus) this
        // instance's feed reads the revocations at once; other processes poll or are
        // notified.
        if let Some(keys) = &self.keys {
            keys.events.wake();
        }
        Ok(())
    }
}

/// The client `id` read inside the change's transaction.
async fn current(tx: &mut Tx, id: &str) -> Result<Client, NewClientError> {
    let row = store::clients::by_id(&mut *tx, id)
        .await
        .map_err(NewClientError::Store)?
        .ok_or(NewClientError::NotFound)?;
    Client::from_row(row).map_err(NewClientError::Store)
}

/// Revokes what `old` held that `new` may no longer hold, in `tx`:
/// - a user grant lost (`refresh_token`, `password`, `authorization_code`), or the client
///   becoming third-party (its sessions were granted without the user's consent):
///   every session of the client, since a family does not record which grant began it;
/// - a scope or an audience lost: the sessions carrying it;
/// - a redirect URI lost: the unredeemed codes issued for it.
///
/// Each revoked session is a `session.revoked` event on the feed (reason
/// `client_narrowed`), so verifiers refuse its access tokens at once. Roles and
/// capabilities need nothing more, but for one: capabilities are checked on every call
/// against the (dropped) cache, and client-credentials tokens have no session to revoke;
/// only Shared Signals push goes on without a call, so losing `ssf` disables the client's
/// streams, a push receiver told by one `stream-updated` SET (the receiver re-enables them
/// through `/ssf/status` once it has `ssf` again).
async fn narrow(
    clients: &Clients,
    tx: &mut Tx,
    old: &Client,
    new: &NewClient,
) -> Result<Narrowed, StoreError> {
    let lost = |old: &[String], new: &[String]| -> Vec<String> {
        old.iter().filter(|x| !new.contains(x)).cloned().collect()
    };
    let user_grants = [
        GrantType::RefreshToken,
        GrantType::Password,
        GrantType::AuthorizationCode,
    ];
    let lost_grant = user_grants
        .iter()
        .any(|g| old.allows(*g) && !new.grant_types.contains(g));
    let all = lost_grant || (new.third_party && !old.third_party);
    // Sessions signed in without a second factor no longer meet the client's policy.
    let mfa_now_required = new.require_mfa && !old.require_mfa;
    let lost_scopes = lost(&old.scopes, &new.scopes);
    let lost_audiences = lost(&old.audiences, &new.audiences);
    let mut narrowed = Narrowed::default();
    if all || mfa_now_required || !lost_scopes.is_empty() || !lost_audiences.is_empty() {
        let families = store::clients::live_families(&mut *tx, &old.id).await?;
        let doomed: Vec<FamilyRow> = families
            .into_iter()
            .filter(|f| {
                let audience: Vec<String> = serde_json::from_str(&f.audience).unwrap_or_default();
                let without_mfa = !f.amr.split(' ').any(|m| m == "mfa");
                all || (mfa_now_required && without_mfa)
                    || f.scope
                        .split(' ')
                        .any(|s| lost_scopes.iter().any(|l| l == s))
                    || audience.iter().any(|a| lost_audiences.contains(a))
            })
            .collect();
        narrowed.revoked_sessions = revoke_all(clients, tx, &doomed, REASON_NARROWED).await?;
    }
    // Push delivery goes on without the receiver calling: it must stop here.
    if old.can(Capability::Ssf) && !new.capabilities.contains(&Capability::Ssf) {
        let (iss, now) = (&clients.cfg.issuer, clients.clock.now());
        narrowed.disabled_streams =
            ssf::streams::disable_client_streams(tx, iss, &old.id, SSF_REVOKED, now).await?;
    }
    for uri in lost(&old.redirect_uris, &new.redirect_uris) {
        narrowed.forgotten_codes +=
            store::clients::forget_codes_for(&mut *tx, &old.id, &uri).await?;
    }
    Ok(narrowed)
}

async fn revoke_all(
    clients: &Clients,
    tx: &mut Tx,
    families: &[FamilyRow],
    reason: &str,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for f in families {
        if revoke_family(&clients.clock, tx, f, reason).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// The audit entry of an update: the members that changed (their new values) and
/// what the change revoked.
fn changed_members(old: &NewClient, new: &NewClient, narrowed: &Narrowed) -> Value {
    let (Value::Object(old), Value::Object(new)) = (
        serde_json::to_value(old).expect("serialises"),
        serde_json::to_value(new).expect("serialises"),
    ) else {
        unreachable!("a registration is an object")
    };
    let changed: Map<String, Value> = new
        .into_iter()
        .filter(|(k, v)| old.get(k) != Some(v))
        .collect();
    serde_json::json!({
        "changed": changed,
        "revoked_sessions": narrowed.revoked_sessions,
        "forgotten_codes": narrowed.forgotten_codes,
        "disabled_streams": narrowed.disabled_streams,
    })
}
