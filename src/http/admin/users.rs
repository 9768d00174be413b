//! `/admin/users/{id}`: one user in full, and the changes of a user's life beyond
//! roles: enable, delete, an operator's password reset.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::bodies::{EncodableSession, EncodableUser};
use super::{Admin, Id, Result, change, not_found};
use crate::domain::clock::rfc3339;
use crate::domain::events::SecurityEvent;
use crate::domain::listings::UserDetail;
use crate::domain::permissions::{Change, ChangeError};
use crate::domain::users::Users;
use crate::http::error::HttpError;
use crate::http::json::JsonBody;

/// A user as `GET /admin/users/{id}` reads them: the user's fields, when it was
/// created, its first live sessions (page on with `GET /admin/sessions?user=` from
/// `sessions_next_cursor`) and its last events (newest first, as `/events` serves them).
#[derive(Serialize)]
struct EncodableUserDetail<'a> {
    created_at: String,
    events: &'a [SecurityEvent],
    sessions: Vec<EncodableSession<'a>>,
    sessions_next_cursor: Option<&'a str>,
    #[serde(flatten)]
    user: EncodableUser<'a>,
}

impl<'a> From<&'a UserDetail> for EncodableUserDetail<'a> {
    fn from(d: &'a UserDetail) -> Self {
        Self {
            created_at: rfc3339(Some(d.user.created_at)),
            events: &d.events,
            sessions: d.sessions.iter().map(EncodableSession::from).collect(),
            sessions_next_cursor: d.sessions_next_cursor.as_deref(),
            user: EncodableUser::from(&d.user.user),
        }
    }
}

pub(super) async fn detail(
    State(users): State<Users>,
    _admin: Admin,
    Id(id): Id,
) -> Result<Response> {
    let detail = users
        .user_detail(&id)
        .await
        .map_err(super::sessions::listing_error)?
        .ok_or_else(|| not_found("user"))?;
    Ok(Json(EncodableUserDetail::from(&detail)).into_response())
}

fn changed(e: ChangeError) -> HttpError {
    match e {
        ChangeError::Invalid(d) => HttpError::invalid_request(d),
        ChangeError::NotFound => not_found("user"),
        ChangeError::Store(e) => e.into(),
    }
}

/// Enables a disabled user (200, the user as changed); an enabled user is answered as it
/// is, unchanged (idempotent: no event, no audit entry).
pub(super) async fn enable(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
) -> Result<Response> {
    let (user, _changed) = users.enable_user(&by, &id).await.map_err(changed)?;
    Ok(Json(EncodableUser::from(&user)).into_response())
}

/// Deletes the user and what is theirs: 204.
pub(super) async fn delete(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
) -> Result<StatusCode> {
    users.delete_user(&by, &id).await.map_err(changed)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPassword {
    password: String,
}

/// An operator's password reset: ends every session, like `tessera user passwd`.
pub(super) async fn set_password(
    State(users): State<Users>,
    Admin(by): Admin,
    Id(id): Id,
    JsonBody(NewPassword { password }): JsonBody<NewPassword>,
) -> Result<Response> {
    change(
        &users,
        &by,
        &id,
        Change::Password(SecretString::from(password)),
    )
    .await
}
