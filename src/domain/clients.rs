//! Clients (apps): registration and authentication.

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
use crate::crypto::{self, ct_eq, sha256};
use crate::store::{self, Db, StoreError, clients::ClientRow, from_json, to_json};

pub use tessera_proto::{Capability, GrantType};

/// A registered client as the domain uses it; immutable once created, so it is cached.
#[derive(Debug, Clone)]
pub struct Client {
    /// The `client_id`.
    pub id: String,
    /// SHA-256 of the secret; `None` for a public client.
    secret_hash: Option<[u8; 32]>,
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

    fn from_row(row: ClientRow) -> Result<Self, StoreError> {
        let secret_hash = match row.secret_hash {
            None => None,
            Some(h) => Some(
                h.try_into()
                    .map_err(|_| StoreError::Corrupt(format!("client {} secret hash", row.id)))?,
            ),
        };
        Ok(Self {
            secret_hash,
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
fn words_json<T: Serialize>(list: &[T]) -> String {
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

/// Clients by id. Clients are immutable once created, so a cached hit is never
/// stale; a miss goes to the database (a client added by the CLI is found there).
///
/// Registration is here too: [`Clients::create`]. Holds no keys unless given them (to
/// start the RS256 ID-token chain), so `tessera client add` builds it alone. Clones
/// share the cache (a handler's `State<Clients>`).
#[derive(Clone)]
pub struct Clients {
    cache: Arc<RwLock<HashMap<String, Arc<Client>>>>,
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
        register(self, by, new).await
    }

    /// The client `id`, from the cache or the database; `None` when not registered.
    pub async fn get(&self, db: &Db, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = self.cache.read().expect("client cache").get(id) {
            return Ok(Some(c.clone()));
        }
        let Some(row) = store::clients::by_id(&db.read, id).await? else {
            return Ok(None);
        };
        let client = Arc::new(Client::from_row(row)?);
        let mut cache = self.cache.write().expect("client cache");
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(id.to_string(), client.clone());
        Ok(Some(client))
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
                // An empty secret never matches, and a public client never authenticates with one.
                let ok = ct_eq(&presented, &expected) && !secret.expose_secret().is_empty();
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

/// A client to register.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// The `client_id`: 1-128 printable ASCII characters, not a UUID.
    pub id: String,
    /// A public client gets no secret; it cannot use `client_credentials` nor have capabilities.
    #[serde(default)]
    pub public: bool,
    /// Empty: `password` for a public client, `client_credentials` otherwise;
    /// `refresh_token` is added to the user grants.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// The scopes it may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The audiences its tokens may name; empty: the issuer.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The roles of its own client-credentials tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// What it may call beyond `/token`: `introspect` lets it call `/introspect`, `events`
    /// lets its own tokens read the whole `/events` feed.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Seconds (0 = strict); absent: the server's `refresh_reuse_grace`.
    #[serde(default)]
    pub refresh_reuse_grace: Option<u64>,
    /// Exact redirect URIs for `/authorize`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// CORS origins; the origins of `https`/`http` redirect URIs are added.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Whether the user must consent before the client gets a code.
    #[serde(default)]
    pub third_party: bool,
    /// Where `/end_session` may send the browser.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The JWS alg of its ID tokens (OpenID Connect Registration 1.0 §2): `RS256` or the
    /// deployment's `signing_alg`; absent: the deployment's.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
}

/// The longest grace window a client may have, as for the server's setting.
pub const MAX_REUSE_GRACE: u64 = 300;

/// Why a client could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum NewClientError {
    /// The registration breaks a rule; the text says which and is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// The id is taken.
    #[error("a client with this id already exists")]
    Exists,
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// [`Clients::create`].
async fn register(
    clients: &Clients,
    by: &Actor,
    mut new: NewClient,
) -> Result<Option<SecretString>, NewClientError> {
    let invalid = |m: String| Err(NewClientError::Invalid(m));
    if new.id.is_empty() || new.id.len() > 128 || !new.id.chars().all(|c| c.is_ascii_graphic()) {
        return invalid("client id must be 1-128 printable ASCII characters without spaces".into());
    }
    // User `sub`s are UUIDs: a client id shaped like one could collide (RFC 9068 §5).
    if uuid::Uuid::parse_str(&new.id).is_ok() {
        return invalid("client id must not be a UUID (user subjects are UUIDs)".into());
    }
    if new.grant_types.is_empty() {
        new.grant_types = vec![if new.public {
            GrantType::Password
        } else {
            GrantType::ClientCredentials
        }];
    }
    let user_grant =
        |g: &GrantType| matches!(g, GrantType::Password | GrantType::AuthorizationCode);
    if new.grant_types.iter().any(user_grant) && !new.grant_types.contains(&GrantType::RefreshToken)
    {
        new.grant_types.push(GrantType::RefreshToken);
    }
    if new.public && new.grant_types.contains(&GrantType::ClientCredentials) {
        return invalid("a public client cannot use client_credentials".into());
    }
    if new.public && !new.capabilities.is_empty() {
        return invalid(
            "a public client cannot have capabilities (they need client authentication)".into(),
        );
    }
    if new.refresh_reuse_grace.is_some_and(|g| g > MAX_REUSE_GRACE) {
        return invalid(format!(
            "refresh_reuse_grace must be at most {MAX_REUSE_GRACE} seconds (0 = strict)"
        ));
    }
    if let Err(m) = super::redirects::check_registration(&mut new) {
        return invalid(m);
    }
    let id_token_alg = match new.id_token_signed_response_alg.as_deref() {
        None => None,
        Some(a) => match SigningAlg::parse(a) {
            Some(alg) if alg == SigningAlg::RS256 || alg == clients.cfg.signing_alg => Some(alg),
            _ => {
                return invalid(format!(
                    "id_token_signed_response_alg must be RS256 or this deployment's {}",
                    clients.cfg.signing_alg.as_str()
                ));
            }
        },
    };
    for s in &new.scopes {
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return invalid(format!("invalid scope `{s}`"));
        }
    }
    dedup(&mut new.grant_types);
    dedup(&mut new.capabilities);
    for list in [
        &mut new.scopes,
        &mut new.audiences,
        &mut new.roles,
        &mut new.redirect_uris,
        &mut new.origins,
        &mut new.post_logout_redirect_uris,
    ] {
        dedup(list);
    }
    let secret = (!new.public).then(crypto::random_token);
    let row = ClientRow {
        id: new.id,
        secret_hash: secret.as_ref().map(|s| sha256(s.as_bytes()).to_vec()),
        grant_types: words_json(&new.grant_types),
        scopes: to_json(&new.scopes),
        audiences: to_json(&new.audiences),
        roles: to_json(&new.roles),
        capabilities: words_json(&new.capabilities),
        refresh_reuse_grace: new.refresh_reuse_grace.map(|g| g as i64),
        redirect_uris: to_json(&new.redirect_uris),
        origins: to_json(&new.origins),
        third_party: new.third_party,
        post_logout_redirect_uris: to_json(&new.post_logout_redirect_uris),
        id_token_signed_response_alg: id_token_alg.map(|a| a.as_str().to_string()),
    };
    // What was registered, for the audit trail: everything but the secret.
    let details = serde_json::json!({
        "public": new.public,
        "grant_types": new.grant_types,
        "scopes": new.scopes,
        "audiences": new.audiences,
        "roles": new.roles,
        "capabilities": new.capabilities,
        "redirect_uris": new.redirect_uris,
        "origins": new.origins,
        "third_party": new.third_party,
    });
    let now = clients.clock.now();
    let mut tx = clients.db.begin().await.map_err(NewClientError::Store)?;
    match store::clients::insert(&mut tx, &row, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(NewClientError::Exists),
        Err(e) => return Err(NewClientError::Store(e)),
    }
    by.record(&mut tx, "create_client", Some(&row.id), Some(details), now)
        .await
        .map_err(NewClientError::Store)?;
    tx.commit()
        .await
        .map_err(|e| NewClientError::Store(e.into()))?;
    // Its RS256 key is published before its first sign-in, not at it; failing here, it is
    // made at that sign-in (the client exists and its secret must still be shown).
    if id_token_alg == Some(SigningAlg::RS256) {
        if let Some(Err(e)) = match &clients.keys {
            Some(keys) => Some(keys.ensure_rs256_keys().await),
            None => None,
        } {
            tracing::error!(error = %crate::error_chain(&e), "creating the RS256 ID-token keys");
        }
    }
    Ok(secret.map(SecretString::from))
}

/// Removes repeated entries, keeping the first of each, in order.
pub fn dedup<T: Clone + Eq + std::hash::Hash>(list: &mut Vec<T>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|x| seen.insert(x.clone()));
}
