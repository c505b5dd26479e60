//! The reverse proxy: forwarding to origins started by the test, header handling, failures
//! (502, 504), retries, streaming of large bodies both ways, WebSocket tunnels, and the
//! CONNECT forward proxy.

use std::time::Duration;

use bytes::Bytes;
use http::Request;

use crate::harness::origin::{
    self as origin, Misbehaviour, Origin, RawOrigin, Zeros, echoed_header, full, handler,
    refused_addr,
};
use crate::harness::{Server, WorkDir, get, send};

/// A config with one upstream named `app` over `origins`, extra upstream keys, and one site
/// proxying every path to it, with extra `proxy` keys.
fn config(origins: &[&Origin], upstream_extra: &str, proxy_extra: &str) -> String {
    let servers: Vec<String> = origins.iter().map(|o| format!("\"{}\"", o.addr)).collect();
    format!(
        r#"
[[upstream]]
name = "app"
servers = [{}]
{upstream_extra}

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
proxy = {{ upstream = "app"{proxy_extra} }}
"#,
        servers.join(", ")
    )
}

#[tokio::test]
async fn requests_reach_the_origin_with_forwarding_headers() {
    let origin = Origin::echo("a").await;
    let server = Server::start(WorkDir::new(), &config(&[&origin], "", ""));
    let r = send(
        server.addr(),
        Request::get("/some/path?q=1")
            .header("host", "example.test")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "secret")
            .header("x-end", "kept")
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    r.assert_status(200);
    r.assert_header("x-origin", "a");
    r.assert_header("via", "1.1 portico");
    let body = r.text();
    assert!(body.contains("target /some/path?q=1"), "{r}");
    assert_eq!(
        echoed_header(&body, "host").as_deref(),
        Some("example.test"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "x-end").as_deref(),
        Some("kept"),
        "{r}"
    );
    assert_eq!(echoed_header(&body, "x-hop"), None, "{r}");
    assert_eq!(
        echoed_header(&body, "x-forwarded-for").as_deref(),
        Some("127.0.0.1"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto").as_deref(),
        Some("http"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-host").as_deref(),
        Some("example.test"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "forwarded").as_deref(),
        Some("for=127.0.0.1;proto=http;host=\"example.test\""),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "via").as_deref(),
        Some("1.1 portico"),
        "{r}"
    );
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn spoofed_forwarding_fields_are_trusted_only_from_trusted_proxies() {
    let origin = Origin::echo("a").await;
    let config = format!(
        r#"
[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
proxy = {{ upstream = "app" }}

[[site.route]]
prefix = "/behind-lb/"
proxy = {{ upstream = "app", trusted_proxies = ["127.0.0.0/8"] }}
"#,
        origin.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    let spoofed = |path: &str| {
        Request::get(path)
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "for=203.0.113.9")
            .body(Bytes::new())
            .unwrap()
    };
    // From an untrusted client (127.0.0.1 is not in this route's list): replaced.
    let r = send(server.addr(), spoofed("/x")).await;
    r.assert_status(200);
    let body = r.text();
    assert_eq!(
        echoed_header(&body, "x-forwarded-for").as_deref(),
        Some("127.0.0.1"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto").as_deref(),
        Some("http"),
        "{r}"
    );
    let forwarded = echoed_header(&body, "forwarded").unwrap();
    assert!(forwarded.starts_with("for=127.0.0.1;"), "{r}");
    assert!(!body.contains("203.0.113.9"), "{r}");
    // Through a route that trusts loopback: kept and extended.
    let r = send(server.addr(), spoofed("/behind-lb/x")).await;
    let body = r.text();
    assert_eq!(
        echoed_header(&body, "x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1"),
        "{r}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto").as_deref(),
        Some("https"),
        "{r}"
    );
    assert!(
        echoed_header(&body, "forwarded")
            .unwrap()
            .starts_with("for=203.0.113.9, for=127.0.0.1;"),
        "{r}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_502_and_a_broken_response_is_502() {
    let broken = RawOrigin::start(Misbehaviour::Garbage).await;
    let config = format!(
        r#"
[[upstream]]
name = "down"
servers = ["{}"]

[[upstream]]
name = "garbage"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/down/"
proxy = {{ upstream = "down" }}

[[site.route]]
prefix = "/garbage/"
proxy = {{ upstream = "garbage" }}
"#,
        refused_addr(),
        broken.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    let r = get(server.addr(), "/down/x").await;
    r.assert_status(502);
    let r = get(server.addr(), "/garbage/x").await;
    r.assert_status(502);
    assert!(broken.heads() >= 1);
}

#[tokio::test]
async fn an_origin_that_does_not_answer_in_time_is_504() {
    let silent = RawOrigin::start(Misbehaviour::Silent).await;
    let config = format!(
        r#"
[[upstream]]
name = "slow"
servers = ["{}"]
first_byte_timeout = "300ms"
max_fails = 0

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "slow" }}
"#,
        silent.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    let started = std::time::Instant::now();
    let r = get(server.addr(), "/x").await;
    r.assert_status(504);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // GET is idempotent, but there is no other member to try.
    assert_eq!(silent.heads(), 1);
}

#[tokio::test]
async fn a_get_is_retried_on_another_member_but_a_post_is_not() {
    let broken = RawOrigin::start(Misbehaviour::Close).await;
    let good = Origin::echo("good").await;
    let config = format!(
        r#"
[server]
workers = 1

[[upstream]]
name = "app"
servers = ["{}", "{}"]
max_fails = 0

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "app" }}
"#,
        broken.addr, good.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    for i in 0..6 {
        let r = get(server.addr(), &format!("/get/{i}")).await;
        r.assert_status(200);
        r.assert_header("x-origin", "good");
    }
    let broken_after_gets = broken.heads();
    assert!(broken_after_gets >= 1, "the broken member was never tried");
    let mut statuses = Vec::new();
    for i in 0..6 {
        let post = Request::post(format!("/post/{i}"))
            .body(Bytes::from_static(b"order=1"))
            .unwrap();
        statuses.push(send(server.addr(), post).await.status.as_u16());
    }
    let failed = statuses.iter().filter(|&&s| s == 502).count();
    assert!(failed >= 1, "no POST met the broken member: {statuses:?}");
    assert_eq!(
        broken.heads() - broken_after_gets,
        failed,
        "each POST the broken member took must have failed, not moved on: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 502 || s == 200),
        "{statuses:?}"
    );
}

/// Resident memory of a process, from `/proc/PID/status` (`VmRSS` now, `VmHWM` its peak), in
/// bytes.
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        * 1024
}

/// Sends `request` on a new HTTP/1.1 connection and counts the response body's bytes, keeping
/// only the first 64.
async fn exchange_counting<B>(
    addr: std::net::SocketAddr,
    request: Request<B>,
) -> (u16, u64, Vec<u8>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = 0u64;
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.unwrap().data_ref() {
            bytes += data.len() as u64;
            let room = 64usize.saturating_sub(head.len()).min(data.len());
            head.extend_from_slice(&data[..room]);
        }
    }
    drop(sender);
    driver.abort();
    (status, bytes, head)
}

#[tokio::test]
async fn a_100_mb_upload_and_download_stream_through_in_bounded_memory() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let origin = Origin::start(
        "big",
        handler(|req, _seen| async move {
            if req.method() == http::Method::POST {
                let mut body = req.into_body();
                let mut bytes = 0u64;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                    bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                http::Response::new(full(format!("received {bytes}")))
            } else {
                http::Response::new(http_body_util::BodyExt::boxed(Zeros { left: SIZE }))
            }
        }),
    )
    .await;
    let config = format!(
        r#"
[server]
workers = 1

[limits]
client_max_body_size = "200m"

[[upstream]]
name = "big"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "big" }}
"#,
        origin.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    let workers = server.worker_pids();
    let [worker] = workers.as_slice() else {
        panic!("expected one worker: {workers:?}");
    };
    // Warm up (the first forward makes the client and its connection), then measure.
    let r = get(server.addr(), "/warm").await;
    assert_eq!(r.status, 200);
    drop(r);
    let before = memory_kb(*worker, "VmRSS:");

    let upload = Request::post("/upload")
        .header("host", "big.test")
        .body(Zeros { left: SIZE })
        .unwrap();
    let (status, _, answer) = tokio::time::timeout(
        Duration::from_secs(60),
        exchange_counting(server.addr(), upload),
    )
    .await
    .expect("the upload took over a minute");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&answer), format!("received {SIZE}"));
    assert_eq!(origin.hits(), 2);

    let download = Request::get("/download")
        .header("host", "big.test")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let (status, bytes, _) = tokio::time::timeout(
        Duration::from_secs(60),
        exchange_counting(server.addr(), download),
    )
    .await
    .expect("the download took over a minute");
    assert_eq!((status, bytes), (200, SIZE));

    let peak = memory_kb(*worker, "VmHWM:");
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 64 * 1024 * 1024,
        "the worker's peak resident memory grew by {} MiB (from {} MiB)",
        growth / (1024 * 1024),
        before / (1024 * 1024)
    );
}

#[tokio::test]
async fn redirects_to_the_member_point_back_at_the_proxy_with_the_stripped_prefix() {
    let origin = Origin::start(
        "r",
        handler(|req, seen| async move {
            if req.uri().path() == "/redirect" {
                let own = req
                    .headers()
                    .get("x-own-address")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                http::Response::builder()
                    .status(302)
                    .header("location", format!("http://{own}/next?x=1"))
                    .header("refresh", format!("3; url=http://{own}/later"))
                    .body(full(""))
                    .unwrap()
            } else {
                origin::echo(req, &seen).await
            }
        }),
    )
    .await;
    let server = Server::start(
        WorkDir::new(),
        &format!(
            r#"
[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/app/"
proxy = {{ upstream = "app", strip_prefix = true }}
"#,
            origin.addr
        ),
    );
    let r = send(
        server.addr(),
        Request::get("/app/redirect")
            .header("host", "example.test")
            .header("x-own-address", origin.addr.to_string())
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    r.assert_status(302);
    r.assert_header("location", "http://example.test/app/next?x=1");
    r.assert_header("refresh", "3; url=http://example.test/app/later");
    let r = get(server.addr(), "/app/deeper/path?q=2").await;
    assert!(r.text().contains("target /deeper/path?q=2"), "{r}");
}

#[tokio::test]
async fn http2_clients_are_proxied_to_an_http1_origin() {
    let origin = Origin::echo("h1").await;
    let server = Server::start(WorkDir::new(), &config(&[&origin], "", ""));
    let client = crate::harness::H2Client::connect(server.addr()).await;
    let r = client.get("/over/h2").await;
    r.assert_status(200);
    assert_eq!(r.version, http::Version::HTTP_2);
    r.assert_header("x-origin", "h1");
    r.assert_header("via", "1.1 portico");
    let body = r.text();
    assert!(body.contains("target /over/h2"), "{r}");
    assert!(echoed_header(&body, "host").is_some(), "{r}");
    assert_eq!(
        echoed_header(&body, "via").as_deref(),
        Some("2 portico"),
        "{r}"
    );
    let post = Request::post("/upload")
        .body(Bytes::from(vec![b'x'; 100_000]))
        .unwrap();
    let r = client.send(post).await;
    r.assert_status(200);
    assert!(r.text().contains("body-bytes 100000"), "{r}");
    client.close().await;
}

/// A WebSocket echo origin: answers the upgrade with 101, then echoes each (small) frame back
/// unmasked until a close frame, which it returns.
fn websocket_echo() -> crate::harness::origin::Handler {
    handler(|mut req, _seen| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if req
            .headers()
            .get("upgrade")
            .is_none_or(|v| v != "websocket")
        {
            return http::Response::builder()
                .status(400)
                .body(full("not a websocket request"))
                .unwrap();
        }
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = hyper_util::rt::TokioIo::new(upgrade.await.unwrap());
            loop {
                let mut head = [0u8; 2];
                if io.read_exact(&mut head).await.is_err() {
                    return;
                }
                let len = usize::from(head[1] & 0x7f);
                let mut mask = [0u8; 4];
                io.read_exact(&mut mask).await.unwrap();
                let mut payload = vec![0u8; len];
                io.read_exact(&mut payload).await.unwrap();
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
                let mut frame = vec![head[0], len as u8];
                frame.extend_from_slice(&payload);
                io.write_all(&frame).await.unwrap();
                if head[0] & 0x0f == 0x8 {
                    return;
                }
            }
        });
        http::Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(full(""))
            .unwrap()
    })
}

/// A masked client frame (RFC 6455 §5.2), FIN set, payload under 126 bytes.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads a response head (up to the blank line) from a raw stream.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("no response head within 10 s")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn websocket_frames_echo_through_the_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = Origin::start("ws", websocket_echo()).await;
    let server = Server::start(WorkDir::new(), &config(&[&origin], "", ""));
    let mut ws = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    ws.write_all(
        b"GET /chat HTTP/1.1\r\nHost: chat.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut ws).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for message in ["hello", "through the proxy", "again"] {
        ws.write_all(&client_frame(0x1, message.as_bytes()))
            .await
            .unwrap();
        let mut echoed = vec![0u8; 2 + message.len()];
        tokio::time::timeout(Duration::from_secs(10), ws.read_exact(&mut echoed))
            .await
            .expect("no echo within 10 s")
            .unwrap();
        assert_eq!(echoed[0], 0x81);
        assert_eq!(usize::from(echoed[1]), message.len());
        assert_eq!(&echoed[2..], message.as_bytes());
    }
    ws.write_all(&client_frame(0x8, b"")).await.unwrap();
    let mut close = [0u8; 2];
    ws.read_exact(&mut close).await.unwrap();
    assert_eq!(close, [0x88, 0]);
}

#[tokio::test]
async fn connect_opens_a_tunnel_only_to_allowed_targets() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let allowed = Origin::echo("inside").await;
    let other = Origin::echo("other").await;
    let config = format!(
        r#"
[[site]]
listen = ["127.0.0.1:0"]

[site.forward_proxy]
allow = ["127.0.0.1:{}"]
idle_timeout = "2s"

[[site.route]]
respond = {{ body = "the proxy's own page" }}
"#,
        allowed.addr.port()
    );
    let server = Server::start(WorkDir::new(), &config);

    // Allowed: 200, then HTTP through the tunnel to the target.
    let mut tunnel = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let target = allowed.addr;
    tunnel
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tunnel).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tunnel
        .write_all(b"GET /inside HTTP/1.1\r\nHost: inside\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tunnel.read_to_end(&mut answer))
        .await
        .expect("the tunnel did not close after the answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("origin inside"), "{answer}");
    assert!(answer.contains("target /inside"), "{answer}");

    // Not allowed: 403; malformed: 400; the connection closes after either.
    for (target, status) in [
        (other.addr.to_string(), "403"),
        ("example.com".to_string(), "400"),
    ] {
        let r = crate::harness::exchange(
            server.addr(),
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        )
        .await;
        assert_eq!(r.status.to_string(), status, "{r}");
    }
    assert_eq!(other.hits(), 0);

    // An idle tunnel is closed after idle_timeout.
    let mut idle = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut idle).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest))
        .await
        .expect("the idle tunnel was not closed")
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Absolute-form requests are forwarded to allowed targets only; origin-form requests
    // still reach the site itself.
    let r = crate::harness::exchange(
        server.addr(),
        format!("GET http://{target}/absolute HTTP/1.1\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 200, "{r}");
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("origin inside") && body.contains("target /absolute"),
        "{r}"
    );
    let denied = other.addr;
    let r = crate::harness::exchange(
        server.addr(),
        format!("GET http://{denied}/ HTTP/1.1\r\nHost: {denied}\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(other.hits(), 0);
    let r = get(server.addr(), "/").await;
    assert_eq!(r.text(), "the proxy's own page", "{r}");
}

#[tokio::test]
async fn the_reverse_proxy_quick_start_balances_over_its_origins() {
    let (a, b) = (Origin::echo("a").await, Origin::echo("b").await);
    let work = WorkDir::new();
    let data_dir = work.join("state");
    let to = format!("http://{},{}", a.addr, b.addr);
    let args = [
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        "reverse-proxy".as_ref(),
        "--to".as_ref(),
        std::ffi::OsStr::new(&to),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--workers".as_ref(),
        "1".as_ref(),
    ];
    let server = Server::start_with_args(work, &args);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = get(server.addr(), "/").await;
        r.assert_status(200);
        seen.push(r.header("x-origin").unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
}

#[tokio::test]
async fn the_built_in_test_origin_answers_behind_a_proxied_route() {
    let origin_addr = origin::free_addr();
    let config = format!(
        r#"
[[upstream]]
name = "bin"
servers = ["{origin_addr}"]

[[site]]
name = "front"
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/origin/"
proxy = {{ upstream = "bin", strip_prefix = true }}

[[site]]
name = "bin"
listen = ["{origin_addr}"]

[[site.route]]
httpbin = {{}}
"#
    );
    let server = Server::start(WorkDir::new(), &config);
    // Listeners in order of first appearance: the front site's comes first.
    let front = server.addrs()[0];
    let r = get(front, "/origin/anything?x=1").await;
    r.assert_status(200);
    r.assert_header("content-type", "application/json");
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["path"], "/anything", "{r}");
    assert_eq!(echo["args"]["x"], "1", "{r}");
    assert_eq!(echo["headers"]["x-forwarded-for"][0], "127.0.0.1", "{r}");
    assert_eq!(echo["served_by"], origin_addr.to_string(), "{r}");
    get(front, "/origin/status/418").await.assert_status(418);
    let r = get(front, "/origin/cache/60").await;
    r.assert_header("cache-control", "public, max-age=60");
    let r = get(front, "/origin/uuid").await;
    r.assert_header("cache-control", "no-store");
    let post = Request::post("/origin/post")
        .body(Bytes::from_static(b"name=portico"))
        .unwrap();
    let r = send(front, post).await;
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["method"], "POST", "{r}");
    assert_eq!(echo["body"], "name=portico", "{r}");
}

#[tokio::test]
async fn http2_to_the_members_when_asked() {
    // The member is portico's own test origin, which speaks h2c with prior knowledge.
    let origin_addr = origin::free_addr();
    let config = format!(
        r#"
[[upstream]]
name = "h2"
servers = ["{origin_addr}"]
http2 = true

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "h2" }}

[[site]]
listen = ["{origin_addr}"]

[[site.route]]
httpbin = {{}}
"#
    );
    let server = Server::start(WorkDir::new(), &config);
    let front = server.addrs()[0];
    let r = get(front, "/anything").await;
    r.assert_status(200);
    r.assert_header("via", "2 portico");
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["headers"]["via"][0], "1.1 portico", "{r}");
    let post = Request::post("/post")
        .body(Bytes::from(vec![b'y'; 50_000]))
        .unwrap();
    let r = send(front, post).await;
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["body_bytes"], 50_000, "{r}");
}

#[tokio::test]
async fn request_body_limits_hold_while_streaming_to_the_origin() {
    let origin = Origin::echo("a").await;
    let config = format!(
        r#"
[limits]
client_max_body_size = "64k"
client_body_timeout = "500ms"

[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "app" }}
"#,
        origin.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    // Declared too large: 413 before anything is read or sent on.
    let r = crate::harness::exchange(
        server.addr(),
        "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 413, "{r}");
    assert_eq!(origin.hits(), 0);
    // Chunked and too large: cut off while streaming, 413.
    let chunk = format!("{:x}\r\n{}\r\n", 40_000, "z".repeat(40_000));
    let request = format!(
        "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let r = crate::harness::exchange(server.addr(), request).await;
    assert_eq!(r.status, 413, "{r}");
    // A body that stops: 408 after client_body_timeout.
    let r = crate::harness::exchange(
        server.addr(),
        "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
    )
    .await;
    assert_eq!(r.status, 408, "{r}");
    // Within the limits, the origin gets every byte.
    let r = send(
        server.addr(),
        Request::put("/up")
            .body(Bytes::from(vec![b'q'; 60_000]))
            .unwrap(),
    )
    .await;
    r.assert_status(200);
    assert!(
        r.text().contains("method PUT\n") && r.text().contains("body-bytes 60000\n"),
        "{r}"
    );
}

#[tokio::test]
async fn head_and_options_are_forwarded() {
    let origin = Origin::echo("a").await;
    let server = Server::start(WorkDir::new(), &config(&[&origin], "", ""));
    let r = send(
        server.addr(),
        Request::head("/x").body(Bytes::new()).unwrap(),
    )
    .await;
    r.assert_status(200);
    assert!(r.body.is_empty(), "{r}");
    assert!(r.header("content-length").is_some(), "{r}");
    let r = send(
        server.addr(),
        Request::options("/x").body(Bytes::new()).unwrap(),
    )
    .await;
    r.assert_status(200);
    assert!(r.text().contains("method OPTIONS"), "{r}");
    let r = send(
        server.addr(),
        Request::builder()
            .method("PURGE")
            .uri("/x")
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert!(r.text().contains("method PURGE"), "{r}");
    // TRACE stays off unless the route enables it.
    let r = send(
        server.addr(),
        Request::builder()
            .method("TRACE")
            .uri("/x")
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    r.assert_status(405);
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn connect_over_http2_opens_a_tunnel_on_its_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = Origin::echo("inside").await;
    let config = format!(
        r#"
[[site]]
listen = ["127.0.0.1:0"]

[site.forward_proxy]
allow = ["127.0.0.1:{}"]

[[site.route]]
respond = {{ body = "proxy" }}
"#,
        target.addr.port()
    );
    let server = Server::start(WorkDir::new(), &config);
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    let request = Request::connect(target.addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let mut response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut tunnel = hyper_util::rt::TokioIo::new(upgraded);
    tunnel
        .write_all(b"GET /through-h2 HTTP/1.1\r\nHost: inside\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tunnel.read_to_end(&mut answer))
        .await
        .expect("the tunnel did not end after the answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("origin inside") && answer.contains("target /through-h2"),
        "{answer}"
    );
    // Close the client's connection before the server stops (its stop waits for open
    // HTTP/2 connections to answer GOAWAY).
    drop((tunnel, sender));
    driver.abort();
    let _ = driver.await;
}

#[tokio::test]
async fn an_http_1_0_client_without_host_still_reaches_the_origin_with_one() {
    let origin = Origin::echo("a").await;
    let server = Server::start(WorkDir::new(), &config(&[&origin], "", ""));
    let r = crate::harness::exchange(server.addr(), "GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200, "{r}");
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(
        echoed_header(&body, "host"),
        Some(origin.addr.to_string()),
        "{r}"
    );
}
