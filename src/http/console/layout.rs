//! The console's page frame (navigation, who is signed in, sign-out) and the pieces its
//! pages share. The house style is the login page's (src/http/pages.rs, tessera.css).

use maud::{DOCTYPE, Markup, html};

use super::Console;

/// The console's sections, in the navigation's order: (path, name).
const SECTIONS: [(&str, &str); 5] = [
    ("/console/users", "Users"),
    ("/console/clients", "Clients"),
    ("/console/keys", "Signing keys"),
    ("/console/reach", "Feed reach"),
    ("/console/audit", "Audit trail"),
];

fn frame(title: &str, nav: Markup, content: Markup, refresh: Option<u32>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · tessera console" }
                link rel="stylesheet" href="/assets/tessera.css";
            }
            body.console {
                main {
                    div.brand { span.mark {} "tessera console" }
                    (nav)
                    (content)
                }
            }
        }
    }
}

/// A page of the console for a signed-in administrator; `current` is its section's path.
/// `refresh`: seconds after which the browser reloads it (a page following live changes).
pub(super) fn page(
    console: &Console,
    current: &str,
    title: &str,
    content: Markup,
    refresh: Option<u32>,
) -> Markup {
    let nav = html! {
        nav.console aria-label="Console sections" {
            @for (path, name) in SECTIONS {
                @if path == current {
                    a href=(path) aria-current="page" { (name) }
                } @else {
                    a href=(path) { (name) }
                }
            }
            span.who { "Signed in as " strong { (console.user.username) } }
            form.inline method="post" action="/console/logout" {
                (csrf(&console.csrf))
                button.secondary type="submit" { "Sign out" }
            }
        }
    };
    frame(title, nav, content, refresh)
}

/// The hidden CSRF field every console form carries.
pub(super) fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A page with a title and a sentence, no navigation (errors, signed out).
pub(super) fn message(title: &str, text: &str) -> Markup {
    frame(
        title,
        html! {},
        html! {
            h1 { (title) }
            p.lead { (text) }
            p { a href="/console" { "Back to the console" } }
        },
        None,
    )
}

/// Signed in, but not as an administrator (any more).
pub(super) fn not_admin(username: &str, csrf_token: &str) -> Markup {
    frame(
        "Refused",
        html! {},
        html! {
            h1 { "Refused" }
            p.lead { "You are signed in as " strong { (username) } ", who does not hold the admin role." }
            form.inline method="post" action="/console/logout" {
                (csrf(csrf_token))
                button type="submit" { "Sign out" }
            }
        },
        None,
    )
}

/// A Unix time as RFC 3339 (UTC).
pub(super) fn at(unix: i64) -> String {
    crate::domain::clock::rfc3339(Some(unix))
}

/// An optional notice after a change (`?done=…`), from a fixed list: never the query's text.
pub(super) fn notice(text: Option<&'static str>) -> Markup {
    html! {
        @if let Some(t) = text { p.notice role="status" { (t) } }
    }
}
