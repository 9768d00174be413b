//! The `tessera` command line. Ids and secrets alone go to stdout; everything
//! else to stderr; failures exit non-zero with a one-line reason.

mod audit;
mod client;
mod events;
mod sessions;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, Layers, SigningAlg};
use crate::domain::audit::{Actor, Trail};
use crate::domain::clock::rfc3339;
use crate::domain::keys::Keys;
use crate::domain::users::Users;
use crate::domain::{Core, StartError};
use audit::{AuditArgs, audit};
use client::{ClientCommand, client};
use events::{EventsArgs, events};
use sessions::{SessionsCommand, sessions};
use user::{UserCommand, user};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "An identity server whose permission changes take effect fast"
)]
struct Cli {
    /// Configuration file (default: ./tessera.toml if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on (TESSERA_BIND).
    #[arg(long, global = true, value_name = "ADDR")]
    bind: Option<String>,
    /// Database URL (DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Issuer URL placed in every token (TESSERA_ISSUER).
    #[arg(long, global = true, value_name = "URL")]
    issuer: Option<String>,
    /// Folder of the key-encryption key (TESSERA_KEYS_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    keys_dir: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates, creates keys on first start).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage clients.
    #[command(subcommand)]
    Client(Box<ClientCommand>),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit trail: who changed what, and when (newest first).
    Audit(AuditArgs),
    /// List and revoke live sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read the security event log (newest last); `--follow` prints new events as they commit.
    Events(EventsArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys: kid, alg, state, created, activated, retired.
    List,
    /// Rotate: the next key signs, a new next key is published.
    Rotate {
        /// Algorithm of the new next key (ES256, EdDSA, RS256).
        #[arg(long)]
        alg: Option<String>,
        /// Withdraw the active key at once: its tokens stop verifying.
        #[arg(long)]
        revoke_current: bool,
    },
    /// Re-encrypt every private key under a new key-encryption key (KEK rotation).
    Rewrap {
        /// File holding the new KEK: base64 of 32 random bytes.
        #[arg(long, value_name = "PATH")]
        new_kek_file: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(e.to_string())
}

/// The `tessera` command: parses the arguments, runs, and exits 1 with one `error:` line on
/// failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(serving: bool, format: &str) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let mut layers = Layers::load(cli.config.as_deref()).map_err(fail)?;
    let flags = [
        ("bind", "--bind", &cli.bind),
        ("database_url", "--database-url", &cli.database_url),
        ("issuer", "--issuer", &cli.issuer),
        ("keys_dir", "--keys-dir", &cli.keys_dir),
    ];
    for (key, flag, value) in flags {
        if let Some(v) = value {
            layers.set_flag(key, flag, v.clone());
        }
    }
    layers.build().map_err(fail)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let cfg = load_config(&cli)?;
    init_logging(matches!(cli.command, Command::Serve), &cfg.log_format);
    if let Command::Migrate = cli.command {
        let db = crate::store::Db::connect(&cfg).await.map_err(fail)?;
        db.migrate()
            .await
            .map_err(|e| fail(crate::error_chain(&e)))?;
        eprintln!("migrations applied");
        return Ok(());
    }
    // Each command builds only what it needs: only `serve` and `keys` load the keys.
    let started = |e: StartError| fail(crate::error_chain(&e));
    match cli.command {
        Command::Serve => serve(crate::app::build(cfg).await.map_err(started)?).await,
        Command::Migrate => Ok(()),
        Command::User(cmd) => user(&Users::open(cfg).await.map_err(started)?, cmd).await,
        Command::Sessions(cmd) => sessions(&Users::open(cfg).await.map_err(started)?, cmd).await,
        Command::Events(args) => events(&Users::open(cfg).await.map_err(started)?, args).await,
        Command::Client(cmd) => client(cfg, *cmd).await,
        Command::Keys(cmd) => keys(&Keys::open(cfg).await.map_err(started)?, cmd).await,
        Command::Audit(args) => {
            let db = crate::domain::database(&cfg)
                .await
                .map_err(|e| started(e.into()))?;
            audit(&Trail { db }, args).await
        }
    }
}

async fn serve(core: Arc<Core>) -> Result<(), Failure> {
    let (listener, ops) = crate::app::listen(&core.cfg).await.map_err(fail)?;
    // Logged before "tessera listening": whoever waits for that line finds this one too.
    tracing::info!(addr = %ops.local_addr().map_err(fail)?, "operator listener (/metrics) on");
    tracing::info!(addr = %listener.local_addr().map_err(fail)?, issuer = %core.cfg.issuer, "tessera listening");
    crate::app::serve(core, listener, ops, shutdown_signal())
        .await
        .map_err(fail)
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

async fn keys(signing: &Keys, cmd: KeysCommand) -> Result<(), Failure> {
    match cmd {
        KeysCommand::List => {
            let rows = crate::store::keys::list(&signing.db.read)
                .await
                .map_err(fail)?;
            println!(
                "{:<44} {:<6} {:<8} {:<21} {:<21} {:<21} PURPOSE",
                "KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"
            );
            for r in rows {
                println!(
                    "{:<44} {:<6} {:<8} {:<21} {:<21} {:<21} {}",
                    r.kid,
                    r.alg,
                    r.state,
                    rfc3339(Some(r.created_at)),
                    rfc3339(r.activated_at),
                    rfc3339(r.retired_at.or(r.revoked_at)),
                    r.purpose,
                );
            }
            Ok(())
        }
        KeysCommand::Rotate {
            alg,
            revoke_current,
        } => {
            let alg = match alg {
                Some(a) => Some(SigningAlg::parse(&a).ok_or_else(|| {
                    fail(format!(
                        "unknown --alg `{a}` (expected ES256, EdDSA or RS256)"
                    ))
                })?),
                None => None,
            };
            let outcome = signing
                .rotate_keys(&Actor::cli(), alg, revoke_current)
                .await
                .map_err(fail)?;
            eprintln!("{outcome}");
            Ok(())
        }
        KeysCommand::Rewrap { new_kek_file } => {
            let text = std::fs::read_to_string(&new_kek_file)
                .map_err(|e| fail(format!("cannot read {}: {e}", new_kek_file.display())))?;
            let n = signing
                .rewrap_keys(&Actor::cli(), &text)
                .await
                .map_err(fail)?;
            eprintln!(
                "{n} keys re-encrypted; start every instance with the new KEK now (replace {} or set TESSERA_KEK)",
                signing.cfg.keys_dir.join("kek").display()
            );
            Ok(())
        }
    }
}
