//! The domain: tokens, sessions, permission changes, keys, events. Knows nothing of HTTP.

pub mod browser;
pub mod clients;
pub mod clock;
pub mod codes;
pub mod events;
pub mod feed;
pub mod grants;
pub mod introspection;
pub mod keys;
pub mod liveness;
pub mod passwords;
pub mod pause;
pub mod permissions;
pub mod queries;
pub mod redirects;
pub mod rotation;
pub mod scopes;
pub mod sessions;
pub mod tail;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::config::Config;
use crate::store::{Db, StoreError};

/// Everything a request or a command needs, built once at start.
pub struct Core {
    /// The validated settings, shared with the services.
    pub cfg: Arc<Config>,
    /// The database: one writer, a pool of readers.
    pub db: Db,
    /// The signing keys in memory, reloaded from the database every second.
    pub keys: Arc<keys::KeyRing>,
    /// Registered clients, cached.
    pub clients: clients::Clients,
    /// The argon2 workers; every password goes through them.
    pub passwords: passwords::Passwords,
    /// Publishes events (role changes, revocations, key changes) to the feed.
    pub events: Arc<events::EventBus>,
    /// The newest events in memory, shared by every subscriber.
    pub tail: tail::Tail,
    /// Failure limits on `/token`, `/revoke` and `/introspect`.
    pub throttle: throttle::Throttle,
    /// First uses of refresh tokens, consumed in batches.
    pub group_commit: rotation::GroupCommit,
    /// The one clock: the system's, unless a test pins it.
    pub clock: Arc<clock::Clock>,
    /// The process's counters, served on the operator port.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Test-only pause points (inert unless a test arms one).
    pub pauses: pause::Pauses,
    /// Users and their permissions: what `tessera user …` builds alone.
    pub users: users::Users,
    /// The signing keys' life (rotation, reload, KEK rotation): what `tessera keys …`
    /// builds alone.
    pub signing: keys::Keys,
    /// The feed's reads of the log.
    pub feed: feed::Feed,
}

/// Why the server or a command could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be reached or migrated.
    #[error("database")]
    Store(#[from] StoreError),
    /// The signing keys or the KEK could not be loaded.
    #[error("signing keys")]
    Keys(#[from] keys::KeyError),
    /// The configured argon2 cost is invalid.
    #[error(transparent)]
    Params(#[from] passwords::ParamsError),
}

impl Core {
    /// Connects, migrates, loads (or creates) the signing keys.
    pub async fn open(cfg: Config) -> Result<Arc<Self>, StartError> {
        crate::crypto::install_jwt_provider();
        let db = Db::connect(&cfg).await?;
        db.migrate().await?;
        let cfg = Arc::new(cfg);
        let clock = Arc::new(clock::Clock::default());
        let keys = Arc::new(keys::KeyRing::init(&cfg, &db, clock.now()).await?);
        let passwords = passwords::Passwords::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_queue,
        )?;
        let group_commit = rotation::GroupCommit::start(db.clone());
        let tail = tail::Tail::new(
            cfg.event_tail,
            crate::store::events::last_id(&db.read).await?,
        );
        let throttle = throttle::Throttle::new(&cfg, keys.derive_key("tessera device cookie v1"));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let events = Arc::new(events::EventBus::default());
        let signing = keys::Keys {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
            events: events.clone(),
            keys: keys.clone(),
        };
        let feed = feed::Feed {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
        };
        let users = users::Users {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
            passwords: passwords.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
        };
        let clients = clients::Clients::new(
            cfg.clone(),
            db.clone(),
            clock.clone(),
            Some(signing.clone()),
        );
        Ok(Arc::new(Self {
            cfg,
            group_commit,
            clock,
            metrics,
            db,
            keys,
            clients,
            passwords,
            events,
            tail,
            throttle,
            pauses: pause::Pauses::default(),
            users,
            signing,
            feed,
        }))
    }
}
