//! SQLite's reader connections, handed out without sqlx's pool.
//!
//! sqlx 0.8 pings a connection every time one goes back to its pool (a round trip to
//! the connection's worker thread, from a task spawned for it), in case a query
//! dropped half-way left it in a bad state. An SQLite connection is a file handle on a
//! thread of its own: it cannot go stale, and a query dropped half-way leaves nothing
//! behind, because its worker runs commands in order, stops sending rows nobody
//! reads and resets the statement before it takes the next command. Readers never
//! open a transaction. So here a connection goes straight back to the idle list:
//! every read is one round trip to its thread instead of two (a rotation of a refresh
//! token does one read; the ping cost it 8–10 % of its throughput).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Up to `size` reader connections, opened when first needed and kept open.
#[derive(Debug)]
pub struct Readers {
    opts: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    /// One permit per connection that may be in use: at most `size` are ever open.
    permits: Semaphore,
    size: u32,
    acquire_timeout: Duration,
}

/// A reader connection lent to one caller; it goes back to the idle list when dropped.
pub struct Reader<'a> {
    readers: &'a Readers,
    conn: Option<SqliteConnection>,
    _permit: SemaphorePermit<'a>,
}

impl Readers {
    /// Opens one connection now (so a bad path or permission fails at start) and
    /// the others as load needs them.
    pub async fn open(
        opts: SqliteConnectOptions,
        size: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let first = opts.connect().await?;
        Ok(Self {
            opts,
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(size as usize),
            size,
            acquire_timeout,
        })
    }

    /// A connection, waiting up to the acquire timeout for one to be free
    /// (`PoolTimedOut`, as sqlx's pool says it, which the HTTP layer answers with 503).
    pub async fn acquire(&self) -> Result<Reader<'_>, sqlx::Error> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.opts.connect().await?,
        };
        Ok(Reader {
            readers: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Connections open now, idle or in use (for metrics).
    pub fn size(&self) -> u32 {
        let in_use = self.size as usize - self.permits.available_permits();
        (in_use + self.lock().len()) as u32
    }

    /// Idle connections now (for metrics).
    pub fn num_idle(&self) -> usize {
        self.lock().len()
    }

    /// Refuses new acquires and closes the idle connections; one in use is closed
    /// when its holder lets it go.
    pub async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.lock());
        for conn in idle {
            conn.close().await.ok();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("held until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.readers.permits.is_closed() {
            self.readers.lock().push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn one(timeout_ms: u64) -> Readers {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        Readers::open(opts, 1, Duration::from_millis(timeout_ms))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_reader_waits_for_a_free_connection_then_times_out() {
        let readers = one(50).await;
        let held = readers.acquire().await.unwrap();
        assert!(matches!(
            readers.acquire().await.err(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        drop(held);
        let _again = readers.acquire().await.unwrap();
        assert_eq!((readers.size(), readers.num_idle()), (1, 0));
    }

    #[tokio::test]
    async fn a_query_dropped_half_way_leaves_the_connection_answering_the_next_one() {
        let readers = one(5_000).await;
        let slow = async {
            let mut r = readers.acquire().await.unwrap();
            sqlx::query_as::<_, (i64,)>(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000)
                 SELECT count(*) FROM n",
            )
            .fetch_one(&mut *r)
            .await
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(20), slow)
                .await
                .is_err(),
            "the slow query should still be running when dropped"
        );
        // The same (only) connection: the dropped query's count must not come back here.
        let mut r = readers.acquire().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT 42")
            .fetch_one(&mut *r)
            .await
            .unwrap();
        assert_eq!(n, 42);
        assert_eq!(readers.size(), 1);
    }

    #[tokio::test]
    async fn closed_readers_refuse_new_work() {
        let readers = one(50).await;
        readers.close().await;
        assert!(matches!(
            readers.acquire().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
        assert_eq!(readers.num_idle(), 0);
    }
}
