//! Raw SQL against a test app's database, on whichever backend it runs
//! (placeholders `$1, $2, ...` work on both).

use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use tessera::store::Pool;

pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Blob(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}
impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}
impl From<i64> for Arg {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(b: Vec<u8>) -> Self {
        Arg::Blob(b)
    }
}

macro_rules! bound {
    ($sql:expr, $args:expr, $query:path) => {{
        let mut q = $query($sql);
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Blob(b) => q.bind(b.clone()),
            };
        }
        q
    }};
}

pub(crate) async fn all<T>(pool: &Pool, sql: &str, args: &[Arg]) -> Vec<T>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let rows = match pool {
        Pool::Sqlite(p) => bound!(sql, args, sqlx::query_as).fetch_all(p).await,
        Pool::Postgres(p) => bound!(sql, args, sqlx::query_as).fetch_all(p).await,
    };
    rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub(crate) async fn one<T>(pool: &Pool, sql: &str, args: &[Arg]) -> T
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut rows = all(pool, sql, args).await;
    assert_eq!(rows.len(), 1, "{sql}: expected one row");
    rows.remove(0)
}

pub(crate) async fn exec(pool: &Pool, sql: &str, args: &[Arg]) -> u64 {
    let done = match pool {
        Pool::Sqlite(p) => bound!(sql, args, sqlx::query)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        Pool::Postgres(p) => bound!(sql, args, sqlx::query)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
    };
    done.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A pool on a database URL of either backend (e.g. after the server was killed).
pub(crate) async fn connect(url: &str) -> Pool {
    if url.starts_with("sqlite:") {
        Pool::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
    } else {
        Pool::Postgres(sqlx::PgPool::connect(url).await.unwrap())
    }
}

pub(crate) async fn close(pool: Pool) {
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Postgres(p) => p.close().await,
    }
}

/// Families whose live token is not one and new: a legacy family with more than one
/// unconsumed token, or a named family (migration 0015) without a head or whose head is
/// its predecessor again. A named family holds one head by construction; whether the
/// tokens the clients got go on is checked by each test through the API.
pub(crate) async fn branched_families(pool: &Pool) -> Vec<(String, i64)> {
    all(
        pool,
        "SELECT family_id, COUNT(*) FROM refresh_tokens WHERE consumed_at IS NULL \
         GROUP BY family_id HAVING COUNT(*) > 1
         UNION ALL
         SELECT id, 0 FROM refresh_families WHERE handle_hash IS NOT NULL \
         AND (head_hash IS NULL OR head_hash = prev_hash)",
        &[],
    )
    .await
}

/// Where a named refresh token stands on disk: `Some(true)` for its family's head,
/// `Some(false)` for the head's predecessor, `None` for neither (or no such family).
pub(crate) async fn named_token_state(pool: &Pool, token: &str) -> Option<bool> {
    let tessera::store::sessions::TokenKey::Named { handle, hash } =
        tessera::domain::rotation::Presented::parse(token).key
    else {
        panic!("not a named refresh token: {token}");
    };
    let (head, prev): (Vec<u8>, Option<Vec<u8>>) = one(
        pool,
        "SELECT head_hash, prev_hash FROM refresh_families WHERE handle_hash = $1",
        &[handle.to_vec().into()],
    )
    .await;
    if head == hash {
        Some(true)
    } else if prev.as_deref() == Some(hash.as_slice()) {
        Some(false)
    } else {
        None
    }
}

pub(crate) async fn revoked_families(pool: &Pool) -> i64 {
    let (n,): (i64,) = one(
        pool,
        "SELECT COUNT(*) FROM refresh_families WHERE revoked_at IS NOT NULL",
        &[],
    )
    .await;
    n
}
