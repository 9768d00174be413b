//! Storage: the SQL and nothing else. Domain code calls these functions and owns
//! the transaction boundaries.

pub mod clients;
pub mod events;
pub mod keys;
pub mod sessions;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::config::Config;

pub type Tx = Transaction<'static, Sqlite>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unique constraint `{0}` violated")]
    Conflict(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(
        "unsupported DATABASE_URL `{0}`: tessera speaks sqlite:// (PostgreSQL support is planned)"
    )]
    UnsupportedUrl(String),
}

/// Maps unique-constraint violations to [`StoreError::Conflict`] by constraint name.
pub fn conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            // SQLite names the columns ("users.username"); map them to the constraint.
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

/// Readers share a pool; every write goes through one writer connection, which
/// serialises writers inside this process without SQLITE_BUSY retries and lets
/// a read-then-write transaction never lose its snapshot.
#[derive(Clone, Debug)]
pub struct Db {
    pub read: SqlitePool,
    write: SqlitePool,
}

impl Db {
    pub async fn connect(cfg: &Config) -> Result<Self, StoreError> {
        let url = cfg.database_url.as_str();
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let synchronous = match cfg.sqlite_synchronous.as_str() {
            "normal" => SqliteSynchronous::Normal,
            "extra" => SqliteSynchronous::Extra,
            _ => SqliteSynchronous::Full,
        };
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .statement_cache_capacity(256);
        if let Some(dir) = opts.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
            }
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(cfg.db_max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Self { read, write })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.write).await?;
        Ok(())
    }

    /// A write transaction that takes the database write lock up front
    /// (`BEGIN IMMEDIATE`), so another process (the CLI) cannot invalidate its reads.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The writer connection, for single-statement writes outside a transaction.
    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

pub fn from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("expected a JSON list, got {text:.40}")))
}

/// Whether an error means the database is unreachable or overloaded (answer 503, retry).
pub fn is_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) =
            err.downcast_ref::<sqlx::Error>()
        {
            return true;
        }
        cur = err.source();
    }
    false
}
