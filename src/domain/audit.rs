//! The audit trail: who changed what, and when. Every administrative change (admin
//! API, console, command line) takes an [`Actor`] and records itself through
//! [`Actor::record`] inside its own transaction, so a change without its record (or
//! a record without its change) cannot commit.

use crate::store::audit::{AuditRow, Filter, NewEntry};
use crate::store::{self, Db, StoreError, Tx};

use super::users::User;

/// Through what an administrative change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The admin API (`/admin/...`).
    Api,
    /// The web console (`/console`).
    Console,
    /// A `tessera ...` command on the server's machine.
    Cli,
    /// The server's own scheduled work (key rotation when a key ages out).
    Schedule,
}

impl Via {
    /// The name the trail stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Console => "console",
            Via::Cli => "cli",
            Via::Schedule => "schedule",
        }
    }
}

/// Who makes an administrative change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// An admin's `sub`, `cli:<os user>`, or `tessera` for the server's own work.
    pub who: String,
    /// Through what.
    pub via: Via,
}

impl Actor {
    /// An administrator, authorised for this request.
    pub fn admin(user: &User, via: Via) -> Self {
        Self {
            who: user.id.clone(),
            via,
        }
    }

    /// The operating-system user running this `tessera` command.
    pub fn cli() -> Self {
        Self {
            who: format!("cli:{}", os_user()),
            via: Via::Cli,
        }
    }

    /// The server itself, acting on a schedule.
    pub fn server() -> Self {
        Self {
            who: "tessera".into(),
            via: Via::Schedule,
        }
    }

    /// Records `action` on `target` in the change's transaction. `details` says what
    /// changed; it must hold no secret and no personal data beyond ids.
    pub async fn record(
        &self,
        tx: &mut Tx,
        action: &str,
        target: Option<&str>,
        details: Option<serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let details = details.map(|d| d.to_string());
        let entry = NewEntry {
            actor: &self.who,
            via: self.via.as_str(),
            action,
            target,
            details: details.as_deref(),
        };
        store::audit::append(tx, &entry, now).await
    }
}

/// The login name of the process's user: `$USER`, `$LOGNAME`, else the uid.
fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty() && !u.chars().any(char::is_control))
        .unwrap_or_else(|| match std::fs::metadata("/proc/self") {
            Ok(m) => format!("uid {}", m.uid()),
            Err(_) => "unknown".into(),
        })
}

/// One entry as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Increasing with time.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// See [`Actor::who`].
    pub actor: String,
    /// See [`Via::as_str`].
    pub via: String,
    /// `verb_noun`.
    pub action: String,
    /// The id acted on.
    pub target: Option<String>,
    /// What changed.
    pub details: serde_json::Value,
}

impl From<AuditRow> for Entry {
    fn from(r: AuditRow) -> Self {
        Self {
            details: r
                .details
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(serde_json::Value::Null),
            id: r.id,
            at: r.at,
            actor: r.actor,
            via: r.via,
            action: r.action,
            target: r.target,
        }
    }
}

/// What a page of the trail is narrowed to; `None` narrows nothing.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// Entries about this id (a user, client, session or key).
    pub target: Option<String>,
    /// Entries by this actor.
    pub actor: Option<String>,
    /// Entries of this action.
    pub action: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the trail, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// At most the limit asked for.
    pub entries: Vec<Entry>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a page of the trail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The cursor is not one a page handed out.
    #[error("malformed cursor: pass the next_cursor of the previous page unchanged")]
    BadCursor,
    /// A filter is longer than anything the trail holds, or holds control characters.
    #[error("target, actor and action must be 1-256 characters without control characters")]
    BadFilter,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the audit trail. Cheap to clone.
#[derive(Clone)]
pub struct Trail {
    /// The database.
    pub db: Db,
}

impl Trail {
    /// A page of at most `limit` entries matching `search`, newest first. The cursor
    /// is the last listed id: stable when entries are added between pages.
    pub async fn page(&self, search: &AuditSearch, limit: u32) -> Result<AuditPage, AuditError> {
        let before = match search.cursor.as_deref() {
            None => None,
            Some(c) => Some(
                Some(c)
                    .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|c| c.parse::<i64>().ok())
                    .ok_or(AuditError::BadCursor)?,
            ),
        };
        for f in [&search.target, &search.actor, &search.action]
            .into_iter()
            .flatten()
        {
            if f.is_empty() || f.chars().count() > 256 || f.chars().any(char::is_control) {
                return Err(AuditError::BadFilter);
            }
        }
        let filter = Filter {
            target: search.target.as_deref(),
            actor: search.actor.as_deref(),
            action: search.action.as_deref(),
            before,
        };
        let mut rows = store::audit::page(&self.db.read, &filter, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(last.id.to_string()),
            _ => None,
        };
        Ok(AuditPage {
            entries: rows.into_iter().map(Entry::from).collect(),
            next_cursor,
        })
    }
}
