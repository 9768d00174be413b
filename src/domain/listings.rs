//! What an operator reads beyond the user list: one user in full (sessions, recent
//! events), live sessions by user or client, and the security event log narrowed by
//! subject, type and time. Keyset-paged: a cursor is a key, stable when rows are
//! added between pages.

use super::events::{FeedEvent, SecurityEvent};
use super::queries::{ListedUser, Session};
use super::users::Users;
use crate::store::pages::{EventFilter, Owner};
use crate::store::{self, StoreError};

/// How many of a user's events [`Users::user_detail`] shows, newest first.
pub const RECENT_EVENTS: i64 = 20;
/// How many of a user's live sessions [`Users::user_detail`] shows (the rest: page on
/// with [`Users::sessions_page`]).
pub const FIRST_SESSIONS: u32 = 50;

/// One user as an operator reads them.
#[derive(Debug, Clone)]
pub struct UserDetail {
    /// The user and when it was created.
    pub user: ListedUser,
    /// Their first [`FIRST_SESSIONS`] live sessions, in `sid` order.
    pub sessions: Vec<Session>,
    /// Where the next page of their sessions starts, `None` when all are above.
    pub sessions_next_cursor: Option<String>,
    /// Their last [`RECENT_EVENTS`] security events, newest first.
    pub events: Vec<SecurityEvent>,
}

/// Whose live sessions to list: a user id (a UUID) or a client id.
#[derive(Debug, Clone)]
pub enum SessionsOf {
    /// A user's.
    User(String),
    /// A client's.
    Client(String),
}

/// A page of live sessions, in `sid` order.
#[derive(Debug, Clone)]
pub struct SessionPage {
    /// At most the limit asked for; each names its user in `user_id`.
    pub sessions: Vec<(String, Session)>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What the event log is narrowed to, as given (checked by [`Users::events_page`]).
#[derive(Debug, Clone, Default)]
pub struct EventSearch {
    /// A user id.
    pub sub: Option<String>,
    /// An event type (`user.roles_changed`, ...).
    pub kind: Option<String>,
    /// At or after: RFC 3339, or Unix seconds.
    pub since: Option<String>,
    /// Before: RFC 3339, or Unix seconds.
    pub until: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the event log, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// At most the limit asked for, as `/events` serves them.
    pub events: Vec<SecurityEvent>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a listing could not be read; every text is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// The cursor is not one a page handed out.
    #[error("malformed cursor: pass the next_cursor of the previous page unchanged")]
    BadCursor,
    /// A filter breaks its rule; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
    /// The user or client named does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The latest time accepted (9999-12-31T23:59:59Z): every stored time is below it.
const MAX_TIME: i64 = 253_402_300_799;

/// A time filter: Unix seconds (digits) or RFC 3339 (`2026-01-01T00:00:00Z`).
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().filter(|t| *t <= MAX_TIME);
    }
    tessera_proto::parse_rfc3339(text).filter(|t| (0..=MAX_TIME).contains(t))
}

/// A filter value: 1-256 characters without control characters.
fn filter_ok(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 256 && !value.chars().any(char::is_control)
}

fn uuid(text: &str) -> Option<String> {
    uuid::Uuid::parse_str(text).ok().map(|u| u.to_string())
}

impl Users {
    /// A user with their live sessions and recent events; `None` when there is no such user.
    pub async fn user_detail(&self, id: &str) -> Result<Option<UserDetail>, ListingError> {
        let Some(user) = self.listed_user(id).await? else {
            return Ok(None);
        };
        let filter = EventFilter {
            sub: Some(id),
            ..Default::default()
        };
        let of = SessionsOf::User(id.to_string());
        let (sessions, events) =
            tokio::try_join!(self.sessions_page(&of, None, FIRST_SESSIONS), async {
                Ok(store::pages::events(&self.db.read, &filter, RECENT_EVENTS).await?)
            },)?;
        Ok(Some(UserDetail {
            user,
            sessions: sessions.sessions.into_iter().map(|(_, s)| s).collect(),
            sessions_next_cursor: sessions.next_cursor,
            events: events
                .into_iter()
                .map(|r| FeedEvent::from(r).event)
                .collect(),
        }))
    }

    /// A page of at most `limit` live sessions of a user or a client, in `sid` order.
    pub async fn sessions_page(
        &self,
        of: &SessionsOf,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<SessionPage, ListingError> {
        let after = cursor
            .map(|c| uuid(c).ok_or(ListingError::BadCursor))
            .transpose()?;
        let owner = match of {
            SessionsOf::User(id) => {
                let id =
                    uuid(id).ok_or(ListingError::Invalid("user must be a user id (a UUID)"))?;
                if self.user(&id).await?.is_none() {
                    return Err(ListingError::NotFound("user"));
                }
                SessionsOf::User(id)
            }
            SessionsOf::Client(id) => {
                if !filter_ok(id) {
                    return Err(ListingError::Invalid(
                        "client must be 1-256 characters without control characters",
                    ));
                }
                if store::clients::by_id(&self.db.read, id).await?.is_none() {
                    return Err(ListingError::NotFound("client"));
                }
                of.clone()
            }
        };
        let owner = match &owner {
            SessionsOf::User(id) => Owner::User(id),
            SessionsOf::Client(id) => Owner::Client(id),
        };
        let now = self.clock.now();
        let mut rows = store::pages::live_families(
            &self.db.read,
            owner,
            after.as_deref(),
            now,
            i64::from(limit) + 1,
        )
        .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows.last().filter(|_| more).map(|r| r.id.clone());
        let sessions = rows
            .into_iter()
            .map(|r| (r.user_id.clone(), Session::from(r)))
            .collect();
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }

    /// A page of at most `limit` events of the log matching `search`, newest first.
    pub async fn events_page(
        &self,
        search: &EventSearch,
        limit: u32,
    ) -> Result<EventPage, ListingError> {
        let before = match search.cursor.as_deref() {
            None => None,
            Some(c) => Some(
                Some(c)
                    .filter(|c| {
                        !c.is_empty() && c.len() <= 19 && c.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|c| c.parse::<i64>().ok())
                    .ok_or(ListingError::BadCursor)?,
            ),
        };
        if !search.sub.as_deref().is_none_or(filter_ok) {
            return Err(ListingError::Invalid(
                "sub must be 1-256 characters without control characters",
            ));
        }
        if !search.kind.as_deref().is_none_or(filter_ok) {
            return Err(ListingError::Invalid(
                "type must be 1-256 characters without control characters",
            ));
        }
        let time = |t: &Option<String>| {
            t.as_deref()
                .map(|t| {
                    parse_time(t).ok_or(ListingError::Invalid(
                        "since and until must be RFC 3339 times or Unix seconds (0 to 253402300799)",
                    ))
                })
                .transpose()
        };
        let filter = EventFilter {
            sub: search.sub.as_deref(),
            kind: search.kind.as_deref(),
            since: time(&search.since)?,
            until: time(&search.until)?,
            before,
        };
        let mut rows = store::pages::events(&self.db.read, &filter, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows.last().filter(|_| more).map(|r| r.id.to_string());
        Ok(EventPage {
            events: rows.into_iter().map(|r| FeedEvent::from(r).event).collect(),
            next_cursor,
        })
    }

    /// The newest event id, 0 when the log is empty.
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        store::events::last_id(&self.db.read).await
    }

    /// Events after `after`, oldest first, for following the log (`tessera events
    /// --follow`): at most `limit`, of `sub` alone when given.
    pub async fn events_after(
        &self,
        after: i64,
        sub: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        let rows = store::events::after(&self.db.read, after, sub, limit).await?;
        Ok(rows.into_iter().map(|r| FeedEvent::from(r).event).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("1767225600"), Some(1_767_225_600));
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Some(1_767_225_600));
        for bad in [
            "",
            "-1",
            "+5",
            "1e9",
            "999999999999999",
            "2026-01-01",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
