//! Clients (apps): the cache and authentication; registration in [`registration`],
//! what an operator does afterwards (list, change, rotate the secret, remove) in
//! [`manage`].

mod manage;
mod registration;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StartError;
use super::audit::Actor;
use super::clock::Clock;
use super::keys::Keys;
use crate::config::{Config, SigningAlg};
use crate::crypto::{ct_eq, sha256};
use crate::store::{self, Db, StoreError, clients::ClientRow, from_json};
pub use manage::{
    ClientChange, ClientPage, ClientSearch, ListClientsError, Narrowed, REASON_NARROWED,
    REASON_REMOVED,
};
pub use registration::{MAX_ENTRY, MAX_LIST, MAX_REUSE_GRACE, NewClient, NewClientError, dedup};
pub use view::ClientView;

pub use tessera_proto::{Capability, GrantType};

/// The payload of the PostgreSQL notification that some client changed.
const CHANGED: &str = "clients";

/// A registered client as the domain uses it; cached, the cache dropped on every change
/// (see [`Clients`]).
#[derive(Debug, Clone)]
pub struct Client {
    /// The `client_id`.
    pub id: String,
    /// SHA-256 of the secret; `None` for a public client.
    secret_hash: Option<[u8; 32]>,
    /// SHA-256 of the secret a rotation replaced, while it is still accepted.
    previous_secret_hash: Option<[u8; 32]>,
    /// When the replaced secret stops working (Unix seconds); `None`: no overlap.
    pub previous_secret_expires_at: Option<i64>,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// The grants it may use at `/token`.
    pub grant_types: Vec<GrantType>,
    /// The scopes it may request.
    pub scopes: Vec<String>,
    /// The audiences its tokens may name; empty: the issuer.
    pub audiences: Vec<String>,
    /// The roles of its own client-credentials tokens (no user involved).
    pub roles: Vec<String>,
    /// What it may call beyond `/token` (confidential clients only).
    pub capabilities: Vec<Capability>,
    /// This client's refresh-token reuse grace window; `None`: the server's.
    pub refresh_reuse_grace: Option<std::time::Duration>,
    /// Where `/authorize` may send codes (exact match; loopback ports may vary).
    pub redirect_uris: Vec<String>,
    /// Origins allowed to call tessera through CORS.
    pub origins: Vec<String>,
    /// A third-party client asks the user's consent.
    pub third_party: bool,
    /// Where `/end_session` may send the browser (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// The alg of its ID tokens; `None`: the deployment's.
    pub id_token_alg: Option<SigningAlg>,
}

impl Client {
    /// A public client has no secret and authenticates by naming itself.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether it may use the grant type `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether, granted `scope`, it receives what the scope `needed` stands for (see
    /// [`super::scopes`]): always for a first-party client.
    pub fn receives(&self, scope: &str, needed: &str) -> bool {
        super::scopes::receives(self.third_party, scope, needed)
    }

    /// Whether it holds `capability`.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// What an update starts from: the registration this client now has.
    pub fn settings(&self) -> NewClient {
        NewClient {
            id: self.id.clone(),
            public: self.is_public(),
            grant_types: self.grant_types.clone(),
            scopes: self.scopes.clone(),
            audiences: self.audiences.clone(),
            roles: self.roles.clone(),
            capabilities: self.capabilities.clone(),
            refresh_reuse_grace: self.refresh_reuse_grace.map(|g| g.as_secs()),
            redirect_uris: self.redirect_uris.clone(),
            origins: self.origins.clone(),
            third_party: self.third_party,
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            id_token_signed_response_alg: self.id_token_alg.map(|a| a.as_str().to_string()),
        }
    }

    fn from_row(row: ClientRow) -> Result<Self, StoreError> {
        let hash = |h: Option<Vec<u8>>| match h {
            None => Ok(None),
            Some(h) => h
                .try_into()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("client {} secret hash", row.id))),
        };
        Ok(Self {
            secret_hash: hash(row.secret_hash)?,
            previous_secret_hash: hash(row.previous_secret_hash)?,
            previous_secret_expires_at: row.previous_secret_expires_at,
            created_at: row.created_at,
            grant_types: words(&row.grant_types)?,
            scopes: from_json(&row.scopes)?,
            audiences: from_json(&row.audiences)?,
            roles: from_json(&row.roles)?,
            capabilities: words(&row.capabilities)?,
            refresh_reuse_grace: row
                .refresh_reuse_grace
                .map(|s| std::time::Duration::from_secs(s.max(0) as u64)),
            redirect_uris: from_json(&row.redirect_uris)?,
            origins: from_json(&row.origins)?,
            third_party: row.third_party,
            post_logout_redirect_uris: from_json(&row.post_logout_redirect_uris)?,
            id_token_alg: match row.id_token_signed_response_alg.as_deref() {
                None => None,
                Some(a) => Some(SigningAlg::parse(a).ok_or_else(|| {
                    StoreError::Corrupt(format!("client {} id_token_signed_response_alg", row.id))
                })?),
            },
            id: row.id,
        })
    }
}

/// A list column of protocol words (grant types, capabilities): stored as a JSON list of
/// their wire names, typed here; `Corrupt` when it holds anything else.
fn words<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("expected a JSON list of words, got {text:.40}")))
}

/// The JSON list column of protocol words, as [`words`] reads it.
pub(super) fn words_json<T: Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("a list of words serialises")
}

/// What a caller presented to identify itself.
pub enum Credentials {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        /// The `client_id`.
        id: String,
        /// The secret as presented; compared by its SHA-256 in constant time.
        secret: SecretString,
    },
    /// A public client names itself (its `client_id`) and proves nothing.
    PublicId(String),
}

impl Credentials {
    /// The id the caller claims, before it is checked.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Secret { id, .. } | Self::PublicId(id) => id,
        }
    }
}

/// Why [`Clients::authenticate`] refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown client, wrong secret, or the wrong kind of credentials for the client (one
    /// variant for all, so the answer does not tell which).
    #[error("client authentication failed")]
    Failed,
    /// The client could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Clients by id, cached; a miss goes to the database (a client added by the CLI is
/// found there). Every change to a client (here, by the CLI, on another instance)
/// bumps a version in the database in its transaction; this process drops its cache
/// after its own changes, on PostgreSQL when another instance notifies `clients`, and
/// whenever the background's poll of the version sees it move ([`Clients::observe`]).
/// A read that raced a drop is not cached (the cache's generation moved).
///
/// Registration is here too: [`Clients::create`]. Holds no keys unless given them (to
/// start the RS256 ID-token chain), so `tessera client add` builds it alone. Clones
/// share the cache (a handler's `State<Clients>`).
#[derive(Clone)]
pub struct Clients {
    cache: Arc<RwLock<Cache>>,
    /// The settings (the deployment's signing alg).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
    /// Starts the RS256 chain for a client registered for RS256; without it, the chain
    /// starts at that client's first sign-in.
    pub keys: Option<Keys>,
}

/// The cached clients, the generation (how many times the cache was dropped) and the
/// database's client version last observed.
#[derive(Default)]
struct Cache {
    clients: HashMap<String, Arc<Client>>,
    generation: u64,
    version: Option<i64>,
}

/// An unknown client id is checked against this, so it costs what a wrong secret does.
const DUMMY_HASH: [u8; 32] = [0u8; 32];

impl Clients {
    /// An empty cache over the server's parts.
    pub fn new(cfg: Arc<Config>, db: Db, clock: Arc<Clock>, keys: Option<Keys>) -> Self {
        Self {
            cache: Arc::default(),
            cfg,
            db,
            clock,
            keys,
        }
    }

    /// Connects and migrates, for a command that registers clients; loads the signing
    /// keys only `with_keys` (a client registered for RS256 ID tokens).
    pub async fn open(cfg: Config, with_keys: bool) -> Result<Self, StartError> {
        if with_keys {
            let keys = Keys::open(cfg).await?;
            return Ok(Self::new(
                keys.cfg.clone(),
                keys.db.clone(),
                keys.clock.clone(),
                Some(keys),
            ));
        }
        let db = super::database(&cfg).await?;
        Ok(Self::new(Arc::new(cfg), db, Arc::default(), None))
    }

    /// Registers a client; returns the generated secret (once) for a confidential client.
    pub async fn create(
        &self,
        by: &Actor,
        new: NewClient,
    ) -> Result<Option<SecretString>, NewClientError> {
        registration::register(self, by, new).await
    }

    /// The client `id`, from the cache or the database; `None` when not registered.
    pub async fn get(&self, db: &Db, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let generation = {
            let cache = self.cache.read().expect("client cache");
            if let Some(c) = cache.clients.get(id) {
                return Ok(Some(c.clone()));
            }
            cache.generation
        };
        let Some(row) = store::clients::by_id(&db.read, id).await? else {
            return Ok(None);
        };
        let client = Arc::new(Client::from_row(row)?);
        let mut cache = self.cache.write().expect("client cache");
        // Dropped while this read ran: what it read may predate the change.
        if cache.generation == generation {
            if cache.clients.len() >= 10_000 {
                cache.clients.clear();
            }
            cache.clients.insert(id.to_string(), client.clone());
        }
        Ok(Some(client))
    }

    /// Drops every cached client: the next read of each goes to the database.
    pub fn forget_cached(&self) {
        let mut cache = self.cache.write().expect("client cache");
        cache.clients.clear();
        cache.generation += 1;
    }

    /// Given the database's client version (the background polls it), drops the
    /// cache when it moved since the last one observed, and at the first: what was
    /// cached before it may predate a change this process was not told of (another
    /// instance's, made before this one listened).
    pub fn observe(&self, version: i64) {
        let moved = {
            let mut cache = self.cache.write().expect("client cache");
            let moved = cache.version != Some(version);
            cache.version = Some(version);
            moved
        };
        if moved {
            self.forget_cached();
        }
    }

    /// Reads the database's client version and [`Clients::observe`]s it.
    pub async fn check_version(&self) -> Result<(), StoreError> {
        let version = store::clients::version(&self.db.read).await?;
        self.observe(version);
        Ok(())
    }

    /// Authenticates a client. Secrets are 256-bit generated values, so one SHA-256
    /// is as strong as any password hash and costs microseconds; argon2 is for
    /// low-entropy human passwords.
    pub async fn authenticate(
        &self,
        db: &Db,
        creds: &Credentials,
    ) -> Result<Arc<Client>, AuthError> {
        match creds {
            Credentials::Secret { id, secret, .. } => {
                let client = self.get(db, id).await?;
                let presented = sha256(secret.expose_secret().as_bytes());
                let expected = client
                    .as_ref()
                    .and_then(|c| c.secret_hash)
                    .unwrap_or(DUMMY_HASH);
                // The secret a rotation replaced, until its overlap ends; both are
                // compared every time, so the answer's timing says nothing of which.
                let now = self.clock.now();
                let previous = client
                    .as_ref()
                    .filter(|c| c.previous_secret_expires_at.is_some_and(|t| now < t))
                    .and_then(|c| c.previous_secret_hash)
                    .unwrap_or(DUMMY_HASH);
                let matches = ct_eq(&presented, &expected) | ct_eq(&presented, &previous);
                // An empty secret never matches, and a public client never authenticates with one.
                let ok = matches && !secret.expose_secret().is_empty();
                match client {
                    Some(c) if ok && !c.is_public() => Ok(c),
                    _ => Err(AuthError::Failed),
                }
            }
            Credentials::PublicId(id) => match self.get(db, id).await? {
                Some(c) if c.is_public() => Ok(c),
                _ => Err(AuthError::Failed),
            },
        }
    }
}
