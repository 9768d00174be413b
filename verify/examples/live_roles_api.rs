//! The live-roles demo's API and its single-page app (examples/live-roles/, started by
//! `examples/live-roles/run.sh`).
//!
//! Two listeners in one process, so the demo needs no other static server:
//! - `--bind`: the API, protected by tessera-verify, with CORS for the app's origin:
//!   `GET /whoami` for any signed-in user, `GET /publish` for users with `--role`
//!   (403 `insufficient_scope` without), `GET /readyz` with the feed's health;
//! - `--app-bind`: the app's files from `--app-dir` (`index.html`, `app.js`) and
//!   `/config.json` (issuer, client id, API URL, role), so the page needs no build step.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{Value, json};
use tessera_verify::{Authenticated, Refusal, Settings, Verifier};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    issuer: String,
    /// The `aud` the app's tokens carry (the API's URL in the demo).
    #[arg(long)]
    audience: String,
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: String,
    /// A confidential client with capability `events`.
    #[arg(long)]
    client_id: String,
    #[arg(long, env = "TESSERA_VERIFY_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Where the app is served; its origin is the one CORS allows.
    #[arg(long, default_value = "127.0.0.1:8091")]
    app_bind: String,
    /// The folder holding index.html and app.js.
    #[arg(long)]
    app_dir: PathBuf,
    /// The public client the app signs in as.
    #[arg(long, default_value = "live-roles")]
    app_client_id: String,
    /// The role `GET /publish` requires.
    #[arg(long, default_value = "editor")]
    role: String,
}

struct Demo {
    role: String,
    /// `http://{app_bind}`: the one origin allowed to call the API from a browser.
    origin: HeaderValue,
    app_dir: PathBuf,
    config: Value,
}

/// The API's state: the verifier (for the `Authenticated` extractor) and the demo's settings.
#[derive(Clone)]
struct Api {
    verifier: Verifier,
    demo: Arc<Demo>,
}

impl FromRef<Api> for Verifier {
    fn from_ref(api: &Api) -> Verifier {
        api.verifier.clone()
    }
}

async fn whoami(auth: Authenticated) -> Json<Value> {
    Json(json!({"sub": auth.sub, "roles": auth.roles, "message": "hello, signed-in user"}))
}

async fn publish(State(api): State<Api>, auth: Authenticated) -> Result<Json<Value>, Refusal> {
    auth.require_role(&api.demo.role)?;
    Ok(Json(
        json!({"sub": auth.sub, "message": format!("published (you hold {})", api.demo.role)}),
    ))
}

async fn readyz(State(api): State<Api>) -> (StatusCode, Json<Value>) {
    let h = api.verifier.health();
    let status = if h.stale {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({
            "connected": h.connected, "synced": h.synced, "stale": h.stale,
            "last_event_id": h.last_event_id,
        })),
    )
}

/// CORS for the app's origin only: preflights answer 204, answers carry the origin and
/// expose `WWW-Authenticate` so the app can read why a token was refused.
async fn cors(State(demo): State<Arc<Demo>>, request: Request, next: Next) -> Response {
    let allowed = request.headers().get(header::ORIGIN) == Some(&demo.origin);
    if request.method() == Method::OPTIONS {
        if !allowed {
            return StatusCode::FORBIDDEN.into_response();
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, demo.origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, demo.origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    response
}

/// One of the app's two files, read at each request so edits show on reload.
async fn file(demo: &Demo, name: &str, content_type: &'static str) -> Response {
    // Two small local files: a blocking read is shorter than a spawned task.
    match std::fs::read(demo.app_dir.join(name)) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("reading {name}: {e}");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

fn app_router(demo: Arc<Demo>) -> Router {
    let index = demo.clone();
    let script = demo.clone();
    let config = demo.config.clone();
    Router::new()
        .route(
            "/",
            get(move || async move { file(&index, "index.html", "text/html; charset=utf-8").await }),
        )
        .route(
            "/app.js",
            get(move || async move {
                file(&script, "app.js", "text/javascript; charset=utf-8").await
            }),
        )
        .route("/config.json", get(move || async move { Json(config) }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let api_listener = tokio::net::TcpListener::bind(&args.bind).await?;
    let app_listener = tokio::net::TcpListener::bind(&args.app_bind).await?;
    let api_url = format!("http://{}", api_listener.local_addr()?);
    let app_url = format!("http://{}", app_listener.local_addr()?);
    let demo = Arc::new(Demo {
        role: args.role.clone(),
        origin: HeaderValue::from_str(&app_url)?,
        app_dir: args.app_dir,
        config: json!({
            "issuer": args.issuer, "clientId": args.app_client_id, "api": api_url,
            "role": args.role, "redirectUri": format!("{app_url}/"),
        }),
    });
    let settings = Settings::new(
        args.issuer,
        args.audience,
        args.client_id,
        args.client_secret,
    );
    let verifier = Verifier::start(settings).await?;
    if !verifier.ready(Duration::from_secs(10)).await {
        tracing::warn!("the event feed has not caught up yet; tokens are refused until it does");
    }
    let api = Router::new()
        .route("/whoami", get(whoami))
        .route("/publish", get(publish))
        .route("/readyz", get(readyz))
        .layer(middleware::from_fn_with_state(demo.clone(), cors))
        .with_state(Api {
            verifier,
            demo: demo.clone(),
        });
    tracing::info!("API on {api_url}, app on {app_url}");
    let shutdown = || async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let app = axum::serve(app_listener, app_router(demo)).with_graceful_shutdown(shutdown());
    let api = axum::serve(api_listener, api).with_graceful_shutdown(shutdown());
    tokio::try_join!(api.into_future(), app.into_future())?;
    Ok(())
}
