//! Integration tests: the real server on port 0, a fresh database each.
//! One binary for the whole suite, so it links once.
#![expect(missing_docs, reason = "a test binary: its helpers are no API")]

pub mod support;
/// The support module's former name, for branches written against it.
pub use support as helpers;
mod sql;

mod admin;
mod browser;
mod console;
mod feed;
mod hardening;
mod js;
mod keys;
mod mfa;
mod oauth;
mod ops;
mod ssf;
