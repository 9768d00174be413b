//! Stream management (SSF §8.1): create, read, update, replace, delete; status;
//! subjects; verification. A client reaches only its own streams.

use serde::Serialize;
use serde_json::Value;

use super::{
    MAX_TEXT, MIN_VERIFICATION_INTERVAL, Ssf, SsfError, Stream, StreamRequest, invalid, sets,
};
use crate::store::ssf::{self as rows, StreamRow};
use crate::store::{self, StoreError};

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

impl Ssf {
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
            lease_owner: None,
            lease_until: None,
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
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_TEXT || r.contains('\0'))
        {
            return Err(invalid(format!(
                "reason: at most {MAX_TEXT} characters, no NUL"
            )));
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
                        if iss == self.cfg.issuer
                            && !sub.is_empty()
                            && !sub.contains('\0')
                            && sub.chars().count() <= 256 =>
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
        if state.as_ref().is_some_and(|s| s.chars().count() > MAX_TEXT) {
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

    /// Every stream's delivery figures, for `/metrics`.
    pub async fn figures(&self) -> Result<Vec<crate::metrics::StreamSample>, StoreError> {
        let (rows, last) = tokio::try_join!(
            rows::figures(&self.db.read),
            store::events::last_id(&self.db.read),
        )?;
        Ok(rows
            .into_iter()
            .map(
                |(stream, client, delivered, failed, cursor, held)| crate::metrics::StreamSample {
                    stream,
                    client,
                    delivered,
                    failed,
                    held,
                    lag: (last - cursor).max(0),
                },
            )
            .collect())
    }
}

/// Disables every stream of `client_id` on tessera's own account (the client lost the
/// `ssf` capability, `reason` says so), in the caller's transaction; returns how many.
/// What they held is dropped, and each push stream gets one SSF `stream-updated` SET
/// (§8.1.5), delivered as the others are (durably, at least once), then nothing more. A
/// poll stream gets none: its receiver can no longer call.
pub async fn disable_client_streams(
    tx: &mut store::Tx,
    iss: &str,
    client_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let disabled = rows::disable_client_streams(tx, client_id, reason).await?;
    for (id, config) in &disabled {
        let config: super::StreamConfig = serde_json::from_str(config)
            .map_err(|_| StoreError::Corrupt(format!("stream {id} config")))?;
        if config.delivery.method == super::PUSH {
            let claims = sets::stream_updated(iss, client_id, id, "disabled", reason, now);
            let jti = claims["jti"].as_str().expect("a jti");
            rows::insert_pending(&mut *tx, id, jti, &claims.to_string()).await?;
        }
    }
    Ok(disabled.len() as u64)
}
