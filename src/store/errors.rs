//! What a storage call's failure means: the error type, and the classification of
//! database errors into conflicts to retry and outages to answer with 503.

use std::time::Duration;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// A migration failed; the start stops.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A uniqueness rule was broken (a name or id already taken).
    #[error("unique constraint `{0}` violated")]
    Conflict(String),
    /// A stored value does not parse (a JSON list, a state name): the row was not written by
    /// this version.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be reached at start; the text says which.
    #[error("cannot reach the database {0}")]
    Unreachable(String, #[source] sqlx::Error),
    /// A `database_url` scheme other than `sqlite:` and `postgres://`.
    #[error("unsupported DATABASE_URL `{0}`: tessera speaks sqlite: and postgres://")]
    UnsupportedUrl(String),
}

/// Maps unique-constraint violations to [`StoreError::Conflict`] by constraint name.
pub fn conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            // SQLite names the columns ("users.username"); map them to the constraint
            // name PostgreSQL reports.
            let msg = db.message();
            let name = if msg.contains("users.username") {
                "users_username_key"
            } else if msg.contains("clients.id") {
                "clients_pkey"
            } else {
                db.constraint().unwrap_or("unique")
            };
            return StoreError::Conflict(name.to_string());
        }
    }
    StoreError::Db(e)
}

/// The sqlx errors in an error's source chain, outermost first.
fn sqlx_errors<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e sqlx::Error> {
    std::iter::successors(Some(e), |err| err.source())
        .filter_map(|err| err.downcast_ref::<sqlx::Error>())
}

/// The SQLSTATE of the first database error in the chain.
fn sqlstate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    sqlx_errors(e).find_map(|err| match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    })
}

/// Whether an error is a PostgreSQL serialization failure (40001) or deadlock
/// (40P01): the database rolled the whole transaction back, so running it again
/// from the start is correct.
pub fn is_conflict(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01"))
}

/// Runs a whole write transaction again (up to three more times, after a short
/// pause) when the database aborted it as a serialization failure or deadlock.
/// `attempt` must begin its own transaction. What still fails answers 503.
pub async fn retry_conflicts<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut tries = 0u64;
    loop {
        match attempt().await {
            Err(e) if tries < 3 && is_conflict(&e) => {
                tries += 1;
                tracing::debug!(tries, "transaction aborted by a conflict; running it again");
                tokio::time::sleep(Duration::from_millis(2 * tries)).await;
            }
            other => return other,
        }
    }
}

/// Whether an error means the database is unreachable, restarting or overloaded
/// (answer 503, the client may retry): pool exhaustion, a broken connection,
/// PostgreSQL shutting down or starting up, or a conflict that outlived its retries.
pub fn is_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let transport = sqlx_errors(e).any(|err| {
        matches!(
            err,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_)
        )
    });
    // 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now.
    transport
        || is_conflict(e)
        || sqlstate(e).is_some_and(|c| c.starts_with("08") || c.starts_with("57P0"))
}
