//! The feed's reach: every instance's open `/events` streams (which client, for whom, since
//! when, the last event delivered), against the newest event in the log, so that after a
//! change the operator watches it reach every verifier. The page reloads itself every two
//! seconds (`<meta http-equiv="refresh">`: no script).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::{Console, internal, layout, respond};
use crate::domain::{Core, reach};
use crate::store;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new().route("/console/reach", get(page))
}

async fn page(State(core): State<Arc<Core>>, console: Console) -> Response {
    let now = core.clock.now();
    let (instances, newest) = match tokio::try_join!(
        reach::instances(&core.db, now),
        store::events::last_id(&core.db.read)
    ) {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let per_user = match reach::newest_for(&core.db, &instances).await {
        Ok(p) => p,
        Err(e) => return internal(&e),
    };
    // The newest event a subscriber can be sent: the log's, or its user's.
    let target = |s: &reach::Subscriber| {
        s.user
            .as_ref()
            .and_then(|u| per_user.get(u).copied())
            .unwrap_or(newest)
    };
    let total: usize = instances.iter().map(|i| i.subscribers.len()).sum();
    let reached: usize = instances
        .iter()
        .flat_map(|i| &i.subscribers)
        .filter(|s| s.last_event_id >= target(s))
        .count();
    let content = html! {
        h1 { "Feed reach" }
        p.lead {
            "Newest event in the log: " strong.mono #newest { (newest) } ". "
            (reached) " of " (total) " subscribers on " (instances.len())
            @if instances.len() == 1 { " instance" } @else { " instances" }
            " are up to date (a subscriber that follows one user: with that user's newest event)."
        }
        @if instances.is_empty() {
            p { "No instance has published its subscribers yet." }
        }
        @for i in &instances {
            h2 { "Instance " span.mono { (i.id) } }
            p.lead { "Published " (layout::at(i.refreshed_at)) }
            @if i.subscribers.is_empty() {
                p { "No open stream." }
            } @else {
                table {
                    thead { tr { th { "Client" } th { "Follows" } th { "Since" } th { "Last event delivered" } th { "Up to date?" } } }
                    tbody {
                        @for s in &i.subscribers {
                            tr.subscriber {
                                td { (s.client_id) }
                                td {
                                    @if let Some(u) = &s.user {
                                        "user " a.mono href={ "/console/users/" (u) } { (u) }
                                    } @else { "every event" }
                                }
                                td.mono { (layout::at(s.since)) }
                                td.mono { (s.last_event_id) }
                                td {
                                    @if s.last_event_id >= target(s) { span.badge.ok { "reached" } }
                                    @else { span.badge { "behind" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = layout::page(&console, "/console/reach", "Feed reach", content, Some(2));
    respond(StatusCode::OK, markup, HeaderMap::new())
}
