//! Work the server does on its own: noticing changes made by other processes
//! (key rotations, events written by the CLI) and housekeeping.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::domain::{Core, feed};
use crate::store;

/// The background jobs (key rotation, pruning, the feed); dropping it leaves them running.
pub struct Background(JoinSet<()>);

impl Background {
    /// Stops every job at its next await point, for a clean shutdown.
    pub fn abort(mut self) {
        self.0.abort_all();
    }
}

/// Starts the periodic jobs of one instance on the runtime.
pub fn spawn(core: Arc<Core>) -> Background {
    let mut set = JoinSet::new();
    set.spawn(crate::domain::tail::run(core.feed.clone()));
    set.spawn(watch_event_log(core.clone()));
    set.spawn(watch_keys(core.clone()));
    set.spawn(watch_clients(core.clone()));
    if let Some(pool) = core.db.listener_pool() {
        set.spawn(listen(core.clone(), pool.clone()));
    }
    if core.db.backend() == store::Backend::Sqlite {
        set.spawn(checkpoints(core.clone()));
    }
    set.spawn(crate::domain::ssf::push::run(core.ssf.clone()));
    set.spawn(crate::domain::reach::run(
        core.feed.reach.clone(),
        core.db.clone(),
        core.clock.clone(),
    ));
    set.spawn(housekeeping(core));
    Background(set)
}

/// Wakes subscribers when the log grew, whoever wrote it. Cheap: one indexed MAX(id).
async fn watch_event_log(core: Arc<Core>) {
    let mut last = store::events::last_id(&core.db.read).await.unwrap_or(0);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        match store::events::last_id(&core.db.read).await {
            Ok(id) if id != last => {
                last = id;
                // The tail reads it unless it already has (a commit here woke it).
                if id > core.feed.tail.last() {
                    core.events.wake();
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "event log watcher"),
        }
    }
}

/// PostgreSQL: every instance hears every other's commits at once through
/// `LISTEN/NOTIFY` (the polling above stays as the safety net). Notifications are
/// only a wake-up call: subscribers read the log by id, so one lost while the
/// listener reconnects loses no event; after a reconnect everyone is woken to
/// catch up.
async fn listen(core: Arc<Core>, pool: sqlx::PgPool) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "event listener: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(store::NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "event listener: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything committed before LISTEN took effect is found by reading the log.
        core.events.wake();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.payload() == "clients" => core.clients.forget_cached(),
                Ok(Some(n)) if n.payload() == "keys" => {
                    core.events.wake();
                    if let Err(e) = core.signing.reload_keys().await {
                        tracing::error!(error = %crate::error_chain(&e), "reloading signing keys");
                    }
                }
                Ok(Some(_)) => core.events.wake(),
                // The connection dropped; the next call reconnects and re-listens.
                Ok(None) => {
                    tracing::warn!("event listener: connection lost; reconnecting");
                    core.events.wake();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event listener failed; reconnecting");
                    core.events.wake();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// Drops the client cache within 200 ms of a client changed by another process (the
/// CLI, another instance): one primary-key read of the client version.
async fn watch_clients(core: Arc<Core>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if let Err(e) = core.clients.check_version().await {
            tracing::warn!(error = %e, "client version watcher");
        }
    }
}

/// Picks up key changes made by another process within `key_check_interval`.
async fn watch_keys(core: Arc<Core>) {
    let mut tick = tokio::time::interval(core.cfg.key_check_interval);
    loop {
        tick.tick().await;
        if let Err(e) = core.signing.maintain_keys().await {
            tracing::error!(error = %crate::error_chain(&e), "signing key maintenance failed; keeping the current key set");
        }
    }
}

/// SQLite: moves the WAL into the database file off the request path. Done by the
/// committing writer, a checkpoint of a busy WAL stalled every rotation behind it
/// (p99 17 ms under refresh load); here it overlaps with the writer instead.
async fn checkpoints(core: Arc<Core>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = core.db.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint");
        }
    }
}

async fn housekeeping(core: Arc<Core>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = core.clock.now();
        let grace = core.cfg.refresh_reuse_grace.as_secs() as i64;
        let pruned = async {
            let mut tx = core.db.begin().await?;
            let retained_from = feed::retained_from(now, core.cfg.event_retention);
            store::events::prune(&mut tx, retained_from).await?;
            tx.commit().await.map_err(store::StoreError::from)
        };
        if let Err(e) = pruned.await {
            tracing::warn!(error = %e, "pruning the event log");
        }
        if let Err(e) =
            store::sessions::forget_sealed_successors(core.db.writer(), now - grace - 1).await
        {
            tracing::warn!(error = %e, "clearing expired grace-window successors");
        }
        // Sessions that ended a day ago (revoked or past their absolute lifetime) and
        // their tokens: a token of a forgotten family is unknown, which answers exactly
        // as a revoked one does (invalid_grant, inactive).
        if let Err(e) = store::sessions::forget_ended(&core.db, now - 86_400).await {
            tracing::warn!(error = %e, "removing ended sessions");
        }
        // Authorization codes a day past their expiry: replays of them are long moot.
        if let Err(e) = store::codes::forget_expired(core.db.writer(), now - 86_400).await {
            tracing::warn!(error = %e, "removing expired authorization codes");
        }
    }
}
