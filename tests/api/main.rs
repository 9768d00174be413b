//! Integration tests: the real server on port 0, a fresh database each.
//! One binary for the whole suite, so it links once.
#![expect(missing_docs, reason = "a test binary: its helpers are no API")]

pub mod support;
/// The support module's former name, for branches written against it.
pub use support as helpers;
mod sql;

mod admin;
mod admin_audience;
mod admin_input;
mod admin_keys;
mod browser;
mod cli;
mod code_flow;
mod events;
mod events_access;
mod events_fanout;
mod events_poll;
mod events_wire;
mod hardening_bearer;
mod hardening_crash;
mod hardening_files;
mod hardening_hostile;
mod hardening_jwt;
mod hardening_lockout;
mod hardening_process;
mod hardening_props;
mod hardening_raw;
mod hardening_slowloris;
mod hardening_streams;
mod hardening_throttle;
mod hardening_throttle_race;
mod instances;
mod introspect;
mod introspect_revoke;
mod jwks;
mod jwks_pyjwt;
mod keys_instances;
mod keys_lifecycle;
mod keys_rotation;
mod keys_startup;
mod live_roles;
mod liveness;
mod login_race;
mod observability;
mod oidc_edges;
mod openapi;
mod permissions;
mod permissions_admin;
mod postgres_faults;
mod refresh;
mod refresh_grace;
mod refresh_lifetime;
mod scopes;
mod token;
mod token_bad_input;
mod token_grants;
mod usernames;
mod verify_feed;
mod verify_hostile;
