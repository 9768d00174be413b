//! Slowloris on raw sockets: a request head that never completes, an idle
//! keep-alive connection and connections beyond the cap (or beyond one address's
//! share of it) are all closed; the operator listener serves `/metrics`, the public
//! port does not.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn socket(app: &TestApp) -> String {
    app.addr.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (EOF or reset); returns what it
/// sent, or panics after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        closed.is_ok(),
        "the connection was still open after {within:?} (read {text:?})"
    );
    text
}

/// One `GET /healthz` on `stream`; the status.
async fn healthz(stream: &mut TcpStream) -> u16 {
    healthz_within(stream, Duration::from_secs(5)).await
}

/// One `GET /healthz` on `stream`, answered within `within`; the status.
async fn healthz_within(stream: &mut TcpStream, within: Duration) -> u16 {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = tokio::time::timeout(within, stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)[9..12].parse().unwrap()
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_closed_after_the_header_timeout() {
    let app = TestApp::with(&[("header_read_timeout", "1"), ("keep_alive_timeout", "30")]).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(socket(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Trickling header lines does not keep it open.
    let mut trickle = stream;
    let writer = async {
        for i in 0..40 {
            if trickle
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trickle
    };
    let mut stream = writer.await;
    let answered = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        !answered.contains("200 OK"),
        "an incomplete head was answered: {answered}"
    );
    assert!(started.elapsed() < Duration::from_secs(9));
    // The server is fine.
    let mut fresh = TcpStream::connect(socket(&app)).await.unwrap();
    assert_eq!(healthz(&mut fresh).await, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::with(&[("keep_alive_timeout", "1"), ("header_read_timeout", "30")]).await;
    let mut stream = TcpStream::connect(socket(&app)).await.unwrap();
    assert_eq!(healthz(&mut stream).await, 200);
    until_closed(&mut stream, Duration::from_secs(5)).await;
}

/// The `tessera_http_connections` gauge on the operator listener.
async fn open_connections(app: &TestApp) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("tessera_http_connections ")?.parse().ok())
        .expect("tessera_http_connections")
}

/// Polls the gauge until it is `n` (the server sees connections asynchronously).
async fn wait_for_connections(app: &TestApp, n: f64) {
    let seen = eventually(Duration::from_secs(5), || async {
        open_connections(app).await == n
    })
    .await;
    assert!(seen, "never {n} open connections");
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_healthz_answers_below_it() {
    let app = TestApp::with(&[
        ("max_connections", "4"),
        ("header_read_timeout", "30"),
        ("keep_alive_timeout", "30"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(socket(&app)).await.unwrap());
    }
    wait_for_connections(&app, 4.0).await;
    // The fifth is answered 503 (best effort) and closed at once.
    let mut fifth = TcpStream::connect(socket(&app)).await.unwrap();
    let answer = until_closed(&mut fifth, Duration::from_secs(3)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    // An existing connection still answers.
    assert_eq!(healthz(&mut held[0]).await, 200);
    // Below the cap, a new one does too.
    drop(held.pop());
    wait_for_connections(&app, 3.0).await;
    let mut new = TcpStream::connect(socket(&app)).await.unwrap();
    assert_eq!(healthz(&mut new).await, 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tessera_connections_refused_total 1"),
        "{metrics}"
    );
}

/// A connection to `app` from the loopback address `from` (Linux routes all of 127/8
/// to loopback, so each is a distinct client address).
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket
        .connect(self::socket(app).parse().unwrap())
        .await
        .unwrap()
}

/// One address holding its share of half-sent requests gets 429 for more; other
/// addresses, and a trusted proxy carrying many clients, still connect.
#[tokio::test]
async fn one_address_cannot_take_every_connection_slot() {
    let app = TestApp::with(&[
        ("max_connections", "16"),
        ("max_connections_per_address", "4"),
        ("trusted_proxies", "127.0.0.3"),
        ("header_read_timeout", "30"),
        ("keep_alive_timeout", "30"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = connect_from(&app, "127.0.0.2").await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    wait_for_connections(&app, 4.0).await;
    let mut fifth = connect_from(&app, "127.0.0.2").await;
    let answer = until_closed(&mut fifth, Duration::from_secs(3)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1"),
        "{answer}"
    );
    // Another address is served.
    let mut other = connect_from(&app, "127.0.0.4").await;
    assert_eq!(healthz(&mut other).await, 200);
    // A trusted proxy is not held to one address's share.
    let mut proxied = Vec::new();
    for _ in 0..6 {
        proxied.push(connect_from(&app, "127.0.0.3").await);
    }
    for c in &mut proxied {
        assert_eq!(healthz(c).await, 200);
    }
    // A slot freed is the address's again.
    drop(held.pop());
    wait_for_connections(&app, 3.0 + 1.0 + 6.0).await;
    let mut again = connect_from(&app, "127.0.0.2").await;
    assert_eq!(healthz(&mut again).await, 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tessera_connections_refused_per_address_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_connections_refused_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_are_served_on_the_operator_listener_only() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "/metrics on the public port");
    assert!(!app.get_text("/metrics").await.contains("tessera_"));
    let r = app.http.get(app.ops_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let r = app.http.get(app.ops_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The operator listener serves nothing else.
    let r = app.http.get(app.ops_url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_metrics_on_tessera_ops_bind() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let env = Served::env_for(&dir, &[]);
    let s = Served::start(dir.clone(), env, "server.log").await;
    assert_ne!(s.ops_addr, s.addr);
    let http = reqwest::Client::new();
    let r = http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/metrics", s.ops_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("tessera_sse_subscribers"));
}

/// With a file limit far below the number of sockets, `accept` fails (EMFILE): the
/// server backs off instead of spinning, the header-read timeout frees descriptors
/// held by silent connections, and `/healthz` answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off_and_the_server_recovers_from_fd_exhaustion() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let env = Served::env_for(
        &dir,
        &[
            ("TESSERA_HEADER_READ_TIMEOUT", "1"),
            ("TESSERA_KEEP_ALIVE_TIMEOUT", "1"),
            ("TESSERA_MAX_CONNECTIONS", "100000"),
        ],
    );
    let s = Served::start_under(&["prlimit", "--nofile=96"], dir.clone(), env, "server.log").await;
    // Silent sockets, far more than the server has descriptors for.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(s.socket()).await.unwrap());
    }
    let started = Instant::now();
    let mut probe = TcpStream::connect(s.socket()).await.unwrap();
    assert_eq!(
        healthz_within(&mut probe, Duration::from_secs(20)).await,
        200
    );
    let log = s.log_text();
    let backoffs = log.matches("accept failed; backing off").count();
    assert!(backoffs > 0, "the file limit was never reached:\n{log}");
    // A spinning accept loop logs thousands of these a second.
    let bound = 20 * (started.elapsed().as_secs() as usize + 1);
    assert!(backoffs < bound, "{backoffs} accept errors logged:\n{log}");
    drop(silent);
}
