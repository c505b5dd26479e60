//! Connection handling: HTTP/1.0 (close by default, keep-alive on request), HTTP/1.1
//! keep-alive, `Connection: close`, pipelining, h2c with prior knowledge, and many slow
//! clients not holding up others. Only `respond` routes, so these tests do not depend on
//! static files.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Version;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::harness::{H2Client, RawConn, Server, WorkDir, get};

const CONFIG: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/one"
respond = { body = "first" }

[[site.route]]
exact = "/two"
respond = { body = "second" }

[[site.route]]
exact = "/three"
respond = { body = "third" }

[[site.route]]
exact = "/index.html"
respond = { body = "<h1>home</h1>\n", headers = { "Content-Type" = "text/html" } }
"#;

#[tokio::test]
async fn a_client_that_half_closes_after_its_requests_gets_every_answer_then_a_close() {
    let work = WorkDir::new();
    work.write("public/page.txt", "static page\n");
    let config = format!(
        "{CONFIG}\n[[site.route]]\nprefix = \"/static/\"\n[site.route.static]\nroot = \"public\"\nstrip_prefix = true\n"
    );
    let server = Server::start(work, &config);
    // A respond route (hyper's path), a static file twice (a miss, then the express lane),
    // and two pipelined requests: each connection's write side is shut after the requests.
    for requests in [
        vec!["/one"],
        vec!["/static/page.txt"],
        vec!["/static/page.txt"],
        vec!["/one", "/static/page.txt"],
    ] {
        let mut conn = RawConn::connect(server.addr()).await;
        let batch: String = requests
            .iter()
            .map(|path| format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .collect();
        conn.send(batch).await;
        conn.shutdown_write().await;
        for path in &requests {
            let r = conn.read_response().await;
            r.assert_status(200);
            assert!(!r.body.is_empty(), "{path}: {r}");
        }
        assert!(
            conn.wait_closed(Duration::from_secs(3)).await.is_ok(),
            "the server keeps a half-closed connection open after answering {requests:?}"
        );
    }
}

#[tokio::test]
async fn http_1_0_is_closed_after_the_response() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("GET /index.html HTTP/1.0\r\n\r\n").await;
    let r = conn.read_response().await;
    r.assert_status(200);
    assert_eq!(r.text(), "<h1>home</h1>\n", "{r}");
    let rest = conn.read_to_end().await;
    assert!(
        rest.is_empty(),
        "bytes after the response:\n{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn http_1_0_keep_alive_keeps_the_connection() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    for path in ["/one", "/two"] {
        conn.send(format!(
            "GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        ))
        .await;
        let r = conn.read_response().await;
        r.assert_status(200);
        assert!(
            r.header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")),
            "HTTP/1.0 keep-alive must be confirmed\n{r}"
        );
        assert!(
            r.header("content-length").is_some(),
            "keep-alive needs a length\n{r}"
        );
    }
    assert!(
        !conn.is_closed(),
        "closed after a keep-alive HTTP/1.0 exchange"
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    for (path, body) in [
        ("/one", "first"),
        ("/index.html", "<h1>home</h1>\n"),
        ("/two", "second"),
        ("/three", "third"),
        ("/one", "first"),
    ] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .await;
        let r = conn.read_response().await;
        r.assert_status(200);
        assert_eq!(r.text(), body, "GET {path}\n{r}");
    }
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("GET /one HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let r = conn.read_response().await;
    r.assert_status(200);
    assert!(
        r.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close")),
        "{r}"
    );
    let rest = conn.read_to_end().await;
    assert!(
        rest.is_empty(),
        "bytes after the response:\n{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(
        "GET /one HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /two HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /three HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    for body in ["first", "second", "third"] {
        let r = conn.read_response().await;
        r.assert_status(200);
        assert_eq!(r.text(), body, "pipelined responses out of order\n{r}");
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_serves_concurrent_streams() {
    let server = Server::start(WorkDir::new(), CONFIG);
    let client = Arc::new(H2Client::connect(server.addr()).await);
    let cases = [
        ("/one", "first"),
        ("/two", "second"),
        ("/three", "third"),
        ("/index.html", "<h1>home</h1>\n"),
    ];
    let mut streams = tokio::task::JoinSet::new();
    for round in 0..5 {
        for (path, body) in cases {
            let client = Arc::clone(&client);
            streams.spawn(async move { (round, path, body, client.get(path).await) });
        }
    }
    let mut answered = 0;
    while let Some(joined) = streams.join_next().await {
        let (round, path, body, r) = joined.expect("stream task");
        r.assert_status(200);
        assert_eq!(r.version, Version::HTTP_2, "{r}");
        assert_eq!(r.text(), body, "round {round} {path}\n{r}");
        answered += 1;
    }
    assert_eq!(answered, 20);
    Arc::into_inner(client)
        .expect("streams finished")
        .close()
        .await;
}

#[tokio::test]
async fn slow_clients_do_not_hold_up_other_requests() {
    const SLOW_CLIENTS: usize = 300;
    const SLOW_FOR: Duration = Duration::from_secs(3);
    let server = Server::start(WorkDir::new(), CONFIG);
    let addr = server.addr();

    // Each slow client connects, then sends its request head one byte per second.
    let started = Instant::now();
    let connected = Arc::new(AtomicUsize::new(0));
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..SLOW_CLIENTS {
        let connected = Arc::clone(&connected);
        slow.spawn(async move {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            connected.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + SLOW_FOR;
            for byte in b"GET / HTTP/1.1\r\n".iter().take(4) {
                if Instant::now() >= until || stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while connected.load(Ordering::SeqCst) < SLOW_CLIENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        connected.load(Ordering::SeqCst),
        SLOW_CLIENTS,
        "not every slow client connected"
    );

    // While they dribble, ordinary requests on new connections are answered, every half
    // second for as long as the slow clients run (at most 8 attempts).
    // The bound only turns a hang into a failure; it is far above a normal answer time.
    let bound = Duration::from_secs(2);
    let until = started + SLOW_FOR;
    let mut attempts = 0;
    while attempts < 8 && (attempts == 0 || Instant::now() < until) {
        let answered = tokio::time::timeout(bound, get(addr, "/one")).await;
        let r = answered.unwrap_or_else(|_| {
            panic!("attempt {attempts}: no answer within {bound:?} among slow clients")
        });
        r.assert_status(200);
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Close every slow connection before the server is stopped.
    slow.abort_all();
    while slow.join_next().await.is_some() {}
}

/// An HTTP/2 connection with no open stream for `keepalive_timeout` is ended by the server:
/// GOAWAY, and the close once the client stays silent (it never answers h2's closing PING
/// here) for `lingering_timeout`.
#[tokio::test]
async fn idle_h2c_connection_is_closed_after_keepalive_timeout() {
    let config =
        format!("[limits]\nkeepalive_timeout = \"1s\"\nlingering_timeout = \"1s\"\n{CONFIG}");
    let server = Server::start(WorkDir::new(), &config);
    let mut conn = RawConn::connect(server.addr()).await;
    // Client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    conn.send(&hello).await;
    let seen = conn
        .wait_closed(Duration::from_secs(8))
        .await
        .unwrap_or_else(|_| panic!("an idle HTTP/2 connection stayed open past keepalive_timeout"));
    // A GOAWAY frame (type 0x7, 8-byte payload and more) came before the close.
    assert!(
        seen.windows(4)
            .any(|w| w[0] == 0 && w[1] == 0 && w[2] >= 8 && w[3] == 0x7),
        "no GOAWAY before the close: {seen:?}"
    );
}
