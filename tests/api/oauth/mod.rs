//! The OAuth and OpenID Connect endpoints: token grants, refresh rotation, introspection, the code flow and its pages, scopes.

pub(crate) mod code_flow;
pub(crate) mod introspect;
pub(crate) mod introspect_revoke;
pub(crate) mod liveness;
pub(crate) mod login_race;
pub(crate) mod oidc_edges;
pub(crate) mod refresh;
pub(crate) mod refresh_grace;
pub(crate) mod refresh_legacy;
pub(crate) mod refresh_lifetime;
pub(crate) mod scopes;
pub(crate) mod session_sweeps;
pub(crate) mod token;
pub(crate) mod token_bad_input;
pub(crate) mod token_grants;
pub(crate) mod usernames;
