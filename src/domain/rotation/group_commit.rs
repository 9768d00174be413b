//! Group commit for first uses of refresh tokens: requests queue here, and one
//! task rotates whatever has queued in one statement on the writer connection.
//! Under load that is one database round trip (and one WAL commit) for many
//! rotations instead of one each; alone, a request waits for nobody.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::store;
use crate::store::Db;
use crate::store::sessions::Advance;

/// The queue of first-use rotations and the task that commits them in batches.
pub struct GroupCommit {
    jobs: mpsc::Sender<(Advance, oneshot::Sender<bool>)>,
}

/// Most rotations in one statement.
const BATCH: usize = 64;

impl GroupCommit {
    /// Spawns the batcher's task on the current runtime; it commits for every handle.
    pub fn start(db: Db) -> Self {
        let (jobs, mut rx) = mpsc::channel::<(Advance, oneshot::Sender<bool>)>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // A family twice in one batch: only its first request may try; the
                // others take the locked path (grace window, reuse or a lost race).
                let mut seen = HashSet::new();
                let (unique, dups): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|(c, _)| seen.insert(c.0));
                for (_, reply) in dups {
                    let _ = reply.send(false);
                }
                let (rows, replies): (Vec<Advance>, Vec<_>) = unique.into_iter().unzip();
                // On error everyone takes the locked path, which reports it properly.
                let won: HashSet<Vec<u8>> = store::sessions::advance(db.writer(), &rows)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                for (c, reply) in rows.iter().zip(replies) {
                    let _ = reply.send(won.contains(c.0.as_slice()));
                }
            }
        });
        Self { jobs }
    }

    /// Whether this request rotated the token (false: lost a race, the family
    /// was revoked, or the batch failed; the caller decides under the write lock).
    pub(super) async fn advance(&self, job: Advance) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send((job, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
