//! A resource server protected by tessera-verify.
//!
//! `cargo run --release -p tessera-verify --example resource_server -- --issuer URL
//! --audience AUD --bind ADDR --client-id ID --client-secret SECRET [--max-staleness SECONDS]`
//!
//! `GET /whoami` → 200 `{"sub", "roles"}` or the RFC 6750 401;
//! `GET /roles/{role}` → 200 with that role, 403 `insufficient_scope` without;
//! `GET /readyz` → 200 while the feed is fresh, 503 otherwise, with the feed's health.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{Value, json};
use tessera_verify::{Authenticated, Refusal, Settings, Verifier};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    issuer: String,
    #[arg(long)]
    audience: String,
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: String,
    /// A confidential client with capability `events`.
    #[arg(long)]
    client_id: String,
    #[arg(long, env = "TESSERA_VERIFY_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Seconds without news from the feed before tokens are refused.
    #[arg(long, default_value_t = 30)]
    max_staleness: u64,
}

async fn whoami(auth: Authenticated) -> Json<Value> {
    Json(json!({"sub": auth.sub, "roles": auth.roles}))
}

async fn role(auth: Authenticated, Path(role): Path<String>) -> Result<Json<Value>, Refusal> {
    auth.require_role(&role)?;
    Ok(Json(json!({"sub": auth.sub, "role": role})))
}

async fn readyz(State(verifier): State<Verifier>) -> (StatusCode, Json<Value>) {
    let h = verifier.health();
    let status = if h.stale {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "connected": h.connected, "synced": h.synced, "stale": h.stale,
        "lag_ms": h.lag.map(|d| d.as_millis() as u64), "last_event_id": h.last_event_id,
        "connections": h.connections, "jwks_fetches": h.jwks_fetches,
    });
    (status, Json(body))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut settings = Settings::new(
        args.issuer,
        args.audience,
        args.client_id,
        args.client_secret,
    );
    settings.max_staleness = Duration::from_secs(args.max_staleness);
    let verifier = Verifier::start(settings).await?;
    if !verifier.ready(Duration::from_secs(10)).await {
        tracing::warn!("the event feed has not caught up yet; tokens are refused until it does");
    }
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/roles/{role}", get(role))
        .route("/readyz", get(readyz))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&args.bind).await?;
    tracing::info!("resource server listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
