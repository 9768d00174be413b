//! The console's users: the list (username prefix search, keyset paging), a user's page
//! (roles editor, live sessions with revoke, disable), and the forms behind them, each
//! through the domain's `Users`, as the admin API's handlers call it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, field, internal, layout, page_error, respond, see_other};
use crate::domain::Core;
use crate::domain::audit::{Actor, Via};
use crate::domain::permissions::{Change, ChangeError};
use crate::domain::queries::{ListError, UserSearch};
use crate::domain::users::User;

/// Users on one page of the list.
const PAGE: u32 = 50;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/console/users", get(list))
        .route("/console/users/{id}", get(show))
        .route("/console/users/{id}/roles", post(set_roles))
        .route("/console/users/{id}/disable", post(disable))
        .route("/console/users/{id}/enable", post(enable))
        .route(
            "/console/users/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/console/users/{id}/sessions/{sid}/revoke", post(revoke))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

async fn list(
    State(core): State<Arc<Core>>,
    console: Console,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = query.unwrap_or_default();
    let prefix = q.q.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let search = UserSearch {
        prefix: prefix.map(str::to_string),
        cursor: q.cursor.filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let page = match core.users.list_users(&search, PAGE).await {
        Ok(p) => p,
        Err(ListError::Store(e)) => return internal(&e),
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let next = page.next_cursor.as_deref().map(|c| {
        let mut to = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = prefix {
            to.append_pair("q", p);
        }
        to.append_pair("cursor", c);
        format!("/console/users?{}", to.finish())
    });
    let content = html! {
        h1 { "Users" }
        form.bar method="get" action="/console/users" role="search" {
            label for="q" { "Username starts with" }
            input #q type="search" name="q" value=[prefix] autocomplete="off" spellcheck="false";
            button type="submit" { "Search" }
        }
        @if page.users.is_empty() {
            p.lead { "No user matches." }
        } @else {
            table {
                thead { tr { th { "Username" } th { "Roles" } th { "ver" } th { "Status" } th { "Created" } } }
                tbody {
                    @for listed in &page.users {
                        tr {
                            td { a href={ "/console/users/" (listed.user.id) } { (listed.user.username) } }
                            td { (roles(&listed.user)) }
                            td { (listed.user.authz_version) }
                            td { (status(&listed.user)) }
                            td.mono { (layout::at(listed.created_at)) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if search.cursor.is_some() {
                a href={ "/console/users" @if let Some(p) = prefix { "?q=" (urlencode(p)) } } { "First page" }
            }
            @if let Some(next) = next { a href=(next) rel="next" { "Next page" } }
        }
    };
    let markup = layout::page(&console, "/console/users", "Users", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn roles(user: &User) -> Markup {
    html! {
        @for r in &user.roles { span.badge { (r) } }
    }
}

fn status(user: &User) -> Markup {
    html! {
        @if user.disabled { span.badge.off { "disabled" } } @else { span.badge.ok { "enabled" } }
    }
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

/// What a change's redirect may say (`?done=`): a fixed text per change.
fn done_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "roles" => "Roles saved: the user's sessions were revoked and the change is on the feed.",
        "revoked" => "Session revoked.",
        "disabled" => "User disabled: every session ended.",
        "enabled" => "User enabled: they may sign in again.",
        _ => return None,
    })
}

/// A user id from the path; anything but a UUID is no user.
fn user_id(raw: &str) -> Option<String> {
    uuid::Uuid::parse_str(raw).ok().map(|u| u.to_string())
}

async fn show(
    State(core): State<Arc<Core>>,
    console: Console,
    Path(id): Path<String>,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(done) = done.unwrap_or_default();
    let Some(id) = user_id(&id) else {
        return page_error(StatusCode::NOT_FOUND, "No such user.");
    };
    let detail = match core.users.user_detail(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such user."),
        Err(e) => return internal(&e),
    };
    let (user, sessions, events) = (&detail.user, &detail.sessions, &detail.events);
    let u = &user.user;
    let content = html! {
        h1 { (u.username) }
        (layout::notice(done_text(done.done.as_deref())))
        table {
            tbody {
                tr { th scope="row" { "id (sub)" } td.mono { (u.id) } }
                tr { th scope="row" { "Roles" } td { (roles(u)) } }
                tr { th scope="row" { "ver" } td { (u.authz_version) } }
                tr { th scope="row" { "Status" } td { (status(u)) } }
                tr { th scope="row" { "Created" } td.mono { (layout::at(user.created_at)) } }
            }
        }
        h2 { "Roles" }
        form.bar method="post" action={ "/console/users/" (u.id) "/roles" } {
            (layout::csrf(&console.csrf))
            label for="roles" { "Roles (comma-separated)" }
            input #roles type="text" name="roles" value=(u.roles.join(", ")) autocomplete="off" spellcheck="false";
            button type="submit" { "Save roles" }
        }
        h2 { "Live sessions" }
        @if sessions.is_empty() {
            p.lead { "No live session." }
        } @else {
            table {
                thead { tr { th { "Session (sid)" } th { "Client" } th { "Started" } th { "Last used" } th { "Expires" } th { "Action" } } }
                tbody {
                    @for s in sessions {
                        tr {
                            td.mono { (s.id) }
                            td { (s.client_id) }
                            td.mono { (layout::at(s.created_at)) }
                            td.mono { (layout::at(s.last_used_at)) }
                            td.mono { (layout::at(s.expires_at)) }
                            td {
                                form.inline method="post" action={ "/console/users/" (u.id) "/sessions/" (s.id) "/revoke" } {
                                    (layout::csrf(&console.csrf))
                                    button.secondary type="submit" aria-label={ "Revoke session " (s.id) " of " (s.client_id) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if detail.sessions_next_cursor.is_some() {
            p.lead { "More live sessions than shown: revoke these, or disable the user to end all." }
        }
        h2 { "Recent events" }
        @if events.is_empty() {
            p.lead { "No event." }
        } @else {
            table {
                thead { tr { th { "id" } th { "Type" } th { "ver" } th { "Roles" } th { "Reason" } th { "Session" } th { "At" } } }
                tbody {
                    @for e in events {
                        tr.event {
                            td.mono { (e.id) }
                            td { code { (e.kind.as_str()) } }
                            td { @if let Some(v) = e.ver { (v) } }
                            td { @if let Some(r) = &e.roles { (r.join(", ")) } }
                            td { (e.reason.as_deref().unwrap_or("")) }
                            td.mono { (e.sid.as_deref().unwrap_or("")) }
                            td.mono { (e.at) }
                        }
                    }
                }
            }
        }
        h2 { "Account" }
        div.bar {
            @if u.disabled {
                form.inline method="post" action={ "/console/users/" (u.id) "/enable" } {
                    (layout::csrf(&console.csrf))
                    button type="submit" { "Enable " (u.username) }
                }
            } @else {
                form.inline method="post" action={ "/console/users/" (u.id) "/disable" } {
                    (layout::csrf(&console.csrf))
                    button.danger type="submit" { "Disable " (u.username) }
                }
            }
            " "
            a href={ "/console/users/" (u.id) "/delete" } { "Delete " (u.username) "…" }
            " · "
            a href={ "/console/audit?target=" (u.id) } { "Audit trail of " (u.username) }
        }
    };
    let markup = layout::page(&console, "/console/users", &u.username, content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

/// Applies a change to a user as the signed-in administrator; back to the user's page.
async fn change(core: &Core, console: &Console, id: &str, change: Change, done: &str) -> Response {
    let Some(id) = user_id(id) else {
        return page_error(StatusCode::NOT_FOUND, "No such user.");
    };
    let by = Actor::admin(&console.user, Via::Console);
    match core.users.change_user(&by, &id, change).await {
        Ok(_) => see_other(&format!("/console/users/{id}?done={done}")),
        Err(e) => change_failed(e),
    }
}

async fn set_roles(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let roles: Vec<String> = field(&params, "roles")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    change(&core, &console, &id, Change::Roles(roles), "roles").await
}

async fn disable(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, _) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    change(&core, &console, &id, Change::Disable, "disabled").await
}

async fn revoke(
    State(core): State<Arc<Core>>,
    Path((id, sid)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (console, _) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(id), Some(sid)) = (user_id(&id), user_id(&sid)) else {
        return page_error(StatusCode::NOT_FOUND, "No such session.");
    };
    let by = Actor::admin(&console.user, Via::Console);
    match core.users.revoke_session(&by, &sid).await {
        Ok(_) => see_other(&format!("/console/users/{id}?done=revoked")),
        Err(e) => internal(&e),
    }
}

async fn enable(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, _) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(id) = user_id(&id) else {
        return page_error(StatusCode::NOT_FOUND, "No such user.");
    };
    let by = Actor::admin(&console.user, Via::Console);
    match core.users.enable_user(&by, &id).await {
        Ok(_) => see_other(&format!("/console/users/{id}?done=enabled")),
        Err(e) => change_failed(e),
    }
}

fn change_failed(e: ChangeError) -> Response {
    match e {
        ChangeError::Invalid(d) => page_error(StatusCode::BAD_REQUEST, d),
        ChangeError::NotFound => page_error(StatusCode::NOT_FOUND, "No such user."),
        ChangeError::Store(e) => internal(&e),
    }
}

/// The confirmation step of a deletion: what it does, and one button.
async fn confirm_delete(
    State(core): State<Arc<Core>>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let user = match user_id(&id) {
        Some(id) => core.users.user(&id).await,
        None => Ok(None),
    };
    let user = match user {
        Ok(Some(u)) => u,
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such user."),
        Err(e) => return internal(&e),
    };
    let content = html! {
        h1 { "Delete " (user.username) "?" }
        p.error role="alert" {
            "Every session of " strong { (user.username) } " ends now, every verifier is told, and the "
            "account, its sessions and consents are erased; the event log keeps only the id. "
            "This cannot be undone."
        }
        form.bar method="post" action={ "/console/users/" (user.id) "/delete" } {
            (layout::csrf(&console.csrf))
            input type="hidden" name="confirm" value="delete";
            button.danger type="submit" { "Delete " (user.username) " now" }
            a href={ "/console/users/" (user.id) } { "Cancel" }
        }
    };
    let markup = layout::page(&console, "/console/users", "Delete a user", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

async fn delete(State(core): State<Arc<Core>>, Path(id): Path<String>, req: Request) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if field(&params, "confirm") != Some("delete") {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Deleting a user needs its confirmation.",
        );
    }
    let Some(id) = user_id(&id) else {
        return page_error(StatusCode::NOT_FOUND, "No such user.");
    };
    let by = Actor::admin(&console.user, Via::Console);
    match core.users.delete_user(&by, &id).await {
        Ok(()) => see_other("/console/users"),
        Err(e) => change_failed(e),
    }
}
