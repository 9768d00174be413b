//! The machine's floor for a fan-out: `cargo bench --bench fanout_floor -- [STREAMS] [ROUNDS]`.
//!
//! No tessera, no HTTP: one process, a "server" runtime and a "client" runtime of two
//! worker threads each (as tessera and the load driver have), STREAMS loopback TCP
//! connections with `TCP_NODELAY`. Each round one `watch` signal wakes a task per
//! connection on the server side, which writes one 230-byte SSE-sized frame; a task
//! per connection on the client side reads it and timestamps it. Prints p50/p99/max from
//! the signal to each read, and the CPU each side's threads spent per delivery: what a fan-out
//! of that many streams costs on these cores before any server logic.
//!
//! `--batched`: instead of a task per connection, two tasks each write to half the
//! sockets in turn (no wake-ups; the least a server can do for one write per socket).
//!
//! `--two-processes`: the server side runs in a child process (the writer tasks, as by
//! default), as a server and its subscribers are in fact: a wake-up on the other side
//! of loopback then crosses processes, which it does not within one.
//!
//! Needs `ulimit -n` above twice STREAMS (both ends are in this process, or STREAMS each
//! with `--two-processes`).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// About the size of a `user.roles_changed` frame on the feed.
const FRAME: &[u8] = b"id: 123456\nevent: user.roles_changed\ndata: {\"id\":123456,\"type\":\"user.roles_changed\",\"sub\":\"0b9f6a9e-3c1d-4f8e-9a77-2f1d3c4b5a69\",\"sid\":null,\"ver\":7,\"roles\":[\"fan3\"],\"reason\":\"roles_changed\",\"kid\":null,\"at\":\"2026-12-02T03:00:00Z\"}\n\n";

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// CPU time so far (user + system) of process `pid`'s threads named `name`.
fn cpu(pid: &str, name: &str) -> Duration {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += [11, 12]
            .iter()
            .filter_map(|&i| f.get(i)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Duration::from_millis(ticks * 10)
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// A writer task per connection: writes [`FRAME`] each time `wake` changes.
fn write_on_signal(tcp: TcpStream, wake: &watch::Receiver<u64>) {
    let mut wake = wake.clone();
    let mut tcp = tcp;
    tokio::spawn(async move {
        while wake.changed().await.is_ok() {
            if tcp.write_all(FRAME).await.is_err() {
                return;
            }
        }
    });
}

/// `--serve` (the child of `--two-processes`): prints its port, then signals every
/// connection once per line read from stdin, until stdin closes.
fn serve() {
    let server = runtime("floor-server");
    let listener = server
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    let (signal, wake) = watch::channel(0u64);
    server.spawn(async move {
        loop {
            if let Ok((tcp, _)) = listener.accept().await {
                tcp.set_nodelay(true).ok();
                write_on_signal(tcp, &wake);
            }
        }
    });
    for (round, _) in std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .enumerate()
    {
        signal.send_replace(round as u64 + 1);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        return serve();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let streams: usize = args.first().map_or(8000, |s| s.parse().expect("STREAMS"));
    let rounds: usize = args.get(1).map_or(5, |s| s.parse().expect("ROUNDS"));
    let server = runtime("floor-server");
    let client = runtime("floor-client");
    // `--batched`: no task per connection; two tasks each write half the sockets in
    // turn when signalled (what a server could do at best with one write per socket).
    let batched = std::env::args().any(|a| a == "--batched");
    let split = std::env::args().any(|a| a == "--two-processes");
    assert!(!(batched && split), "--batched runs in one process");

    let (signal, wake) = watch::channel(0u64);
    let sockets: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
    // With `--two-processes`, the child that serves, its stdin (a line per round) and pid.
    let mut child = None;
    let addr = if split {
        let mut serving = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg("--serve")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the serving child");
        let mut port = String::new();
        std::io::BufReader::new(serving.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .expect("the child's port");
        let addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", port.trim()).parse().expect("port");
        child = Some(serving);
        addr
    } else {
        let listener = server
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sockets = sockets.clone();
        let wake = wake.clone();
        server.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tcp.set_nodelay(true).ok();
                if batched {
                    sockets.lock().unwrap().push(tcp);
                } else {
                    write_on_signal(tcp, &wake);
                }
            }
        });
        addr
    };
    let server_pid = child
        .as_ref()
        .map_or_else(|| "self".to_string(), |c| c.id().to_string());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Instant>();
    client.block_on(async {
        for _ in 0..streams {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.set_nodelay(true).ok();
            let seen = seen_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 512];
                let mut have = 0;
                loop {
                    match tcp.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                    while have >= FRAME.len() {
                        let _ = seen.send(Instant::now());
                        buf.copy_within(FRAME.len()..have, 0);
                        have -= FRAME.len();
                    }
                }
            });
        }
    });
    std::thread::sleep(Duration::from_secs(1));

    let mut latencies = Vec::with_capacity(streams * rounds);
    let cpu0 = (
        cpu(&server_pid, "floor-server"),
        cpu("self", "floor-client"),
    );
    for round in 0..rounds {
        let at = Instant::now();
        if batched {
            let all = std::mem::take(&mut *sockets.lock().unwrap());
            let half = all.len() / 2;
            let mut all = all.into_iter();
            let (a, b): (Vec<_>, Vec<_>) = (all.by_ref().take(half).collect(), all.collect());
            let writers: Vec<_> = [a, b]
                .into_iter()
                .map(|part| {
                    server.spawn(async move {
                        for tcp in &part {
                            let _ = tcp.try_write(FRAME);
                        }
                        part
                    })
                })
                .collect();
            for w in writers {
                let part = server.block_on(w).expect("writer");
                sockets.lock().unwrap().extend(part);
            }
        } else if let Some(child) = &mut child {
            let stdin = child.stdin.as_mut().expect("stdin");
            writeln!(stdin, "{round}")
                .and_then(|()| stdin.flush())
                .expect("signal the child");
        } else {
            signal.send_replace(round as u64 + 1);
        }
        client.block_on(async {
            for _ in 0..streams {
                let t = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                    .await
                    .expect("every stream within 10 s")
                    .expect("open");
                latencies.push(t - at);
            }
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    let spent = (
        cpu(&server_pid, "floor-server") - cpu0.0,
        cpu("self", "floor-client") - cpu0.1,
    );
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    let delivered = latencies.len() as f64;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / delivered;
    latencies.sort_unstable();
    println!(
        "fanout floor{}: {streams} streams x {rounds} rounds: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  CPU per delivery: writer {:.1} us, reader {:.1} us",
        if split { " (two processes)" } else { "" },
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0),
        per(spent.0),
        per(spent.1),
    );
}
