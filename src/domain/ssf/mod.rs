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

pub mod push;
pub mod sets;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clock::Clock;
use super::events::EventBus;
use super::keys::KeyRing;
use crate::config::Config;
use crate::store::ssf::{self as rows, StreamRow};
use crate::store::{self, Db, StoreError};

/// RFC 8935 push delivery, as SSF names it in `delivery.method`.
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL: &str = "urn:ietf:rfc:8936";
/// The shortest interval between two verification requests of a stream, seconds.
pub const MIN_VERIFICATION_INTERVAL: i64 = 1;
/// Most event types a stream may request; more is not a real request.
const MAX_EVENTS_REQUESTED: usize = 64;
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

/// A stream's delivery as the receiver asked for it (SSF §8.1.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// [`PUSH`] or [`POLL`].
    pub method: String,
    /// Push: the receiver's endpoint. Poll: set by tessera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Push: the `Authorization` header to send, sealed under a key derived from the
    /// KEK (base64url); never shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_sealed: Option<String>,
}

/// The receiver-supplied configuration of a stream, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamConfig {
    /// The event types the receiver asked for, as it wrote them.
    pub events_requested: Vec<String>,
    /// How SETs reach the receiver.
    pub delivery: Delivery,
    /// The receiver's words for it.
    #[serde(default)]
    pub description: Option<String>,
    /// `ALL` or `NONE`: the deployment's `ssf_default_subjects` when it was created.
    pub default_subjects: String,
}

impl StreamConfig {
    /// `events_supported` ∩ `events_requested`.
    pub fn delivered(&self) -> Vec<String> {
        sets::SUPPORTED
            .iter()
            .filter(|t| self.events_requested.iter().any(|r| r == *t))
            .map(|t| t.to_string())
            .collect()
    }

    fn push(&self) -> bool {
        self.delivery.method == PUSH
    }
}

/// A create, update or replace request's members (SSF §8.1.1); the transmitter-supplied
/// ones a receiver may echo back are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct StreamRequest {
    /// The stream to change (update, replace).
    pub stream_id: Option<String>,
    /// Event types wanted.
    pub events_requested: Option<Vec<String>>,
    /// How to deliver.
    pub delivery: Option<DeliveryRequest>,
    /// Free text.
    pub description: Option<String>,
}

/// `delivery` of a request.
#[derive(Debug, Default, Deserialize)]
pub struct DeliveryRequest {
    /// [`PUSH`] or [`POLL`].
    pub method: String,
    /// Push: where to POST the SETs.
    pub endpoint_url: Option<String>,
    /// Push: the `Authorization` header value to send with them.
    pub authorization_header: Option<String>,
}

/// A stream's configuration as served (SSF §8.1.1).
#[derive(Debug, Serialize)]
pub struct Stream {
    /// Its id.
    pub stream_id: String,
    /// tessera's issuer.
    pub iss: String,
    /// The `aud` of its SETs: the receiver's client id.
    pub aud: String,
    /// Every event type tessera transmits.
    pub events_supported: Vec<&'static str>,
    /// What the receiver asked for.
    pub events_requested: Vec<String>,
    /// What it gets.
    pub events_delivered: Vec<String>,
    /// How: the method and endpoint (the push authorization header is not shown).
    pub delivery: DeliveryOut,
    /// The receiver's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds between two verification requests.
    pub min_verification_interval: i64,
}

/// `delivery` as served.
#[derive(Debug, Serialize)]
pub struct DeliveryOut {
    /// [`PUSH`] or [`POLL`].
    pub method: String,
    /// The receiver's push endpoint, or tessera's poll endpoint for this stream.
    pub endpoint_url: String,
}

/// A stream's status (SSF §8.1.2), with tessera's delivery figures.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The stream.
    pub stream_id: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why, as the receiver said when it set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How delivery goes: an extension member.
    pub tessera_delivery: Figures,
}

/// Delivery figures of a stream (also on `/metrics`).
#[derive(Debug, Serialize)]
pub struct Figures {
    /// SETs the receiver accepted.
    pub delivered: i64,
    /// Failed attempts and SETs the receiver rejected.
    pub failed: i64,
    /// SETs waiting for the receiver.
    pub held: i64,
    /// Events of the log the stream has not read yet.
    pub lag: i64,
    /// The last failure: `{err, description, at}` (the receiver's RFC 8935 error, or
    /// what went wrong reaching it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Value>,
}

/// The stream statuses of SSF §8.1.2.
const STATUSES: [&str; 3] = ["enabled", "paused", "disabled"];

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
        let http = push::client(cfg.ssf_allow_insecure_push);
        let seal_key = Arc::new(keys.derive_key("tessera ssf push authorization v1"));
        Self {
            cfg,
            db,
            clock,
            keys,
            events,
            instance: crate::crypto::b64(&crate::crypto::random::<9>()).into(),
            http,
            seal_key,
        }
    }

    /// The stream `id` if `client` owns it.
    async fn owned(&self, client: &str, id: &str) -> Result<StreamRow, SsfError> {
        rows::by_id(&self.db.read, id)
            .await?
            .filter(|s| crate::crypto::ct_eq(s.client_id.as_bytes(), client.as_bytes()))
            .ok_or(SsfError::NotFound)
    }

    fn config_of(row: &StreamRow) -> Result<StreamConfig, SsfError> {
        serde_json::from_str(&row.config)
            .map_err(|_| SsfError::Store(StoreError::Corrupt(format!("stream {} config", row.id))))
    }

    fn view(&self, row: &StreamRow) -> Result<Stream, SsfError> {
        let config = Self::config_of(row)?;
        let endpoint_url = match &config.delivery.endpoint_url {
            Some(url) if config.push() => url.clone(),
            _ => format!("{}/ssf/poll/{}", self.cfg.issuer, row.id),
        };
        Ok(Stream {
            stream_id: row.id.clone(),
            iss: self.cfg.issuer.clone(),
            aud: row.client_id.clone(),
            events_supported: sets::SUPPORTED.to_vec(),
            events_delivered: config.delivered(),
            events_requested: config.events_requested,
            delivery: DeliveryOut {
                method: config.delivery.method,
                endpoint_url,
            },
            description: config.description,
            min_verification_interval: MIN_VERIFICATION_INTERVAL,
        })
    }

    /// Checks a request's members and builds the configuration; `base` is the stream's
    /// current one for an update (members absent keep their value).
    fn configure(
        &self,
        stream_id: &str,
        req: StreamRequest,
        base: Option<StreamConfig>,
    ) -> Result<StreamConfig, SsfError> {
        let events_requested = match (req.events_requested, &base) {
            (Some(events), _) => {
                if events.len() > MAX_EVENTS_REQUESTED || events.iter().any(|e| e.len() > MAX_TEXT)
                {
                    return Err(invalid(format!(
                        "events_requested: at most {MAX_EVENTS_REQUESTED} event types of at most {MAX_TEXT} characters"
                    )));
                }
                events
            }
            (None, Some(base)) => base.events_requested.clone(),
            (None, None) => Vec::new(),
        };
        let delivery = match (req.delivery, &base) {
            (Some(d), _) => self.delivery(stream_id, d)?,
            (None, Some(base)) => base.delivery.clone(),
            // SSF §8.1.1.1: without `delivery`, the transmitter picks; poll needs nothing
            // of the receiver.
            (None, None) => Delivery {
                method: POLL.into(),
                endpoint_url: None,
                authorization_sealed: None,
            },
        };
        let description = match req.description {
            Some(d) if d.len() > MAX_TEXT => {
                return Err(invalid(format!(
                    "description: at most {MAX_TEXT} characters"
                )));
            }
            Some(d) => Some(d),
            None => base.as_ref().and_then(|b| b.description.clone()),
        };
        let default_subjects = base.map_or_else(
            || self.cfg.ssf_default_subjects.clone(),
            |b| b.default_subjects,
        );
        Ok(StreamConfig {
            events_requested,
            delivery,
            description,
            default_subjects,
        })
    }

    fn delivery(&self, stream_id: &str, d: DeliveryRequest) -> Result<Delivery, SsfError> {
        match d.method.as_str() {
            POLL => {
                if d.endpoint_url.is_some() {
                    return Err(invalid(
                        "delivery.endpoint_url is the transmitter's for poll delivery",
                    ));
                }
                Ok(Delivery {
                    method: POLL.into(),
                    endpoint_url: None,
                    authorization_sealed: None,
                })
            }
            PUSH => {
                let url = d
                    .endpoint_url
                    .ok_or_else(|| invalid("push delivery needs delivery.endpoint_url"))?;
                if url.len() > MAX_TEXT {
                    return Err(invalid("delivery.endpoint_url is too long"));
                }
                push::check_url(&url, self.cfg.ssf_allow_insecure_push).map_err(invalid)?;
                let authorization_sealed = match d.authorization_header {
                    None => None,
                    Some(h)
                        if h.is_empty()
                            || h.len() > MAX_TEXT
                            || !h.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
                    {
                        return Err(invalid(
                            "delivery.authorization_header must be printable ASCII, at most 2048 characters",
                        ));
                    }
                    Some(h) => Some(crate::crypto::b64(&crate::crypto::seal(
                        &self.seal_key,
                        stream_id.as_bytes(),
                        h.as_bytes(),
                    ))),
                };
                Ok(Delivery {
                    method: PUSH.into(),
                    endpoint_url: Some(url),
                    authorization_sealed,
                })
            }
            _ => Err(invalid(format!(
                "delivery.method must be {PUSH} (push) or {POLL} (poll)"
            ))),
        }
    }

    /// The `Authorization` header a push stream registered, unsealed.
    fn authorization(
        &self,
        stream_id: &str,
        delivery: &Delivery,
    ) -> Result<Option<String>, &'static str> {
        let Some(sealed) = &delivery.authorization_sealed else {
            return Ok(None);
        };
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| "the registered authorization header is unreadable")?;
        let open = crate::crypto::open(&self.seal_key, stream_id.as_bytes(), &bytes)
            .map_err(|_| "the registered authorization header is unreadable (the KEK changed?): replace the stream's delivery")?;
        String::from_utf8(open)
            .map(Some)
            .map_err(|_| "the registered authorization header is unreadable")
    }

    /// SSF §8.1.1.1: creates a stream of `client`, delivering from the next event on.
    pub async fn create(&self, client: &str, req: StreamRequest) -> Result<Stream, SsfError> {
        let id = uuid::Uuid::new_v4().to_string();
        let config = self.configure(&id, req, None)?;
        let mut tx = self.db.begin().await?;
        let count = rows::of_client(&mut tx, client).await?.len();
        if count >= self.cfg.ssf_max_streams_per_client {
            return Err(SsfError::TooManyStreams);
        }
        let row = StreamRow {
            id: id.clone(),
            client_id: client.to_string(),
            config: serde_json::to_string(&config).expect("config serialises"),
            status: "enabled".into(),
            reason: None,
            cursor: store::events::last_id(&mut tx).await?,
            created_at: self.clock.now(),
            verified_at: None,
            last_error: None,
            delivered: 0,
            failed: 0,
        };
        rows::insert(&mut tx, &row).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.events.wake();
        self.view(&row)
    }

    /// SSF §8.1.1.2: one stream of `client`.
    pub async fn get(&self, client: &str, id: &str) -> Result<Stream, SsfError> {
        self.view(&self.owned(client, id).await?)
    }

    /// SSF §8.1.1.2: every stream of `client`.
    pub async fn list(&self, client: &str) -> Result<Vec<Stream>, SsfError> {
        rows::of_client(&self.db.read, client)
            .await?
            .iter()
            .map(|r| self.view(r))
            .collect()
    }

    /// SSF §8.1.1.3 (update: members absent stay) and §8.1.1.4 (replace: they reset).
    pub async fn update(
        &self,
        client: &str,
        req: StreamRequest,
        replace: bool,
    ) -> Result<Stream, SsfError> {
        let id = req
            .stream_id
            .clone()
            .ok_or_else(|| invalid("stream_id is required"))?;
        let mut row = self.owned(client, &id).await?;
        let base = Self::config_of(&row)?;
        let config = if replace {
            let mut fresh = self.configure(&id, req, None)?;
            fresh.default_subjects = base.default_subjects;
            fresh
        } else {
            self.configure(&id, req, Some(base))?
        };
        row.config = serde_json::to_string(&config).expect("config serialises");
        if !rows::set_config(self.db.writer(), &id, &row.config).await? {
            return Err(SsfError::NotFound);
        }
        self.events.wake();
        self.view(&row)
    }

    /// SSF §8.1.1.5: deletes a stream of `client` with everything it held.
    pub async fn delete(&self, client: &str, id: &str) -> Result<(), SsfError> {
        self.owned(client, id).await?;
        rows::delete(self.db.writer(), id).await?;
        Ok(())
    }

    /// SSF §8.1.2.1: the status of a stream of `client`.
    pub async fn status(&self, client: &str, id: &str) -> Result<Status, SsfError> {
        let row = self.owned(client, id).await?;
        let (held, last) = tokio::try_join!(
            rows::count_pending(&self.db.read, id),
            store::events::last_id(&self.db.read),
        )?;
        Ok(Status {
            stream_id: row.id,
            status: row.status,
            reason: row.reason,
            tessera_delivery: Figures {
                delivered: row.delivered,
                failed: row.failed,
                held,
                lag: (last - row.cursor).max(0),
                last_error: row.last_error.and_then(|e| serde_json::from_str(&e).ok()),
            },
        })
    }

    /// SSF §8.1.2.2: sets the status. `paused` holds SETs (up to `ssf_max_held`);
    /// `disabled` drops what it held and reads nothing; enabled again, it starts from
    /// the log's end.
    pub async fn set_status(
        &self,
        client: &str,
        id: &str,
        status: &str,
        reason: Option<String>,
    ) -> Result<Status, SsfError> {
        if !STATUSES.contains(&status) {
            return Err(invalid("status must be enabled, paused or disabled"));
        }
        if reason.as_ref().is_some_and(|r| r.len() > MAX_TEXT) {
            return Err(invalid(format!("reason: at most {MAX_TEXT} characters")));
        }
        let row = self.owned(client, id).await?;
        let mut tx = self.db.begin().await?;
        let cursor = if row.status == "disabled" && status != "disabled" {
            Some(store::events::last_id(&mut tx).await?)
        } else {
            None
        };
        if status == "disabled" {
            rows::clear_pending(&mut tx, id).await?;
        }
        rows::set_status(&mut tx, id, status, reason.as_deref(), cursor).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.events.wake();
        self.status(client, id).await
    }

    /// The user an RFC 9493 subject names: `iss_sub` of this issuer.
    fn subject_user(&self, subject: &Value) -> Result<String, SsfError> {
        let format = subject.get("format").and_then(Value::as_str);
        match format {
            Some("iss_sub") => {
                let iss = subject.get("iss").and_then(Value::as_str);
                let sub = subject.get("sub").and_then(Value::as_str);
                match (iss, sub) {
                    (Some(iss), Some(sub))
                        if iss == self.cfg.issuer && !sub.is_empty() && sub.len() <= 256 =>
                    {
                        Ok(sub.to_string())
                    }
                    (Some(_), Some(_)) => {
                        Err(invalid("subject: iss must be this transmitter's issuer"))
                    }
                    _ => Err(invalid("subject: iss_sub needs iss and sub strings")),
                }
            }
            Some(_) => Err(invalid(
                "subject: unsupported format (tessera knows users by iss_sub)",
            )),
            None => Err(invalid(
                "subject must be an RFC 9493 subject identifier with a format",
            )),
        }
    }

    /// SSF §8.1.3.2: adds a subject. Whether the user exists is not said (200 either way).
    pub async fn add_subject(
        &self,
        client: &str,
        id: &str,
        subject: &Value,
    ) -> Result<(), SsfError> {
        self.change_subject(client, id, subject, true).await
    }

    /// SSF §8.1.3.3: removes a subject.
    pub async fn remove_subject(
        &self,
        client: &str,
        id: &str,
        subject: &Value,
    ) -> Result<(), SsfError> {
        self.change_subject(client, id, subject, false).await
    }

    async fn change_subject(
        &self,
        client: &str,
        id: &str,
        subject: &Value,
        add: bool,
    ) -> Result<(), SsfError> {
        let row = self.owned(client, id).await?;
        let sub = self.subject_user(subject)?;
        let config = Self::config_of(&row)?;
        // The table holds the exceptions to the stream's default: removals from ALL,
        // additions to NONE.
        let insert = add == (config.default_subjects == "NONE");
        if insert {
            let mut tx = self.db.begin().await?;
            if rows::count_subjects(&mut tx, id).await?
                >= self.cfg.ssf_max_subjects_per_stream as i64
            {
                return Err(SsfError::TooManySubjects);
            }
            rows::insert_subject(&mut tx, id, &sub).await?;
            tx.commit().await.map_err(StoreError::from)?;
        } else {
            rows::delete_subject(self.db.writer(), id, &sub).await?;
        }
        Ok(())
    }

    /// SSF §8.1.4.2: queues a verification SET, at most once per
    /// [`MIN_VERIFICATION_INTERVAL`].
    pub async fn verify(
        &self,
        client: &str,
        id: &str,
        state: Option<String>,
    ) -> Result<(), SsfError> {
        if state.as_ref().is_some_and(|s| s.len() > MAX_TEXT) {
            return Err(invalid(format!("state: at most {MAX_TEXT} characters")));
        }
        let row = self.owned(client, id).await?;
        let now = self.clock.now();
        if row
            .verified_at
            .is_some_and(|at| now - at < MIN_VERIFICATION_INTERVAL)
        {
            return Err(SsfError::TooSoon);
        }
        if row.status == "disabled" {
            return Ok(());
        }
        let claims =
            sets::verification(&self.cfg.issuer, &row.client_id, id, state.as_deref(), now);
        let jti = claims["jti"].as_str().expect("a jti").to_string();
        let mut tx = self.db.begin_plain().await?;
        rows::set_verified_at(&mut tx, id, now).await?;
        rows::insert_pending(&mut tx, id, &jti, &claims.to_string()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.events.wake();
        Ok(())
    }

    /// Reads the log after the stream's cursor and queues the SETs it maps to, up to
    /// `ssf_max_held` waiting; returns how many it queued. Minting and moving the
    /// cursor commit together, and only if nobody moved the cursor meanwhile.
    pub async fn mint(&self, stream: &StreamRow) -> Result<usize, SsfError> {
        if stream.status == "disabled" {
            return Ok(0);
        }
        let held = rows::count_pending(&self.db.read, &stream.id).await?;
        let room = self.cfg.ssf_max_held as i64 - held;
        if room <= 0 {
            return Ok(0);
        }
        let events =
            store::events::after(&self.db.read, stream.cursor, None, room.min(BATCH)).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(0);
        };
        let config = Self::config_of(stream)?;
        let delivered = config.delivered();
        let subs: Vec<String> = events
            .iter()
            .filter_map(|e| e.sub.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let exceptions: HashSet<String> = rows::subjects_among(&self.db.read, &stream.id, &subs)
            .await?
            .into_iter()
            .collect();
        let all = config.default_subjects != "NONE";
        let mut tx = self.db.begin_plain().await?;
        let mut minted = 0;
        for event in &events {
            let wanted = event
                .sub
                .as_ref()
                .is_some_and(|s| exceptions.contains(s) != all);
            if !wanted {
                continue;
            }
            let Some(claims) = sets::claims(
                &self.cfg.issuer,
                &stream.client_id,
                &stream.id,
                &delivered,
                event,
            ) else {
                continue;
            };
            let jti = sets::jti(&stream.id, event.id);
            rows::insert_pending(&mut tx, &stream.id, &jti, &claims.to_string()).await?;
            minted += 1;
        }
        if !rows::advance(&mut tx, &stream.id, stream.cursor, last).await? {
            return Ok(0);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(minted)
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

pub mod poll;
