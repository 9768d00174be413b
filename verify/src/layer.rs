//! A tower layer: verifies the bearer token of every request, optionally requires a
//! role or scope, and hands the claims to the inner service in the request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, header};
use tower::{Layer, Service};

use crate::{Claims, ClaimsExt, Rejection, Verifier, rejection};

/// What a route asks of a token beyond being valid and fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The token must carry this role (403 otherwise).
    Role(String),
    /// The token's scope must include this one (403 otherwise).
    Scope(String),
    /// The user must have signed in with this method (`amr`; 401 otherwise).
    Amr(String),
}

impl Requirement {
    /// Passes, or the 403 rejection naming what is missing.
    pub fn check(&self, claims: &Claims) -> Result<(), Rejection> {
        match self {
            Self::Role(r) => claims.require_role(r),
            Self::Scope(s) => claims.require_scope(s),
            Self::Amr(m) => claims.require_amr(m),
        }
    }
}

/// A tower layer that refuses requests without a valid, fresh token, for services that do not
/// use the axum extractor.
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    requirement: Option<Arc<Requirement>>,
}

impl VerifyLayer {
    /// Requires only a valid, fresh token; add a [`Requirement`] for more.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            requirement: None,
        }
    }

    /// 403 `insufficient_scope` unless the token carries `role`.
    pub fn require_role(mut self, role: impl Into<String>) -> Self {
        self.requirement = Some(Arc::new(Requirement::Role(role.into())));
        self
    }

    /// 403 `insufficient_scope` unless the token was granted `scope`.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.requirement = Some(Arc::new(Requirement::Scope(scope.into())));
        self
    }

    /// 401 `insufficient_user_authentication` unless the user signed in with `method`
    /// (an `amr` value such as `mfa`).
    pub fn require_amr(mut self, method: impl Into<String>) -> Self {
        self.requirement = Some(Arc::new(Requirement::Amr(method.into())));
        self
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
            requirement: self.requirement.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around `S`; the claims go into the request's extensions.
#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
    requirement: Option<Arc<Requirement>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let requirement = self.requirement.clone();
        Box::pin(async move {
            // An outer layer may have verified this request already.
            let claims = match req.extensions().get::<Claims>() {
                Some(c) => Ok(c.clone()),
                None => match rejection::bearer(req.headers().get(header::AUTHORIZATION)) {
                    Ok(token) => verifier.verify(token).await,
                    Err(r) => Err(r),
                },
            };
            let claims = claims.and_then(|c| {
                requirement.as_deref().map_or(Ok(()), |r| r.check(&c))?;
                Ok(c)
            });
            match claims {
                Ok(c) => {
                    req.extensions_mut().insert(c);
                    inner.call(req).await
                }
                Err(r) => Ok(r.response(&verifier.settings().realm)),
            }
        })
    }
}
