//! The parts of the application state a handler may take instead of the whole of it:
//! `State<Users>`, `State<Keys>`, `State<SignIn>`, … (axum's `FromRef`). Each is a
//! cheap clone (shared parts, no allocation); sign-in, on the hot path (`/token`), is
//! one `Arc`: taking it costs one reference count.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Config;
use crate::domain::Core;
use crate::domain::clients::Clients;
use crate::domain::keys::Keys;
use crate::domain::signin::SignIn;
use crate::domain::users::Users;

impl FromRef<Arc<Core>> for Users {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.users.clone()
    }
}

impl FromRef<Arc<Core>> for Keys {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.signing.clone()
    }
}

impl FromRef<Arc<Core>> for Clients {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.clients.clone()
    }
}

impl FromRef<Arc<Core>> for SignIn {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.signin.clone()
    }
}

/// The settings alone, for an extractor that needs nothing else (`JsonBody`'s request
/// timeout). A newtype: `FromRef` cannot be implemented for `Arc<Config>` here.
#[derive(Clone)]
pub(super) struct Settings(pub(super) Arc<Config>);

impl FromRef<Arc<Core>> for Settings {
    fn from_ref(core: &Arc<Core>) -> Self {
        Settings(core.cfg.clone())
    }
}
