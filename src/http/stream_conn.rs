//! Connections whose first request opens an event stream (`GET /events` as SSE).
//!
//! hyper 1.x keeps two 8 KiB buffers for an HTTP/1 connection's whole life (its
//! read buffer and the buffer it writes response heads into; neither size is a
//! server setting). A stream is one request whose response does not end, held by
//! every resource-server instance and browser tab at once, so those 16 KiB would be
//! most of an idle stream's cost. A connection that opens with a stream request is
//! therefore served here: its head is read into a buffer freed once parsed (by
//! httparse, the parser hyper uses), the request goes through the same router as
//! any other, and the response is written with chunked framing, the connection
//! closing when the stream ends (`Connection: close`). Only a plain `GET /events`
//! asking for `text/event-stream`, without a body, is taken: anything else, and
//! anything this code is unsure of (a malformed or oversized head), goes to hyper
//! untouched, the bytes already read replayed in front of the socket ([`Rewind`]).
//! A stream on a connection that served something else first stays hyper's too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, Version, header};
use bytes::{Buf, Bytes};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt;

use chunk::{write_all, write_chunk};

use crate::domain::lane::Seat;

pub(super) mod chunk;

/// What a stream request starts with.
const PREFIX: &[u8] = b"GET /events";
/// The most header lines a stream request may have here (hyper's default is 100).
const MAX_HEADERS: usize = 100;
/// A longer head is left to hyper, whose limits then apply.
const MAX_HEAD: usize = 64 * 1024;

/// How a new connection begins.
pub(super) enum Opening {
    /// Not a stream request, or not one this module takes: hyper serves the
    /// connection, reading first what was already read here.
    Hyper(Rewind),
    /// A stream request, parsed; the connection is served by [`respond`] and [`relay`].
    Stream(TcpStream, Box<Request>),
    /// The peer closed, failed, or sent no complete head in time: nothing to answer.
    Closed,
}

/// Looks at how the connection begins, within `timeout` for the whole request head.
/// A connection whose first bytes are not [`PREFIX`] costs one `recv(MSG_PEEK)`.
/// (The caller boxes it: the head's read, its timers and buffer, is over once it returns.)
pub(super) async fn open(tcp: TcpStream, remote: SocketAddr, timeout: Duration) -> Opening {
    // A real-time wait (monotonic), not a reading of the clock the rules use.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut peeked = [0u8; PREFIX.len()];
    let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut peeked)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Opening::Closed,
        Ok(Ok(n)) => n,
    };
    if !PREFIX.starts_with(&peeked[..n]) {
        return Opening::Hyper(Rewind::plain(tcp));
    }
    let mut tcp = tcp;
    let mut buf = Vec::with_capacity(1024);
    loop {
        match tokio::time::timeout_at(
            deadline,
            tokio::io::AsyncReadExt::read_buf(&mut tcp, &mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Opening::Closed,
            Ok(Ok(_)) => {}
        }
        match parse(&buf, remote) {
            Parsed::Partial if buf.len() < MAX_HEAD => {
                if buf.len() == buf.capacity() {
                    buf.reserve(buf.len());
                }
            }
            Parsed::Stream(req) => return Opening::Stream(tcp, req),
            Parsed::Partial | Parsed::NotOurs => {
                return Opening::Hyper(Rewind::new(tcp, Bytes::from(buf)));
            }
        }
    }
}

enum Parsed {
    Partial,
    NotOurs,
    Stream(Box<Request>),
}

/// The request in `buf`, if its head is complete and it is a stream request this
/// module takes.
fn parse(buf: &[u8], remote: SocketAddr) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    // Nothing may follow the head: a pipelined request would wait behind a response
    // that does not end.
    if len != buf.len() || head.method != Some("GET") {
        return Parsed::NotOurs;
    }
    let Some(path) = head.path else {
        return Parsed::NotOurs;
    };
    if path != "/events" && !path.starts_with("/events?") {
        return Parsed::NotOurs;
    }
    let version = match head.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Parsed::NotOurs,
    };
    let mut map = HeaderMap::with_capacity(head.headers.len());
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::NotOurs;
        };
        map.append(name, value);
    }
    // A body, however framed, is hyper's to read.
    let has_body = map.contains_key(header::TRANSFER_ENCODING)
        || map
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body || !super::events::accepts_sse(&map) {
        return Parsed::NotOurs;
    }
    let Ok(mut req) = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(version)
        .body(axum::body::Body::empty())
    else {
        return Parsed::NotOurs;
    };
    *req.headers_mut() = map;
    req.extensions_mut().insert(ConnectInfo(remote));
    Parsed::Stream(Box::new(req))
}

/// How a stream's body reaches the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Delimited by the close (HTTP/1.0) or by its length: written as it is.
    Plain,
    /// Chunked, each of the body's data a chunk, framed here.
    Chunked,
    /// Chunked, the body framing its own chunks: a stream of the feed's lane
    /// ([`crate::domain::lane`]), whose socket the lane writes whole batches to.
    Framed,
}

/// A stream's socket: the connection's own, or held by the stream's seat on the feed's
/// lane, which writes to it while the stream waits there.
pub(super) enum Socket {
    Own(TcpStream),
    Lane(Arc<Seat>),
}

impl Socket {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Own(tcp) => tcp,
            Self::Lane(seat) => seat.socket().expect("attached"),
        }
    }

    /// The socket, once the stream (which holds the seat too) has been dropped.
    fn into_tcp(self) -> Option<TcpStream> {
        match self {
            Self::Own(tcp) => Some(tcp),
            Self::Lane(seat) => seat.into_socket(),
        }
    }
}

/// Answers the stream request on `tcp` through `app` and writes the response's head;
/// returns the socket, the body and its framing for [`relay`], or `None` if the head
/// could not be written.
pub(super) async fn respond(
    tcp: TcpStream,
    req: Box<Request>,
    app: Router,
) -> Option<(Socket, axum::body::Body, Framing)> {
    let version = req.version();
    let Ok(resp) = app.oneshot(*req).await;
    let exact = axum::body::HttpBody::size_hint(resp.body()).exact();
    // HTTP/1.0 has no chunked coding: its stream is delimited by the close.
    let chunked = exact.is_none() && version == Version::HTTP_11;
    let (mut parts, body) = resp.into_parts();
    let seat = parts.extensions.remove::<Arc<Seat>>();
    let head = head(&Response::from_parts(parts, ()), exact, chunked);
    write_all(&tcp, &head).await.ok()?;
    Some(match seat {
        Some(seat) if chunked => {
            seat.attach(tcp);
            (Socket::Lane(seat), body, Framing::Framed)
        }
        _ if chunked => (Socket::Own(tcp), body, Framing::Chunked),
        _ => (Socket::Own(tcp), body, Framing::Plain),
    })
}

/// Writes the body to the socket, closing the connection when it ends (the stream's
/// final event, or at once for a refusal), when the peer closes its side, or when it
/// sends anything more.
pub(super) async fn relay(socket: Socket, mut body: axum::body::Body, framing: Framing) {
    let tcp = socket.tcp();
    let ended = loop {
        match next(tcp, &mut body).await {
            Next::Data(data) => {
                let written = match framing {
                    Framing::Chunked => write_chunk(tcp, &data).await,
                    Framing::Plain | Framing::Framed => write_all(tcp, &data).await,
                };
                if written.is_err() {
                    break false;
                }
            }
            Next::End => break true,
            Next::Gone => break false,
        }
    };
    if ended && framing != Framing::Plain {
        let _ = write_all(tcp, b"0\r\n\r\n").await;
    }
    // The body first: it takes its stream off the lane and lets go of the seat.
    drop(body);
    if ended && let Some(mut tcp) = socket.into_tcp() {
        let _ = tcp.shutdown().await;
    }
}

enum Next {
    Data(Bytes),
    /// The response body ended.
    End,
    /// The body failed, or the peer closed its side, failed, or sent bytes this
    /// connection will never answer.
    Gone,
}

/// The body's next data, watching the peer meanwhile. Polls the socket's read
/// readiness directly (one waker slot per socket) rather than through a
/// `readable()` future per frame, and only once the body has nothing to give: a
/// stream waiting for events always has the socket's waker registered, and a
/// delivery does not pay for a look at a socket the peer sends nothing on. (A peer
/// that closed while events flow is then seen at the next wait, or as a failed write.)
async fn next(tcp: &TcpStream, body: &mut axum::body::Body) -> Next {
    use axum::body::HttpBody;
    std::future::poll_fn(|cx| {
        loop {
            let frame = match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => return Poll::Ready(Next::End),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Next::Gone),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            // Trailers and empty frames carry nothing to write.
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                return Poll::Ready(Next::Data(data));
            }
        }
        // Until it is Pending, so the socket's waker is registered for what comes.
        while tcp.poll_read_ready(cx).is_ready() {
            let mut scratch = [0u8; 16];
            match tcp.try_read(&mut scratch) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                _ => return Poll::Ready(Next::Gone),
            }
        }
        Poll::Pending
    })
    .await
}

/// The status line and headers, with the framing and `Connection: close` added.
fn head(resp: &Response<()>, exact: Option<u64>, chunked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let status = resp.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in resp.headers() {
        if matches!(
            *name,
            header::CONNECTION | header::CONTENT_LENGTH | header::TRANSFER_ENCODING
        ) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !resp.headers().contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        // The system's time, not `Core.clock`: a header, not a rule, and hyper dates every
        // other response from the system too, so a test's pinned clock cannot make one
        // connection disagree with the rest.
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = exact {
        out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
    } else if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// A socket with bytes already read from it put back in front, for hyper.
pub(super) struct Rewind {
    pre: Bytes,
    io: TcpStream,
}

impl Rewind {
    fn new(io: TcpStream, pre: Bytes) -> Self {
        Self { pre, io }
    }

    /// The socket as it is, nothing read from it yet.
    pub(super) fn plain(io: TcpStream) -> Self {
        Self::new(io, Bytes::new())
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn taken(raw: &str) -> bool {
        matches!(parse(raw.as_bytes(), remote()), Parsed::Stream(_))
    }

    #[test]
    fn only_a_plain_stream_request_is_taken() {
        let sse = "GET /events HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n";
        assert!(taken(sse));
        assert!(taken(
            "GET /events?after=3 HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n"
        ));
        // No Accept at all is a stream, as on hyper's path.
        assert!(taken("GET /events HTTP/1.1\r\n\r\n"));
        assert!(taken(
            "GET /events HTTP/1.1\r\nContent-Length: 0\r\nAccept: text/event-stream\r\n\r\n"
        ));
        for not_ours in [
            "GET /events HTTP/1.1\r\nAccept: application/json\r\n\r\n",
            "GET /eventsx HTTP/1.1\r\n\r\n",
            "GET /events/1 HTTP/1.1\r\n\r\n",
            "GET /events HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
            "GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            // A pipelined second request.
            "GET /events HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
            "GET /events HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /events HTTP/2.0\r\n\r\n",
        ] {
            assert!(!taken(not_ours), "{not_ours:?}");
        }
        assert!(matches!(
            parse(b"GET /events HTTP/1.1\r\nHost: a\r\n", remote()),
            Parsed::Partial
        ));
    }

    #[test]
    fn the_head_carries_the_framing_and_close() {
        let resp = Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CONNECTION, "keep-alive")
            .body(())
            .unwrap();
        let text = String::from_utf8(head(&resp, None, true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("\r\ncontent-type: text/event-stream\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\nconnection: close\r\n\r\n"), "{text}");
        assert!(!text.contains("keep-alive"), "{text}");
        let text = String::from_utf8(head(&resp, Some(12), false)).unwrap();
        assert!(text.contains("\r\ncontent-length: 12\r\n"), "{text}");
        assert!(!text.contains("transfer-encoding"), "{text}");
    }
}
