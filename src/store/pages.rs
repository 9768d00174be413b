//! Keyset-paged reads for operators: live sessions by user or client, and the
//! security event log narrowed by subject, type and time.

use super::events::EventRow;
use super::sessions::{FAMILY_COLUMNS, FamilyRow};
use super::{Exec, StoreError, on};

/// Whose live sessions to list.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// A user's (`refresh_families.user_id`).
    User(&'a str),
    /// A client's (`refresh_families.client_id`).
    Client(&'a str),
}

/// Up to `limit` live families (not revoked, not expired at `now`) of `owner` whose id
/// sorts after `after`, in id order.
pub async fn live_families(
    db: impl Into<Exec<'_>>,
    owner: Owner<'_>,
    after: Option<&str>,
    now: i64,
    limit: i64,
) -> Result<Vec<FamilyRow>, StoreError> {
    let (column, id) = match owner {
        Owner::User(id) => ("user_id", id),
        Owner::Client(id) => ("client_id", id),
    };
    // `id` is a UUID (checked by the caller): byte order is the same in both databases.
    // The cursor's condition only when there is one, so that the index range starts there.
    let after_cond = if after.is_some() { "AND id > $4" } else { "" };
    let sql = format!(
        "SELECT {FAMILY_COLUMNS}
         FROM refresh_families f
         WHERE {column} = $1 AND revoked_at IS NULL AND expires_at > $2 {after_cond}
         ORDER BY id LIMIT $3"
    );
    Ok(on!(db.into(), |e| {
        let q = sqlx::query_as(&sql).bind(id).bind(now).bind(limit);
        match after {
            Some(after) => q.bind(after),
            None => q,
        }
        .fetch_all(e)
        .await
    })?)
}

/// What a page of the event log is narrowed to; `None` narrows nothing.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    /// Events about this user.
    pub sub: Option<&'a str>,
    /// Events of this type (wire name).
    pub kind: Option<&'a str>,
    /// Written at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Written before this time (Unix seconds).
    pub until: Option<i64>,
    /// Keyset pagination: only ids below this one.
    pub before: Option<i64>,
}

enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

/// Up to `limit` events matching `filter`, newest first. Only the conditions given
/// reach the SQL, so each can use its index (`(sub, id)`, `(type, id)`, `at`).
pub async fn events(
    db: impl Into<Exec<'_>>,
    filter: &EventFilter<'_>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let wanted = [
        filter.sub.map(|s| ("sub =", Bind::Text(s))),
        filter.kind.map(|k| ("type =", Bind::Text(k))),
        filter.since.map(|t| ("at >=", Bind::Int(t))),
        filter.until.map(|t| ("at <", Bind::Int(t))),
        filter.before.map(|i| ("id <", Bind::Int(i))),
    ];
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    for (sql, bind) in wanted.into_iter().flatten() {
        binds.push(bind);
        conds.push(format!("{sql} ${}", binds.len()));
    }
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT id, type, sub, sid, ver, roles, reason, kid, at FROM security_events{}{} ORDER BY id DESC LIMIT ${}",
        if conds.is_empty() { "" } else { " WHERE " },
        conds.join(" AND "),
        binds.len()
    );
    Ok(on!(db.into(), |e| {
        let mut q = sqlx::query_as(&sql);
        for b in &binds {
            q = match b {
                Bind::Text(s) => q.bind(*s),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q.fetch_all(e).await
    })?)
}
