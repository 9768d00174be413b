//! `/admin`: users, roles, sessions, clients and keys for operators.
//!
//! The caller presents a bearer access token issued for the admin audience
//! (`admin_audience`, default `{issuer}/admin`); its user must hold the admin role
//! **now**, in the database, and its session must be live, so a demoted admin's
//! unexpired token is refused at once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::bearer;
use super::error::{HttpError, Surface};
use super::form::read_body;
use crate::config::SigningAlg;
use crate::domain::Core;
use crate::domain::clients::{NewClient, NewClientError};
use crate::domain::clock::rfc3339;
use crate::domain::keys::KeyError;
use crate::domain::permissions::{Change, ChangeError};
use crate::domain::queries::User;
use crate::domain::users::NewUserError;

const JSON_LIMIT: usize = 64 * 1024;

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

async fn json_body<T: DeserializeOwned>(core: &Core, headers: &HeaderMap, body: Body) -> Result<T> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "content type must be application/json",
        ));
    }
    let bytes = read_body(body, JSON_LIMIT, core.cfg.request_timeout / 2).await?;
    let bad = |e: serde_json::Error| HttpError::invalid_request(format!("invalid JSON body: {e}"));
    let value: Value = serde_json::from_slice(&bytes).map_err(bad)?;
    // serde would also accept an array for a struct; the contract is an object.
    if !value.is_object() {
        return Err(HttpError::invalid_request(
            "invalid JSON body: expected an object",
        ));
    }
    serde_json::from_value(value).map_err(bad)
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

fn user_json(u: &User) -> Result<Value> {
    Ok(
        json!({"id": u.id, "username": u.username, "roles": u.roles, "ver": u.authz_version, "disabled": u.disabled}),
    )
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
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let new: NewUser = json_body(&core, &headers, body).await?;
    let user = core
        .users
        .create_user(&new.username, SecretString::from(new.password), new.roles)
        .await
        .map_err(|e| match e {
            NewUserError::Invalid(d) => HttpError::invalid_request(d),
            NewUserError::Exists => conflict("a user with this username already exists"),
            NewUserError::Store(e) => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(user_json(&user)?)).into_response())
}

async fn get_user(State(core): State<Arc<Core>>, _admin: Admin, Id(id): Id) -> Result<Json<Value>> {
    let user = core
        .user(&user_id(&id)?)
        .await?
        .ok_or_else(|| not_found("user"))?;
    Ok(Json(user_json(&user)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

async fn change(core: &Core, id: &str, change: Change) -> Result<Json<Value>> {
    let user = core
        .users
        .change_user(&user_id(id)?, change)
        .await
        .map_err(|e| match e {
            ChangeError::NotFound => not_found("user"),
            ChangeError::Store(e) => e.into(),
        })?;
    Ok(Json(user_json(&user)?))
}

async fn set_roles(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    headers: HeaderMap,
    Id(id): Id,
    body: Body,
) -> Result<Json<Value>> {
    let Roles { roles } = json_body(&core, &headers, body).await?;
    crate::domain::users::validate_roles(&roles).map_err(HttpError::invalid_request)?;
    change(&core, &id, Change::Roles(roles)).await
}

async fn disable_user(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(id): Id,
) -> Result<Json<Value>> {
    change(&core, &id, Change::Disable).await
}

async fn list_sessions(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(id): Id,
) -> Result<Json<Value>> {
    let id = user_id(&id)?;
    let families = core
        .live_sessions(&id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let list: Vec<Value> = families
        .iter()
        .map(|f| {
            json!({
                "sid": f.id,
                "client_id": f.client_id,
                "created_at": rfc3339(Some(f.created_at)),
                "last_used_at": rfc3339(Some(f.last_used_at)),
                "expires_at": rfc3339(Some(f.expires_at)),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn revoke_session(
    State(core): State<Arc<Core>>,
    _admin: Admin,
    Id(sid): Id,
) -> Result<StatusCode> {
    if core
        .revoke_session(&user_id(&sid)?, "revoked_by_admin")
        .await?
    {
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
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let new: NewClient = json_body(&core, &headers, body).await?;
    let id = new.id.clone();
    let secret = core.clients.create(new).await.map_err(|e| match e {
        NewClientError::Invalid(d) => HttpError::invalid_request(d),
        NewClientError::Exists => conflict("a client with this id already exists"),
        NewClientError::Store(e) => e.into(),
    })?;
    let client = core
        .clients
        .get(&core.db, &id)
        .await?
        .ok_or_else(|| not_found("client"))?;
    let mut body = json!({
        "client_id": client.id,
        "public": client.is_public(),
        "grant_types": client.grant_types,
        "scopes": client.scopes,
        "audiences": client.audiences,
        "roles": client.roles,
        "capabilities": client.capabilities,
        "redirect_uris": client.redirect_uris,
        "origins": client.origins,
        "third_party": client.third_party,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
    });
    if let Some(grace) = client.refresh_reuse_grace {
        body["refresh_reuse_grace"] = json!(grace.as_secs());
    }
    if let Some(alg) = client.id_token_alg {
        body["id_token_signed_response_alg"] = json!(alg.as_str());
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret.expose_secret());
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list_keys(State(core): State<Arc<Core>>, _admin: Admin) -> Result<Json<Value>> {
    let rows = core.signing_keys().await?;
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "kid": r.kid, "alg": r.alg, "state": r.state, "purpose": r.purpose,
                "created_at": rfc3339(Some(r.created_at)),
                "activated_at": r.activated_at.map(|t| rfc3339(Some(t))),
                "retired_at": r.retired_at.map(|t| rfc3339(Some(t))),
                "revoked_at": r.revoked_at.map(|t| rfc3339(Some(t))),
            })
        })
        .collect();
    Ok(Json(json!({"keys": keys})))
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
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>> {
    let has_body = headers.contains_key(header::CONTENT_TYPE);
    let req: Rotate = if has_body {
        json_body(&core, &headers, body).await?
    } else {
        Rotate::default()
    };
    let alg = match req.alg.as_deref() {
        None => None,
        Some(a) => Some(SigningAlg::parse(a).ok_or_else(|| {
            HttpError::invalid_request(format!(
                "unknown alg `{a}` (expected ES256, EdDSA or RS256)"
            ))
        })?),
    };
    let message = core
        .signing
        .rotate_keys(alg, req.revoke_current)
        .await
        .map_err(|e| match e {
            e @ (KeyError::TooEarly { .. } | KeyError::KekReplaced) => conflict(e.to_string()),
            KeyError::Store(e) => e.into(),
            e => HttpError::internal(Surface::Admin, &e),
        })?;
    Ok(Json(
        json!({"rotated": true, "message": message, "active_kid": core.keys.current().active.kid}),
    ))
}
