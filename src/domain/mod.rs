//! The domain: tokens, sessions, permission changes, keys, events. Knows nothing of HTTP.

pub mod browser;
pub mod clients;
pub mod codes;
pub mod events;
pub mod grants;
pub mod introspection;
pub mod keys;
pub mod passwords;
pub mod pause;
pub mod permissions;
pub mod redirects;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::config::Config;
use crate::store::{Db, StoreError};

/// Everything a request or a command needs, built once at start.
pub struct Core {
    pub cfg: Config,
    pub db: Db,
    pub keys: keys::KeyRing,
    pub clients: clients::Clients,
    pub passwords: passwords::Passwords,
    pub events: events::EventBus,
    pub throttle: throttle::Throttle,
    pub rotations: sessions::Rotations,
    pub metrics: crate::metrics::Metrics,
    /// Test-only pause points (inert unless a test arms one).
    pub pauses: pause::Pauses,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database")]
    Store(#[from] StoreError),
    #[error("signing keys")]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Params(#[from] passwords::ParamsError),
}

impl Core {
    /// Connects, migrates, loads (or creates) the signing keys.
    pub async fn open(cfg: Config) -> Result<Arc<Self>, StartError> {
        crate::crypto::install_jwt_provider();
        let db = Db::connect(&cfg).await?;
        db.migrate().await?;
        let keys = keys::KeyRing::init(&cfg, &db).await?;
        let (cfg_max, cfg_window) = (cfg.login_max_failures, cfg.login_window);
        let passwords = passwords::Passwords::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_queue,
        )?;
        let rotations = sessions::Rotations::start(db.clone());
        Ok(Arc::new(Self {
            cfg,
            rotations,
            metrics: crate::metrics::Metrics::default(),
            db,
            keys,
            clients: clients::Clients::default(),
            passwords,
            events: events::EventBus::default(),
            throttle: throttle::Throttle::new(cfg_max, cfg_window),
            pauses: pause::Pauses::default(),
        }))
    }
}
