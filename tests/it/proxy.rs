//! The reverse proxy: forwarding to origins started by the test, header handling, failures
//! (502, 504), retries, streaming of large bodies both ways, WebSocket tunnels, and the
//! CONNECT forward proxy.

use std::time::Duration;

use bytes::Bytes;
use http::Request;

use crate::harness::origin::{Misbehaviour, Origin, RawOrigin, echoed_header, refused_addr};
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
