//! The parts of the application state a handler may take instead of the whole of it:
//! `State<Users>`, `State<Keys>`, `State<SignIn>`, `State<Feed>`, … (axum's `FromRef`). Each is a
//! cheap clone (shared parts, no allocation); sign-in and the feed, on the hot paths
//! (`/token`, `/events` and its streams), are one `Arc` each: one reference count.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Config;
use crate::domain::Core;
use crate::domain::audit::Trail;
use crate::domain::clients::Clients;
use crate::domain::feed::Feed;
use crate::domain::keys::Keys;
use crate::domain::liveness::Live;
use crate::domain::signin::SignIn;
use crate::domain::ssf::Ssf;
use crate::domain::tokens::Tokens;
use crate::domain::users::Users;

impl FromRef<Arc<Core>> for Users {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.users.clone()
    }
}

impl FromRef<Arc<Core>> for Trail {
    fn from_ref(core: &Arc<Core>) -> Self {
        Trail {
            db: core.users.db.clone(),
        }
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

impl FromRef<Arc<Core>> for Feed {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.feed.clone()
    }
}

impl FromRef<Arc<Core>> for Ssf {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.ssf.clone()
    }
}

impl FromRef<Arc<Core>> for Tokens {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.tokens.clone()
    }
}

impl FromRef<Arc<Core>> for Live {
    fn from_ref(core: &Arc<Core>) -> Self {
        core.live.clone()
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
