//! `/admin`: users, roles, sessions, clients and keys for operators.
//!
//! The caller presents a bearer access token issued for the admin audience
//! (`admin_audience`, default `{issuer}/admin`); its user must hold the admin role
//! **now**, in the database, and its session must be live, so a demoted admin's
//! unexpired token is refused at once.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::bearer;
use super::error::{HttpError, Surface};
use super::json::JsonBody;
use crate::config::SigningAlg;
use crate::domain::Core;
use crate::domain::clients::{self, Client, NewClient, NewClientError};
use crate::domain::clock::rfc3339;
use crate::domain::keys::KeyError;
use crate::domain::permissions::{Change, ChangeError};
use crate::domain::queries::{KeyRecord, Session, User};
use crate::domain::users::NewUserError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}", get(get_user))
        .route("/admin/users/{id}/roles", put(set_roles))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/sessions", get(list_sessions))
        .route("/admin/sessions/{sid}", delete(revoke_session))
        .route(
            "/admin/users/{id}/consents/{client_id}",
            delete(revoke_consents),
        )
        .route("/admin/clients", post(create_client))
        .route("/admin/keys", get(list_keys))
        .route("/admin/keys/rotate", post(rotate_keys))
}

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// 404 `not_found`.
fn not_found(what: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such {what}"),
    )
}

/// 409 `conflict`.
fn conflict(description: impl Into<std::borrow::Cow<'static, str>>) -> HttpError {
    HttpError::new(StatusCode::CONFLICT, "conflict", description)
}

/// The caller's user, if it holds the admin role right now.
async fn authorize(core: &Core, headers: &HeaderMap) -> Result<User> {
    let caller = bearer::verify(core, headers)?;
    // An admin's token for some other app must not open the admin API (RFC 8707).
    if !caller.claims.aud.contains(&core.cfg.admin_audience) {
        return Err(HttpError::invalid_token(
            "the access token was not issued for the admin API (its aud lacks the admin audience)",
        ));
    }
    if caller.claims.sid.is_none() {
        return Err(HttpError::insufficient_scope(
            "an administrator's token is required",
        ));
    }
    let user = bearer::live_user(core, &caller).await?;
    if !user.roles.contains(&core.cfg.admin_role) {
        return Err(HttpError::insufficient_scope("the admin role is required"));
    }
    Ok(user)
}

/// The caller, authorised as an administrator. Listed before other extractors so
/// an anonymous request is refused before anything else is looked at.
pub(super) struct Admin;

impl FromRequestParts<Arc<Core>> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self> {
        authorize(core, &parts.headers).await.map(|_| Admin)
    }
}

/// A UUID path segment (a user id or a session id); anything else is a JSON 400.
pub(super) struct Id(String);

impl FromRequestParts<Arc<Core>> for Id {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Core>) -> Result<Self> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| HttpError::invalid_request("malformed id: expected a UUID"))?;
        user_id(&raw).map(Id)
    }
}

fn user_id(raw: &str) -> Result<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| HttpError::invalid_request("malformed id: expected a UUID"))
}

// The response bodies. Members are declared in alphabetical order: the bytes on the
// wire stay those of the `json!` maps they replace (serde_json sorts a map's keys).

/// A user: `ver` is the authorization version its tokens carry.
#[derive(Serialize)]
struct EncodableUser<'a> {
    disabled: bool,
    id: &'a str,
    roles: &'a [String],
    username: &'a str,
    ver: i64,
}

impl<'a> From<&'a User> for EncodableUser<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            disabled: u.disabled,
            id: &u.id,
            roles: &u.roles,
            username: &u.username,
            ver: u.authz_version,
        }
    }
}

/// A live session; times in RFC 3339.
#[derive(Serialize)]
struct EncodableSession<'a> {
    client_id: &'a str,
    created_at: String,
    expires_at: String,
    last_used_at: String,
    sid: &'a str,
}

impl<'a> From<&'a Session> for EncodableSession<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            client_id: &s.client_id,
            created_at: rfc3339(Some(s.created_at)),
            expires_at: rfc3339(Some(s.expires_at)),
            last_used_at: rfc3339(Some(s.last_used_at)),
            sid: &s.id,
        }
    }
}

/// A registered client as created; `client_secret` is there once, at creation, for a
/// confidential client.
#[derive(Serialize)]
struct EncodableClient<'a> {
    audiences: &'a [String],
    capabilities: &'a [String],
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    grant_types: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<&'static str>,
    origins: &'a [String],
    post_logout_redirect_uris: &'a [String],
    public: bool,
    redirect_uris: &'a [String],
    /// Seconds; absent: the server's setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_reuse_grace: Option<u64>,
    roles: &'a [String],
    scopes: &'a [String],
    third_party: bool,
}

impl<'a> EncodableClient<'a> {
    fn new(client: &'a Client, secret: Option<&'a str>) -> Self {
        Self {
            audiences: &client.audiences,
            capabilities: &client.capabilities,
            client_id: &client.id,
            client_secret: secret,
            grant_types: &client.grant_types,
            id_token_signed_response_alg: client.id_token_alg.map(|alg| alg.as_str()),
            origins: &client.origins,
            post_logout_redirect_uris: &client.post_logout_redirect_uris,
            public: client.is_public(),
            redirect_uris: &client.redirect_uris,
            refresh_reuse_grace: client.refresh_reuse_grace.map(|grace| grace.as_secs()),
            roles: &client.roles,
            scopes: &client.scopes,
            third_party: client.third_party,
        }
    }
}

/// Every signing key, oldest first.
#[derive(Serialize)]
struct EncodableKeys<'a> {
    keys: Vec<EncodableKey<'a>>,
}

/// A signing key's record; times in RFC 3339, `null` until they happen.
#[derive(Serialize)]
struct EncodableKey<'a> {
    activated_at: Option<String>,
    alg: &'a str,
    created_at: String,
    kid: &'a str,
    purpose: &'a str,
    retired_at: Option<String>,
    revoked_at: Option<String>,
    state: &'a str,
}

impl<'a> From<&'a KeyRecord> for EncodableKey<'a> {
    fn from(k: &'a KeyRecord) -> Self {
        let time = |t: Option<i64>| t.map(|t| rfc3339(Some(t)));
        Self {
            activated_at: time(k.activated_at),
            alg: &k.alg,
            created_at: rfc3339(Some(k.created_at)),
            kid: &k.kid,
            purpose: &k.purpose,
            retired_at: time(k.retired_at),
            revoked_at: time(k.revoked_at),
            state: &k.state,
        }
    }
}

/// A rotation done: what happened, and the key that signs now.
#[derive(Serialize)]
struct Rotated {
    active_kid: String,
    message: String,
    rotated: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create_user(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<Response> {
    let user = core
        .create_user(&new.username, SecretString::from(new.password), new.roles)
        .await
        .map_err(|e| match e {
            NewUserError::Invalid(d) => HttpError::invalid_request(d),
            NewUserError::Exists => conflict("a user with this username already exists"),
            NewUserError::Store(e) => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(EncodableUser::from(&user))).into_response())
}

async fn get_user(State(core): State<Arc<Core>>, _admin: Admin, Id(id): Id) -> Result<Response> {
    let user = core.user(&id).await?.ok_or_else(|| not_found("user"))?;
    Ok(Json(EncodableUser::from(&user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

async fn change(core: &Core, id: &str, change: Change) -> Result<Response> {
    let user = core.change_user(id, change).await.map_err(|e| match e {
        ChangeError::Invalid(d) => HttpError::invalid_request(d),
        ChangeError::NotFound => not_found("user"),
        ChangeError::Store(e) => e.into(),
    })?;
    Ok(Json(EncodableUser::from(&user)).into_response())
}

async fn set_roles(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(id): Id,
    JsonBody(Roles { roles }): JsonBody<Roles>,
) -> Result<Response> {
    change(&core, &id, Change::Roles(roles)).await
}

async fn disable_user(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(id): Id,
) -> Result<Response> {
    change(&core, &id, Change::Disable).await
}

async fn list_sessions(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(id): Id,
) -> Result<Response> {
    let sessions = core
        .live_sessions(&id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let list: Vec<EncodableSession> = sessions.iter().map(EncodableSession::from).collect();
    Ok(Json(list).into_response())
}

async fn revoke_session(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(sid): Id,
) -> Result<StatusCode> {
    if core.revoke_session(&sid, "revoked_by_admin").await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found("live session"))
    }
}

/// Withdraws what a user consented to for a third-party client; its next sign-in asks again.
async fn revoke_consents(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Path((id, client_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = user_id(&id)?;
    if core.revoke_consents(&id, &client_id).await? > 0 {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found("consent"))
    }
}

async fn create_client(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    JsonBody(new): JsonBody<NewClient>,
) -> Result<Response> {
    let id = new.id.clone();
    let secret = clients::create(&core, new).await.map_err(|e| match e {
        NewClientError::Invalid(d) => HttpError::invalid_request(d),
        NewClientError::Exists => conflict("a client with this id already exists"),
        NewClientError::Store(e) => e.into(),
    })?;
    let client = core
        .clients
        .get(&core.db, &id)
        .await?
        .ok_or_else(|| not_found("client"))?;
    let secret = secret.as_ref().map(|s| s.expose_secret());
    let body = EncodableClient::new(&client, secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list_keys(State(core): State<Arc<Core>>, _admin: Admin) -> Result<Response> {
    let records = core.signing_keys().await?;
    let keys = records.iter().map(EncodableKey::from).collect();
    Ok(Json(EncodableKeys { keys }).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    alg: Option<String>,
    #[serde(default)]
    revoke_current: bool,
}

async fn rotate_keys(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    body: Option<JsonBody<Rotate>>,
) -> Result<Response> {
    let Rotate {
        alg,
        revoke_current,
    } = body.map(|JsonBody(r)| r).unwrap_or_default();
    let alg = match alg.as_deref() {
        None => None,
        Some(a) => Some(SigningAlg::parse(a).ok_or_else(|| {
            HttpError::invalid_request(format!(
                "unknown alg `{a}` (expected ES256, EdDSA or RS256)"
            ))
        })?),
    };
    let message = core
        .rotate_keys(alg, revoke_current)
        .await
        .map_err(|e| match e {
            e @ (KeyError::TooEarly { .. } | KeyError::KekReplaced) => conflict(e.to_string()),
            KeyError::Store(e) => e.into(),
            e => HttpError::internal(Surface::Admin, &e),
        })?;
    let active_kid = core.keys.current().active.kid.clone();
    Ok(Json(Rotated {
        active_kid,
        message,
        rotated: true,
    })
    .into_response())
}
