//! `/admin/clients`: register, list, read, change (JSON Merge Patch), rotate the secret,
//! remove. The rules are the domain's ([`Clients`]); here only the wire.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bodies::EncodableClient;
use super::{Admin, Result, Strict, conflict, not_found, page_limit};
use crate::domain::Core;
use crate::domain::clients::{
    ClientChange, ClientSearch, Clients, ListClientsError, NewClient, NewClientError,
};
use crate::domain::clock::rfc3339;
use crate::http::error::HttpError;
use crate::http::json::JsonBody;

pub(super) fn router() -> axum::Router<std::sync::Arc<Core>> {
    Router::new()
        .route("/admin/clients", post(create).get(list))
        .route(
            "/admin/clients/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/admin/clients/{id}/secret", post(rotate_secret))
}

/// A client id path segment (percent-decoded); one that no client can have is simply
/// not found.
struct ClientId(String);

impl<S: Send + Sync> FromRequestParts<S> for ClientId {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| HttpError::invalid_request("malformed client id"))?;
        Ok(ClientId(id))
    }
}

/// The domain's refusal on the wire.
fn refused(e: NewClientError) -> HttpError {
    match e {
        NewClientError::Invalid(d) => HttpError::invalid_request(d),
        NewClientError::Exists => conflict("a client with this id already exists"),
        NewClientError::NotFound => not_found("client"),
        NewClientError::Conflict(d) => conflict(d),
        NewClientError::Store(e) => e.into(),
    }
}

async fn create(
    State(clients): State<Clients>,
    Admin(by): Admin,
    JsonBody(new): JsonBody<NewClient>,
) -> Result<Response> {
    let id = new.id.clone();
    let secret = clients.create(&by, new).await.map_err(refused)?;
    let client = clients
        .client(&id)
        .await?
        .ok_or_else(|| not_found("client"))?;
    let secret = secret.as_ref().map(|s| s.expose_secret());
    let body = EncodableClient::new(&client, secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /admin/clients`'s query; strings, checked below so each bad one is named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// An id prefix.
    #[serde(alias = "prefix")]
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct EncodableClients<'a> {
    clients: Vec<EncodableClient<'a>>,
    next_cursor: Option<&'a str>,
}

async fn list(
    State(clients): State<Clients>,
    _admin: Admin,
    Strict(q): Strict<ListQuery>,
) -> Result<Response> {
    let limit = page_limit(q.limit.as_deref())?;
    let search = ClientSearch {
        prefix: q.q,
        cursor: q.cursor,
    };
    let page = clients.list(&search, limit).await.map_err(|e| match e {
        e @ (ListClientsError::BadCursor | ListClientsError::BadPrefix) => {
            HttpError::invalid_request(e.to_string())
        }
        ListClientsError::Store(e) => e.into(),
    })?;
    Ok(Json(EncodableClients {
        clients: page
            .clients
            .iter()
            .map(|c| EncodableClient::new(c, None))
            .collect(),
        next_cursor: page.next_cursor.as_deref(),
    })
    .into_response())
}

async fn read(
    State(clients): State<Clients>,
    _admin: Admin,
    ClientId(id): ClientId,
) -> Result<Response> {
    let client = clients
        .client(&id)
        .await?
        .ok_or_else(|| not_found("client"))?;
    Ok(Json(EncodableClient::new(&client, None)).into_response())
}

/// The client as changed, and what the change revoked.
#[derive(Serialize)]
struct Updated<'a> {
    #[serde(flatten)]
    client: EncodableClient<'a>,
    forgotten_codes: u64,
    revoked_sessions: usize,
    disabled_streams: u64,
}

async fn update(
    State(clients): State<Clients>,
    Admin(by): Admin,
    ClientId(id): ClientId,
    JsonBody(change): JsonBody<Map<String, Value>>,
) -> Result<Response> {
    let (client, narrowed) = clients
        .update(&by, &id, ClientChange(change))
        .await
        .map_err(refused)?;
    Ok(Json(Updated {
        client: EncodableClient::new(&client, None),
        forgotten_codes: narrowed.forgotten_codes,
        revoked_sessions: narrowed.revoked_sessions,
        disabled_streams: narrowed.disabled_streams,
    })
    .into_response())
}

/// A new secret, shown once, and when the one it replaced stops working.
#[derive(Serialize)]
struct NewSecret<'a> {
    client_secret: &'a str,
    previous_secret_expires_at: Option<String>,
}

async fn rotate_secret(
    State(clients): State<Clients>,
    Admin(by): Admin,
    ClientId(id): ClientId,
) -> Result<Response> {
    let (secret, until) = clients.rotate_secret(&by, &id).await.map_err(refused)?;
    Ok(Json(NewSecret {
        client_secret: secret.expose_secret(),
        previous_secret_expires_at: until.map(|t| rfc3339(Some(t))),
    })
    .into_response())
}

async fn remove(
    State(clients): State<Clients>,
    Admin(by): Admin,
    ClientId(id): ClientId,
) -> Result<StatusCode> {
    clients.remove(&by, &id).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}
