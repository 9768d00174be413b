//! `GET /.well-known/jwks.json` (RFC 7517) and the RFC 8414 metadata.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::config::SigningAlg;
use crate::domain::Core;
use crate::domain::keys::Keys;
use crate::http::state::Settings;

pub(super) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
}

/// Served from the pre-serialised body of the current key set. `max-age` is below
/// the next key's lead time, so a verifier that honours it never meets an unknown kid.
async fn jwks(State(signing): State<Keys>) -> Response {
    let body = signing.keys.current().jwks.clone();
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    let cc = format!("public, max-age={}", signing.cfg.jwks_max_age.as_secs());
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cc).expect("ascii"),
    );
    resp
}

async fn metadata(State(Settings(cfg)): State<Settings>) -> Response {
    let iss = &cfg.issuer;
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let doc = json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "grant_types_supported": crate::domain::clients::GrantType::ALL,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": format!("{iss}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{iss}/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "userinfo_endpoint": format!("{iss}/userinfo"),
        // The code flow (RFC 8414 §2, OpenID Connect Discovery §3, RFC 9207).
        "authorization_endpoint": format!("{iss}/authorize"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "end_session_endpoint": format!("{iss}/end_session"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": id_token_algs(cfg.signing_alg),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash", "preferred_username", "amr", "acr"],
        // A second factor is asked for with acr_values=urn:tessera:acr:mfa.
        "acr_values_supported": crate::domain::factors::amr::ACR_VALUES,
        "prompt_values_supported": ["none", "login", "consent"],
        "scopes_supported": crate::domain::scopes::SUPPORTED,
        // Request objects are not supported (OpenID Connect Core §6); both flags default
        // to true when absent (Discovery §3).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // What a verifier needs to be correct from a cold start: the feed, and how far
        // back a still-valid token may reach (it catches up from `now - ttl`).
        "tessera_events_endpoint": format!("{iss}/events"),
        "tessera_access_token_max_ttl": cfg.access_token_ttl.as_secs(),
    });
    let mut resp = Json(doc).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// The deployment's alg, and RS256 for clients that register for it (OpenID Connect
/// Discovery §3: the list MUST include RS256).
fn id_token_algs(deployment: SigningAlg) -> Vec<&'static str> {
    let mut algs = vec![deployment.as_str()];
    if deployment != SigningAlg::RS256 {
        algs.push(SigningAlg::RS256.as_str());
    }
    algs
}
