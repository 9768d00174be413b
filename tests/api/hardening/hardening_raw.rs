//! Malformed HTTP on raw sockets: framing, `Content-Length` mismatches, broken
//! request lines; never a 5xx, and a short body is the client's fault.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hardening::hardening_hostile::FORM;
use crate::support::*;

/// Writes `request` on a raw connection (closing our side when `close`), reads
/// whatever comes back within 3 s; returns every status code seen.
async fn raw(addr: &str, request: &[u8], close: bool) -> Vec<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    if close {
        stream.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        // Up to 3 s for the first answer, then until the connection idles.
        let idle = Duration::from_millis(if out.is_empty() { 3000 } else { 300 });
        match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

#[tokio::test]
async fn raw_malformed_http_gets_no_5xx() {
    let app = TestApp::spawn().await;
    let addr = app.addr.trim_start_matches("http://").to_string();
    let head =
        "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n";
    let body = "grant_type=password&client_id=app&username=u&password=p";
    let long_uri = format!(
        "GET /token?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: Vec<(String, bool)> = vec![
        // Content-Length larger than the body, then EOF.
        (format!("{head}Content-Length: 100\r\n\r\n{body}"), true),
        // Smaller: the rest is read as a next request.
        (format!("{head}Content-Length: 5\r\n\r\n{body}"), false),
        (
            format!("{head}Content-Length: 5\r\nConnection: close\r\n\r\n{body}"),
            false,
        ),
        (format!("{head}Content-Length: abc\r\n\r\n{body}"), false),
        (format!("{head}Content-Length: -1\r\n\r\n{body}"), false),
        (
            format!("{head}Content-Length: 99999999999999999999\r\n\r\n{body}"),
            true,
        ),
        (
            format!("{head}Content-Length: 18446744073709551615\r\n\r\n{body}"),
            true,
        ),
        (
            format!("{head}Content-Length: 5\r\nContent-Length: 6\r\n\r\n{body}"),
            false,
        ),
        (format!("{head}Content-Length: 5, 6\r\n\r\n{body}"), false),
        (
            format!("{head}Content-Length: 55\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
            true,
        ),
        (
            format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"),
            true,
        ),
        (
            format!("{head}Transfer-Encoding: chunked\r\n\r\n5\r\ngrant\r\n"),
            true,
        ),
        (
            format!("{head}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            true,
        ),
        (
            format!("{head}Transfer-Encoding: identity\r\n\r\n{body}"),
            true,
        ),
        (
            format!("{head}Content-Length: 20000\r\n\r\n{}", "a".repeat(20_000)),
            false,
        ),
        ("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".into(), false),
        ("GET /healthz\r\n\r\n".into(), false),
        ("\x00\x01\x02\x03\r\n\r\n".into(), false),
        (
            "GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n".into(),
            false,
        ),
        ("GET /healthz HTTP/1.1\r\nBad Name: v\r\n\r\n".into(), false),
        (
            "GET /healthz HTTP/1.1\r\nHost: x\r\n folded: continuation\r\n\r\n".into(),
            false,
        ),
        ("GET /healthz HTTP/1.1\nHost: x\n\n".into(), false),
        (
            "GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            false,
        ),
        (
            "GET /token?%zz=%ff HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            false,
        ),
        (
            "GET /events?after=%ff&wait=-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n"
                .into(),
            false,
        ),
        (
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            false,
        ),
        (long_uri, false),
    ];
    let mut answered = 0;
    for (request, close) in &cases {
        let statuses = raw(&addr, request.as_bytes(), *close).await;
        assert!(
            statuses.iter().all(|s| *s < 500),
            "{statuses:?} for {:?}",
            &request[..request.len().min(120)]
        );
        answered += usize::from(!statuses.is_empty());
    }
    // Invalid UTF-8 in a header, raw.
    let bytes = b"GET /userinfo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n";
    let statuses = raw(&addr, bytes, false).await;
    assert_eq!(statuses, vec![401]);
    assert!(answered >= cases.len() / 2, "only {answered} answers");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Sends `head` and a body shorter than its `Content-Length`, then either closes
/// our side or stalls; returns the first response (status line to body).
async fn short_body(addr: &str, head: &str, close: bool) -> String {
    let body = "grant_type=password";
    let request = format!("{head}Content-Length: 100\r\n\r\n{body}");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    if close {
        stream.shutdown().await.unwrap();
    }
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("an answer within 3 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A body cut short by EOF is malformed (400 `invalid_request`), not "too large".
#[tokio::test]
async fn a_truncated_body_is_a_bad_request_not_too_large() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let addr = app.addr.trim_start_matches("http://").to_string();
    let heads = [
        format!("POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"),
        format!(
            "POST /admin/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\n"
        ),
    ];
    let mut wrong = Vec::new();
    for head in &heads {
        let answer = short_body(&addr, head, true).await;
        if !answer.starts_with("HTTP/1.1 400 ") || !answer.contains(r#""error":"invalid_request""#)
        {
            wrong.push(format!("{}\n{answer}", head.lines().next().unwrap()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// A client that stalls mid-body is at fault: a 4xx with the protocol's JSON
/// error (408 fits), not a 5xx that blames the server and pages its operators.
#[tokio::test]
async fn a_stalled_body_times_out_as_a_client_error() {
    let app = TestApp::with(&[("request_timeout", "1")]).await;
    let addr = app.addr.trim_start_matches("http://").to_string();
    let head = format!("POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n");
    let answer = short_body(&addr, &head, false).await;
    let status: u16 = answer[9..12].parse().unwrap();
    assert!((400..500).contains(&status), "{answer}");
    assert!(answer.contains(r#""error":"#), "{answer}");
}
