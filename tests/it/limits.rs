//! Limits that protect the server from clients: request target and head sizes (414, 431),
//! body size before reading it (413, also instead of `100 Continue`), header, body, send and
//! keep-alive timeouts, and the overload caps (503 with `Retry-After`).

use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{RawConn, Server, WorkDir, exchange};

/// Routes used by every test here: `/upload` answers after draining the request body.
const ROUTES: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/upload"
respond = { status = 200, body = "stored\n" }

[[site.route]]
prefix = "/"
respond = { body = "hello\n" }
"#;

/// Limits hold per worker process (as nginx's `worker_connections`): one worker, so the
/// tests' counts are the server's.
fn config(limits: &str) -> String {
    format!("[server]\nworkers = 1\n\n[limits]\n{limits}\n{ROUTES}")
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

#[tokio::test]
async fn uri_longer_than_the_limit_is_414() {
    let server = Server::start(WorkDir::new(), &config(r#"max_uri_length = "1k""#));
    let long = format!("/{}", "a".repeat(2000));
    exchange(server.addr(), get_request(&long))
        .await
        .assert_status(414);
    let fits = format!("/{}", "a".repeat(900));
    exchange(server.addr(), get_request(&fits))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn head_bytes_over_the_limit_are_431() {
    let server = Server::start(WorkDir::new(), &config(r#"max_header_size = "8k""#));
    let fill = "a".repeat(1000);
    let head = |count: usize| {
        let mut h = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 0..count {
            h.push_str(&format!("X-Fill-{i}: {fill}\r\n"));
        }
        h + "\r\n"
    };
    // 16 headers of ~1 KiB: twice the limit, well under the header count limit.
    exchange(server.addr(), head(16)).await.assert_status(431);
    exchange(server.addr(), head(4)).await.assert_status(200);
}

#[tokio::test]
async fn too_many_header_fields_are_431() {
    let server = Server::start(WorkDir::new(), &config("max_headers = 10"));
    let head = |count: usize| {
        let mut h = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 0..count {
            h.push_str(&format!("X-Field-{i}: v\r\n"));
        }
        h + "\r\n"
    };
    exchange(server.addr(), head(20)).await.assert_status(431);
    exchange(server.addr(), head(5)).await.assert_status(200);
}

#[tokio::test]
async fn body_over_the_limit_is_413_before_it_is_sent() {
    let server = Server::start(WorkDir::new(), &config(r#"client_max_body_size = "1k""#));
    // Only the head is sent: the answer must come from Content-Length alone.
    let head = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
    exchange(server.addr(), head).await.assert_status(413);

    let small = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789";
    let r = exchange(server.addr(), small).await;
    r.assert_status(200);
    assert_eq!(r.text(), "stored\n", "{r}");
}

#[tokio::test]
async fn expect_100_continue_is_refused_with_413_when_the_body_is_too_large() {
    let server = Server::start(WorkDir::new(), &config(r#"client_max_body_size = "1k""#));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let r = conn.read_response().await;
    r.assert_status(413);
    // Nothing else follows; in particular no late `100 Continue`.
    let rest = match conn.wait_closed(Duration::from_secs(2)).await {
        Ok(bytes) | Err(bytes) => bytes,
    };
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 100 "),
        "100 Continue after the 413:\n{r}\n{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn expect_100_continue_is_honoured_for_an_acceptable_body() {
    let server = Server::start(WorkDir::new(), &config(r#"client_max_body_size = "1k""#));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let interim = conn.read_response().await;
    interim.assert_status(100);
    conn.send("hello").await;
    let r = conn.read_response().await;
    r.assert_status(200);
    assert_eq!(r.text(), "stored\n", "{r}");
}

#[tokio::test]
async fn a_partial_head_is_closed_after_client_header_timeout() {
    let server = Server::start(WorkDir::new(), &config(r#"client_header_timeout = "1s""#));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("GET / HTTP/1.1\r\nHost: t\r\n").await;
    // Default is 10 s; with 1 s the close comes well within this bound.
    match conn.wait_closed(Duration::from_secs(6)).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                bytes.is_empty() || text.starts_with("HTTP/1.1 408"),
                "unexpected answer:\n{text}"
            );
        }
        Err(bytes) => panic!(
            "partial head still open after 6 s; received:\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let server = Server::start(WorkDir::new(), &config(r#"keepalive_timeout = "1s""#));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(get_request("/")).await;
    conn.read_response().await.assert_status(200);
    match conn.wait_closed(Duration::from_secs(6)).await {
        Ok(bytes) => assert!(
            bytes.is_empty(),
            "bytes before close:\n{}",
            String::from_utf8_lossy(&bytes)
        ),
        Err(_) => {
            panic!("idle connection still open 6 s after the response (keepalive_timeout = 1s)")
        }
    }
}

#[tokio::test]
async fn a_keep_alive_connection_is_reusable_within_keepalive_timeout() {
    let server = Server::start(WorkDir::new(), &config(r#"keepalive_timeout = "30s""#));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(get_request("/")).await;
    conn.read_response().await.assert_status(200);
    // The scenario is the idle time itself, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(2)).await;
    conn.send(get_request("/")).await;
    let r = conn.read_response().await;
    r.assert_status(200);
    assert_eq!(r.text(), "hello\n", "{r}");
}

#[tokio::test]
async fn connections_over_max_connections_get_503() {
    let server = Server::start(WorkDir::new(), &config("max_connections = 2"));
    let addr = server.addr();
    // Two connections, each proven accepted by a response, then kept open.
    let mut first = RawConn::connect(addr).await;
    first.send(get_request("/")).await;
    first.read_response().await.assert_status(200);
    let mut second = RawConn::connect(addr).await;
    second.send(get_request("/")).await;
    second.read_response().await.assert_status(200);

    let mut third = RawConn::connect(addr).await;
    let _ = third.try_send(get_request("/")).await;
    let r = third.read_response().await;
    r.assert_status(503);
    assert!(
        r.header("retry-after").is_some(),
        "503 without Retry-After\n{r}"
    );
    assert!(
        third.wait_closed(Duration::from_secs(10)).await.is_ok(),
        "over-limit connection not closed\n{r}"
    );

    // Closing one frees a slot: the cap is a cap, not a one-way door.
    drop(first);
    poll_until_status(addr, "/", 200, "a slot freed by closing a connection").await;
    drop(second);
}

#[tokio::test]
async fn requests_over_max_requests_in_flight_get_503() {
    // A static route too: a plain GET of a cached file (the express lane's kind) is refused
    // as well while the slot is taken.
    let work = WorkDir::new();
    work.write("public/cached.txt", "cached\n");
    let statics = "\n[[site.route]]\nprefix = \"/files/\"\n[site.route.static]\nroot = \"public\"\nstrip_prefix = true\n";
    let server = Server::start(
        work,
        &format!("{}{statics}", config("max_requests_in_flight = 1")),
    );
    let addr = server.addr();
    let cached = get_request("/files/cached.txt");
    for _ in 0..2 {
        exchange(addr, &cached).await.assert_status(200);
    }
    // A request held in flight: its body is only half sent, and `respond` drains bodies.
    // `100 Continue` is the proof that it was admitted and its handler is reading the body
    // (polling instead would race: a probe in flight could take the slot first).
    let mut slow = RawConn::connect(addr).await;
    slow.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    slow.read_response().await.assert_status(100);
    slow.send("hello").await;

    for target in [get_request("/"), cached.clone()] {
        let r = exchange(addr, &target).await;
        r.assert_status(503);
        assert!(
            r.header("retry-after").is_some(),
            "503 without Retry-After\n{r}"
        );
    }

    slow.send("world").await;
    let done = slow.read_response().await;
    done.assert_status(200);
    assert_eq!(done.text(), "stored\n", "{done}");
    poll_until_status(addr, "/", 200, "the slot released by the finished request").await;
}

/// Sends `GET path` on fresh connections until the answer has `status` (bounded: 5 s and
/// 250 attempts); returns that response. Other statuses than 200/503 fail at once.
async fn poll_until_status(
    addr: std::net::SocketAddr,
    path: &str,
    status: u16,
    waiting_for: &str,
) -> crate::harness::RawResponse {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    for _ in 0..250 {
        let r = exchange(addr, get_request(path)).await;
        if r.status == status {
            return r;
        }
        assert!(
            matches!(r.status, 200 | 503),
            "unexpected answer while waiting for {waiting_for}\n{r}"
        );
        last = Some(r);
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "never got {status} waiting for {waiting_for}; last answer:\n{}",
        last.unwrap()
    )
}

#[tokio::test]
async fn a_stalled_request_body_is_answered_408_after_client_body_timeout() {
    let server = Server::start(WorkDir::new(), &config(r#"client_body_timeout = "1s""#));
    let mut conn = RawConn::connect(server.addr()).await;
    // Ten bytes promised, three sent, then silence.
    conn.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    match conn.wait_closed(Duration::from_secs(6)).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.starts_with("HTTP/1.1 408"),
                "expected 408, got:\n{text}"
            );
        }
        Err(bytes) => panic!(
            "stalled body still open after 6 s; received:\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_send_timeout() {
    const SIZE: usize = 8 * 1024 * 1024;
    let work = WorkDir::new();
    work.write("public/big.bin", vec![b'x'; SIZE]);
    let config = r#"
[limits]
send_timeout = "1s"

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
"#;
    let server = Server::start(work, config);
    let mut conn = RawConn::connect_with_small_buffer(server.addr(), 4096).await;
    conn.send(get_request("/big.bin")).await;
    // The client stalls (this pause is the behaviour under test, not a synchronisation):
    // with send_timeout = 1 s the server gives up on it long before the pause ends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = conn.read_to_end().await;
    assert!(
        got.len() < SIZE,
        "the server kept a stalled reader and sent all {} bytes",
        got.len()
    );
}
