//! A client as the admin API and the CLI's `--json` show it: one shape for both.

use serde::Serialize;

use super::{Capability, Client, GrantType};
use crate::domain::clock::rfc3339;

/// A registered client: everything but its secret, which (`client_secret`) is there
/// once, at creation, for a confidential client. `previous_secret_expires_at`: when the
/// secret a rotation replaced stops working (`null`: none is accepted).
#[derive(Serialize)]
pub struct ClientView<'a> {
    audiences: &'a [String],
    capabilities: &'a [Capability],
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    created_at: String,
    grant_types: &'a [GrantType],
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<&'static str>,
    origins: &'a [String],
    post_logout_redirect_uris: &'a [String],
    previous_secret_expires_at: Option<String>,
    public: bool,
    redirect_uris: &'a [String],
    /// Seconds; absent: the server's setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_reuse_grace: Option<u64>,
    roles: &'a [String],
    scopes: &'a [String],
    third_party: bool,
}

impl<'a> ClientView<'a> {
    /// The view of `client`, with its `secret` only when it was just generated.
    pub fn new(client: &'a Client, secret: Option<&'a str>) -> Self {
        Self {
            audiences: &client.audiences,
            capabilities: &client.capabilities,
            client_id: &client.id,
            client_secret: secret,
            created_at: rfc3339(Some(client.created_at)),
            grant_types: &client.grant_types,
            id_token_signed_response_alg: client.id_token_alg.map(|alg| alg.as_str()),
            origins: &client.origins,
            post_logout_redirect_uris: &client.post_logout_redirect_uris,
            previous_secret_expires_at: client.previous_secret_expires_at.map(|t| rfc3339(Some(t))),
            public: client.is_public(),
            redirect_uris: &client.redirect_uris,
            refresh_reuse_grace: client.refresh_reuse_grace.map(|grace| grace.as_secs()),
            roles: &client.roles,
            scopes: &client.scopes,
            third_party: client.third_party,
        }
    }
}
