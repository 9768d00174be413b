//! The console's clients: registering one (the secret of a confidential client is shown once,
//! on the answer's page, and never again), through `Clients::create` as `POST /admin/clients`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use secrecy::ExposeSecret;

use super::{Console, field, internal, layout, page_error, respond};
use crate::domain::Core;
use crate::domain::audit::{Actor, Via};
use crate::domain::clients::{ClientSearch, ListClientsError, NewClient, NewClientError};
use crate::http::form::Params;
use serde::Deserialize;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/console/clients", get(page).post(create))
}

/// The list fields of the form: (name, label, hint).
pub(super) const LISTS: [(&str, &str, &str); 7] = [
    (
        "grant_types",
        "Grant types",
        "authorization_code, password, client_credentials",
    ),
    ("scopes", "Scopes", "e.g. openid profile roles"),
    ("audiences", "Audiences", "the APIs its tokens are for"),
    (
        "roles",
        "Roles of its own tokens",
        "client_credentials only",
    ),
    ("capabilities", "Capabilities", "introspect, events, ssf"),
    ("redirect_uris", "Redirect URIs", "exact, for /authorize"),
    ("origins", "CORS origins", "browser apps on other origins"),
];

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

/// Clients on one page of the list.
const PAGE: u32 = 50;

async fn page(
    State(core): State<Arc<Core>>,
    console: Console,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = query.unwrap_or_default();
    let prefix = q.q.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
    let search = ClientSearch {
        prefix: prefix.clone(),
        cursor: q.cursor.filter(|c| !c.is_empty()),
    };
    let page = match core.clients.list(&search, PAGE).await {
        Ok(p) => p,
        Err(ListClientsError::Store(e)) => return internal(&e),
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let next = page.next_cursor.as_deref().map(|c| {
        let mut to = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = &prefix {
            to.append_pair("q", p);
        }
        to.append_pair("cursor", c);
        format!("/console/clients?{}", to.finish())
    });
    let content = html! {
        h1 { "Clients" }
        form.bar method="get" action="/console/clients" role="search" {
            label for="q" { "Client id starts with" }
            input #q type="search" name="q" value=[prefix.as_deref()] autocomplete="off" spellcheck="false";
            button type="submit" { "Search" }
        }
        table {
            thead { tr { th { "Client" } th { "Kind" } th { "Grants" } th { "Capabilities" } th { "Registered" } } }
            tbody {
                @for c in &page.clients {
                    tr.client {
                        td { a href={ "/console/clients/" (url::form_urlencoded::byte_serialize(c.id.as_bytes()).collect::<String>()) } { (c.id) } }
                        td { @if c.is_public() { "public" } @else { "confidential" } }
                        td { @for g in &c.grant_types { span.badge { (g.as_str()) } } }
                        td { @for cap in &c.capabilities { span.badge { (cap.as_str()) } } }
                        td.mono { (layout::at(c.created_at)) }
                    }
                }
            }
        }
        div.pager {
            @if let Some(next) = next { a href=(next) rel="next" { "Next page" } }
        }
        h2 { "Register a client" }
        form method="post" action="/console/clients" {
            (layout::csrf(&console.csrf))
            table {
                tbody {
                    tr {
                        th scope="row" { label for="id" { "Client id" } }
                        td { input #id type="text" name="id" required autocomplete="off" spellcheck="false"; }
                    }
                    @for (name, label, hint) in LISTS {
                        tr {
                            th scope="row" { label for=(name) { (label) } }
                            td { input id=(name) type="text" name=(name) autocomplete="off" spellcheck="false" aria-describedby={ (name) "-hint" }; span.lead id={ (name) "-hint" } { (hint) } }
                        }
                    }
                    tr {
                        th scope="row" { label for="public" { "Public (no secret: a browser or mobile app)" } }
                        td { input #public type="checkbox" name="public" value="yes"; }
                    }
                    tr {
                        th scope="row" { label for="third_party" { "Third-party (users consent)" } }
                        td { input #third_party type="checkbox" name="third_party" value="yes"; }
                    }
                }
            }
            button type="submit" { "Register client" }
        }
    };
    let markup = layout::page(&console, "/console/clients", "Clients", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

/// A list field: values separated by commas or whitespace.
pub(super) fn list(params: &Params, name: &str) -> Vec<String> {
    field(params, name)
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses every word of a list field, or says which one is unknown.
fn words<T: std::str::FromStr>(params: &Params, name: &str, what: &str) -> Result<Vec<T>, String> {
    list(params, name)
        .iter()
        .map(|w| w.parse().map_err(|_| format!("Unknown {what} `{w}`.")))
        .collect()
}

async fn create(State(core): State<Arc<Core>>, req: Request) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let new = match (
        words(&params, "grant_types", "grant type"),
        words(&params, "capabilities", "capability"),
    ) {
        (Ok(grant_types), Ok(capabilities)) => NewClient {
            id: field(&params, "id").unwrap_or("").to_string(),
            public: field(&params, "public").is_some(),
            third_party: field(&params, "third_party").is_some(),
            grant_types,
            capabilities,
            scopes: list(&params, "scopes"),
            audiences: list(&params, "audiences"),
            roles: list(&params, "roles"),
            redirect_uris: list(&params, "redirect_uris"),
            origins: list(&params, "origins"),
            ..Default::default()
        },
        (Err(e), _) | (_, Err(e)) => return page_error(StatusCode::BAD_REQUEST, &e),
    };
    let id = new.id.clone();
    let by = Actor::admin(&console.user, Via::Console);
    let secret = match core.clients.create(&by, new).await {
        Ok(s) => s,
        Err(NewClientError::Invalid(d)) => return page_error(StatusCode::BAD_REQUEST, &d),
        Err(NewClientError::Exists) => {
            return page_error(
                StatusCode::CONFLICT,
                "A client with this id already exists.",
            );
        }
        Err(NewClientError::Store(e)) => return internal(&e),
        Err(e @ (NewClientError::NotFound | NewClientError::Conflict(_))) => {
            return page_error(StatusCode::CONFLICT, &e.to_string());
        }
    };
    let content = html! {
        h1 { "Client " code { (id) } " registered" }
        @if let Some(secret) = &secret {
            p.notice role="status" { "Its secret is shown once, now: copy it into the app's configuration." }
            p { label for="secret" { "Client secret" } }
            p.secret #secret { (secret.expose_secret()) }
        } @else {
            p.notice role="status" { "A public client: it has no secret." }
        }
        p { a href="/console/clients" { "Back to clients" } }
    };
    let markup = layout::page(
        &console,
        "/console/clients",
        "Client registered",
        content,
        None,
    );
    respond(StatusCode::CREATED, markup, HeaderMap::new())
}
