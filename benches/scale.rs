//! Cost as work grows: `cargo bench --bench scale -- --data-dir DIR [--users 1000000]
//! [--sessions 10000000] [--database-url postgres://…/DB] [--starts 5]`.
//!
//! Makes DIR a tessera folder (`tessera migrate`; SQLite at `DIR/data/tessera.db` unless a
//! loopback PostgreSQL database is given, which must be empty), seeds it with the users and
//! the sessions of `benches/support/seed.rs` (one transaction per million sessions), then
//! reports the database's size per session and per user, how long each housekeeping sweep
//! takes on it, and how long `tessera serve` takes from exec to `/readyz` answering 200 on
//! it and on an empty database, alternating. Refresh throughput on it is the load driver's:
//! `cargo bench --bench load -- -s refresh --data-dir DIR [--database-url …]`, alternated
//! with a run without `--data-dir` (a fresh database). `--no-seed` measures DIR as it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera::config::Layers;
use tessera::store::Pool;

#[path = "support/seed.rs"]
mod seed;

struct Opts {
    dir: PathBuf,
    users: i64,
    sessions: i64,
    database_url: Option<String>,
    empty_database_url: Option<String>,
    starts: usize,
    seed: bool,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        dir: PathBuf::new(),
        users: 1_000_000,
        sessions: 10_000_000,
        database_url: None,
        empty_database_url: None,
        starts: 5,
        seed: true,
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--data-dir" => o.dir = val().into(),
            "--users" => o.users = val().parse().expect("--users"),
            "--sessions" => o.sessions = val().parse().expect("--sessions"),
            "--database-url" => o.database_url = Some(loopback(val())),
            // The empty database to compare start-up with (PostgreSQL; SQLite: a temp folder).
            "--empty-database-url" => o.empty_database_url = Some(loopback(val())),
            "--starts" => o.starts = val().parse().expect("--starts"),
            "--no-seed" => o.seed = false,
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        !o.dir.as_os_str().is_empty(),
        "--data-dir DIR is required (it is kept)"
    );
    o
}

fn loopback(url: String) -> String {
    assert!(
        url.starts_with("postgres://postgres@127.0.0.1:")
            || url.starts_with("postgres://postgres@localhost:"),
        "--database-url must be a loopback PostgreSQL (postgres://postgres@127.0.0.1:PORT/DB)"
    );
    url
}

fn env_of(url: &Option<String>) -> Vec<(&'static str, String)> {
    let mut env = vec![("RUST_LOG", "warn".to_string())];
    if let Some(url) = url {
        env.push(("DATABASE_URL", url.clone()));
    }
    env
}

fn tessera(dir: &Path, env: &[(&'static str, String)], args: &[&str]) {
    std::fs::create_dir_all(dir).expect("data dir");
    let status = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("run tessera");
    assert!(status.success(), "tessera {args:?} failed");
}

fn database_url(dir: &Path, url: &Option<String>) -> String {
    url.clone()
        .unwrap_or_else(|| format!("sqlite://{}/data/tessera.db", dir.display()))
}

/// The server's own configuration for `dir`, for connecting as it does.
fn config(dir: &Path, url: &Option<String>) -> tessera::config::Config {
    let mut layers = Layers::default();
    layers.set_flag("database_url", "database_url", database_url(dir, url));
    layers.set_flag(
        "keys_dir",
        "keys_dir",
        dir.join("keys").display().to_string(),
    );
    layers.build().expect("config")
}

async fn seed(o: &Opts) {
    let url = database_url(&o.dir, &o.database_url);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let started = Instant::now();
    let chunk = 1_000_000;
    let pool = if url.starts_with("sqlite:") {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        use std::str::FromStr;
        // Seeding alone on the file: no journal, no fsync, a large page cache. The server
        // puts it back in WAL mode when it opens it.
        let opts = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(false)
            .pragma("cache_size", "-2000000");
        Pool::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .expect("open SQLite"),
        )
    } else {
        Pool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .expect("connect PostgreSQL"),
        )
    };
    seed::clients(&pool).await.expect("seed clients");
    let n = seed::users(&pool, o.users).await.expect("seed users");
    println!(
        "seeded {n} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut from = 1;
    while from <= o.sessions {
        let to = (from + chunk - 1).min(o.sessions);
        match &pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await.unwrap();
                seed::sessions(&mut seed::SeedConn::Sqlite(&mut tx), from, to, o.users, now)
                    .await
                    .expect("seed sessions");
                tx.commit().await.unwrap();
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.unwrap();
                seed::sessions(
                    &mut seed::SeedConn::Postgres(&mut tx),
                    from,
                    to,
                    o.users,
                    now,
                )
                .await
                .expect("seed sessions");
                tx.commit().await.unwrap();
            }
        }
        println!(
            "  {to} sessions at {:.1} s",
            started.elapsed().as_secs_f64()
        );
        from = to + 1;
    }
    // What autovacuum does on its own some time after a bulk load.
    if let Pool::Postgres(p) = &pool {
        sqlx::query("VACUUM ANALYZE").execute(p).await.unwrap();
    }
    pool_close(pool).await;
    println!(
        "seeded {} sessions in {:.1} s",
        o.sessions,
        started.elapsed().as_secs_f64()
    );
}

async fn pool_close(pool: Pool) {
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Postgres(p) => p.close().await,
    }
}

/// On-disk size per table and in all, in bytes.
async fn sizes(o: &Opts) {
    let db = tessera::store::Db::connect(&config(&o.dir, &o.database_url))
        .await
        .expect("connect");
    let (tables, total): (Vec<(String, i64)>, i64) = match db.writer() {
        Pool::Sqlite(p) => {
            let tables = sqlx::query_as(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 12",
            )
            .fetch_all(p)
            .await
            .unwrap_or_default();
            let file = o.dir.join("data/tessera.db");
            let total = ["", "-wal", "-shm"]
                .iter()
                .map(|s| {
                    std::fs::metadata(format!("{}{s}", file.display()))
                        .map(|m| m.len())
                        .unwrap_or(0)
                })
                .sum::<u64>() as i64;
            (tables, total)
        }
        Pool::Postgres(p) => {
            let tables = sqlx::query_as(
                "SELECT relname::text, pg_total_relation_size(oid) FROM pg_class
                 WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT 12",
            )
            .fetch_all(p)
            .await
            .unwrap();
            let (total,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
                .fetch_one(p)
                .await
                .unwrap();
            (tables, total)
        }
    };
    let mib = |b: i64| b as f64 / 1048576.0;
    println!(
        "database on disk: {:.0} MiB; {:.0} B per session, {:.0} B per user (all of it over each)",
        mib(total),
        total as f64 / o.sessions.max(1) as f64,
        total as f64 / o.users.max(1) as f64
    );
    for (name, bytes) in tables {
        println!(
            "  {name:28} {:9.1} MiB  {:6.1} B per session",
            mib(bytes),
            bytes as f64 / o.sessions.max(1) as f64
        );
    }
    // The housekeeping sweeps, as the server runs them every minute (nothing to remove:
    // every ended session ended within the day).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = Instant::now();
    let n = tessera::store::sessions::forget_sealed_successors(db.writer(), now - 61)
        .await
        .unwrap();
    println!(
        "sweep: sealed successors past grace: {n} rows in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let n = tessera::store::sessions::forget_ended(&db, now - 86_400)
        .await
        .unwrap();
    println!(
        "sweep: sessions ended a day ago: {n} in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Exec of `tessera serve` in `dir` until `/readyz` answers 200; the server is then stopped.
async fn start_up(dir: &Path, url: &Option<String>) -> Duration {
    let port = free_port();
    let mut env = env_of(url);
    env.push(("TESSERA_BIND", format!("127.0.0.1:{port}")));
    env.push(("TESSERA_OPS_BIND", format!("127.0.0.1:{}", free_port())));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .expect("tessera serve");
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(r) = http.get(&ready).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not ready in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = parse_args();
    let env = env_of(&o.database_url);
    if o.seed {
        tessera(&o.dir, &env, &["migrate"]);
        seed(&o).await;
    }
    sizes(&o).await;
    let empty = tempfile::tempdir().unwrap();
    let empty_env = env_of(&o.empty_database_url);
    tessera(empty.path(), &empty_env, &["migrate"]);
    // The first start creates the signing keys: not timed.
    start_up(&o.dir, &o.database_url).await;
    start_up(empty.path(), &o.empty_database_url).await;
    let (mut full, mut none) = (vec![], vec![]);
    for _ in 0..o.starts {
        full.push(start_up(&o.dir, &o.database_url).await);
        none.push(start_up(empty.path(), &o.empty_database_url).await);
    }
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "start-up, exec to /readyz 200 (ms): seeded {}; empty {}",
        ms(&full),
        ms(&none)
    );
}
