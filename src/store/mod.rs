//! Storage: the SQL and nothing else. Domain code calls these functions and owns
//! the transaction boundaries.

pub mod audit;
pub mod browser;
pub mod clients;
pub mod codes;
pub mod console;
pub mod events;
pub mod factors;
/// Signing keys, sealed under the KEK, and their states.
pub mod keys;
pub mod lifecycle;
pub mod pages;
pub mod passkeys;
pub mod sessions;
pub mod ssf;
pub mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::config::Config;

mod errors;
mod readers;
pub use errors::{StoreError, conflict, is_conflict, is_unavailable, retry_conflicts};
pub use readers::Readers;

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, one writer.
    Sqlite,
    /// PostgreSQL: several instances on one database.
    Postgres,
}

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub enum Pool {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl Pool {
    /// Connections open now, idle or in use (for metrics).
    pub fn size(&self) -> u32 {
        match self {
            Pool::Sqlite(p) => p.size(),
            Pool::Postgres(p) => p.size(),
        }
    }

    /// Idle connections now (for metrics).
    pub fn num_idle(&self) -> usize {
        match self {
            Pool::Sqlite(p) => p.num_idle(),
            Pool::Postgres(p) => p.num_idle(),
        }
    }

    async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A transaction of either backend. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    /// SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Makes the transaction's writes durable; dropped uncommitted, it rolls back.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

/// Where a store function runs its SQL: a pool, or a connection or transaction
/// held by the caller. Store functions take `impl Into<Exec>`, so callers pass
/// `&db.read` or `&mut tx` alike.
pub enum Exec<'c> {
    /// A SQLite pool.
    SqlitePool(&'c SqlitePool),
    /// SQLite's readers: a statement takes one for itself.
    SqliteReaders(&'c Readers),
    /// A PostgreSQL pool.
    PgPool(&'c PgPool),
    /// An open SQLite connection or transaction.
    Sqlite(&'c mut SqliteConnection),
    /// An open PostgreSQL connection or transaction.
    Postgres(&'c mut PgConnection),
}

impl Exec<'_> {
    /// Reborrows, for a function that runs several statements on one executor.
    pub fn re(&mut self) -> Exec<'_> {
        match self {
            Exec::SqlitePool(p) => Exec::SqlitePool(p),
            Exec::SqliteReaders(r) => Exec::SqliteReaders(r),
            Exec::PgPool(p) => Exec::PgPool(p),
            Exec::Sqlite(c) => Exec::Sqlite(c),
            Exec::Postgres(c) => Exec::Postgres(c),
        }
    }

    /// Which dialect the statements must be written in.
    pub fn backend(&self) -> Backend {
        match self {
            Exec::SqlitePool(_) | Exec::SqliteReaders(_) | Exec::Sqlite(_) => Backend::Sqlite,
            Exec::PgPool(_) | Exec::Postgres(_) => Backend::Postgres,
        }
    }
}

impl<'c> From<&'c Pool> for Exec<'c> {
    fn from(p: &'c Pool) -> Self {
        match p {
            Pool::Sqlite(p) => Exec::SqlitePool(p),
            Pool::Postgres(p) => Exec::PgPool(p),
        }
    }
}

/// Where reads go: SQLite's [`Readers`] (the writer is apart, so reads never wait for
/// a write), or PostgreSQL's one pool.
#[derive(Clone, Debug)]
pub enum ReadPool {
    /// SQLite.
    Sqlite(Arc<Readers>),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl ReadPool {
    /// Connections open now, idle or in use (for metrics).
    pub fn size(&self) -> u32 {
        match self {
            ReadPool::Sqlite(r) => r.size(),
            ReadPool::Postgres(p) => p.size(),
        }
    }

    /// Idle connections now (for metrics).
    pub fn num_idle(&self) -> usize {
        match self {
            ReadPool::Sqlite(r) => r.num_idle(),
            ReadPool::Postgres(p) => p.num_idle(),
        }
    }

    async fn close(&self) {
        match self {
            ReadPool::Sqlite(r) => r.close().await,
            ReadPool::Postgres(p) => p.close().await,
        }
    }
}

impl<'c> From<&'c ReadPool> for Exec<'c> {
    fn from(p: &'c ReadPool) -> Self {
        match p {
            ReadPool::Sqlite(r) => Exec::SqliteReaders(r),
            ReadPool::Postgres(p) => Exec::PgPool(p),
        }
    }
}

impl<'c> From<&'c mut Tx> for Exec<'c> {
    fn from(t: &'c mut Tx) -> Self {
        match t {
            Tx::Sqlite(t) => Exec::Sqlite(t),
            Tx::Postgres(t) => Exec::Postgres(t),
        }
    }
}

/// Runs `$body` with `$e` bound to the executor inside `$exec` (an [`Exec`]):
/// the SQL is written once and compiled for each backend. Placeholders are
/// `$1, $2, ...`, which both SQLite and PostgreSQL accept.
macro_rules! on {
    ($exec:expr, |$e:ident| $body:expr) => {
        match $exec {
            $crate::store::Exec::SqlitePool($e) => $body,
            $crate::store::Exec::SqliteReaders(readers) => match readers.acquire().await {
                Ok(mut reader) => {
                    let $e = &mut *reader;
                    $body
                }
                Err(err) => Err(err),
            },
            $crate::store::Exec::PgPool($e) => $body,
            $crate::store::Exec::Sqlite($e) => $body,
            $crate::store::Exec::Postgres($e) => $body,
        }
    };
}
pub(crate) use on;

/// The SQLite file holds password hashes: its folder is created 0700, the file
/// 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
/// database file's mode), and an existing file more open than that is narrowed.
fn private_sqlite_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // Only ever a new file: closing a descriptor of an open database drops every POSIX
    // lock this process holds on it, SQLite's too, and another process could then
    // take the database for unused and delete the WAL under this one (its commits lost).
    match std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        other => drop(other?),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// The PostgreSQL channel every instance listens on; the payload names what changed.
pub const NOTIFY_CHANNEL: &str = "tessera";

/// Write transactions that read and then write take this transaction-scoped
/// advisory lock on PostgreSQL: the same one-writer-at-a-time discipline SQLite's
/// `BEGIN IMMEDIATE` gives, across every instance. It also makes security event
/// ids commit in order, so a reader resuming "after id N" never skips a row that
/// committed late. The hot rotation path is a single conditional statement and
/// does not take it.
const WRITE_LOCK: i64 = 0x0074_6573_7365_7261; // "tessera"

/// SQLite: readers share a pool and every write goes through one writer connection,
/// which serialises writers inside this process without SQLITE_BUSY retries and
/// lets a read-then-write transaction never lose its snapshot. PostgreSQL: one
/// pool serves both.
#[derive(Clone, Debug)]
pub struct Db {
    /// The readers (on SQLite the writer is apart, so reads never wait for a write).
    pub read: ReadPool,
    write: Pool,
    /// PostgreSQL: a pool of one for the `LISTEN` connection, apart from the requests' pool.
    listen: Option<PgPool>,
}

impl Db {
    /// Opens the pools for `database_url`, with the configured size and timeouts.
    pub async fn connect(cfg: &Config) -> Result<Self, StoreError> {
        let url = cfg.database_url.as_str();
        let acquire = cfg.db_acquire_timeout;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?
                .statement_cache_capacity(256)
                .log_statements(tracing::log::LevelFilter::Trace);
            // One direct connection first: its error says why (refused, unknown host,
            // authentication, no such database) where a pool would only time out.
            let target = format!(
                "postgres://{}@{}:{}/{}",
                opts.get_username(),
                opts.get_host(),
                opts.get_port(),
                opts.get_database().unwrap_or_default()
            );
            let probe = tokio::time::timeout(acquire, opts.connect())
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut))
                .map_err(|e| StoreError::Unreachable(target.clone(), e))?;
            probe.close().await.ok();
            let listen = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(acquire)
                .connect_lazy_with(opts.clone());
            let pool = PgPoolOptions::new()
                .max_connections(cfg.db_max_connections)
                .min_connections(1)
                .acquire_timeout(acquire)
                // A connection broken by a server restart is found out here, not by a request.
                .test_before_acquire(true)
                .connect_with(opts)
                .await
                .map_err(|e| StoreError::Unreachable(target, e))?;
            return Ok(Self {
                read: ReadPool::Postgres(pool.clone()),
                write: Pool::Postgres(pool),
                listen: Some(listen),
            });
        }
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
        private_sqlite_file(opts.get_filename()).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        // An SQLite connection is a file handle on a thread of its own: it does not go
        // stale, so no ping (a round trip to that thread) before every query.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(acquire)
            // Checkpoints are the background's job (`Db::checkpoint`, every 200 ms), so
            // a commit never waits for one; the writer checkpoints itself only if the
            // WAL ever reaches 20,000 pages (80 MiB) without them.
            .connect_with(opts.clone().pragma("wal_autocheckpoint", "20000"))
            .await?;
        let read = Readers::open(opts, cfg.db_max_connections, acquire).await?;
        Ok(Self {
            read: ReadPool::Sqlite(Arc::new(read)),
            write: Pool::Sqlite(write),
            listen: None,
        })
    }

    /// Which dialect the statements must be written in.
    pub fn backend(&self) -> Backend {
        match self.write {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the pending migrations of this dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.write {
            Pool::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// A write transaction that holds the database's write lock from its start, so
    /// no other writer (another request, the CLI, another instance) can invalidate
    /// what it reads: `BEGIN IMMEDIATE` on SQLite, [`WRITE_LOCK`] on PostgreSQL.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin_plain().await?;
        if let Tx::Postgres(t) = &mut tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut **t)
                .await?;
        }
        Ok(tx)
    }

    /// A write transaction for statements that only insert or update conditionally,
    /// which need atomicity but not the write lock (on SQLite the one writer
    /// connection serialises them anyway).
    pub async fn begin_plain(&self) -> Result<Tx, StoreError> {
        // Begun on a task of its own. sqlx makes the `Transaction` (whose drop rolls back)
        // only once the `BEGIN` has answered, and on SQLite a custom `BEGIN` waits once
        // more after that: a caller dropped in between (a client gone mid-request, the
        // shutdown aborting a job) left the connection inside a transaction nothing ends,
        // so every later write on the one writer failed or never committed. Dropped, the
        // caller now leaves the task to finish, and its unclaimed `Transaction` rolls back
        // (tests/api/hardening/hardening_cancel.rs).
        let write = self.write.clone();
        let begun = tokio::spawn(async move {
            Ok::<_, sqlx::Error>(match write {
                Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
                Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
            })
        });
        match begun.await {
            Ok(tx) => Ok(tx?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => Err(StoreError::Db(sqlx::Error::PoolClosed)),
        }
    }

    /// PostgreSQL: where the `LISTEN` connection comes from (None on SQLite).
    pub fn listener_pool(&self) -> Option<&PgPool> {
        self.listen.as_ref()
    }

    /// The writer, for single-statement writes outside a transaction.
    pub fn writer(&self) -> &Pool {
        &self.write
    }

    /// SQLite: copies committed WAL pages into the database file (`PASSIVE`: it never
    /// blocks the writer or a reader) on a reader connection. Returns the pages
    /// copied. Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<i64, StoreError> {
        let ReadPool::Sqlite(readers) = &self.read else {
            return Ok(0);
        };
        let (_busy, _log, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *readers.acquire().await?)
                .await?;
        Ok(copied)
    }

    /// Whether the database answers a trivial query now (for `/healthz`).
    pub async fn ping(&self) -> bool {
        on!(Exec::from(&self.read), |e| sqlx::query("SELECT 1")
            .execute(e)
            .await
            .map(drop))
        .is_ok()
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        if let Some(l) = &self.listen {
            l.close().await;
        }
        self.write.close().await;
        self.read.close().await;
    }
}

/// A list as the JSON text stored in a column.
pub fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

/// The JSON text of a list column; `Corrupt` when it is not one.
pub fn from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("expected a JSON list, got {text:.40}")))
}
