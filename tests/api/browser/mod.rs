//! Real Chromium: sign-in through the login page with independent OIDC clients, and the live-roles demo.

pub(crate) mod console;
pub(crate) mod live_roles;
mod mfa;
mod passkeys;
pub(crate) mod sign_in;

/// A loopback port free now, for a page server a browser test starts (a fixed port would
/// collide with another test running at the same time).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
