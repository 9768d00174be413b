//! The axum extractor: `Authenticated` in a handler's arguments verifies the request
//! (or takes what a [`crate::VerifyLayer`] verified), and refuses per RFC 6750.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::{Claims, ClaimsExt, Rejection, Verifier, rejection};

/// A verified, fresh token's claims.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims, already checked for signature, expiry and freshness.
    pub claims: Claims,
    realm: Arc<str>,
}

impl std::ops::Deref for Authenticated {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.claims
    }
}

impl Authenticated {
    /// 403 `insufficient_scope` unless the token carries `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Refusal> {
        self.claims.require_role(role).map_err(|r| self.refuse(r))
    }

    /// 403 `insufficient_scope` unless the token was granted `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), Refusal> {
        self.claims.require_scope(scope).map_err(|r| self.refuse(r))
    }

    /// 401 `insufficient_user_authentication` unless the user signed in with `method`
    /// (an `amr` value such as `mfa`, RFC 8176).
    pub fn require_amr(&self, method: &str) -> Result<(), Refusal> {
        self.claims.require_amr(method).map_err(|r| self.refuse(r))
    }

    fn refuse(&self, rejection: Rejection) -> Refusal {
        Refusal {
            rejection,
            realm: self.realm.clone(),
        }
    }
}

/// A [`Rejection`] as an RFC 6750 response.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Why the request was refused; its status and `WWW-Authenticate` follow from it.
    pub rejection: Rejection,
    realm: Arc<str>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.rejection.response(&self.realm)
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let verifier = Verifier::from_ref(state);
        let realm: Arc<str> = verifier.settings().realm.as_str().into();
        let claims = match parts.extensions.get::<Claims>() {
            Some(c) => Ok(c.clone()),
            None => match rejection::bearer(parts.headers.get(header::AUTHORIZATION)) {
                Ok(token) => verifier.verify(token).await,
                Err(r) => Err(r),
            },
        };
        match claims {
            Ok(claims) => Ok(Self { claims, realm }),
            Err(rejection) => Err(Refusal { rejection, realm }),
        }
    }
}
