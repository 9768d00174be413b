//! `/admin`: users, roles, sessions, clients and keys for operators.
//!
//! The caller presents a bearer access token issued for the admin audience
//! (`admin_audience`, default `{issuer}/admin`); its user must hold the admin role
//! **now**, in the database, and its session must be live, so a demoted admin's
//! unexpired token is refused at once.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;

mod audit;
mod bodies;
mod clients;
mod events;
mod factors;
mod sessions;
mod users;

use super::bearer;
use super::error::{HttpError, Surface};
use super::json::JsonBody;
use crate::config::SigningAlg;
use crate::domain::Core;
use crate::domain::audit::{Actor, Via};
use crate::domain::keys::{KeyError, Keys};
use crate::domain::permissions::{Change, ChangeError};
use crate::domain::queries::{ListError, User, UserSearch};
use crate::domain::users::{NewUserError, Users};
use bodies::{
    EncodableKey, EncodableKeys, EncodableListedUser, EncodableSession, EncodableUser,
    EncodableUsers, Rotated,
};

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/admin/users", post(create_user).get(list_users))
        .route(
            "/admin/users/{id}",
            get(users::detail).delete(users::delete),
        )
        .route("/admin/users/{id}/enable", post(users::enable))
        .route("/admin/users/{id}/password", put(users::set_password))
        .route("/admin/sessions", get(sessions::list))
        .route("/admin/events", get(events::list))
        .route("/admin/users/{id}/roles", put(set_roles))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/sessions", get(list_sessions))
        .route("/admin/sessions/{sid}", delete(revoke_session))
        .route(
            "/admin/users/{id}/consents/{client_id}",
            delete(revoke_consents),
        )
        .route("/admin/keys", get(list_keys))
        .route("/admin/keys/rotate", post(rotate_keys))
        .route("/admin/audit", get(audit::list))
        .merge(clients::router())
        .merge(factors::router())
}

type Result<T, E = HttpError> = std::result::Result<T, E>;

/// A list's query, each bad value a 400 `invalid_request` naming it; strictly UTF-8 once
/// percent-decoded (`%FF` is no character: refused, not searched for as U+FFFD). Listed
/// after [`Admin`], so an anonymous request is refused first.
pub(super) struct Strict<T>(pub(super) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Strict<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        if !utf8_when_decoded(parts.uri.query().unwrap_or("")) {
            return Err(HttpError::invalid_request(
                "the query is not UTF-8 once percent-decoded",
            ));
        }
        Query::try_from_uri(&parts.uri)
            .map(|Query(q)| Strict(q))
            .map_err(|e| HttpError::invalid_request(e.body_text()))
    }
}

/// Whether `raw` percent-decodes to UTF-8.
fn utf8_when_decoded(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| bytes[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(b) => {
                decoded.push(b);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

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
    let caller = bearer::verify(&core.tokens, headers)?;
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
    let user = bearer::live_user(&core.live, &caller).await?;
    if !user.roles.contains(&core.cfg.admin_role) {
        return Err(HttpError::insufficient_scope("the admin role is required"));
    }
    Ok(user)
}

/// The caller, authorised as an administrator: the actor of the audit trail. Listed
/// before other extractors so an anonymous request is refused before anything else
/// is looked at.
pub(super) struct Admin(Actor);

impl FromRequestParts<Arc<Core>> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self> {
        let user = authorize(core, &parts.headers).await?;
        Ok(Admin(Actor::admin(&user, Via::Api)))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create_user(
    State(users): State<Users>,
    Admin(by): Admin,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<Response> {
    let user = users
        .create_user(
            &by,
            &new.username,
            SecretString::from(new.password),
            new.roles,
        )
        .await
        .map_err(|e| match e {
            NewUserError::Invalid(d) => HttpError::invalid_request(d),
            NewUserError::Exists => conflict("a user with this username already exists"),
            NewUserError::Store(e) => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(EncodableUser::from(&user))).into_response())
}

/// `GET /admin/users`'s query; every value a string, parsed below so that each bad
/// one gets its own description.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `q` is the name issue 24's scripts use.
    #[serde(alias = "q")]
    prefix: Option<String>,
    role: Option<String>,
    disabled: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The page size when none is asked for, and the most one page holds.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// A list's `limit` query value: 1 to 200, default 50.
fn page_limit(raw: Option<&str>) -> Result<u32> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        // Digits only: `+5` is no integer to the schema, though Rust parses it.
        Some(l) => Some(l)
            .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|l| l.parse().ok())
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| HttpError::invalid_request("limit must be an integer from 1 to 200")),
    }
}

async fn list_users(
    State(users): State<Users>,
    _admin: Admin,
    Strict(q): Strict<ListQuery>,
) -> Result<Response> {
    let disabled = match q.disabled.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(HttpError::invalid_request("disabled must be true or false")),
    };
    let limit = page_limit(q.limit.as_deref())?;
    let search = UserSearch {
        prefix: q.prefix,
        role: q.role,
        disabled,
        cursor: q.cursor,
    };
    let page = users
        .list_users(&search, limit)
        .await
        .map_err(|e| match e {
            e @ ListError::BadCursor => HttpError::invalid_request(e.to_string()),
            ListError::Invalid(d) => HttpError::invalid_request(d),
            ListError::Store(e) => e.into(),
        })?;
    Ok(Json(EncodableUsers {
        next_cursor: page.next_cursor.as_deref(),
        users: page.users.iter().map(EncodableListedUser::from).collect(),
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

async fn change(users: &Users, by: &Actor, id: &str, change: Change) -> Result<Response> {
    let user = users
        .change_user(by, id, change)
        .await
        .map_err(|e| match e {
            ChangeError::Invalid(d) => HttpError::invalid_request(d),
            ChangeError::NotFound => not_found("user"),
            ChangeError::Store(e) => e.into(),
        })?;
    Ok(Json(EncodableUser::from(&user)).into_response())
}

async fn set_roles(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
    JsonBody(Roles { roles }): JsonBody<Roles>,
) -> Result<Response> {
    change(&users, &by, &id, Change::Roles(roles)).await
}

async fn disable_user(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
) -> Result<Response> {
    change(&users, &by, &id, Change::Disable).await
}

async fn list_sessions(State(users): State<Users>, _admin: Admin, Id(id): Id) -> Result<Response> {
    let sessions = users
        .live_sessions(&id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let list: Vec<EncodableSession> = sessions.iter().map(EncodableSession::from).collect();
    Ok(Json(list).into_response())
}

async fn revoke_session(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(sid): Id,
) -> Result<StatusCode> {
    if users.revoke_session(&by, &sid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found("live session"))
    }
}

/// Withdraws what a user consented to for a third-party client; its next sign-in asks again.
async fn revoke_consents(
    State(users): State<Users>,
    Admin(by): Admin,
    Path((id, client_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = user_id(&id)?;
    if users.revoke_consents(&by, &id, &client_id).await? > 0 {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found("consent"))
    }
}

async fn list_keys(State(keys): State<Keys>, _admin: Admin) -> Result<Response> {
    let records = keys.signing_keys().await?;
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
    State(signing): State<Keys>,
    Admin(by): Admin,
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
    let message = signing
        .rotate_keys(&by, alg, revoke_current)
        .await
        .map_err(|e| match e {
            e @ (KeyError::TooEarly { .. } | KeyError::KekReplaced) => conflict(e.to_string()),
            KeyError::Store(e) => e.into(),
            e => HttpError::internal(Surface::Admin, &e),
        })?;
    let active_kid = signing.keys.current().active.kid.clone();
    Ok(Json(Rotated {
        active_kid,
        message,
        rotated: true,
    })
    .into_response())
}
