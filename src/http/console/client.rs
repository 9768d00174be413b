//! One client in the console: its registration (edit: a change that narrows what it may do
//! revokes what it no longer may hold), its secret's rotation (the new secret shown once, the
//! old one accepted for `client_secret_overlap`), and its removal behind a confirmation;
//! through `Clients::update`, `rotate_secret` and `remove`, as the admin API's handlers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::clients::{LISTS, list};
use super::{Console, field, internal, layout, page_error, respond, see_other};
use crate::domain::Core;
use crate::domain::audit::{Actor, Via};
use crate::domain::clients::{Client, ClientChange, NewClientError};

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/console/clients/{id}", get(show).post(update))
        .route("/console/clients/{id}/secret", post(rotate))
        .route(
            "/console/clients/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

/// A client's current value of a list field, as the form shows it.
fn current(client: &Client, name: &str) -> String {
    let words = |w: &[String]| w.join(" ");
    match name {
        "grant_types" => client
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        "capabilities" => client
            .capabilities
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        "scopes" => words(&client.scopes),
        "audiences" => words(&client.audiences),
        "roles" => words(&client.roles),
        "redirect_uris" => words(&client.redirect_uris),
        "origins" => words(&client.origins),
        _ => String::new(),
    }
}

async fn found(core: &Core, id: &str) -> Result<Client, Response> {
    match core.clients.client(id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(page_error(StatusCode::NOT_FOUND, "No such client.")),
        Err(e) => Err(internal(&e)),
    }
}

fn failed(e: NewClientError) -> Response {
    match e {
        NewClientError::Invalid(d) => page_error(StatusCode::BAD_REQUEST, &d),
        NewClientError::NotFound => page_error(StatusCode::NOT_FOUND, "No such client."),
        NewClientError::Store(e) => internal(&e),
        e @ (NewClientError::Exists | NewClientError::Conflict(_)) => {
            page_error(StatusCode::CONFLICT, &e.to_string())
        }
    }
}

async fn show(
    State(core): State<Arc<Core>>,
    console: Console,
    Path(id): Path<String>,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(done) = done.unwrap_or_default();
    let client = match found(&core, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let notice = match done.done.as_deref() {
        Some("saved") => Some("Saved: what the client may no longer do was revoked."),
        _ => None,
    };
    let content = html! {
        h1 { "Client " code { (client.id) } }
        (layout::notice(notice))
        p.lead {
            @if client.is_public() { "Public (no secret)" } @else { "Confidential" }
            " · registered " (layout::at(client.created_at))
            @if let Some(until) = client.previous_secret_expires_at {
                " · the previous secret is accepted until " (layout::at(until))
            }
        }
        (edit_form(&console, &client))
        @if !client.is_public() {
            h2 { "Secret" }
            form.inline method="post" action={ "/console/clients/" (client.id) "/secret" } {
                (layout::csrf(&console.csrf))
                button type="submit" { "Rotate the secret of " (client.id) }
            }
        }
        h2 { "Remove" }
        p { a href={ "/console/clients/" (client.id) "/delete" } { "Remove " (client.id) "…" } }
    };
    let markup = layout::page(&console, "/console/clients", &client.id, content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

fn edit_form(console: &Console, client: &Client) -> Markup {
    html! {
        h2 { "Registration" }
        form method="post" action={ "/console/clients/" (client.id) } {
            (layout::csrf(&console.csrf))
            table {
                tbody {
                    @for (name, label, hint) in LISTS {
                        tr {
                            th scope="row" { label for=(name) { (label) } }
                            td { input id=(name) type="text" name=(name) value=(current(client, name)) autocomplete="off" spellcheck="false" aria-describedby={ (name) "-hint" }; span.lead id={ (name) "-hint" } { (hint) } }
                        }
                    }
                    tr {
                        th scope="row" { label for="third_party" { "Third-party (users consent)" } }
                        td { input #third_party type="checkbox" name="third_party" value="yes" checked[client.third_party]; }
                    }
                }
            }
            button type="submit" { "Save " (client.id) }
        }
    }
}

async fn update(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut change = Map::new();
    for (name, _, _) in LISTS {
        change.insert(name.into(), json!(list(&params, name)));
    }
    change.insert(
        "third_party".into(),
        Value::Bool(field(&params, "third_party").is_some()),
    );
    let by = Actor::admin(&console.user, Via::Console);
    match core.clients.update(&by, &id, ClientChange(change)).await {
        Ok(_) => see_other(&format!("/console/clients/{}?done=saved", urlencode(&id))),
        Err(e) => failed(e),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A new secret, shown once on this answer; the old one works until the overlap ends.
async fn rotate(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, _) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let by = Actor::admin(&console.user, Via::Console);
    let (secret, until) = match core.clients.rotate_secret(&by, &id).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let content = html! {
        h1 { "New secret for " code { (id) } }
        p.notice role="status" {
            "Shown once, now: put it into the app's configuration. "
            @match until {
                Some(t) => { "The previous secret is accepted until " (layout::at(t)) "." }
                None => { "The previous secret is refused from now on." }
            }
        }
        p { label for="secret" { "Client secret" } }
        p.secret #secret { (secret.expose_secret()) }
        p { a href={ "/console/clients/" (urlencode(&id)) } { "Back to " (id) } }
    };
    let markup = layout::page(&console, "/console/clients", "New secret", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

async fn confirm_delete(
    State(core): State<Arc<Core>>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let client = match found(&core, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let content = html! {
        h1 { "Remove " code { (client.id) } "?" }
        p.error role="alert" {
            "Every session of its users ends now and every verifier is told; its codes, consents "
            "and Shared Signals streams are deleted. Its id may be registered again."
        }
        form.bar method="post" action={ "/console/clients/" (client.id) "/delete" } {
            (layout::csrf(&console.csrf))
            input type="hidden" name="confirm" value="remove";
            button.danger type="submit" { "Remove " (client.id) " now" }
            a href={ "/console/clients/" (client.id) } { "Cancel" }
        }
    };
    let markup = layout::page(
        &console,
        "/console/clients",
        "Remove a client",
        content,
        None,
    );
    respond(StatusCode::OK, markup, HeaderMap::new())
}

async fn delete(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if field(&params, "confirm") != Some("remove") {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Removing a client needs its confirmation.",
        );
    }
    let by = Actor::admin(&console.user, Via::Console);
    match core.clients.remove(&by, &id).await {
        Ok(_) => see_other("/console/clients"),
        Err(e) => failed(e),
    }
}
