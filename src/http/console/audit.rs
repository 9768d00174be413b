//! The console's audit trail: who changed what and when (admin API, console, command line,
//! the server's schedule), newest first, 50 a page, optionally about one id (`?target=`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::{Console, internal, layout, page_error, respond};
use crate::domain::Core;
use crate::domain::audit::{AuditError, AuditSearch, Trail};

/// Entries on one page.
const PAGE: u32 = 50;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/console/audit", get(page))
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    target: Option<String>,
    cursor: Option<String>,
}

async fn page(
    State(core): State<Arc<Core>>,
    console: Console,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = query.unwrap_or_default();
    let target = q
        .target
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let search = AuditSearch {
        target: target.clone(),
        cursor: q.cursor.filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let trail = Trail {
        db: core.db.clone(),
    };
    let page = match trail.page(&search, PAGE).await {
        Ok(p) => p,
        Err(AuditError::Store(e)) => return internal(&e),
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let next = page.next_cursor.as_deref().map(|c| {
        let mut to = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &target {
            to.append_pair("target", t);
        }
        to.append_pair("cursor", c);
        format!("/console/audit?{}", to.finish())
    });
    let content = html! {
        h1 { "Audit trail" }
        form.bar method="get" action="/console/audit" role="search" {
            label for="target" { "About id" }
            input #target type="search" name="target" value=[target.as_deref()] autocomplete="off" spellcheck="false";
            button type="submit" { "Filter" }
        }
        @if page.entries.is_empty() {
            p.lead { "No entry." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "Through" } th { "Action" } th { "About" } th { "Details" } } }
                tbody {
                    @for e in &page.entries {
                        tr.entry {
                            td.mono { (layout::at(e.at)) }
                            td.mono { (e.actor) }
                            td { (e.via) }
                            td { code { (e.action) } }
                            td.mono { (e.target.as_deref().unwrap_or("")) }
                            td.mono { @if !e.details.is_null() { (e.details.to_string()) } }
                        }
                    }
                }
            }
        }
        div.pager {
            @if search.cursor.is_some() { a href="/console/audit" { "Newest" } }
            @if let Some(next) = next { a href=(next) rel="next" { "Older entries" } }
        }
    };
    let markup = layout::page(&console, "/console/audit", "Audit trail", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}
