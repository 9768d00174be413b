//! The audit trail as stored: one row per administrative change, appended in the
//! change's own transaction.

use sqlx::FromRow;

use super::{Exec, StoreError, on};

/// One entry of the audit trail.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    /// Increasing with time; pages are keyed on it.
    pub id: i64,
    /// When the change was made, Unix seconds.
    pub at: i64,
    /// Who made it: an admin's `sub`, `cli:<os user>`, or `tessera` for scheduled work.
    pub actor: String,
    /// Through what: `api`, `console`, `cli` or `schedule`.
    pub via: String,
    /// What was done, `verb_noun` (`set_roles`, `create_client`, `rotate_keys`, ...).
    pub action: String,
    /// The id of what it was done to, if anything in particular.
    pub target: Option<String>,
    /// JSON: what changed (never a secret).
    pub details: Option<String>,
}

/// An entry to [`append`]; the id and time are the log's.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    /// See [`AuditRow::actor`].
    pub actor: &'a str,
    /// See [`AuditRow::via`].
    pub via: &'a str,
    /// See [`AuditRow::action`].
    pub action: &'a str,
    /// See [`AuditRow::target`].
    pub target: Option<&'a str>,
    /// See [`AuditRow::details`].
    pub details: Option<&'a str>,
}

/// Appends an entry inside the caller's transaction, so the change and its record
/// commit or roll back together.
pub async fn append(db: impl Into<Exec<'_>>, e: &NewEntry<'_>, now: i64) -> Result<(), StoreError> {
    on!(db.into(), |x| sqlx::query(
        "INSERT INTO audit_log (at, actor, via, action, target, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(e.actor)
    .bind(e.via)
    .bind(e.action)
    .bind(e.target)
    .bind(e.details)
    .execute(x)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// What a page of the trail is narrowed to; `None` filters nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Entries about this id.
    pub target: Option<&'a str>,
    /// Entries by this actor.
    pub actor: Option<&'a str>,
    /// Entries of this action.
    pub action: Option<&'a str>,
    /// Keyset pagination, newest first: only entries older than this id.
    pub before: Option<i64>,
}

/// Up to `limit` entries matching `filter`, newest first.
pub async fn page(
    db: impl Into<Exec<'_>>,
    filter: &Filter<'_>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(on!(db.into(), |x| sqlx::query_as(
        "SELECT id, at, actor, via, action, target, details FROM audit_log
         WHERE ($1 IS NULL OR target = $1)
           AND ($2 IS NULL OR actor = $2)
           AND ($3 IS NULL OR action = $3)
           AND ($4 IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5",
    )
    .bind(filter.target)
    .bind(filter.actor)
    .bind(filter.action)
    .bind(filter.before)
    .bind(limit)
    .fetch_all(x)
    .await)?)
}
