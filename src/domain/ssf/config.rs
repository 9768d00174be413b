//! A stream's configuration: what a receiver may ask for (SSF §8.1.1), checked and
//! stored, and how it is shown back (never the push authorization header).

use serde::{Deserialize, Serialize};

use super::{MAX_TEXT, MIN_VERIFICATION_INTERVAL, POLL, PUSH, Ssf, SsfError, guard, invalid, sets};
use crate::store::ssf::StreamRow;

/// Most event types a stream may request, and the longest one (the longest defined is
/// under 100 characters); more is not a real request.
const MAX_EVENTS_REQUESTED: usize = 64;
const MAX_EVENT_TYPE: usize = 256;

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

/// What the key that seals push authorization headers is derived for (from the KEK).
pub(crate) const SEAL_PURPOSE: &str = "tessera ssf push authorization v1";

/// A stored configuration (JSON) with its push authorization header sealed again under
/// `new` (opened with `old`); `None` when it holds none. For KEK rotation.
pub(crate) fn reseal(
    stream_id: &str,
    config: &str,
    old: &[u8; 32],
    new: &[u8; 32],
) -> Result<Option<String>, &'static str> {
    let mut c: StreamConfig =
        serde_json::from_str(config).map_err(|_| "the stored configuration is unreadable")?;
    let Some(sealed) = &c.delivery.authorization_sealed else {
        return Ok(None);
    };
    let plain = open_header(old, stream_id, sealed)
        .map_err(|_| "the registered authorization header does not open under the current KEK")?;
    c.delivery.authorization_sealed = Some(seal_header(new, stream_id, &plain));
    Ok(Some(
        serde_json::to_string(&c).expect("a configuration serialises"),
    ))
}

/// A push authorization header sealed under `key`, bound to its stream, as stored.
fn seal_header(key: &[u8; 32], stream_id: &str, header: &[u8]) -> String {
    crate::crypto::b64(&crate::crypto::seal(key, stream_id.as_bytes(), header))
}

/// Why a stored authorization header did not open.
enum Unopened {
    /// Not base64url: the stored text is damaged.
    Encoding,
    /// It does not open under this key (the KEK changed), or was altered.
    Key,
}

/// A stored push authorization header opened with `key`.
fn open_header(key: &[u8; 32], stream_id: &str, sealed: &str) -> Result<Vec<u8>, Unopened> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| Unopened::Encoding)?;
    crate::crypto::open(key, stream_id.as_bytes(), &bytes).map_err(|_| Unopened::Key)
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

impl Ssf {
    pub(super) fn view(&self, row: &StreamRow) -> Result<Stream, SsfError> {
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
    pub(super) fn configure(
        &self,
        stream_id: &str,
        req: StreamRequest,
        base: Option<StreamConfig>,
    ) -> Result<StreamConfig, SsfError> {
        let events_requested = match (req.events_requested, &base) {
            (Some(events), _) => {
                if events.len() > MAX_EVENTS_REQUESTED
                    || events.iter().any(|e| e.chars().count() > MAX_EVENT_TYPE)
                {
                    return Err(invalid(format!(
                        "events_requested: at most {MAX_EVENTS_REQUESTED} event types of at most {MAX_EVENT_TYPE} characters"
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
            Some(d) if d.chars().count() > MAX_TEXT => {
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

    pub(super) fn delivery(
        &self,
        stream_id: &str,
        d: DeliveryRequest,
    ) -> Result<Delivery, SsfError> {
        match d.method.as_str() {
            // The poll endpoint is the transmitter's: one sent is ignored, as a receiver
            // echoing back the configuration it read sends it (SSF §8.1.1).
            POLL => Ok(Delivery {
                method: POLL.into(),
                endpoint_url: None,
                authorization_sealed: None,
            }),
            PUSH => {
                let url = d
                    .endpoint_url
                    .ok_or_else(|| invalid("push delivery needs delivery.endpoint_url"))?;
                if url.chars().count() > MAX_TEXT {
                    return Err(invalid("delivery.endpoint_url is too long"));
                }
                guard::check_url(&url, self.cfg.ssf_allow_insecure_push).map_err(invalid)?;
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
                    Some(h) => Some(seal_header(&self.seal_key, stream_id, h.as_bytes())),
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
    pub(super) fn authorization(
        &self,
        stream_id: &str,
        delivery: &Delivery,
    ) -> Result<Option<String>, &'static str> {
        let Some(sealed) = &delivery.authorization_sealed else {
            return Ok(None);
        };
        let open = open_header(&self.seal_key, stream_id, sealed).map_err(|e| match e {
            Unopened::Encoding => "the registered authorization header is unreadable",
            Unopened::Key => "the registered authorization header is unreadable (the KEK changed?): replace the stream's delivery",
        })?;
        String::from_utf8(open)
            .map(Some)
            .map_err(|_| "the registered authorization header is unreadable")
    }
}
