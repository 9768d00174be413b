//! The parts of the application state a handler may take instead of the whole of it:
//! `State<Users>`, `State<Keys>`, … (axum's `FromRef`). Each is a cheap clone (shared
//! parts, no allocation); the hot paths (`/token`, `/events`) keep `State<Arc<Core>>`,
//! which they use almost all of.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::domain::Core;
use crate::domain::keys::Keys;
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
