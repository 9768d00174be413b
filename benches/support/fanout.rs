//! `-s fanout`: N SSE streams over N/8 clients with capability `events` (two tokens
//! each, four streams a token: the per-token and per-caller caps), then permission
//! changes through the admin API. Reports delivery latency from the admin call to
//! the event on every stream (p50/p99/max), server RSS per idle stream, and the
//! database reads the feed made per event (the server's `tessera_event_feed_reads` and
//! `tessera_event_feed_catch_up_reads`).
//!
//! `--idle SECS` holds the streams open and quiet that long before the changes and reports
//! the server's CPU meanwhile (heartbeats, rechecks, the feed's reach published each second).
//!
//! `--raw-reader` reads each stream with a bare socket reader (the request written by
//! hand, the bytes scanned for the event) instead of hyper's client and a parse per
//! event: the driver then costs about what `benches/fanout_floor.rs`'s reader does, so
//! more of the two cores' time is the server's.
//!
//! Needs a file limit above the stream count in both processes (`ulimit -n`): the
//! driver raises nothing itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::{Value, json};

pub(crate) struct Fanout<'a> {
    pub base: &'a str,
    pub ops: &'a str,
    pub pid: Option<u32>,
    pub admin_token: &'a str,
    pub streams: usize,
    pub changes: usize,
    pub raw_reader: bool,
    pub idle: u64,
    pub label: &'a str,
}

const STREAMS_PER_TOKEN: usize = 4;
const TOKENS_PER_CLIENT: usize = 2;

async fn feed_reads(http: &reqwest::Client, ops: &str) -> f64 {
    let text = http
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .expect("operator listener")
        .text()
        .await
        .unwrap_or_default();
    // The tail's reads and the subscribers' catch-ups: every read the feed made.
    [
        "tessera_event_feed_reads ",
        "tessera_event_feed_catch_up_reads ",
    ]
    .iter()
    .map(|name| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    })
    .sum()
}

/// One SSE stream on its own connection; sends (ver, when) for every role change.
async fn open(
    addr: &str,
    token: &str,
    seen: tokio::sync::mpsc::UnboundedSender<(i64, Instant)>,
) -> Option<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri("/events")
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "text/event-stream")
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let resp = send.send_request(req).await.ok()?;
    if resp.status() != 200 {
        eprintln!("fanout: stream refused: {}", resp.status());
        return None;
    }
    tokio::spawn(read_events(resp.into_body(), seen));
    Some(())
}

/// Reads one stream's body; sends (ver, when) for every role change.
async fn read_events(
    mut body: hyper::body::Incoming,
    seen: tokio::sync::mpsc::UnboundedSender<(i64, Instant)>,
) {
    let mut buf = String::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(i) = buf.find("\n\n") {
            let frame: String = buf.drain(..i + 2).collect();
            if let Some(ver) = super::roles_changed_ver(&frame) {
                let _ = seen.send((ver, Instant::now()));
            }
        }
    }
}

/// One SSE stream read by a bare socket reader: sends (ver, when) for every role change.
async fn open_raw(
    addr: &str,
    token: &str,
    seen: tokio::sync::mpsc::UnboundedSender<(i64, Instant)>,
) -> Option<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if tcp.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 200") {
        eprintln!(
            "fanout: stream refused: {}",
            String::from_utf8_lossy(&buf[..12])
        );
        return None;
    }
    buf.drain(..head_end);
    tokio::spawn(async move {
        const EVENT: &[u8] = b"event: user.roles_changed\ndata: ";
        const VER: &[u8] = b"\"ver\":";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        loop {
            // Each event ends with a blank line; the chunk framing around it is skipped.
            while let Some(end) = find(&buf, b"\n\n") {
                let frame = &buf[..end];
                if let Some(at) = find(frame, EVENT) {
                    let data = &frame[at + EVENT.len()..];
                    let ver = find(data, VER).and_then(|v| {
                        let digits: Vec<u8> = data[v + VER.len()..]
                            .iter()
                            .copied()
                            .take_while(u8::is_ascii_digit)
                            .collect();
                        std::str::from_utf8(&digits).ok()?.parse::<i64>().ok()
                    });
                    if let Some(ver) = ver {
                        let _ = seen.send((ver, Instant::now()));
                    }
                }
                buf.drain(..end + 2);
            }
            match tcp.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    Some(())
}

/// Registers confidential client `id` with capability `events` through the admin API;
/// returns its secret.
pub(crate) async fn events_client(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    id: &str,
) -> String {
    let created: Value = http
        .post(format!("{base}/admin/clients"))
        .bearer_auth(admin_token)
        .json(&json!({"id": id, "grant_types": ["client_credentials"], "capabilities": ["events"]}))
        .send()
        .await
        .expect("create client")
        .json()
        .await
        .expect("client JSON");
    created["client_secret"]
        .as_str()
        .expect("secret")
        .to_string()
}

/// Bytes `pid` has passed to write calls, to files and sockets alike (`wchar` in
/// `/proc/PID/io`, readable by its owner). Not `write_bytes`: a page the WAL rewrites before
/// the kernel wrote it back counts there once.
fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))?
        .trim()
        .parse()
        .ok()
}

pub(crate) async fn run(f: Fanout<'_>) -> Value {
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", f.base))
            .bearer_auth(f.admin_token)
    };
    let per_client = STREAMS_PER_TOKEN * TOKENS_PER_CLIENT;
    let clients = f.streams.div_ceil(per_client);
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(clients * TOKENS_PER_CLIENT);
    for i in 0..clients {
        let secret = events_client(&http, f.base, f.admin_token, &format!("fanout-{i}")).await;
        for _ in 0..TOKENS_PER_CLIENT {
            let t: Value = http
                .post(format!("{}/token", f.base))
                .basic_auth(format!("fanout-{i}"), Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("token JSON");
            tokens.push(
                t["access_token"]
                    .as_str()
                    .expect("access_token")
                    .to_string(),
            );
        }
    }
    let user: Value = admin(reqwest::Method::POST, "/admin/users")
        .json(&json!({"username": "fanout-target", "password": "fanout-target-pw"}))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("user JSON");
    let uid = user["id"].as_str().expect("user id").to_string();
    println!(
        "fanout: {clients} clients, {} tokens in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );

    let rss = |pid: Option<u32>| pid.and_then(super::rss_kib).unwrap_or(0);
    let rss_before = rss(f.pid);
    let addr = Arc::new(f.base.trim_start_matches("http://").to_string());
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opened = 0usize;
    let mut refused = 0usize;
    let opening = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    for n in 0..f.streams {
        let token = tokens[n / STREAMS_PER_TOKEN].clone();
        let (addr, seen) = (addr.clone(), seen_tx.clone());
        let raw = f.raw_reader;
        pending.spawn(async move {
            if raw {
                open_raw(&addr, &token, seen).await
            } else {
                open(&addr, &token, seen).await
            }
        });
        // A bounded number of handshakes in flight: no connect storm.
        if pending.len() >= 256 {
            match pending.join_next().await {
                Some(Ok(Some(()))) => opened += 1,
                _ => refused += 1,
            }
        }
    }
    while let Some(r) = pending.join_next().await {
        match r {
            Ok(Some(())) => opened += 1,
            _ => refused += 1,
        }
    }
    drop(seen_tx);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_streams = rss(f.pid);
    let per_stream_kib = if opened > 0 {
        rss_streams.saturating_sub(rss_before) as f64 / opened as f64
    } else {
        0.0
    };
    println!(
        "fanout: {opened} streams open ({refused} refused) in {:.1} s; server RSS {:.1} -> {:.1} MiB ({per_stream_kib:.1} KiB per stream)",
        opening.elapsed().as_secs_f64(),
        rss_before as f64 / 1024.0,
        rss_streams as f64 / 1024.0
    );

    // CPU time (clock ticks, 10 ms) of the server and of this driver.
    let ticks = |pid: Option<u32>| pid.and_then(super::cpu_ticks).unwrap_or(0);
    let idle_ms_per_s = if f.idle > 0 {
        let (before, written) = (ticks(f.pid), f.pid.and_then(written_bytes));
        tokio::time::sleep(Duration::from_secs(f.idle)).await;
        let ms = ticks(f.pid).saturating_sub(before) as f64 * 10.0 / f.idle as f64;
        let kib = written
            .zip(f.pid.and_then(written_bytes))
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1024.0 / f.idle as f64);
        println!(
            "fanout: {opened} idle streams for {} s: server CPU {ms:.1} ms per second, {} KiB written per second (files and sockets)",
            f.idle,
            kib.map_or("?".into(), |k| format!("{k:.0}"))
        );
        Some(ms)
    } else {
        None
    };
    let reads_before = feed_reads(&http, f.ops).await;
    let (server_cpu0, driver_cpu0) = (ticks(f.pid), ticks(Some(std::process::id())));
    let mut lat_us: Vec<u32> = Vec::with_capacity(opened * f.changes);
    // How long each change's admin call took (its commit is fsynced on SQLite's default):
    // each delivery's latency counts it, and the floor has nothing like it.
    let mut admin_us: Vec<u32> = Vec::with_capacity(f.changes);
    // Per change, "admin call / last delivery" in ms.
    let mut per_change = Vec::with_capacity(f.changes);
    for i in 0..f.changes {
        let at = Instant::now();
        let r = super::set_roles(&http, f.base, f.admin_token, &uid, &[format!("fan{i}")]).await;
        admin_us.push(at.elapsed().as_micros() as u32);
        let ver = r["ver"].as_i64().expect("ver");
        let mut delivered = 0usize;
        let mut last = 0u32;
        let deadline = at + Duration::from_secs(10);
        while delivered < opened {
            match tokio::time::timeout_at(deadline.into(), seen_rx.recv()).await {
                Ok(Some((v, t))) if v == ver => {
                    delivered += 1;
                    let us = t.duration_since(at).as_micros() as u32;
                    last = last.max(us);
                    lat_us.push(us);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if delivered < opened {
            println!("fanout: change {i}: only {delivered}/{opened} streams got it within 10 s");
        }
        per_change.push(format!(
            "{:.1}/{:.1}",
            admin_us[i] as f64 / 1000.0,
            last as f64 / 1000.0
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (server_cpu, driver_cpu) = (
        ticks(f.pid).saturating_sub(server_cpu0),
        ticks(Some(std::process::id())).saturating_sub(driver_cpu0),
    );
    let reads_after = feed_reads(&http, f.ops).await;
    // Microseconds of CPU per delivered event (a tick is 10 ms).
    let delivered = lat_us.len().max(1) as f64;
    let per_delivery = |t: u64| t as f64 * 10_000.0 / delivered;
    println!(
        "fanout: CPU over the changes: server {:.2} s ({:.1} us per delivery), driver {:.2} s ({:.1} us per delivery)",
        server_cpu as f64 / 100.0,
        per_delivery(server_cpu),
        driver_cpu as f64 / 100.0,
        per_delivery(driver_cpu),
    );
    println!(
        "fanout: per change, admin call / last delivery (ms): {}",
        per_change.join(", ")
    );
    lat_us.sort_unstable();
    admin_us.sort_unstable();
    let pct = super::pct;
    println!(
        "fanout: the admin call of each change (from before it to its answer): p50 {:.1} ms, max {:.1} ms",
        pct(&admin_us, 0.5),
        pct(&admin_us, 1.0)
    );
    let reads_per_event = (reads_after - reads_before) / f.changes.max(1) as f64;
    println!(
        "{:<10} {:<19} {opened} streams x {} changes: delivered {}/{}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  {per_stream_kib:.1} KiB/stream  {reads_per_event:.1} feed reads/event",
        f.label,
        if f.raw_reader {
            "fanout (raw reader)"
        } else {
            "fanout"
        },
        f.changes,
        lat_us.len(),
        opened * f.changes,
        pct(&lat_us, 0.5),
        pct(&lat_us, 0.99),
        pct(&lat_us, 1.0),
    );
    json!({"server": f.label, "scenario": "fanout", "raw_reader": f.raw_reader,
           "idle_server_cpu_ms_per_s": idle_ms_per_s,
           "streams": opened, "refused": refused,
           "changes": f.changes, "delivered": lat_us.len(),
           "p50_ms": pct(&lat_us, 0.5), "p99_ms": pct(&lat_us, 0.99), "max_ms": pct(&lat_us, 1.0),
           "rss_kib_per_stream": per_stream_kib, "feed_reads_per_event": reads_per_event,
           "admin_call_p50_ms": pct(&admin_us, 0.5), "admin_call_max_ms": pct(&admin_us, 1.0),
           "server_cpu_us_per_delivery": per_delivery(server_cpu),
           "driver_cpu_us_per_delivery": per_delivery(driver_cpu)})
}
