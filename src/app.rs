//! The composition root: builds the state, spawns the background work and serves.
//! `tessera serve` and the tests' `TestApp` both start tessera through here.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::{Core, StartError};

/// Builds the state: connects, migrates, loads (or creates) the signing keys.
pub async fn build(cfg: Config) -> Result<Arc<Core>, StartError> {
    Core::open(cfg).await
}

/// Binds the public port (`bind`) and the operator listener (`ops_bind`); the
/// message names the setting to fix.
pub async fn listen(cfg: &Config) -> Result<(TcpListener, TcpListener), String> {
    let bind = |addr, var: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} ({var}): {e}"))
    };
    let public = bind(cfg.bind, "TESSERA_BIND").await?;
    let ops = bind(cfg.ops_bind, "TESSERA_OPS_BIND").await?;
    Ok((public, ops))
}

/// Records the revocation policy, spawns the background jobs, serves the public
/// port and the operator listener until `shutdown` resolves, then drains (see
/// [`crate::http::serve`]), stops the background jobs and closes the database.
pub async fn serve(
    core: Arc<Core>,
    listener: TcpListener,
    ops: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    core.users
        .record_policy()
        .await
        .map_err(std::io::Error::other)?;
    crate::domain::console::register(&core)
        .await
        .map_err(std::io::Error::other)?;
    let background = crate::background::spawn(core.clone());
    crate::http::serve(core.clone(), listener, ops, shutdown).await;
    background.abort();
    if let Err(e) = core.feed.reach.withdraw(&core.db).await {
        tracing::warn!(error = %e, "withdrawing the feed's reach");
    }
    core.ssf.release_leases().await;
    core.db.close().await;
    Ok(())
}
