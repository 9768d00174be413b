//! The listeners: the accept loop with its connection caps (in all, per address),
//! one connection's life (a stream's own path or hyper, keep-alive idling, the
//! header-read timeout) and the graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use tokio::net::TcpListener;

use crate::domain::Core;

/// Connections the operator listener serves at once (scrapes and probes).
const OPS_MAX_CONNECTIONS: usize = 64;
/// Accept errors (EMFILE, ENFILE, ENOBUFS...) back off from this up to `ACCEPT_BACKOFF_MAX`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves the public port and the operator listener (`/metrics`) until `shutdown`
/// resolves, then stops accepting, ends the event streams and drains in-flight
/// requests (at most 10 s). Started by [`crate::app::serve`].
pub async fn serve(
    core: Arc<Core>,
    listener: TcpListener,
    ops: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Before the first stream: its writes to the streams waiting for the next event.
    let lane = tokio::spawn(super::events::lane::run(core.feed.clone()));
    let public = tokio::spawn(accept_loop(
        core.clone(),
        listener,
        super::router(core.clone()),
        core.cfg.max_connections,
        stop_rx.clone(),
        true,
    ));
    let operator = tokio::spawn(accept_loop(
        core.clone(),
        ops,
        super::ops::router(core.clone()),
        OPS_MAX_CONNECTIONS,
        stop_rx,
        false,
    ));
    shutdown.await;
    core.events.close();
    core.feed.tail.close();
    let _ = stop_tx.send(true);
    let drained = async {
        let _ = tokio::join!(public, operator);
    };
    if tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .is_err()
    {
        tracing::warn!("shutdown: in-flight requests did not finish within 10 s");
    }
    // It ends with the tail; in case it has not, no stream is left waiting on it.
    lane.abort();
}

/// Accepts connections until `stop`, at most `limit` at once: one over the limit is
/// answered 503 and closed at once, so it holds no file descriptor. On the public
/// port, one over its address's share ([`super::addresses`]) is answered 429 likewise.
/// Returns when every connection has finished.
async fn accept_loop(
    core: Arc<Core>,
    listener: TcpListener,
    app: Router,
    limit: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
    public: bool,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limit));
    let per_address = public.then(|| {
        super::addresses::PerAddress::new(core.cfg.max_connections_per_address.min(limit))
    });
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            // The peer gave up between SYN and accept: nothing to back off from.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Best effort: a full send buffer just closes.
            let _ = tcp.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if public {
                core.metrics.connection_refused();
            }
            continue;
        };
        let address = match &per_address {
            Some(cap) if !core.cfg.trusted_proxies.contains(&remote.ip()) => {
                match cap.acquire(remote.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        let _ = tcp.try_write(
                            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        core.metrics.connection_refused_per_address();
                        continue;
                    }
                }
            }
            _ => None,
        };
        // Small writes (SSE events, token responses) go out at once, not after a delayed ACK.
        let _ = tcp.set_nodelay(true);
        // The connection's own future is the task's: a wrapper that awaited it would
        // store it twice (the moved value and the awaited one), for a stream's whole life.
        tokio::spawn(connection(Box::new(Start {
            core: core.clone(),
            tcp,
            remote,
            app: app.clone(),
            stop: stop.clone(),
            public,
            held: Held {
                _permit: permit,
                _address: address,
            },
        })));
    }
    drop(listener);
    let _ = slots
        .acquire_many(u32::try_from(limit).unwrap_or(u32::MAX))
        .await;
}

/// What a connection starts with. Boxed: an async fn's arguments stay in its future
/// for its whole life (measured: an argument of 200 bytes used before the first
/// `.await` grew the future by 200), and a connection's future is held for as long as
/// it serves a stream; destructured, each lives only as long as it is used.
struct Start {
    core: Arc<Core>,
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
    public: bool,
    held: Held,
}

/// The start's fields, its box freed here: moved out in `connection`, the emptied box
/// would be freed only when the connection ends.
#[expect(
    clippy::boxed_local,
    reason = "the box is the point: the connection's future holds a pointer, not the start"
)]
fn unbox(start: Box<Start>) -> Start {
    *start
}

/// What a connection holds until it closes: its place under the listener's cap, and
/// under its address's.
struct Held {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _address: Option<super::addresses::AddressSlot>,
}

/// Accept errors that concern one connection only (`accept(2)`: the peer reset it).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Requests in flight on one connection, and when the last one ended (after its first
/// response; before, the header-read timeout alone bounds it). Plain atomics: a request
/// costs two counter updates and no wake-up; the idle timer reads them when it fires.
/// Monotonic time: an idle timeout, not a reading of the clock the rules use.
struct Activity {
    /// The connection's start: `last_done` counts from it.
    base: tokio::time::Instant,
    in_flight: AtomicUsize,
    /// Nanoseconds from `base` to the end of the last response; 0: none yet.
    last_done: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done: AtomicU64::new(0),
        }
    }
}

/// One request in flight until its response body is done (or dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &*self.0;
        let done = a.base.elapsed().as_nanos().max(1) as u64;
        a.last_done.store(done, Ordering::SeqCst);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves once the connection has had no request in flight for `after`: a timer that
/// looks at [`Activity`] when it fires and sets itself again while the connection is busy
/// (or has not answered yet), instead of being woken by every request.
async fn idle_for(activity: &Activity, after: Duration) {
    let mut deadline = tokio::time::Instant::now() + after;
    loop {
        tokio::time::sleep_until(deadline).await;
        let now = tokio::time::Instant::now();
        let done = activity.last_done.load(Ordering::SeqCst);
        if activity.in_flight.load(Ordering::SeqCst) > 0 || done == 0 {
            deadline = now + after;
            continue;
        }
        let idle_until = activity.base + Duration::from_nanos(done) + after;
        if now >= idle_until {
            return;
        }
        deadline = idle_until;
    }
}

/// One connection: a stream that opens it is served by [`super::stream_conn`], anything
/// else by hyper ([`with_hyper`]).
async fn connection(start: Box<Start>) {
    let Start {
        core,
        tcp,
        remote,
        app,
        mut stop,
        public,
        held: _held,
    } = unbox(start);
    let _counted = public.then(|| core.metrics.connection());
    let io = if public {
        // Boxed, as are answering a stream and hyper's path: the task lives as long as
        // the connection and is sized by its largest state, which is a stream's (the
        // relay below); the others' futures live on the heap while they run.
        let timeout = core.cfg.header_read_timeout;
        let opening = Box::pin(async {
            tokio::select! {
                opening = super::stream_conn::open(tcp, remote, timeout) => opening,
                _ = stop.wait_for(|s| *s) => super::stream_conn::Opening::Closed,
            }
        })
        .await;
        match opening {
            super::stream_conn::Opening::Stream(tcp, req) => {
                // Not a stream's: it ends on the feed's own shutdown signal.
                drop(stop);
                // Answering is boxed (over before the stream starts); what the stream
                // writes with is held here, in the task, for the stream's life.
                let answered = Box::pin(super::stream_conn::respond(tcp, req, app)).await;
                if let Some((tcp, body, framing)) = answered {
                    super::stream_conn::relay(tcp, body, framing).await;
                }
                return;
            }
            super::stream_conn::Opening::Hyper(io) => io,
            super::stream_conn::Opening::Closed => return,
        }
    } else {
        super::stream_conn::Rewind::plain(tcp)
    };
    Box::pin(with_hyper(core.clone(), io, remote, app, stop)).await;
}

/// One HTTP/1.1 connection served by hyper: the request head must be complete within
/// `header_read_timeout` of the connection being ready for it (its opening or the
/// previous response), and a connection idle for `keep_alive_timeout` after a
/// response is closed.
async fn with_hyper(
    core: Arc<Core>,
    io: super::stream_conn::Rewind,
    remote: SocketAddr,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let busy = Busy::new(&activity);
            let call = app.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let resp = call.await?;
                // The request counts until hyper has sent (or dropped) the whole body.
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _in_flight = &busy;
                        frame
                    }))
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(core.cfg.header_read_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let keep_alive = core.cfg.keep_alive_timeout;
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            // Nothing in flight: dropping the connection closes it.
            () = idle_for(&activity, keep_alive) => break,
        }
    }
}
