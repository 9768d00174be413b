//! `GET /admin/audit`: the audit trail, newest first.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Admin, Result, Strict, page_limit};
use crate::domain::audit::{AuditError, AuditSearch, Entry, Trail};
use crate::domain::clock::rfc3339;
use crate::http::error::HttpError;

/// The query; every value a string, checked below so each bad one is named.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    target: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One entry; `at` in RFC 3339.
#[derive(Serialize)]
struct EncodableEntry<'a> {
    id: i64,
    at: String,
    actor: &'a str,
    via: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    details: &'a serde_json::Value,
}

impl<'a> From<&'a Entry> for EncodableEntry<'a> {
    fn from(e: &'a Entry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(Some(e.at)),
            actor: &e.actor,
            via: &e.via,
            action: &e.action,
            target: e.target.as_deref(),
            details: &e.details,
        }
    }
}

#[derive(Serialize)]
struct EncodableTrail<'a> {
    entries: Vec<EncodableEntry<'a>>,
    next_cursor: Option<&'a str>,
}

pub(super) async fn list(
    State(trail): State<Trail>,
    _admin: Admin,
    Strict(q): Strict<AuditQuery>,
) -> Result<Response> {
    let limit = page_limit(q.limit.as_deref())?;
    let search = AuditSearch {
        target: q.target,
        actor: q.actor,
        action: q.action,
        cursor: q.cursor,
    };
    let page = trail.page(&search, limit).await.map_err(|e| match e {
        e @ (AuditError::BadCursor | AuditError::BadFilter) => {
            HttpError::invalid_request(e.to_string())
        }
        AuditError::Store(e) => e.into(),
    })?;
    Ok(Json(EncodableTrail {
        entries: page.entries.iter().map(EncodableEntry::from).collect(),
        next_cursor: page.next_cursor.as_deref(),
    })
    .into_response())
}
