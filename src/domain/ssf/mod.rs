//! Shared Signals (OpenID SSF 1.0): tessera as a transmitter of CAEP and RISC events.
//!
//! A stream belongs to one client (capability `ssf`). It reads the durable security
//! event log from its own cursor, kept in the database, and turns each event it may
//! deliver into a SET waiting in `ssf_pending` (minting and moving the cursor are one
//! transaction, and a SET's `jti` is derived from the stream and the event). A SET
//! leaves the table only when the receiver has it: a 202 to a push, an `ack` of a
//! poll. So delivery is at least once, in the log's order, across restarts.
//!
//! - [`sets`]: events → SET claims;
//! - [`push`]: push delivery (RFC 8935): the lease, retries, the address guard.

//! - [`config`]: a stream's configuration: what a receiver may ask for, as checked;
//! - [`streams`]: stream management (SSF §8.1);
//! - [`poll`]: poll delivery (RFC 8936).

pub mod config;
pub mod guard;
pub mod poll;
pub mod push;
pub mod sets;
pub mod streams;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::clock::Clock;
use super::events::EventBus;
use super::keys::KeyRing;
use crate::config::Config;
use crate::store::ssf::{self as rows, StreamRow};
use crate::store::{self, Db, StoreError};
pub use config::{Delivery, DeliveryRequest, Stream, StreamConfig, StreamRequest};
pub use streams::{Figures, Status};

/// RFC 8935 push delivery, as SSF names it in `delivery.method`.
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL: &str = "urn:ietf:rfc:8936";
/// The shortest interval between two verification requests of a stream, seconds.
pub const MIN_VERIFICATION_INTERVAL: i64 = 1;
/// Longest text member of a configuration (an event type, a URL, a description).
const MAX_TEXT: usize = 2048;
/// Events read from the log per step.
const BATCH: i64 = 200;

/// Why a stream operation was refused. Each is the status SSF §8.1 names.
#[derive(Debug, thiserror::Error)]
pub enum SsfError {
    /// 404: no such stream of this client (another client's stream is not found either).
    #[error("stream not found")]
    NotFound,
    /// 400: the request is malformed or asks for what cannot be.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// 409: the client has as many streams as it may.
    #[error("this client has as many streams as it may have")]
    TooManyStreams,
    /// 400: the stream has as many subjects as it may.
    #[error("this stream has as many subjects as it may have")]
    TooManySubjects,
    /// 429: a verification was requested less than the minimum interval ago.
    #[error("a verification was requested less than min_verification_interval ago")]
    TooSoon,
    /// The database failed.
    #[error("database")]
    Store(#[from] StoreError),
}

fn invalid(why: impl Into<Cow<'static, str>>) -> SsfError {
    SsfError::Invalid(why.into())
}

/// The Shared Signals transmitter; cheap to clone (shared parts).
#[derive(Clone)]
pub struct Ssf {
    /// The settings (issuer, bounds, the push guard).
    pub cfg: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The server's clock.
    pub clock: Arc<Clock>,
    /// The signing keys: SETs are signed with the access tokens' keys.
    pub keys: Arc<KeyRing>,
    /// Woken when the log grows (and when a SET is queued outside it).
    pub events: Arc<EventBus>,
    /// This instance's name on the leases it holds.
    pub instance: Arc<str>,
    /// Held (shared) while a lease is taken, and (exclusively) while they are released at
    /// shutdown: a take that started before the shutdown cannot commit after the release.
    lease_gate: Arc<tokio::sync::RwLock<()>>,
    /// The push client (no redirects, the address guard).
    pub http: reqwest::Client,
    seal_key: Arc<[u8; 32]>,
}

impl Ssf {
    /// The transmitter of this server.
    pub fn new(
        cfg: Arc<Config>,
        db: Db,
        clock: Arc<Clock>,
        keys: Arc<KeyRing>,
        events: Arc<EventBus>,
    ) -> Self {
        let http = guard::client(cfg.ssf_allow_insecure_push);
        let seal_key = Arc::new(keys.derive_key(config::SEAL_PURPOSE));
        Self {
            cfg,
            db,
            clock,
            keys,
            events,
            instance: crate::crypto::b64(&crate::crypto::random::<9>()).into(),
            lease_gate: Arc::default(),
            http,
            seal_key,
        }
    }

    /// The stream `id` if `client` owns it.
    async fn owned(&self, client: &str, id: &str) -> Result<StreamRow, SsfError> {
        // PostgreSQL text cannot hold NUL: no stream has such an id.
        if id.contains('\0') {
            return Err(SsfError::NotFound);
        }
        rows::by_id(&self.db.read, id)
            .await?
            .filter(|s| crate::crypto::ct_eq(s.client_id.as_bytes(), client.as_bytes()))
            .ok_or(SsfError::NotFound)
    }

    fn config_of(row: &StreamRow) -> Result<StreamConfig, SsfError> {
        serde_json::from_str(&row.config)
            .map_err(|_| SsfError::Store(StoreError::Corrupt(format!("stream {} config", row.id))))
    }

    /// Reads the log after the stream's cursor and queues the SETs it maps to, up to
    /// `ssf_max_held` waiting; returns whether more may wait in the log (a full batch,
    /// or the bound reached). See [`Ssf::mint_many`].
    pub async fn mint(&self, stream: &StreamRow) -> Result<bool, SsfError> {
        self.mint_many(std::slice::from_ref(stream)).await
    }

    /// [`Ssf::mint`] for several streams at once: one read of the log, one of the
    /// queues' sizes, one transaction, whatever the number of streams (the push worker
    /// mints every stream it holds so). Per stream, minting and moving its cursor commit
    /// together, and only if nobody moved the cursor meanwhile.
    pub async fn mint_many(&self, streams: &[StreamRow]) -> Result<bool, SsfError> {
        let held = if streams.len() == 1 {
            let id = &streams[0].id;
            [(id.clone(), rows::count_pending(&self.db.read, id).await?)].into()
        } else {
            rows::count_pending_all(&self.db.read).await?
        };
        let max = self.cfg.ssf_max_held as i64;
        // Streams at their bound wait: they must not hold back the others' reading.
        let room = |s: &StreamRow| (max - held.get(&s.id).copied().unwrap_or(0)).max(0) as usize;
        let mut streams: Vec<&StreamRow> = streams
            .iter()
            .filter(|s| s.status != "disabled" && room(s) > 0)
            .collect();
        // Rows are locked in the order of their ids, as the push worker's removals do:
        // two transactions never wait on each other in a cycle (PostgreSQL's deadlock).
        streams.sort_by(|a, b| a.id.cmp(&b.id));
        let Some(from) = streams.iter().map(|s| s.cursor).min() else {
            return Ok(false);
        };
        let events = store::events::after(&self.db.read, from, None, BATCH).await?;
        if events.is_empty() {
            return Ok(false);
        }
        let mut more = events.len() as i64 == BATCH;
        let subs: Vec<String> = events
            .iter()
            .filter_map(|e| e.sub.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let exceptions: HashSet<(String, String)> = rows::subject_exceptions(&self.db.read, &subs)
            .await?
            .into_iter()
            .collect();
        let mut tx = self.db.begin_plain().await?;
        for stream in streams {
            let mine: Vec<_> = events.iter().filter(|e| e.id > stream.cursor).collect();
            more |= mine.len() > room(stream);
            let mine = &mine[..mine.len().min(room(stream))];
            let Some(last) = mine.last().map(|e| e.id) else {
                continue;
            };
            // Another minter moved this cursor first: its SETs are queued already.
            if !rows::advance(&mut tx, &stream.id, stream.cursor, last).await? {
                more = true;
                continue;
            }
            let config = Self::config_of(stream)?;
            let delivered = config.delivered();
            let all = config.default_subjects != "NONE";
            for event in mine {
                let wanted = event
                    .sub
                    .as_ref()
                    .is_some_and(|s| exceptions.contains(&(stream.id.clone(), s.clone())) != all);
                if !wanted {
                    continue;
                }
                let iss = &self.cfg.issuer;
                let Some(claims) =
                    sets::claims(iss, &stream.client_id, &stream.id, &delivered, event)
                else {
                    continue;
                };
                let jti = sets::jti(&stream.id, event.id);
                rows::insert_pending(&mut tx, &stream.id, &jti, &claims.to_string()).await?;
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(more)
    }

    /// Signs a waiting SET with the active key (`typ: secevent+jwt`).
    pub fn sign(&self, claims: &str) -> Result<String, SsfError> {
        let claims: Value = serde_json::from_str(claims)
            .map_err(|_| SsfError::Store(StoreError::Corrupt("a pending SET".into())))?;
        Ok(self.keys.current().active.sign_set(&claims))
    }

    /// The current row of stream `id` of `client`, minted up to date.
    async fn fresh(&self, client: &str, id: &str) -> Result<StreamRow, SsfError> {
        let row = self.owned(client, id).await?;
        self.mint(&row).await?;
        Ok(row)
    }
}
