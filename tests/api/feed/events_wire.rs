//! The feed on the wire, on raw sockets: a connection that opens with a stream request
//! is served by tessera's own stream path (chunked, `Connection: close`, no hyper
//! buffers); every other first request, and a stream after one, by hyper with
//! keep-alive. Both must frame correctly, end cleanly and notice a peer that leaves.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tessera::domain::permissions::Change;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A raw HTTP/1 connection with what was read but not consumed yet.
struct Wire {
    tcp: TcpStream,
    buf: Vec<u8>,
}

/// A response head: status and lowercase header lines.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Wire {
    async fn connect(app: &TestApp) -> Self {
        let tcp = TcpStream::connect(app.addr.trim_start_matches("http://"))
            .await
            .unwrap();
        Self {
            tcp,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, raw: &str) {
        self.tcp.write_all(raw.as_bytes()).await.unwrap();
    }

    /// Reads more; false at EOF. Panics after 5 s of nothing.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), self.tcp.read(&mut chunk))
            .await
            .expect("nothing from the server within 5 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Consumes through the first `what`.
    async fn through(&mut self, what: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.buf.windows(what.len()).position(|w| w == what) {
                return self.buf.drain(..at + what.len()).collect();
            }
            assert!(
                self.fill().await,
                "EOF before {:?}",
                String::from_utf8_lossy(what)
            );
        }
    }

    async fn head(&mut self) -> Head {
        let raw = String::from_utf8(self.through(b"\r\n\r\n").await).unwrap();
        let mut lines = raw.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Head { status, headers }
    }

    /// The next chunk of a chunked body, its CRLF consumed (empty: the last chunk,
    /// with the CRLF that ends the body, no trailers).
    async fn chunk(&mut self) -> String {
        let size = String::from_utf8(self.through(b"\r\n").await).unwrap();
        let size = usize::from_str_radix(size.trim_end(), 16)
            .unwrap_or_else(|_| panic!("chunk size: {:?}", &size[..size.len().min(200)]));
        while self.buf.len() < size + 2 {
            assert!(self.fill().await, "EOF inside a chunk");
        }
        let data: Vec<u8> = self.buf.drain(..size + 2).collect();
        assert_eq!(&data[size..], b"\r\n", "chunk ends with CRLF");
        String::from_utf8(data[..size].to_vec()).unwrap()
    }

    /// Whether the server closes the connection within 5 s, with nothing more sent.
    async fn closed(&mut self) -> bool {
        let before = self.buf.len();
        !self.fill().await && self.buf.len() == before
    }
}

fn stream_request(version: &str, token: &str) -> String {
    format!(
        "GET /events HTTP/{version}\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
}

async fn change_roles(app: &TestApp, admin: &str, user: &str, roles: &[&str]) {
    let r = app
        .with_bearer(Method::PUT, &format!("/admin/users/{user}/roles"), admin)
        .json(&json!({ "roles": roles }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Waits until the server holds `n` streams.
async fn streams_open(app: &TestApp, n: usize) {
    let started = Instant::now();
    while app.core.events.open_streams() != n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} streams open, expected {n}",
            app.core.events.open_streams()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stream_opening_its_connection_is_chunked_and_ends_with_the_last_chunk_and_a_close() {
    let Feed {
        mut app, rs, alice, ..
    } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let mut wire = Wire::connect(&app).await;
    wire.send(&stream_request("1.1", &rs)).await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    assert_eq!(head.get("cache-control"), Some("no-cache"));
    assert_eq!(head.get("x-content-type-options"), Some("nosniff"));
    assert_eq!(head.get("transfer-encoding"), Some("chunked"));
    assert_eq!(head.get("connection"), Some("close"));
    assert!(head.get("date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(head.get("content-length").is_none());

    change_roles(&app, &admin, &alice, &["writer"]).await;
    let first = wire.chunk().await;
    assert!(
        first.starts_with("id: ") && first.contains("\nevent: user.roles_changed\ndata: {"),
        "{first}"
    );
    assert!(
        first.ends_with("\n\n"),
        "one whole event per chunk: {first:?}"
    );
    assert!(first.contains(&alice), "{first}");

    // Shutdown ends the stream with its reason, then the last chunk, then the close.
    app.shutdown().await;
    let mut rest = String::new();
    loop {
        let chunk = wire.chunk().await;
        if chunk.is_empty() {
            break;
        }
        rest.push_str(&chunk);
    }
    assert!(
        rest.contains("event: end\ndata: {\"error_description\"")
            && rest.contains("\"reason\":\"shutting_down\""),
        "{rest}"
    );
    assert!(
        wire.closed().await,
        "the connection closes after the stream"
    );
}

#[tokio::test]
async fn a_stream_over_http_1_0_is_delimited_by_the_close() {
    let Feed {
        mut app, rs, alice, ..
    } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let mut wire = Wire::connect(&app).await;
    wire.send(&stream_request("1.0", &rs)).await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert!(
        head.get("transfer-encoding").is_none(),
        "HTTP/1.0 has no chunks"
    );
    assert!(head.get("content-length").is_none());
    assert_eq!(head.get("connection"), Some("close"));
    change_roles(&app, &admin, &alice, &["writer"]).await;
    let event = wire.through(b"\n\n").await;
    assert!(
        String::from_utf8_lossy(&event).contains("event: user.roles_changed"),
        "{}",
        String::from_utf8_lossy(&event)
    );
    app.shutdown().await;
    while wire.fill().await {}
    let rest = String::from_utf8_lossy(&wire.buf);
    assert!(
        rest.contains("\"reason\":\"shutting_down\"") && rest.ends_with("\n\n"),
        "{rest}"
    );
}

#[tokio::test]
async fn a_refused_stream_gets_a_whole_response_and_the_connection_closes() {
    let Feed { app, .. } = Feed::start(&[]).await;
    let mut wire = Wire::connect(&app).await;
    wire.send(&stream_request("1.1", "not-a-token")).await;
    let head = wire.head().await;
    assert_eq!(head.status, 401);
    assert!(
        head.get("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer ") && v.contains("invalid_token")),
        "{:?}",
        head.headers
    );
    let len: usize = head
        .get("content-length")
        .expect("a whole response has its length")
        .parse()
        .unwrap();
    while wire.buf.len() < len {
        assert!(wire.fill().await, "EOF inside the body");
    }
    let body: serde_json::Value = serde_json::from_slice(&wire.buf[..len]).unwrap();
    assert_eq!(body["error"], "invalid_token");
    wire.buf.drain(..len);
    assert!(wire.closed().await);
}

#[tokio::test]
async fn a_stream_head_sent_in_pieces_is_served() {
    let Feed { app, rs, alice, .. } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let mut wire = Wire::connect(&app).await;
    let request = stream_request("1.1", &rs);
    // Split inside the prefix the server looks at first, then inside a header.
    for piece in [&request[..7], &request[7..30], &request[30..]] {
        wire.send(piece).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("transfer-encoding"), Some("chunked"));
    change_roles(&app, &admin, &alice, &["writer"]).await;
    assert!(wire.chunk().await.contains("event: user.roles_changed"));
}

#[tokio::test]
async fn other_first_requests_are_hypers_and_keep_the_connection_alive() {
    let Feed { app, rs, alice, .. } = Feed::start(&[]).await;
    let admin = app.admin_token().await;
    let mut wire = Wire::connect(&app).await;
    // A long-poll (JSON) first, its head trickled: read here, then replayed to hyper.
    let poll = format!(
        "GET /events?wait=0 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAuthorization: Bearer {rs}\r\n\r\n"
    );
    for piece in [&poll[..5], &poll[5..40], &poll[40..]] {
        wire.send(piece).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("application/json"));
    assert_ne!(head.get("connection"), Some("close"));
    let len: usize = head.get("content-length").unwrap().parse().unwrap();
    while wire.buf.len() < len {
        assert!(wire.fill().await);
    }
    let body: serde_json::Value = serde_json::from_slice(&wire.buf[..len]).unwrap();
    assert_eq!(body["events"], json!([]));
    wire.buf.drain(..len);

    // The same connection serves a path that only starts like the feed's...
    wire.send("GET /eventsx HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let head = wire.head().await;
    assert_eq!(head.status, 404);
    let len: usize = head.get("content-length").unwrap_or("0").parse().unwrap();
    while wire.buf.len() < len {
        assert!(wire.fill().await);
    }
    wire.buf.drain(..len);

    // ...and then a stream, on hyper's path: chunked, the events delivered.
    wire.send(&stream_request("1.1", &rs)).await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    assert_eq!(head.get("transfer-encoding"), Some("chunked"));
    change_roles(&app, &admin, &alice, &["writer"]).await;
    let mut seen = String::new();
    while !seen.contains("event: user.roles_changed") {
        seen.push_str(&wire.chunk().await);
    }
}

#[tokio::test]
async fn a_stream_head_that_never_completes_is_closed_after_the_header_timeout() {
    let app = TestApp::with(&[("header_read_timeout", "1"), ("keep_alive_timeout", "30")]).await;
    let started = Instant::now();
    let mut wire = Wire::connect(&app).await;
    wire.send("GET /events HTTP/1.1\r\nHost: x\r\n").await;
    assert!(wire.closed().await, "closed with nothing sent back");
    assert!(wire.buf.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    // The server is fine.
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_peer_that_leaves_gives_up_its_stream_at_once() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    let mut wire = Wire::connect(&app).await;
    wire.send(&stream_request("1.1", &rs)).await;
    assert_eq!(wire.head().await.status, 200);
    streams_open(&app, 1).await;
    // Closing its side, with no event or heartbeat due for 10 s.
    drop(wire);
    streams_open(&app, 0).await;

    // Bytes after the request (this connection will answer nothing more) end it too.
    let mut wire = Wire::connect(&app).await;
    wire.send(&stream_request("1.1", &rs)).await;
    assert_eq!(wire.head().await.status, 200);
    streams_open(&app, 1).await;
    wire.send("GET /healthz HTTP/1.1\r\n\r\n").await;
    streams_open(&app, 0).await;
}

#[tokio::test]
async fn a_stream_request_over_the_header_limits_gets_431_on_its_own_path_too() {
    let Feed { app, rs, .. } = Feed::start(&[]).await;
    // 70 header lines: over the router's 64, under the 100 this path parses.
    let extra: String = (0..70).map(|i| format!("X-Extra-{i}: y\r\n")).collect();
    let mut wire = Wire::connect(&app).await;
    wire.send(&format!(
        "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer {rs}\r\n{extra}\r\n"
    ))
    .await;
    let head = wire.head().await;
    assert_eq!(head.status, 431);
    assert_eq!(head.get("connection"), Some("close"));
    let len: usize = head.get("content-length").unwrap().parse().unwrap();
    while wire.buf.len() < len {
        assert!(wire.fill().await);
    }
    let body: serde_json::Value = serde_json::from_slice(&wire.buf[..len]).unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// Waits until `n` streams wait on the feed's lane.
async fn parked(app: &TestApp, n: usize) {
    let started = Instant::now();
    while app.core.feed.lane.parked() != n {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} streams parked on the lane, expected {n}",
            app.core.feed.lane.parked()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one-event chunks until the one whose data holds `sentinel`; their ids.
async fn read_until(wire: &mut Wire, sentinel: &str) -> Vec<i64> {
    let mut ids = vec![];
    loop {
        let chunk = wire.chunk().await;
        assert!(
            chunk.starts_with("id: ") && chunk.ends_with("\n\n"),
            "one whole event per chunk: {:?}",
            &chunk[..chunk.len().min(120)]
        );
        let id = chunk[4..chunk.find('\n').unwrap()].parse().unwrap();
        ids.push(id);
        if chunk.contains(sentinel) {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_waiting_for_the_next_event_are_written_by_the_lane_and_a_full_socket_is_handed_back()
 {
    // Streams of every event wait on the feed's lane once they have delivered
    // everything; its loop writes each new batch to their sockets as the streams' own
    // chunks. A socket that does not take a batch whole (its reader stopped reading)
    // is handed back to its stream, which writes the rest before anything else.
    let Feed { app, alice, .. } = Feed::start(&[]).await;
    let secret = app.service("gw", &["events"]).await;
    let lane = &app.core.feed.lane;
    let (writes, handbacks) = (lane.writes(), lane.handbacks());
    let mut live = vec![];
    for _ in 0..2 {
        let token = app.client_token("gw", &secret).await;
        let mut wire = Wire::connect(&app).await;
        wire.send(&stream_request("1.1", &token)).await;
        assert_eq!(wire.head().await.status, 200);
        live.push(wire);
    }
    // A reader with a tiny receive buffer that reads nothing until the end.
    let token = app.client_token("gw", &secret).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket
        .connect(app.addr.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap();
    let mut stalled = Wire {
        tcp,
        buf: Vec::new(),
    };
    stalled.send(&stream_request("1.1", &token)).await;
    parked(&app, 3).await;
    let (before,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT COALESCE(MAX(id), 0) FROM security_events",
        &[],
    )
    .await;

    let sentinel = "\"roles\":[\"done\"]";
    let readers: Vec<_> = live
        .into_iter()
        .map(|mut wire| {
            tokio::spawn(async move {
                let ids = read_until(&mut wire, sentinel).await;
                (ids, wire)
            })
        })
        .collect();
    // Events of about 33 KB (256 roles of 128 characters each): 200 of them are more
    // than the stalled socket's buffers hold (the kernel's send buffer is at most
    // 4 MiB here), and the live readers' sockets take them as they read.
    for n in 0..200 {
        let roles = (0..256)
            .map(|r| format!("{n:04}-{r:03}-{}", "x".repeat(119)))
            .collect();
        app.core
            .users
            .change_user(
                &tessera::domain::audit::Actor::cli(),
                &alice,
                Change::Roles(roles),
            )
            .await
            .unwrap();
    }
    app.core
        .users
        .change_user(
            &tessera::domain::audit::Actor::cli(),
            &alice,
            Change::Roles(vec!["done".into()]),
        )
        .await
        .unwrap();
    let (done,): (i64,) = crate::sql::one(
        app.core.db.writer(),
        "SELECT MAX(id) FROM security_events WHERE type = 'user.roles_changed'",
        &[],
    )
    .await;
    let want: Vec<(i64,)> = crate::sql::all(
        app.core.db.writer(),
        "SELECT id FROM security_events WHERE id > $1 AND id <= $2 ORDER BY id",
        &[before.into(), done.into()],
    )
    .await;
    let want: Vec<i64> = want.into_iter().map(|(id,)| id).collect();
    assert!(want.len() > 200, "{} events", want.len());
    let mut live = vec![];
    for reader in readers {
        let (ids, wire) = reader.await.unwrap();
        assert_eq!(ids, want, "a live reader");
        live.push(wire);
    }
    assert!(
        lane.handbacks() > handbacks,
        "the stalled socket filled while its stream waited on the lane"
    );
    assert_eq!(stalled.head().await.status, 200);
    assert_eq!(
        read_until(&mut stalled, sentinel).await,
        want,
        "the stalled reader"
    );
    // At least a batch to each live reader (most of the 201 events, unless batched).
    assert!(
        lane.writes() >= writes + 2,
        "{} lane writes",
        lane.writes() - writes
    );
    // Drained, the stalled stream waits on the lane again.
    parked(&app, 3).await;
}
