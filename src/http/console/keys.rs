//! The console's signing keys: the list, a rotation, and the emergency revocation of the
//! active key behind a confirmation page (`Keys::rotate_keys`, as `POST /admin/keys/rotate`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::{Console, field, internal, layout, page_error, respond, see_other};
use crate::domain::Core;
use crate::domain::audit::{Actor, Via};
use crate::domain::clock::rfc3339;
use crate::domain::keys::KeyError;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/console/keys", get(list))
        .route("/console/keys/rotate", axum::routing::post(rotate))
        .route("/console/keys/revoke", get(confirm_revoke).post(revoke))
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn list(
    State(core): State<Arc<Core>>,
    console: Console,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(done) = done.unwrap_or_default();
    let notice = match done.done.as_deref() {
        Some("rotated") => Some("Rotated: the next key signs now; the previous one is retired."),
        Some("revoked") => {
            Some("Revoked: the previous key no longer verifies; tokens it signed are refused.")
        }
        _ => None,
    };
    let keys = match core.signing.signing_keys().await {
        Ok(k) => k,
        Err(e) => return internal(&e),
    };
    let content = html! {
        h1 { "Signing keys" }
        (layout::notice(notice))
        table {
            thead { tr { th { "kid" } th { "alg" } th { "Purpose" } th { "State" } th { "Created" } th { "Signing since" } th { "Retired" } th { "Revoked" } } }
            tbody {
                @for k in &keys {
                    tr {
                        td.mono { (k.kid) }
                        td { (k.alg) }
                        td { (k.purpose) }
                        td { span.badge.off[k.state == "revoked"] { (k.state) } }
                        td.mono { (rfc3339(Some(k.created_at))) }
                        td.mono { (rfc3339(k.activated_at)) }
                        td.mono { (rfc3339(k.retired_at)) }
                        td.mono { (rfc3339(k.revoked_at)) }
                    }
                }
            }
        }
        form.bar method="post" action="/console/keys/rotate" {
            (layout::csrf(&console.csrf))
            button type="submit" { "Rotate keys" }
            a href="/console/keys/revoke" { "Emergency: revoke the active key…" }
        }
    };
    let markup = layout::page(&console, "/console/keys", "Signing keys", content, None);
    respond(StatusCode::OK, markup, HeaderMap::new())
}

/// The confirmation step: revoking the active key signs every user out of every app
/// whose tokens it signed.
async fn confirm_revoke(console: Console) -> Response {
    let content = html! {
        h1 { "Revoke the active signing key?" }
        p.error role="alert" {
            "Use this when the key may be compromised. The next key starts signing at once and the active key is "
            strong { "revoked" } ": every access and ID token it signed is refused from now on, by tessera and by "
            "every verifier that follows the feed."
        }
        form.bar method="post" action="/console/keys/revoke" {
            (layout::csrf(&console.csrf))
            input type="hidden" name="confirm" value="revoke";
            button.danger type="submit" { "Revoke the active key now" }
            a href="/console/keys" { "Cancel" }
        }
    };
    let markup = layout::page(
        &console,
        "/console/keys",
        "Revoke the active key",
        content,
        None,
    );
    respond(StatusCode::OK, markup, HeaderMap::new())
}

async fn rotate(State(core): State<Arc<Core>>, req: Request) -> Response {
    let (console, _) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    rotated(&core, &console, false).await
}

async fn revoke(State(core): State<Arc<Core>>, req: Request) -> Response {
    let (console, params) = match Console::form(&core, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if field(&params, "confirm") != Some("revoke") {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Revoking the active key needs its confirmation.",
        );
    }
    rotated(&core, &console, true).await
}

async fn rotated(core: &Core, console: &Console, revoke_current: bool) -> Response {
    let by = Actor::admin(&console.user, Via::Console);
    match core.signing.rotate_keys(&by, None, revoke_current).await {
        Ok(_) if revoke_current => see_other("/console/keys?done=revoked"),
        Ok(_) => see_other("/console/keys?done=rotated"),
        Err(e @ (KeyError::TooEarly { .. } | KeyError::KekReplaced)) => {
            page_error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(e) => internal(&e),
    }
}
