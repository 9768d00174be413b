//! The account page's HTML: the user's second factors, recovery codes and sessions.

use maud::{Markup, PreEscaped, html};

use super::super::pages::{hidden_fields, layout};
use crate::domain::factors::{Enrollment, Factor};
use crate::domain::queries::Session;

/// Unix seconds as a short UTC time.
fn when(unix: i64) -> String {
    tessera_proto::rfc3339(unix)
        .map(|t| t.replace('T', " ").trim_end_matches('Z').to_string() + " UTC")
        .unwrap_or_default()
}

fn csrf_only(csrf: &str) -> Markup {
    hidden_fields(&[], csrf)
}

/// What the account page shows.
pub(super) struct Overview<'a> {
    pub(super) username: &'a str,
    pub(super) factors: &'a [Factor],
    /// The user's passkeys; `None` where passkeys cannot be used (an IP address issuer).
    pub(super) passkeys: Option<&'a [Factor]>,
    pub(super) recovery_codes_left: i64,
    pub(super) sessions: &'a [Session],
}

pub(super) fn account(o: &Overview<'_>, csrf: &str) -> Markup {
    layout(
        "Your account",
        html! {
            h1 { "Your account" }
            p.lead { "Signed in as " strong { (o.username) } }
            section {
                h2 { "Two-step sign-in" }
                @if o.factors.is_empty() && o.passkeys.is_none_or(<[Factor]>::is_empty) {
                    p { "No second factor yet: apps that require one cannot be used." }
                }
                ul.items {
                    @for f in o.factors {
                        li {
                            div {
                                strong { (f.name) }
                                span.meta { "Authenticator app · added " (when(f.created_at)) " · last used "
                                    @match f.last_used_at { Some(t) => { (when(t)) }, None => { "never" } } }
                            }
                            form method="post" action="/account/factors/remove" {
                                (csrf_only(csrf))
                                input type="hidden" name="factor" value=(f.id);
                                button.secondary.small type="submit" aria-label={ "Remove " (f.name) } { "Remove" }
                            }
                        }
                    }
                }
                form method="post" action="/account/totp" {
                    (csrf_only(csrf))
                    button type="submit" { "Add an authenticator app" }
                }
            }
            @if let Some(passkeys) = o.passkeys { (passkeys_section(passkeys, csrf)) }
            section {
                h2 { "Recovery codes" }
                p { (o.recovery_codes_left) " unused recovery codes. Each signs you in once when your authenticator is not at hand." }
                form method="post" action="/account/recovery-codes" {
                    (csrf_only(csrf))
                    button.secondary type="submit" { "Create new recovery codes" }
                }
            }
            section {
                h2 { "Sessions" }
                @if o.sessions.is_empty() { p { "No app is signed in." } }
                ul.items {
                    @for s in o.sessions {
                        li {
                            div {
                                strong { (s.client_id) }
                                span.meta { "signed in " (when(s.created_at)) " · last used " (when(s.last_used_at)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn last_used(f: &Factor) -> String {
    f.last_used_at.map_or_else(|| "never".into(), when)
}

/// The user's passkeys, each removable, and the form that adds one (the page script
/// asks the browser for a new passkey, then posts its answer with the name).
fn passkeys_section(passkeys: &[Factor], csrf: &str) -> Markup {
    html! {
        section {
            h2 { "Passkeys" }
            @if passkeys.is_empty() {
                p { "No passkey yet. A passkey signs you in with your device's screen lock or security key, without a password." }
            }
            ul.items {
                @for f in passkeys {
                    li {
                        div {
                            strong { (f.name) }
                            span.meta { "Passkey · added " (when(f.created_at)) " · last used " (last_used(f)) }
                        }
                        form method="post" action="/account/factors/remove" {
                            (csrf_only(csrf))
                            input type="hidden" name="factor" value=(f.id);
                            button.secondary.small type="submit" aria-label={ "Remove " (f.name) } { "Remove" }
                        }
                    }
                }
            }
            form method="post" action="/account/passkeys" data-passkey="register" data-options="/account/passkeys/options" {
                (csrf_only(csrf))
                input type="hidden" name="credential" value="";
                label for="passkey-name" { "Name" }
                input #passkey-name type="text" name="name" value="Passkey" maxlength="64";
                p.error role="alert" hidden data-passkey-error {}
                button type="button" hidden data-passkey-start { "Add a passkey" }
            }
            script src="/assets/passkeys.js" defer {}
        }
    }
}

pub(super) fn enroll(e: &Enrollment, error: Option<&str>, csrf: &str) -> Markup {
    layout(
        "Add an authenticator app",
        html! {
            h1 { "Add an authenticator app" }
            p.lead { "Scan the QR code with your authenticator app, or add the link or key below by hand." }
            div.enroll {
                (PreEscaped(&e.qr_svg))
                p { "Link: " code.uri { (e.uri) } }
                p { "Key: " code { (e.secret) } }
            }
            @if let Some(err) = error { p.error role="alert" { (err) } }
            form method="post" action="/account/totp/confirm" {
                (csrf_only(csrf))
                input type="hidden" name="factor" value=(e.factor_id);
                label for="name" { "Name" }
                input #name type="text" name="name" value="Authenticator app" maxlength="64";
                label for="code" { "Code" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                    maxlength="6" required autofocus;
                button type="submit" { "Confirm" }
            }
        },
    )
}

pub(super) fn recovery_codes(codes: &[String]) -> Markup {
    layout(
        "Recovery codes",
        html! {
            h1 { "Your recovery codes" }
            p.lead { "Keep them somewhere safe: each signs you in once, and they are shown only now. Any earlier codes no longer work." }
            ul.scopes.codes {
                @for c in codes { li { code { (c) } } }
            }
            p { a href="/account" { "Back to your account" } }
        },
    )
}
