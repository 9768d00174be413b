//! Registering a client: what a registration may say ([`NewClient`]) and the one rule
//! book ([`validate`]) a registration and every later change of it follow.

use secrecy::SecretString;

use super::{CHANGED, Clients, GrantType, words_json};
use crate::config::{Config, SigningAlg};
use crate::crypto::{self, sha256};
use crate::domain::audit::Actor;
use crate::store::{self, StoreError, clients::ClientRow, to_json};

use super::Capability;

/// A client to register.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
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

/// The most entries one list of a registration may hold (grants, scopes, audiences,
/// roles, capabilities, redirect URIs, origins, post-logout URIs).
pub const MAX_LIST: usize = 100;

/// The longest entry of such a list, in bytes.
pub const MAX_ENTRY: usize = 2048;

/// Why a client could not be registered or changed.
#[derive(Debug, thiserror::Error)]
pub enum NewClientError {
    /// The registration breaks a rule; the text says which and is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// The id is taken.
    #[error("a client with this id already exists")]
    Exists,
    /// No client has this id (an update, a rotation, a removal).
    #[error("no such client")]
    NotFound,
    /// The change does not apply to this kind of client (a public client's secret).
    #[error("{0}")]
    Conflict(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Checks a registration (or a changed one) by the rules every client follows and fills
/// in what follows from them (default and implied grants, `openid`, the origins of web
/// redirect URIs); lists come out deduplicated. Returns the ID-token alg. The one
/// rule book of [`Clients::create`] and [`Clients::update`].
pub(super) fn validate(cfg: &Config, new: &mut NewClient) -> Result<Option<SigningAlg>, String> {
    if new.id.is_empty() || new.id.len() > 128 || !new.id.chars().all(|c| c.is_ascii_graphic()) {
        return Err("client id must be 1-128 printable ASCII characters without spaces".into());
    }
    // User `sub`s are UUIDs: a client id shaped like one could collide (RFC 9068 §5).
    if uuid::Uuid::parse_str(&new.id).is_ok() {
        return Err("client id must not be a UUID (user subjects are UUIDs)".into());
    }
    let lists = [
        ("scopes", &new.scopes),
        ("audiences", &new.audiences),
        ("roles", &new.roles),
        ("redirect_uris", &new.redirect_uris),
        ("origins", &new.origins),
        ("post_logout_redirect_uris", &new.post_logout_redirect_uris),
    ];
    for (name, list) in lists {
        if list.len() > MAX_LIST {
            return Err(format!("{name} may hold at most {MAX_LIST} entries"));
        }
        if list.iter().any(|e| e.len() > MAX_ENTRY) {
            return Err(format!(
                "an entry of {name} is longer than {MAX_ENTRY} bytes"
            ));
        }
    }
    if new.grant_types.len() > MAX_LIST || new.capabilities.len() > MAX_LIST {
        return Err(format!(
            "grant_types and capabilities may hold at most {MAX_LIST} entries"
        ));
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
        return Err("a public client cannot use client_credentials".into());
    }
    if new.public && !new.capabilities.is_empty() {
        return Err(
            "a public client cannot have capabilities (they need client authentication)".into(),
        );
    }
    if new.refresh_reuse_grace.is_some_and(|g| g > MAX_REUSE_GRACE) {
        return Err(format!(
            "refresh_reuse_grace must be at most {MAX_REUSE_GRACE} seconds (0 = strict)"
        ));
    }
    super::super::redirects::check_registration(new)?;
    let id_token_alg = match new.id_token_signed_response_alg.as_deref() {
        None => None,
        Some(a) => match SigningAlg::parse(a) {
            Some(alg) if alg == SigningAlg::RS256 || alg == cfg.signing_alg => Some(alg),
            _ => {
                return Err(format!(
                    "id_token_signed_response_alg must be RS256 or this deployment's {}",
                    cfg.signing_alg.as_str()
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
            return Err(format!("invalid scope `{s}`"));
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
    Ok(id_token_alg)
}

impl NewClient {
    /// The row of this (validated) registration, with `secret_hash`, created at `now`.
    pub(super) fn row(
        &self,
        secret_hash: Option<Vec<u8>>,
        id_token_alg: Option<SigningAlg>,
        now: i64,
    ) -> ClientRow {
        ClientRow {
            id: self.id.clone(),
            secret_hash,
            grant_types: words_json(&self.grant_types),
            scopes: to_json(&self.scopes),
            audiences: to_json(&self.audiences),
            roles: to_json(&self.roles),
            capabilities: words_json(&self.capabilities),
            refresh_reuse_grace: self.refresh_reuse_grace.map(|g| g as i64),
            redirect_uris: to_json(&self.redirect_uris),
            origins: to_json(&self.origins),
            third_party: self.third_party,
            post_logout_redirect_uris: to_json(&self.post_logout_redirect_uris),
            id_token_signed_response_alg: id_token_alg.map(|a| a.as_str().to_string()),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            created_at: now,
        }
    }

    /// What the audit trail records of it: everything but the id and a secret.
    pub(super) fn details(&self) -> serde_json::Value {
        let mut doc = serde_json::to_value(self).expect("a registration serialises");
        if let Some(map) = doc.as_object_mut() {
            map.remove("id");
        }
        doc
    }
}

/// [`Clients::create`].
pub(super) async fn register(
    clients: &Clients,
    by: &Actor,
    mut new: NewClient,
) -> Result<Option<SecretString>, NewClientError> {
    let id_token_alg = validate(&clients.cfg, &mut new).map_err(NewClientError::Invalid)?;
    let secret = (!new.public).then(crypto::random_token);
    let now = clients.clock.now();
    let row = new.row(
        secret.as_ref().map(|s| sha256(s.as_bytes()).to_vec()),
        id_token_alg,
        now,
    );
    let mut tx = clients.db.begin().await.map_err(NewClientError::Store)?;
    match store::clients::insert(&mut tx, &row, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(NewClientError::Exists),
        Err(e) => return Err(NewClientError::Store(e)),
    }
    by.record(
        &mut tx,
        "create_client",
        Some(&row.id),
        Some(new.details()),
        now,
    )
    .await
    .map_err(NewClientError::Store)?;
    // A client deleted and registered again must not be served from a cache.
    store::clients::bump_version(&mut tx)
        .await
        .map_err(NewClientError::Store)?;
    store::events::notify(&mut tx, CHANGED)
        .await
        .map_err(NewClientError::Store)?;
    tx.commit()
        .await
        .map_err(|e| NewClientError::Store(e.into()))?;
    clients.forget_cached();
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
