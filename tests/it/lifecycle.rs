//! Process life cycle: the `listening`/`ready` lines, graceful stop on SIGTERM/SIGINT with a
//! request in flight, and the bound put on that wait by `shutdown_timeout`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{RawConn, Server, WorkDir, get};

/// Size of the file read slowly while the server stops: far more than the socket buffers
/// (the client's receive buffer is pinned small), so the response is still in flight.
const BIG: usize = 16 * 1024 * 1024;

fn big_site(shutdown_timeout: &str) -> (WorkDir, String, Vec<u8>) {
    let work = WorkDir::new();
    let content: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    work.write("public/big.bin", &content);
    let config = format!(
        r#"
[limits]
shutdown_timeout = "{shutdown_timeout}"

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
compress = false
"#
    );
    (work, config, content)
}

#[tokio::test]
async fn every_listener_is_announced_and_serves() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0", "127.0.0.2:0"]
[[site.route]]
respond = { body = "up" }
"#;
    let server = Server::start(WorkDir::new(), config);
    let listeners = server.listeners();
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    for listener in listeners {
        assert_eq!(listener.kind, "http", "{listener:?}");
        let r = get(listener.addr, "/").await;
        assert_eq!(r.text(), "up", "{r}");
    }
    assert_eq!(server.addr_on("127.0.0.2").ip().to_string(), "127.0.0.2");
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let (work, config, content) = big_site("20s");
    let mut server = Server::start(work, &config);
    let addr = server.addr();

    let mut conn = RawConn::connect_with_small_buffer(addr, 16 * 1024).await;
    conn.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").await;
    // The first bytes prove the response is under way.
    conn.wait_for_bytes(1).await;

    server.signal(libc::SIGTERM);

    assert_new_connections_refused(addr).await;
    assert!(
        server.try_exit().is_none(),
        "server exited with a response still in flight"
    );

    // The in-flight response completes, whole and intact, and the connection is closed.
    let r = conn.read_response().await;
    r.assert_status(200);
    assert_eq!(r.body.len(), content.len(), "truncated body after SIGTERM");
    assert!(r.body == content, "body corrupted after SIGTERM");
    let rest = conn.read_to_end().await;
    assert!(rest.is_empty(), "bytes after the response");
    // Having seen the close, the client closes too (the server's lingering close waits for it).
    drop(conn);

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status:?}"
    );
}

#[tokio::test]
async fn sigint_stops_an_idle_server_with_code_0() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
respond = { body = "up" }
"#;
    let mut server = Server::start(WorkDir::new(), config);
    get(server.addr(), "/").await.assert_status(200);
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGINT: {status:?}"
    );
}

#[tokio::test]
async fn shutdown_timeout_bounds_the_wait_for_a_stuck_request() {
    let (work, config, _) = big_site("1s");
    let mut server = Server::start(work, &config);
    let mut conn = RawConn::connect_with_small_buffer(server.addr(), 16 * 1024).await;
    conn.send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").await;
    conn.wait_for_bytes(1).await;
    // The client stops reading: the response can never finish.
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(8)).await;
    assert!(
        status.code().is_some(),
        "killed by a signal instead of exiting: {status:?}"
    );
    drop(conn);
}

#[tokio::test]
async fn sigterm_lets_a_slow_upload_finish() {
    let config = r#"
[limits]
shutdown_timeout = "20s"

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
exact = "/upload"
respond = { status = 201, body = "stored\n" }
"#;
    let mut server = Server::start(WorkDir::new(), config);
    let addr = server.addr();
    let mut conn = RawConn::connect(addr).await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    // `100 Continue` means the handler is reading the body: the request is in flight.
    conn.read_response().await.assert_status(100);
    conn.send("hello").await;

    server.signal(libc::SIGTERM);
    assert_new_connections_refused(addr).await;
    assert!(
        server.try_exit().is_none(),
        "server exited with an upload in flight"
    );

    conn.send("world").await;
    let r = conn.read_response().await;
    r.assert_status(201);
    assert_eq!(r.text(), "stored\n", "{r}");
    let rest = conn.read_to_end().await;
    assert!(rest.is_empty(), "bytes after the response");
    drop(conn);

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status:?}"
    );
}

/// Polls (bounded: 5 s) until a new connection to `addr` is refused, or accepted by the
/// kernel but closed without an answer. A connection answered meanwhile may have been
/// accepted before the server handled the signal, so polling goes on.
async fn assert_new_connections_refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answered = 0;
    loop {
        match RawConn::try_connect(addr).await {
            Err(_) => return,
            Ok(mut fresh) => {
                let _ = fresh.try_send("GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
                match fresh.wait_closed(Duration::from_millis(500)).await {
                    Ok(bytes) if bytes.is_empty() => return,
                    Ok(_) => answered += 1,
                    Err(_) => {}
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "connections still accepted 5 s after the signal ({answered} answered)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
