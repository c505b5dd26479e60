//! The express lane's reverse proxy (`edge::express_proxy`) against a raw origin that shows
//! what each lane sends and answers: a plain GET (the express lane) and the same GET with one
//! more field (the hyper path) must reach the origin with the same forwarding fields and give
//! the client the same status, fields (`Date` aside) and body, for bodies by length, chunked,
//! after an interim 103, and redirects to the member. Also: a body delimited by the origin's
//! close, and kept connections the origin closed or reset between requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::raw::{RawConn, RawResponse, find};
use crate::harness::{Server, WorkDir};

/// A raw HTTP/1.1 origin; it records every request head it gets.
struct RawOrigin {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawOrigin {
    async fn start() -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let end = loop {
                            if let Some(end) = find(&buf, b"\r\n\r\n") {
                                break end + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end);
                        seen.lock().unwrap().push(head.clone());
                        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                        let (answer, close) = answer(&path, addr);
                        if stream.write_all(answer.as_bytes()).await.is_err() || close {
                            if path == "/rst" {
                                // Dropped with a zero linger: a reset, not a close.
                                let _ = socket2::SockRef::from(&stream)
                                    .set_linger(Some(std::time::Duration::ZERO));
                            }
                            return;
                        }
                    }
                });
            }
        });
        RawOrigin { addr, heads }
    }

    fn last_head(&self) -> String {
        self.heads
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// The origin's answer to `path`, and whether it closes the connection after it.
fn answer(path: &str, me: SocketAddr) -> (String, bool) {
    match path {
        "/len" => (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Origin: a\r\nConnection: keep-alive, X-Drop\r\nX-Drop: secret\r\nKeep-Alive: timeout=5\r\n\r\nhello".into(),
            false,
        ),
        "/chunked" => (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".into(),
            false,
        ),
        "/redirect" => (
            format!("HTTP/1.1 302 Found\r\nLocation: http://{me}/next?x=1\r\nContent-Length: 0\r\n\r\n"),
            false,
        ),
        "/early" => (
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(),
            false,
        ),
        "/bare" => ("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbare".into(), false),
        "/close" => (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close".into(),
            true,
        ),
        // Answers, then closes without saying so (a kept connection gone stale).
        "/oneshot" => ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none".into(), true),
        // Answers, then resets the connection.
        "/rst" => ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none".into(), true),
        _ => ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(), false),
    }
}

fn config(origin: SocketAddr) -> String {
    format!(
        r#"
[server]
workers = 1

[[upstream]]
name = "raw"
servers = ["{origin}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
proxy = {{ upstream = "raw" }}
"#
    )
}

/// The response's fields as a map of lower-case names to their values, `Date` left out.
fn fields(res: &RawResponse) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &res.headers {
        let name = name.to_ascii_lowercase();
        if name != "date" {
            map.entry(name).or_default().push(value.clone());
        }
    }
    map
}

/// The forwarding fields of a request head the origin saw.
fn forwarding(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = head
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            format!("{}: {}", name.to_ascii_lowercase(), value.trim())
        })
        .filter(|l| !l.starts_with("x-lane:"))
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn both_lanes_send_and_answer_alike() {
    let origin = RawOrigin::start().await;
    let server = Server::start(WorkDir::new(), &config(origin.addr));
    let mut express = RawConn::connect(server.addr()).await;
    let mut hyper = RawConn::connect(server.addr()).await;
    for path in [
        "/len",
        "/chunked",
        "/redirect",
        "/early",
        "/bare",
        "/missing",
    ] {
        express
            .send(format!(
                "GET {path} HTTP/1.1\r\nHost: site.test\r\nUser-Agent: t/1\r\n\r\n"
            ))
            .await;
        let fast = express.read_response().await;
        let fast_head = origin.last_head();
        hyper
            .send(format!(
                "GET {path} HTTP/1.1\r\nHost: site.test\r\nUser-Agent: t/1\r\nX-Lane: hyper\r\n\r\n"
            ))
            .await;
        let slow = hyper.read_response().await;
        let slow_head = origin.last_head();
        assert!(slow_head.contains("x-lane: hyper"), "{slow_head}");
        assert_eq!(
            forwarding(&fast_head),
            forwarding(&slow_head),
            "{path}: the origin's view"
        );
        assert_eq!(fast.status, slow.status, "{path}");
        assert_eq!(fast.body, slow.body, "{path}");
        let (mut a, mut b) = (fields(&fast), fields(&slow));
        // hyper re-frames a chunked body; both are chunked, only the case may differ.
        for map in [&mut a, &mut b] {
            map.remove("transfer-encoding");
        }
        assert_eq!(a, b, "{path}: fields");
        assert!(fast.header("x-drop").is_none() && fast.header("keep-alive").is_none());
        if path == "/chunked" {
            // The express lane relays the chunks as the origin framed them (which shows it
            // answered); hyper frames what it reads.
            assert!(
                find(&fast.raw, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").is_some(),
                "{}",
                String::from_utf8_lossy(&fast.raw)
            );
        }
        assert_eq!(fast.header("via"), Some("1.1 portico"), "{path}");
    }
    // The redirect points back at the proxy.
    express
        .send("GET /redirect HTTP/1.1\r\nHost: site.test\r\n\r\n")
        .await;
    let res = express.read_response().await;
    assert_eq!(res.header("location"), Some("http://site.test/next?x=1"));
    assert!(!origin.last_head().contains("x-lane"));
}

#[tokio::test]
async fn a_body_delimited_by_the_origins_close_ends_the_clients_connection() {
    let origin = RawOrigin::start().await;
    let server = Server::start(WorkDir::new(), &config(origin.addr));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("GET /close HTTP/1.1\r\nHost: site.test\r\n\r\n")
        .await;
    let bytes = conn.read_to_end().await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.ends_with("until close"), "{text}");
}

#[tokio::test]
async fn kept_connections_the_origin_closed_or_reset_are_replaced_without_an_error() {
    let origin = RawOrigin::start().await;
    let server = Server::start(WorkDir::new(), &config(origin.addr));
    let mut conn = RawConn::connect(server.addr()).await;
    for _ in 0..5 {
        conn.send("GET /oneshot HTTP/1.1\r\nHost: site.test\r\n\r\n")
            .await;
        let res = conn.read_response().await;
        res.assert_status(200);
        assert_eq!(res.body, b"one");
        // Let the origin's close reach the proxy's kept connection.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        origin.heads.lock().unwrap().len(),
        5,
        "one request per answer"
    );
}
