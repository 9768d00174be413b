//! The security event log: its JSON shape and the wake-up signal for subscribers.
//!
//! The database is the only source of truth. After a commit the writer calls
//! [`EventBus::wake`]; a watcher also polls the log's newest id so that changes
//! committed by other processes (the CLI) reach subscribers within a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

use crate::store::events::EventRow;

/// An event as served on `/events` (DESIGN.md "Contracts other programs rely on").
#[derive(Debug, Clone, Serialize)]
pub struct SecurityEvent {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub ver: Option<i64>,
    pub roles: Option<Vec<String>>,
    pub reason: Option<String>,
    pub kid: Option<String>,
    pub at: String,
}

impl From<EventRow> for SecurityEvent {
    fn from(r: EventRow) -> Self {
        let at = time::OffsetDateTime::from_unix_timestamp(r.at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Self {
            id: r.id,
            kind: r.kind,
            sub: r.sub,
            sid: r.sid,
            ver: r.ver,
            roles: r.roles.and_then(|s| serde_json::from_str(&s).ok()),
            reason: r.reason,
            kid: r.kid,
            at,
        }
    }
}

/// Wakes subscribers when the log may have grown, or when the server shuts down.
pub struct EventBus {
    tick: watch::Sender<u64>,
    closing: AtomicBool,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tick: watch::channel(0).0,
            closing: AtomicBool::new(false),
            streams: Arc::default(),
        }
    }
}

/// Open SSE streams allowed per caller (a client id or a user `sub`).
pub const MAX_STREAMS_PER_CALLER: usize = 8;

/// Holds one of a caller's stream slots until dropped.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    caller: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().expect("stream slots");
        if let Some(n) = streams.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.caller);
            }
        }
    }
}

impl EventBus {
    pub fn wake(&self) {
        self.tick.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// Takes one of `caller`'s stream slots; `None` when all are in use.
    pub fn open_stream(&self, caller: &str) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().expect("stream slots");
        let n = streams.entry(caller.to_string()).or_insert(0);
        if *n >= MAX_STREAMS_PER_CALLER {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            streams: self.streams.clone(),
            caller: caller.to_string(),
        })
    }

    /// How many SSE streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().expect("stream slots").values().sum()
    }

    /// Ends every feed (graceful shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}
