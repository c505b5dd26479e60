//! Malformed requests get 400 and the connection is closed; request-smuggling shapes
//! (Content-Length with Transfer-Encoding, differing Content-Lengths, bad chunk sizes) are
//! refused rather than guessed at.

use std::time::Duration;

use crate::harness::{RawConn, Server, WorkDir};

const CONFIG: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/upload"
respond = { status = 200, body = "stored\n" }

[[site.route]]
prefix = "/"
respond = { body = "hello\n" }
"#;

/// Sends `request`, expects a 400, then the server closing, with no second response (so a
/// smuggled request hidden in the body was never answered).
async fn assert_400_and_close(server: &Server, what: &str, request: &[u8]) {
    let mut conn = RawConn::connect(server.addr()).await;
    // The server may close while we write; what it answered is what counts.
    let _ = conn.try_send(request).await;
    let r = conn.read_response().await;
    assert_eq!(r.status, 400, "{what}: expected 400; whole response:\n{r}");
    match conn.wait_closed(Duration::from_secs(8)).await {
        Ok(rest) => assert!(
            rest.is_empty(),
            "{what}: bytes after the 400 (a second response?):\n{r}\n{}",
            String::from_utf8_lossy(&rest)
        ),
        Err(rest) => panic!(
            "{what}: connection still open 8 s after the 400:\n{r}\n{}",
            String::from_utf8_lossy(&rest)
        ),
    }
}

#[tokio::test]
async fn malformed_request_line_is_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let cases: &[(&str, &[u8])] = &[
        ("not http", b"this is not http\r\n\r\n"),
        ("bad version", b"GET / HTXP/1.1\r\nHost: t\r\n\r\n"),
        ("missing target", b"GET HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("space in target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"),
    ];
    for (what, request) in cases {
        assert_400_and_close(&server, what, request).await;
    }
}

#[tokio::test]
async fn malformed_header_is_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let cases: &[(&str, &[u8])] = &[
        (
            "space in name",
            b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: v\r\n\r\n",
        ),
        (
            "no colon",
            b"GET / HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n",
        ),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Name : v\r\n\r\n",
        ),
        (
            "control byte in value",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-V: a\x01b\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        assert_400_and_close(&server, what, request).await;
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one, MUST get 400
/// (host-based routing cannot pick a site from two names).
#[tokio::test]
async fn missing_or_repeated_host_is_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let cases: &[(&str, &[u8])] = &[
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX-V: 1\r\n\r\n"),
        (
            "two Host headers",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        assert_400_and_close(&server, what, request).await;
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let request = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n\
0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_400_and_close(&server, "CL + TE", request).await;
}

#[tokio::test]
async fn differing_content_lengths_are_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let request =
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_400_and_close(&server, "two Content-Length headers", request).await;
    let request = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!";
    assert_400_and_close(&server, "a Content-Length list", request).await;
}

#[tokio::test]
async fn invalid_chunk_size_is_400() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let request = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    assert_400_and_close(&server, "chunk size zz", request).await;
}
