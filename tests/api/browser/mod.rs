//! Real Chromium: sign-in through the login page with independent OIDC clients, and the live-roles demo.

pub(crate) mod console;
pub(crate) mod live_roles;
mod mfa;
pub(crate) mod sign_in;
