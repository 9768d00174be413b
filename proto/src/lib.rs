//! The wire types every party of tessera speaks, defined once: the server emits them,
//! `tessera-verify` (and what comes next) reads them. Only serde and `time`: a resource
//! server that links this links nothing of the server.

mod claims;
mod error;
mod events;
mod words;

pub use claims::{AccessClaims, Audience};
pub use error::ErrorBody;
pub use events::{EventKind, SecurityEvent, parse_rfc3339, rfc3339};
pub use words::{Capability, GrantType, UnknownWord};
