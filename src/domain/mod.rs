//! The domain: tokens, sessions, permission changes, keys, events. Knows nothing of HTTP.

pub mod audit;
pub mod browser;
pub mod clients;
pub mod clock;
pub mod codes;
pub mod console;
pub mod events;
pub mod factors;
pub mod feed;
pub mod grants;
pub mod introspection;
pub mod keys;
pub mod lane;
pub mod lifecycle;
pub mod listings;
pub mod liveness;
pub mod passwords;
pub mod pause;
pub mod permissions;
pub mod queries;
pub mod reach;
pub mod redirects;
pub mod rotation;
pub mod scopes;
pub mod sessions;
pub mod signin;
pub mod ssf;
pub mod tail;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::config::Config;
use crate::store::{Db, StoreError};

/// The server's state: the services together. Built by `serve` (and the tests); a command
/// builds only the service it needs.
pub struct Core {
    /// The validated settings, shared with the services.
    pub cfg: Arc<Config>,
    /// The database: one writer, a pool of readers.
    pub db: Db,
    /// The signing keys in memory, reloaded from the database every second.
    pub keys: Arc<keys::KeyRing>,
    /// Registered clients, cached.
    pub clients: clients::Clients,
    /// Publishes events (role changes, revocations, key changes) to the feed.
    pub events: Arc<events::EventBus>,
    /// The one clock: the system's, unless a test pins it.
    pub clock: Arc<clock::Clock>,
    /// The process's counters, served on the operator port.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Users and their permissions: what `tessera user …` builds alone.
    pub users: users::Users,
    /// The signing keys' life (rotation, reload, KEK rotation): what `tessera keys …`
    /// builds alone.
    pub signing: keys::Keys,
    /// The event feed: the in-memory tail, the slots, the log's reads (one `Arc` inside).
    pub feed: feed::Feed,
    /// Mints access tokens (keys, clock, settings; no database).
    pub tokens: tokens::Tokens,
    /// Whether a verified access token is still live (database, client cache).
    pub live: liveness::Live,
    /// Sign-in: the grants, sessions, codes, introspection, the throttles (one `Arc`
    /// inside: a handler taking it costs one reference count).
    pub signin: signin::SignIn,
    /// The Shared Signals transmitter: streams, SETs, push and poll.
    pub ssf: ssf::Ssf,
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
    /// Connects, migrates, loads (or creates) the signing keys, and builds every service
    /// on the same parts.
    pub async fn open(cfg: Config) -> Result<Arc<Self>, StartError> {
        let signing = keys::Keys::open(cfg).await?;
        let keys::Keys {
            cfg,
            db,
            clock,
            events,
            keys,
        } = signing.clone();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let users = users::Users::new(
            cfg.clone(),
            db.clone(),
            clock.clone(),
            events.clone(),
            metrics.clone(),
        )?;
        let group_commit = rotation::GroupCommit::start(db.clone());
        let tail = tail::Tail::new(
            cfg.event_tail,
            crate::store::events::last_id(&db.read).await?,
        );
        let throttle = throttle::Throttle::new(&cfg, keys.derive_key("tessera device cookie v1"));
        let clients = clients::Clients::new(
            cfg.clone(),
            db.clone(),
            clock.clone(),
            Some(signing.clone()),
        );
        let tokens = tokens::Tokens {
            cfg: cfg.clone(),
            clock: clock.clone(),
            keys: keys.clone(),
        };
        let browser = browser::Browser {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
        };
        let live = liveness::Live {
            db: db.clone(),
            clients: clients.clone(),
        };
        let feed = feed::Feed::new(feed::Parts {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
            keys: keys.clone(),
            signing: signing.clone(),
            tokens: tokens.clone(),
            live: live.clone(),
            events: events.clone(),
            tail,
            reach: reach::Reach::default(),
            lane: lane::Lane::default(),
        });
        let signin = signin::SignIn::new(signin::Parts {
            cfg: cfg.clone(),
            db: db.clone(),
            clock: clock.clone(),
            keys: keys.clone(),
            signing: signing.clone(),
            clients: clients.clone(),
            users: users.clone(),
            passwords: users.passwords.clone(),
            throttle,
            tokens: tokens.clone(),
            browser,
            live: live.clone(),
            events: events.clone(),
            metrics: metrics.clone(),
            pauses: pause::Pauses::default(),
            group_commit,
            factors: factors::Factors {
                cfg: cfg.clone(),
                keys: keys.clone(),
                users: users.clone(),
            },
        });
        let ssf = ssf::Ssf::new(
            cfg.clone(),
            db.clone(),
            clock.clone(),
            keys.clone(),
            events.clone(),
        );
        Ok(Arc::new(Self {
            ssf,
            cfg,
            clock,
            metrics,
            db,
            keys,
            clients,
            events,
            users,
            signing,
            feed,
            tokens,
            live,
            signin,
        }))
    }
}

/// The database, connected and migrated: what every command starts with.
pub(crate) async fn database(cfg: &Config) -> Result<Db, StoreError> {
    let db = Db::connect(cfg).await?;
    db.migrate().await?;
    Ok(db)
}
