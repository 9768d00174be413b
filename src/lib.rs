//! tessera: an identity server whose permission changes take effect fast.
//!
//! `http` speaks the protocols, `domain` holds the rules, `store` the SQL.

pub mod app;
pub mod background;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod store;

/// An error and its causes, one line, for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
