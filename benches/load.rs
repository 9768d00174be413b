//! Load driver: `cargo bench --bench load -- [options]`.
//!
//! Starts tessera itself on a fresh SQLite database (or the empty database of
//! `--database-url postgres://...`; or targets `--base-url`, loopback only), warms up, then runs each scenario for a bounded time at a fixed concurrency
//! and prints throughput, latency percentiles, errors and the server's CPU and RSS.
//!
//! Scenarios: `sign` (signing floor per algorithm, in process), `client_credentials`,
//! `jwks`, `introspect`, `password`, `refresh` (closed-loop chains: each request carries
//! the token the previous answer returned), `events` (SSE subscribers, commit → delivery), `sse` (one subscriber, 200 role
//! changes one at a time, each awaited on the stream: in order, and how fast), `verify`
//! (role change → a `tessera-verify` verifier refuses the old token; `--instances 2` with a
//! PostgreSQL `--database-url` starts a second server on the same database and has the
//! verifier follow its feed), `fanout`.
//!
//! `--data-dir DIR` runs the server in a kept folder (e.g. one `cargo bench --bench scale`
//! seeded); with `--instances 2` the token scenarios' connections alternate between the two
//! instances and both servers' CPU is counted; `--db-pid PID` (PostgreSQL's postmaster) adds
//! the database's processes' CPU.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::config::SigningAlg;

#[path = "support/jwt.rs"]
mod jwt;
#[path = "load/sse.rs"]
mod sse;

#[path = "support/fanout.rs"]
mod fanout;

#[path = "support/verify_e2e.rs"]
mod verify_e2e;

struct Opts {
    base_url: Option<String>,
    scenarios: Vec<String>,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    client: (String, String),
    user: (String, String),
    token_path: String,
    jwks_path: String,
    server_pid: Option<u32>,
    json_out: Option<String>,
    max_requests: u64,
    db: String,
    database_url: Option<String>,
    label: String,
    /// The driver-started server's operator listener (`/metrics`).
    ops_url: Option<String>,
    /// `fanout`: streams to hold, and permission changes to send.
    streams: usize,
    changes: usize,
    /// `fanout`: read the streams with a bare socket reader instead of hyper's client.
    raw_reader: bool,
    /// `fanout`: seconds to hold the streams idle, measuring the server's CPU, before the
    /// changes (0: none).
    idle: u64,
    /// `verify`: 2 runs a second server on the same PostgreSQL database, whose feed the
    /// verifier follows while the changes go to the first.
    instances: usize,
    /// The second instance's base URL (`--instances 2`).
    peer_url: Option<String>,
    /// `--data-dir`: the server's folder (database, KEK), kept between runs, e.g. one
    /// `cargo bench --bench scale` seeded; the bench client and user are added once.
    data_dir: Option<std::path::PathBuf>,
    /// The second instance's pid: its CPU is counted with the first's.
    peer_pid: Option<u32>,
    /// `--db-pid`: PostgreSQL's postmaster, whose processes' CPU is reported apart.
    db_pid: Option<u32>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        base_url: None,
        scenarios: vec![],
        concurrency: 32,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        client: ("bench".into(), String::new()),
        user: ("bench-user".into(), "bench-password".into()),
        token_path: "/token".into(),
        jwks_path: "/.well-known/jwks.json".into(),
        server_pid: None,
        json_out: None,
        max_requests: 2_000_000,
        db: "sqlite".into(),
        database_url: None,
        label: "tessera".into(),
        ops_url: None,
        streams: 2000,
        raw_reader: false,
        idle: 0,
        changes: 5,
        instances: 1,
        peer_url: None,
        data_dir: None,
        peer_pid: None,
        db_pid: None,
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--base-url" => o.base_url = Some(val()),
            "--scenario" | "-s" => o.scenarios.extend(val().split(',').map(String::from)),
            "--concurrency" | "-c" => o.concurrency = val().parse().expect("--concurrency"),
            "--duration" | "-d" => {
                o.duration = Duration::from_secs_f64(val().parse().expect("--duration seconds"))
            }
            "--warmup" => {
                o.warmup = Duration::from_secs_f64(val().parse().expect("--warmup seconds"))
            }
            "--client" => {
                let v = val();
                let (id, secret) = v.split_once(':').expect("--client ID:SECRET");
                o.client = (id.into(), secret.into());
            }
            "--user" => {
                let v = val();
                let (u, p) = v.split_once(':').expect("--user NAME:PASSWORD");
                o.user = (u.into(), p.into());
            }
            "--token-path" => o.token_path = val(),
            "--jwks-path" => o.jwks_path = val(),
            "--server-pid" => o.server_pid = Some(val().parse().expect("--server-pid")),
            "--json" => o.json_out = Some(val()),
            "--max-requests" => o.max_requests = val().parse().expect("--max-requests"),
            "--label" => o.label = val(),
            "--streams" => o.streams = val().parse().expect("--streams"),
            "--changes" => o.changes = val().parse().expect("--changes"),
            "--raw-reader" => o.raw_reader = true,
            "--idle" => o.idle = val().parse().expect("--idle"),
            "--instances" => o.instances = val().parse().expect("--instances"),
            "--ops-url" => o.ops_url = Some(val()),
            "--db" => o.db = val(),
            "--data-dir" => o.data_dir = Some(val().into()),
            "--db-pid" => o.db_pid = Some(val().parse().expect("--db-pid")),
            "--database-url" => {
                let url = val();
                assert!(
                    url.starts_with("sqlite:") || is_loopback_url(&url),
                    "--database-url must be SQLite or a loopback PostgreSQL"
                );
                if url.starts_with("postgres") {
                    o.db = "postgres".into();
                }
                o.database_url = Some(url);
            }
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        o.instances == 1 || (o.instances == 2 && o.db == "postgres" && o.base_url.is_none()),
        "--instances 2 needs --database-url postgres://... (instances share the database)"
    );
    if o.scenarios.is_empty() {
        o.scenarios = [
            "sign",
            "client_credentials",
            "jwks",
            "introspect",
            "refresh",
            "password",
            "events",
            "sse",
        ]
        .map(String::from)
        .to_vec();
    }
    o
}

/// Whether a `scheme://[user@]host[:port][/...]` URL names a loopback host: the host
/// itself is compared, so `127.0.0.1.example.com` or `localhost.example` do not pass.
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A tessera started by the driver on a fresh database.
struct Server {
    child: Child,
    /// The first instance's folder (its `keys/kek`, shared by a second instance).
    dir: Option<std::path::PathBuf>,
    /// That folder when it is the driver's own, removed with the server.
    _temp: Option<tempfile::TempDir>,
    /// What the instance was started with, for a second one on the same database.
    env: Vec<(&'static str, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn tessera(
    dir: &std::path::Path,
    env: &[(&str, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    let mut cmd = Command::new(server_bin());
    cmd.args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("run tessera");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "tessera {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The server binary the driver starts and sets up with: this build's, or `TESSERA_BENCH_SERVER_BIN`
/// (another build, to compare before and after a change with the same driver).
fn server_bin() -> String {
    std::env::var("TESSERA_BENCH_SERVER_BIN")
        .ok()
        .filter(|bin| !bin.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tessera").to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_server(o: &mut Opts) -> Server {
    let temp = o.data_dir.is_none().then(|| tempfile::tempdir().unwrap());
    let dir = match &temp {
        Some(t) => t.path().to_path_buf(),
        None => o.data_dir.clone().unwrap(),
    };
    let (port, ops_port) = (free_port(), free_port());
    let mut env: Vec<(&'static str, String)> = vec![
        ("TESSERA_BIND", format!("127.0.0.1:{port}")),
        // A free port for the operator listener: 9090 may be taken.
        ("TESSERA_OPS_BIND", format!("127.0.0.1:{ops_port}")),
        // `fanout` holds thousands of streams, each a connection.
        ("TESSERA_MAX_CONNECTIONS", "30000".into()),
        // ... all from the driver's one loopback address.
        ("TESSERA_MAX_CONNECTIONS_PER_ADDRESS", "30000".into()),
        ("RUST_LOG", "warn".into()),
        ("TESSERA_LOGIN_MAX_FAILURES", "1000000".into()),
    ];
    if let Some(url) = &o.database_url {
        env.push(("DATABASE_URL", url.clone()));
    }
    let d = dir.as_path();
    // A kept folder (`--data-dir`) has the bench client and user from its first run.
    let kept = d.join("bench-client-secret");
    let secret = match std::fs::read_to_string(&kept) {
        Ok(secret) => secret,
        Err(_) => {
            let secret = tessera(
                d,
                &env,
                &[
                    "client",
                    "add",
                    "bench",
                    "--grant",
                    "client_credentials",
                    "--grant",
                    "password",
                    "--scope",
                    "api:read",
                    "--scope",
                    "offline_access",
                    "--audience",
                    "urn:bench:api",
                    // Its password-grant tokens may also be issued for the admin API.
                    "--audience",
                    &format!("http://127.0.0.1:{port}/admin"),
                    "--can",
                    "introspect",
                    "--can",
                    "events",
                ],
                None,
            );
            tessera(
                d,
                &env,
                &[
                    "user",
                    "add",
                    "bench-user",
                    "--role",
                    "admin",
                    "--password-stdin",
                ],
                Some("bench-password\n"),
            );
            if o.data_dir.is_some() {
                std::fs::write(&kept, &secret).expect("keep the bench client's secret");
            }
            secret
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(d, &env, &base).await;
    o.base_url = Some(base);
    o.ops_url = Some(format!("http://127.0.0.1:{ops_port}"));
    o.client = ("bench".into(), secret);
    o.server_pid = Some(child.id());
    Server {
        child,
        dir: Some(dir),
        _temp: temp,
        env,
    }
}

/// A second instance on the first one's PostgreSQL database: the same KEK (its
/// folder's `keys/kek`) and issuer, its own ports. Returns it and its base URL.
async fn start_peer(first: &Server, issuer: &str) -> (Server, String) {
    let (port, ops_port) = (free_port(), free_port());
    let mut env: Vec<(&'static str, String)> = first
        .env
        .iter()
        .filter(|(k, _)| !matches!(*k, "TESSERA_BIND" | "TESSERA_OPS_BIND"))
        .cloned()
        .collect();
    env.push(("TESSERA_BIND", format!("127.0.0.1:{port}")));
    env.push(("TESSERA_OPS_BIND", format!("127.0.0.1:{ops_port}")));
    env.push(("TESSERA_ISSUER", issuer.to_string()));
    let base = format!("http://127.0.0.1:{port}");
    let dir = first.dir.as_ref().expect("the first instance's folder");
    let child = serve(dir, &env, &base).await;
    let peer = Server {
        child,
        dir: None,
        _temp: None,
        env,
    };
    (peer, base)
}

/// `tessera serve` in `d`, once its `/readyz` answers 200.
async fn serve(d: &std::path::Path, env: &[(&'static str, String)], base: &str) -> Child {
    let started = Instant::now();
    // `TESSERA_BENCH_WRAP="heaptrack -o /tmp/tessera"` runs the server under a
    // profiler (its RSS figures then are the wrapper's, not the server's alone).
    let wrap: Vec<String> = std::env::var("TESSERA_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut server = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(server_bin());
            c
        }
        None => Command::new(server_bin()),
    };
    let child = server
        .arg("serve")
        .current_dir(d)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "server ready {:.0} ms after spawn (pid {})",
        started.elapsed().as_secs_f64() * 1000.0,
        child.id()
    );
    child
}

/// The `ver` of one SSE frame if it is a `user.roles_changed` event.
fn roles_changed_ver(frame: &str) -> Option<i64> {
    if !frame.contains("event: user.roles_changed") {
        return None;
    }
    let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
    serde_json::from_str::<Value>(data).ok()?["ver"].as_i64()
}

/// A permission change: `PUT /admin/users/{uid}/roles` with `roles`, as an admin;
/// panics unless it succeeds. Returns the user as the admin API answers (with `ver`).
async fn set_roles(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    uid: &str,
    roles: &[String],
) -> Value {
    let r = http
        .put(format!("{base}/admin/users/{uid}/roles"))
        .bearer_auth(admin_token)
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .expect("role change");
    assert!(r.status().is_success(), "role change: {}", r.status());
    r.json().await.expect("user JSON")
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of `pid` and its children (PostgreSQL's postmaster and its backends; a
/// backend that exited during the run takes its ticks with it).
fn tree_ticks(pid: u32) -> u64 {
    let children = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
                    == Some(pid.to_string().as_str())
            })
        });
    std::iter::once(pid)
        .chain(children)
        .filter_map(cpu_ticks)
        .sum()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: u64,
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

type Step = Arc<
    dyn for<'a> Fn(
            &'a mut Conn,
            Option<String>,
        ) -> futures_util::future::BoxFuture<'a, (bool, Option<String>)>
        + Send
        + Sync,
>;

/// One worker's HTTP/1.1 keep-alive connection (hyper, no client pool, no URL
/// parsing per request), reopened after an error: the driver should cost the
/// machine as little as possible, since it shares the cores with the server.
struct Conn {
    addr: String,
    send: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
}

impl Conn {
    fn new(base: &str) -> Self {
        Self {
            addr: base.trim_start_matches("http://").to_string(),
            send: None,
        }
    }

    /// Sends one request; returns the status and the whole body, or None on a
    /// transport error (the connection is reopened on the next call).
    async fn send(
        &mut self,
        method: hyper::Method,
        path: &str,
        headers: &[(hyper::header::HeaderName, hyper::header::HeaderValue)],
        body: bytes::Bytes,
    ) -> Option<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.addr).await.ok()?;
            stream.set_nodelay(true).ok()?;
            let (send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            self.send = Some(send);
        }
        let send = self.send.as_mut()?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.addr);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(http_body_util::Full::new(body)).ok()?;
        let result = async {
            send.ready().await.ok()?;
            let resp = send.send_request(req).await.ok()?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            Some((status, body))
        }
        .await;
        if result.is_none() {
            self.send = None;
        }
        result
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_body(pairs: &[(&str, &str)]) -> bytes::Bytes {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    bytes::Bytes::from(out)
}

/// The headers of a form POST authenticated with HTTP Basic.
fn form_headers(
    auth: &(String, String),
) -> Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", auth.0, auth.1));
    vec![
        (
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/x-www-form-urlencoded"),
        ),
        (
            hyper::header::AUTHORIZATION,
            hyper::header::HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        ),
    ]
}

/// Runs `step` in a closed loop on `concurrency` workers; each worker threads its
/// own state (e.g. the newest refresh token) through consecutive calls.
async fn drive(o: &Opts, name: &str, step: Step, seeds: Vec<Option<String>>) -> Value {
    let base = o.base_url.clone().unwrap_or_default();
    let run = |secs: Duration, record: bool, seeds: Vec<Option<String>>| {
        let stop = Arc::new(AtomicBool::new(false));
        let per_worker = o.max_requests / o.concurrency as u64;
        let handles: Vec<_> = seeds
            .into_iter()
            .enumerate()
            .map(|(i, mut state)| {
                let (step, stop) = (step.clone(), stop.clone());
                // With two instances, every other worker talks to the second.
                let mut conn = match &o.peer_url {
                    Some(peer) if i % 2 == 1 => Conn::new(peer),
                    _ => Conn::new(&base),
                };
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) && n < per_worker {
                        let start = Instant::now();
                        let (ok, next) = step(&mut conn, state.clone()).await;
                        if record {
                            t.latencies_us.push(start.elapsed().as_micros() as u32);
                        }
                        if ok {
                            t.ok += 1
                        } else {
                            t.errors += 1
                        }
                        if next.is_some() {
                            state = next;
                        }
                        n += 1;
                    }
                    (t, state)
                })
            })
            .collect();
        async move {
            tokio::time::sleep(secs).await;
            stop.store(true, Ordering::Relaxed);
            let mut all = Tally::default();
            let mut states = vec![];
            for h in handles {
                let (t, s) = h.await.unwrap();
                all.latencies_us.extend(t.latencies_us);
                all.ok += t.ok;
                all.errors += t.errors;
                states.push(s);
            }
            (all, states)
        }
    };
    let (_, seeds) = run(o.warmup, false, seeds).await;
    let pid = o.server_pid;
    let servers = || Some(cpu_ticks(pid?)? + o.peer_pid.and_then(cpu_ticks).unwrap_or(0));
    let database = || o.db_pid.map(tree_ticks);
    let (cpu0, db0) = (servers(), database());
    let started = Instant::now();
    let (mut t, _) = run(o.duration, true, seeds).await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (servers(), cpu0) {
        (Some(b), Some(a)) => Some((b - a) as f64 / 100.0 / secs * 100.0),
        _ => None,
    };
    let db_cpu = match (database(), db0) {
        (Some(b), Some(a)) => Some(b.saturating_sub(a) as f64 / 100.0 / secs * 100.0),
        _ => None,
    };
    t.latencies_us.sort_unstable();
    let total = t.ok + t.errors;
    let r = json!({
        "server": o.label, "db": o.db, "scenario": name, "concurrency": o.concurrency,
        "requests": total, "rps": total as f64 / secs, "errors": t.errors,
        "p50_ms": pct(&t.latencies_us, 0.50), "p90_ms": pct(&t.latencies_us, 0.90), "p99_ms": pct(&t.latencies_us, 0.99),
        "server_cpu_pct": cpu, "db_cpu_pct": db_cpu, "server_rss_mib": pid.and_then(rss_kib).map(|k| k as f64 / 1024.0),
    });
    if let Some(c) = db_cpu {
        println!("database CPU {c:.0}% (PostgreSQL's processes)");
    }
    println!(
        "{:<10} {:<19} {:>9.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  errors {:>5}  cpu {:>5}  rss {:>6}",
        o.label,
        name,
        r["rps"].as_f64().unwrap(),
        r["p50_ms"].as_f64().unwrap(),
        r["p90_ms"].as_f64().unwrap(),
        r["p99_ms"].as_f64().unwrap(),
        t.errors,
        cpu.map_or("-".into(), |c| format!("{c:.0}%")),
        r["server_rss_mib"]
            .as_f64()
            .map_or("-".into(), |m| format!("{m:.1}MiB")),
    );
    r
}

/// The signing floor per algorithm, hand-timed so it prints beside the end-to-end
/// figures; `cargo bench --bench crypto` measures the same with Criterion.
fn sign_floor() -> Vec<Value> {
    let claims = jwt::claims();
    jwt::fixtures()
        .into_iter()
        .map(|f| {
            let alg = f.alg;
            let n = if alg == SigningAlg::RS256 {
                2_000
            } else {
                20_000
            };
            let start = Instant::now();
            for _ in 0..n {
                std::hint::black_box(f.key.sign(&claims));
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!(
                "sign floor {:<6} {:>8.1} µs/token (one core: {:>7.0} tokens/s)",
                alg.as_str(),
                us,
                1e6 / us
            );
            let token = f.key.sign(&claims);
            let m = 20_000;
            let start = Instant::now();
            for _ in 0..m {
                std::hint::black_box(
                    jsonwebtoken::decode::<Value>(&token, &f.decoding, &f.validation).unwrap(),
                );
            }
            let verify_us = start.elapsed().as_secs_f64() * 1e6 / m as f64;
            println!("verify     {:<6} {:>8.1} µs/token", alg.as_str(), verify_us);
            json!({"scenario": "sign", "alg": alg.as_str(), "us_per_token": us, "verify_us_per_token": verify_us})
        })
        .collect()
}

async fn form(
    http: &reqwest::Client,
    url: &str,
    auth: &(String, String),
    body: &[(&str, &str)],
) -> Option<Value> {
    let r = http
        .post(url)
        .basic_auth(&auth.0, Some(&auth.1))
        .form(body)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[tokio::main]
async fn main() {
    let mut o = parse_args();
    let server = if o.base_url.is_none() && o.scenarios.iter().any(|s| s != "sign") {
        Some(start_server(&mut o).await)
    } else {
        None
    };
    // Declared after the first, so it stops first.
    let _peer = match &server {
        Some(first) if o.instances == 2 => {
            let issuer = o.base_url.clone().unwrap_or_default();
            let (peer, base) = start_peer(first, &issuer).await;
            o.peer_url = Some(base);
            o.peer_pid = Some(peer.child.id());
            Some(peer)
        }
        _ => None,
    };
    if let Some(pid) = o.server_pid {
        println!(
            "server idle RSS: {:.1} MiB",
            rss_kib(pid).unwrap_or(0) as f64 / 1024.0
        );
    }
    let base = o.base_url.clone().unwrap_or_default();
    assert!(
        base.is_empty() || (base.starts_with("http://") && is_loopback_url(&base)),
        "load targets must be loopback addresses"
    );
    let token_url = Arc::new(format!("{base}{}", o.token_path));
    let client = Arc::new(o.client.clone());
    let mut results = vec![];
    let seeds = |n: usize| vec![None; n];
    for scenario in o.scenarios.clone() {
        match scenario.as_str() {
            "sign" => results.extend(sign_floor()),
            "client_credentials" => {
                let path = Arc::new(o.token_path.clone());
                let headers = Arc::new(form_headers(&client));
                let body =
                    form_body(&[("grant_type", "client_credentials"), ("scope", "api:read")]);
                let step: Step = Arc::new(move |conn, _| {
                    let (path, headers, body) = (path.clone(), headers.clone(), body.clone());
                    Box::pin(async move {
                        let r = conn.send(hyper::Method::POST, &path, &headers, body).await;
                        (r.is_some_and(|(s, _)| s == 200), None)
                    })
                });
                results.push(drive(&o, "client_credentials", step, seeds(o.concurrency)).await);
            }
            "jwks" => {
                let path = Arc::new(o.jwks_path.clone());
                let step: Step = Arc::new(move |conn, _| {
                    let path = path.clone();
                    Box::pin(async move {
                        let r = conn
                            .send(hyper::Method::GET, &path, &[], bytes::Bytes::new())
                            .await;
                        (r.is_some_and(|(s, b)| s == 200 && !b.is_empty()), None)
                    })
                });
                results.push(drive(&o, "jwks", step, seeds(o.concurrency)).await);
            }
            "introspect" => {
                let http = reqwest::Client::new();
                let t = form(
                    &http,
                    &token_url,
                    &client,
                    &[("grant_type", "client_credentials"), ("scope", "api:read")],
                )
                .await
                .expect("token");
                let body = form_body(&[("token", t["access_token"].as_str().unwrap())]);
                let headers = Arc::new(form_headers(&client));
                let step: Step = Arc::new(move |conn, _| {
                    let (headers, body) = (headers.clone(), body.clone());
                    Box::pin(async move {
                        let r = conn
                            .send(hyper::Method::POST, "/introspect", &headers, body)
                            .await;
                        let ok = r.is_some_and(|(s, b)| {
                            s == 200
                                && serde_json::from_slice::<Value>(&b)
                                    .is_ok_and(|v| v["active"] == true)
                        });
                        (ok, None)
                    })
                });
                results.push(drive(&o, "introspect", step, seeds(o.concurrency)).await);
            }
            "password" | "refresh" => {
                let user = Arc::new(o.user.clone());
                let login = {
                    let (url, client, user) = (token_url.clone(), client.clone(), user.clone());
                    move |http: reqwest::Client| {
                        let (url, client, user) = (url.clone(), client.clone(), user.clone());
                        async move {
                            let body = [
                                ("grant_type", "password"),
                                ("username", user.0.as_str()),
                                ("password", user.1.as_str()),
                                ("scope", "offline_access api:read"),
                            ];
                            form(&http, &url, &client, &body).await
                        }
                    }
                };
                if scenario == "password" {
                    let path = Arc::new(o.token_path.clone());
                    let headers = Arc::new(form_headers(&client));
                    let body = form_body(&[
                        ("grant_type", "password"),
                        ("username", user.0.as_str()),
                        ("password", user.1.as_str()),
                        ("scope", "offline_access api:read"),
                    ]);
                    let step: Step = Arc::new(move |conn, _| {
                        let (path, headers, body) = (path.clone(), headers.clone(), body.clone());
                        Box::pin(async move {
                            let r = conn.send(hyper::Method::POST, &path, &headers, body).await;
                            (r.is_some_and(|(s, _)| s == 200), None)
                        })
                    });
                    results.push(drive(&o, "password", step, seeds(o.concurrency)).await);
                    continue;
                }
                let http = reqwest::Client::new();
                let mut chains = vec![];
                for _ in 0..o.concurrency {
                    let v = login(http.clone())
                        .await
                        .expect("password grant for refresh chains");
                    chains.push(Some(
                        v["refresh_token"]
                            .as_str()
                            .expect("refresh_token")
                            .to_string(),
                    ));
                }
                #[derive(serde::Deserialize)]
                struct Rotated {
                    refresh_token: Option<String>,
                }
                let path = Arc::new(o.token_path.clone());
                let headers = Arc::new(form_headers(&client));
                let step: Step = Arc::new(move |conn, rt| {
                    let (path, headers) = (path.clone(), headers.clone());
                    Box::pin(async move {
                        let rt = rt.unwrap_or_default();
                        let body =
                            form_body(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
                        match conn.send(hyper::Method::POST, &path, &headers, body).await {
                            Some((200, b)) => {
                                let next = serde_json::from_slice::<Rotated>(&b)
                                    .ok()
                                    .and_then(|r| r.refresh_token);
                                (next.as_deref().is_some_and(|n| n != rt), next)
                            }
                            _ => (false, None),
                        }
                    })
                });
                results.push(drive(&o, "refresh", step, chains).await);
            }
            "events" => results.push(events(&o, &token_url, &client).await),
            "sse" => results.push(sse::one_by_one(&o, &token_url, &client).await),
            "verify" => {
                let admin = admin_token(&o, &token_url, &client).await;
                results.push(
                    verify_e2e::run(verify_e2e::VerifyE2e {
                        base: &base,
                        admin_token: &admin,
                        client: &client,
                        changes: o.changes.max(20),
                        label: &o.label,
                        feed: o.peer_url.as_deref(),
                    })
                    .await,
                );
            }
            "fanout" => {
                let admin = admin_token(&o, &token_url, &client).await;
                let ops = o
                    .ops_url
                    .clone()
                    .expect("--ops-url (or a driver-started server)");
                results.push(
                    fanout::run(fanout::Fanout {
                        base: &base,
                        ops: &ops,
                        pid: o.server_pid,
                        admin_token: &admin,
                        streams: o.streams,
                        changes: o.changes,
                        raw_reader: o.raw_reader,
                        idle: o.idle,
                        label: &o.label,
                    })
                    .await,
                );
            }
            other => panic!("unknown scenario {other}"),
        }
    }
    if let Some(pid) = o.server_pid {
        println!(
            "server RSS after load: {:.1} MiB",
            rss_kib(pid).unwrap_or(0) as f64 / 1024.0
        );
    }
    if let Some(path) = &o.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
        println!("results written to {path}");
    }
}

/// A token for the admin API (its audience), of the driver-started server's admin.
async fn admin_token(o: &Opts, token_url: &str, client: &(String, String)) -> String {
    let base = o.base_url.clone().unwrap_or_default();
    let http = reqwest::Client::new();
    let admin = form(
        &http,
        token_url,
        client,
        &[
            ("grant_type", "password"),
            ("username", "bench-user"),
            ("password", "bench-password"),
            ("resource", &format!("{base}/admin")),
        ],
    )
    .await
    .expect("admin token (needs the driver-started server)");
    admin["access_token"].as_str().unwrap().to_string()
}

/// What both SSE scenarios need: the feed's token, an admin token and a target user.
struct EventsSetup {
    http: reqwest::Client,
    base: String,
    feed_token: String,
    admin_token: String,
    uid: String,
}

async fn events_setup(
    o: &Opts,
    token_url: &str,
    client: &(String, String),
    target: &str,
) -> EventsSetup {
    let base = o.base_url.clone().unwrap();
    let http = reqwest::Client::new();
    let feed = form(
        &http,
        token_url,
        client,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect("client token");
    let feed_token = feed["access_token"].as_str().unwrap().to_string();
    let admin_token = admin_token(o, token_url, client).await;
    let user: Value = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(&admin_token)
        .json(&json!({"username": target, "password": "events-target-pw", "roles": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = user["id"].as_str().unwrap().to_string();
    EventsSetup {
        http,
        base,
        feed_token,
        admin_token,
        uid,
    }
}

/// N SSE subscribers, M role changes through the admin API: commit → delivery latency.
async fn events(o: &Opts, token_url: &str, client: &(String, String)) -> Value {
    let EventsSetup {
        http,
        base,
        feed_token,
        admin_token,
        uid,
    } = events_setup(o, token_url, client, "events-target").await;
    let subscribers = 8usize;
    let changes = 200usize;
    // One token holds at most 4 streams of its caller: a second one for the other 4.
    let second = form(
        &http,
        token_url,
        client,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect("client token");
    let tokens = [
        feed_token,
        second["access_token"].as_str().unwrap().to_string(),
    ];
    let sent: Arc<std::sync::Mutex<HashMap<i64, Instant>>> = Arc::default();
    let mut readers = vec![];
    for i in 0..subscribers {
        let resp = http
            .get(format!("{base}/events"))
            .bearer_auth(&tokens[i / 4])
            .send()
            .await
            .unwrap();
        readers.push(tokio::spawn(async move {
            let mut resp = resp;
            let mut got = vec![];
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find("\n\n") {
                    let frame: String = buf.drain(..i + 2).collect();
                    if let Some(ver) = roles_changed_ver(&frame) {
                        got.push((ver, Instant::now()));
                    }
                }
                if got.len() >= changes {
                    break;
                }
            }
            got
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..changes {
        let at = Instant::now();
        let r = set_roles(&http, &base, &admin_token, &uid, &[format!("r{i}")]).await;
        sent.lock().unwrap().insert(r["ver"].as_i64().unwrap(), at);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lat: Vec<u32> = vec![];
    for r in readers {
        if let Ok(Ok(got)) = tokio::time::timeout(Duration::from_secs(10), r).await {
            let sent = sent.lock().unwrap();
            lat.extend(got.iter().filter_map(|(ver, t)| {
                sent.get(ver)
                    .map(|s| t.duration_since(*s).as_micros() as u32)
            }));
        }
    }
    lat.sort_unstable();
    let expected = subscribers * changes;
    println!(
        "{:<10} {:<19} {} subscribers x {} changes: delivered {}/{}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        o.label,
        "events",
        subscribers,
        changes,
        lat.len(),
        expected,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    json!({"server": o.label, "scenario": "events", "subscribers": subscribers, "changes": changes, "delivered": lat.len(),
           "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99), "max_ms": pct(&lat, 1.0)})
}
