//! Purges and the cache's other operator-facing parts, against the real binary with two
//! workers (each with its own memory tier) and an origin in the test: `PURGE` of one URL, of
//! a prefix and of a tag (202 with a status to poll), the ACL, the admin API and
//! `ctl purge`; a waiter that gives up on a hung fill; ranges and conditionals answered from
//! a stored response; unkeyed fields; and the hit/miss counters in `ctl status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::command::portico;
use crate::harness::origin::{Origin, full, handler};
use crate::harness::raw::{RawResponse, exchange, get, request};
use crate::harness::{Server, WorkDir};

/// An origin that numbers its answers, tags `/tagged/*` with `product-7`, hangs on the first
/// `/hang`, and reports what fields it received on `/fields`.
async fn origin() -> Origin {
    let served = Arc::new(AtomicUsize::new(0));
    let hung = Arc::new(AtomicUsize::new(0));
    Origin::start(
        "purged",
        handler(move |req, _seen| {
            let served = served.clone();
            let hung = hung.clone();
            async move {
                let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                let path = req.uri().path().to_string();
                let mut res = Response::builder()
                    .header("cache-control", "max-age=600")
                    .header("content-type", "text/plain")
                    .header("etag", format!("\"v{n}\""));
                if path.starts_with("/tagged/") {
                    res = res.header("surrogate-key", "product-7 all");
                }
                let body = match path.as_str() {
                    "/hang" if hung.fetch_add(1, Ordering::SeqCst) == 0 => {
                        tokio::time::sleep(Duration::from_secs(4)).await;
                        format!("late {n}")
                    }
                    "/fields" => {
                        let mut names: Vec<String> =
                            req.headers().keys().map(|k| k.to_string()).collect();
                        names.sort();
                        let host = req
                            .headers()
                            .get("x-forwarded-host")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        format!("{n} {host} {}", names.join(","))
                    }
                    "/range" => format!("0123456789 {n:04}"),
                    _ => format!("{path} {n}"),
                };
                res.body(full(body)).unwrap()
            }
        }),
    )
    .await
}

fn config(origin: &Origin, extra: &str) -> String {
    format!(
        r#"
[server]
workers = 2

[cache]
memory = "8m"
lock_timeout = "500ms"
{extra}

[admin]
listen = "127.0.0.1:0"

[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
proxy = {{ upstream = "app", cache = true, trusted_proxies = ["127.0.0.3"] }}
"#,
        origin.addr
    )
}

async fn purge(addr: SocketAddr, path: &str, extra: &str) -> RawResponse {
    request(addr, "PURGE", path, extra).await
}

/// Sends `request` from local address `from`, reads to the end.
async fn exchange_from(from: &str, addr: SocketAddr, request: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Fills `path` into both workers' memory tiers: requests on fresh connections (which the
/// workers' accepts share at random) until two different bodies came back — each worker
/// fetched once, and the origin numbers its answers — then a hit.
async fn warm(addr: SocketAddr, path: &str) {
    warm_in(addr, path, 2).await;
}

/// [`warm`] for `workers` different fills (1: one worker, or a disk tier they share).
async fn warm_in(addr: SocketAddr, path: &str, workers: usize) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        let res = get(addr, path, "").await;
        seen.insert(res.text());
        let hit = res.header("cache-status").unwrap_or("").contains("hit");
        if seen.len() >= workers && hit {
            return;
        }
    }
    panic!("{path} was not filled by {workers} workers: {seen:?}");
}

/// The responses to `count` requests for `path` on fresh connections (both workers serve).
async fn bodies(addr: SocketAddr, path: &str, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(get(addr, path, "").await.text());
    }
    out
}

/// A request for `/fields` from a trusted proxy (127.0.0.3) forwarding for `host`.
async fn via_proxy(addr: SocketAddr, host: &str) -> String {
    let request = format!(
        "GET /fields HTTP/1.1\r\nHost: c.test\r\nX-Forwarded-Host: {host}\r\nConnection: close\r\n\r\n"
    );
    exchange_from("127.0.0.3", addr, &request).await
}

/// Polls a status URL until its JSON says done (bounded).
async fn until_done(addr: SocketAddr, location: &str) -> String {
    for _ in 0..50 {
        let status = get(addr, location, "").await;
        status.assert_status(200);
        if status.text().contains("\"state\":\"done\"") {
            return status.text();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("purge {location} never finished");
}

#[tokio::test]
async fn purge_of_a_url_reaches_every_worker() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    let addr = server.addr();
    warm(addr, "/page").await;
    warm(addr, "/other").await;
    let before = origin.hits();
    let res = purge(addr, "/page", "").await;
    res.assert_status(200);
    let text = res.text();
    assert!(text.contains("\"state\":\"done\""), "{text}");
    assert!(
        text.contains("\"participants\":2"),
        "both workers answered: {text}"
    );
    assert!(text.contains("\"kind\":\"exact\""), "{text}");
    // Neither worker serves the old body any more; the other URL is untouched.
    let after = bodies(addr, "/page", 10).await;
    assert!(origin.hits() > before, "the purged URL was fetched again");
    for body in &after {
        let n: usize = body.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            n > before,
            "an old body was served after the purge: {after:?}"
        );
    }
    let hits = origin.hits();
    bodies(addr, "/other", 5).await;
    assert_eq!(origin.hits(), hits, "/other stayed cached");
}

#[tokio::test]
async fn purge_by_tag_and_prefix_are_bans_answered_202_with_a_status() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    let addr = server.addr();
    for path in ["/tagged/a", "/tagged/b", "/plain", "/img/1", "/img/2"] {
        warm(addr, path).await;
    }
    let res = purge(addr, "/", "Surrogate-Key: product-7\r\n").await;
    res.assert_status(202);
    let location = res.header("location").unwrap().to_string();
    assert!(
        location.starts_with("/.well-known/portico/purges/"),
        "{location}"
    );
    let done = until_done(addr, &location).await;
    assert!(done.contains("\"kind\":\"tag\""), "{done}");
    assert!(done.contains("\"value\":\"product-7\""), "{done}");
    let hits = origin.hits();
    let miss = get(addr, "/tagged/a", "").await;
    assert!(
        miss.header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss")
    );
    // The surrogate keys are for purges: no client sees them, on a miss or a hit.
    assert!(miss.header("surrogate-key").is_none(), "{miss:?}");
    assert!(
        get(addr, "/tagged/b", "")
            .await
            .header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss")
    );
    assert_eq!(origin.hits(), hits + 2);
    bodies(addr, "/plain", 4).await;
    assert_eq!(origin.hits(), hits + 2, "an untagged response stayed");
    for _ in 0..4 {
        let again = get(addr, "/tagged/a", "").await;
        assert!(again.header("surrogate-key").is_none(), "{again:?}");
    }

    let res = purge(addr, "/img/*", "").await;
    res.assert_status(202);
    until_done(addr, res.header("location").unwrap()).await;
    let hits = origin.hits();
    assert!(
        get(addr, "/img/2", "")
            .await
            .header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss")
    );
    assert_eq!(origin.hits(), hits + 1);
    bodies(addr, "/plain", 4).await;
    assert_eq!(origin.hits(), hits + 1);
    // An unknown purge id.
    get(addr, "/.well-known/portico/purges/99999", "")
        .await
        .assert_status(404);
    // Two tags in one request are refused.
    purge(addr, "/", "Cache-Tag: a, b\r\n")
        .await
        .assert_status(400);
}

#[tokio::test]
async fn only_allowed_clients_may_purge() {
    let origin = origin().await;
    let server = Server::start(
        WorkDir::new(),
        &config(&origin, "purge_allow = [\"127.0.0.2\"]"),
    );
    let addr = server.addr();
    warm(addr, "/kept").await;
    let refused = purge(addr, "/kept", "").await;
    refused.assert_status(403);
    get(addr, "/.well-known/portico/purges/1", "")
        .await
        .assert_status(403);
    let hits = origin.hits();
    bodies(addr, "/kept", 3).await;
    assert_eq!(origin.hits(), hits, "nothing was purged");
    let allowed = exchange_from(
        "127.0.0.2",
        addr,
        "PURGE /kept HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
}

#[tokio::test]
async fn the_admin_api_and_ctl_purge() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    let addr = server.addr();
    let admin = server.addr_of("admin");
    warm(addr, "/tagged/x").await;
    warm(addr, "/one").await;
    let post = |query: &str| {
        exchange(
            admin,
            format!(
                "POST /cache/purge?{query} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let res = post("tag=product-7").await;
    res.assert_status(202);
    let location = res.header("location").unwrap().to_string();
    assert!(location.starts_with("/cache/purges/"), "{location}");
    let done = until_done(admin, &location).await;
    assert!(done.contains("\"participants\":2"), "{done}");
    let list = get(admin, "/cache/purges", "").await;
    list.assert_status(200);
    assert!(list.text().starts_with('['), "{}", list.text());
    // One URL, as the client wrote it (host c.test, no port).
    let res = post("url=http%3A%2F%2Fc.test%2Fone").await;
    res.assert_status(200);
    let hits = origin.hits();
    assert!(
        get(addr, "/one", "")
            .await
            .header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss")
    );
    assert_eq!(origin.hits(), hits + 1);
    post("nonsense=1").await.assert_status(400);
    get(admin, "/cache/purge", "").await.assert_status(405);
    get(admin, "/nowhere", "").await.assert_status(404);
    let status = get(admin, "/status", "").await;
    status.assert_status(200);
    assert!(status.text().contains("cache: hit "), "{}", status.text());

    warm(addr, "/two").await;
    let state = server.work().join("state");
    let state = state.to_str().unwrap();
    let out = portico(
        server.work().path(),
        &[
            "--data-dir",
            state,
            "ctl",
            "purge",
            "--url",
            "http://c.test/two",
        ],
    );
    out.assert_code(0);
    assert!(out.stdout.contains("done"), "{}", out.all_output());
    let hits = origin.hits();
    get(addr, "/two", "").await;
    assert_eq!(origin.hits(), hits + 1, "ctl purge removed it");
    warm(addr, "/counted").await;
    bodies(addr, "/counted", 6).await;
    let out = portico(
        server.work().path(),
        &["--data-dir", state, "ctl", "status"],
    );
    out.assert_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("cache: "))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string();
    let hit: u64 = line
        .split_once("hit ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(hit >= 6, "{line}");
    assert!(!line.contains("miss 0"), "{line}");
}

#[tokio::test]
async fn a_waiter_gives_up_on_a_hung_fill_and_fetches_itself() {
    let origin = origin().await;
    let text = config(&origin, "").replace("workers = 2", "workers = 1");
    let server = Server::start(WorkDir::new(), &text);
    let addr = server.addr();
    let started = Instant::now();
    let filler = tokio::spawn(async move { get(addr, "/hang", "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiter = get(addr, "/hang", "").await;
    let waited = started.elapsed();
    waiter.assert_status(200);
    assert!(waiter.text().starts_with("/hang 2"), "{}", waiter.text());
    assert!(
        waited < Duration::from_secs(3),
        "the waiter gave up after lock_timeout, not the fill's 4 s: {waited:?}"
    );
    let filler = filler.await.unwrap();
    assert_eq!(filler.text(), "late 1");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn ranges_and_conditionals_are_answered_from_the_stored_response() {
    let origin = origin().await;
    let text = config(&origin, "").replace("workers = 2", "workers = 1");
    let server = Server::start(WorkDir::new(), &text);
    let addr = server.addr();
    // A ranged miss fetches the whole response, stores it and cuts the range.
    let first = get(addr, "/range", "Range: bytes=2-5\r\n").await;
    first.assert_status(206);
    assert_eq!(first.text(), "2345");
    assert_eq!(first.header("content-range"), Some("bytes 2-5/15"));
    warm_in(addr, "/range", 1).await;
    let hits = origin.hits();
    let part = get(addr, "/range", "Range: bytes=-4\r\n").await;
    part.assert_status(206);
    assert_eq!(part.text(), "0001");
    assert!(part.header("cache-status").unwrap().contains("hit"));
    get(addr, "/range", "Range: bytes=99-\r\n")
        .await
        .assert_status(416);
    let etag = get(addr, "/range", "")
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let not_modified = get(addr, "/range", &format!("If-None-Match: {etag}\r\n")).await;
    not_modified.assert_status(304);
    assert!(not_modified.body.is_empty());
    let other = get(addr, "/range", "If-None-Match: \"nope\"\r\n").await;
    other.assert_status(200);
    // If-Range with another validator: the whole response.
    let whole = get(addr, "/range", "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n").await;
    whole.assert_status(200);
    assert_eq!(origin.hits(), hits, "all answered from the cache");
}

#[tokio::test]
async fn unkeyed_fields_do_not_poison_the_cache() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    let addr = server.addr();
    // Rewriting fields never reach the origin of a cached route.
    let res = get(
        addr,
        "/fields",
        "X-Original-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nX-Forwarded-Port: 1\r\n",
    )
    .await;
    let text = res.text();
    assert!(!text.contains("x-original-url"), "{text}");
    assert!(!text.contains("x-http-method-override"), "{text}");
    assert!(!text.contains("x-forwarded-port"), "{text}");
    // An untrusted client's X-Forwarded-Host is replaced, so the stored answer is the
    // client-facing host's.
    let forged = get(addr, "/fields", "X-Forwarded-Host: evil.test\r\n").await;
    assert!(!forged.text().contains("evil.test"), "{}", forged.text());
    // From a trusted proxy, the forwarded host is part of the key: each host its own answer.
    let a = via_proxy(addr, "a.test").await;
    let b = via_proxy(addr, "b.test").await;
    assert!(a.contains(" a.test "), "{a}");
    assert!(b.contains(" b.test "), "{b}");
}

#[tokio::test]
async fn a_purge_reaches_the_disk_tier() {
    let origin = origin().await;
    let text = config(&origin, "disk = \"64m\"");
    let server = Server::start(WorkDir::new(), &text);
    let addr = server.addr();
    warm_in(addr, "/tagged/d", 1).await;
    warm_in(addr, "/kept", 1).await;
    let res = purge(addr, "/", "Cache-Tag: product-7\r\n").await;
    res.assert_status(202);
    let done = until_done(addr, res.header("location").unwrap()).await;
    assert!(
        done.contains("\"participants\":3"),
        "two workers and the disk tier: {done}"
    );
    // After a restart only the disk tier can answer: the purged response is gone from it,
    // the other is still there.
    let work = server.into_work();
    let server = Server::start(work, &text);
    let addr = server.addr();
    let hits = origin.hits();
    let kept = get(addr, "/kept", "").await;
    assert!(
        kept.header("cache-status").unwrap().contains("hit"),
        "{kept:?}"
    );
    let purged = get(addr, "/tagged/d", "").await;
    assert!(
        purged
            .header("cache-status")
            .unwrap()
            .contains("fwd=uri-miss"),
        "{purged:?}"
    );
    assert_eq!(origin.hits(), hits + 1);
}

// RFC 9111 §4.4 with several workers: an unsafe method's success invalidates the target in
// every worker's memory tier before its answer is sent, not only in the worker that forwarded
// it.
#[tokio::test]
async fn an_unsafe_method_invalidates_in_every_worker() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    let addr = server.addr();
    warm(addr, "/doc").await;
    let before = origin.hits();
    let post = exchange(
        addr,
        "POST /doc HTTP/1.1\r\nHost: c.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    post.assert_status(200);
    for body in bodies(addr, "/doc", 10).await {
        let n: usize = body.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > before, "a worker served the invalidated body: {body}");
    }
}

// With `single_process = true` the one process keeps its own purge ledger and answers the
// admin API itself.
#[tokio::test]
async fn a_single_process_keeps_its_own_ledger() {
    let origin = origin().await;
    let text = config(&origin, "").replace("workers = 2", "single_process = true");
    let server = Server::start(WorkDir::new(), &text);
    let addr = server.addr();
    warm_in(addr, "/tagged/s", 1).await;
    warm_in(addr, "/single", 1).await;
    let res = purge(addr, "/single", "").await;
    res.assert_status(200);
    assert!(res.text().contains("\"participants\":1"), "{}", res.text());
    let res = purge(addr, "/", "Surrogate-Key: product-7\r\n").await;
    res.assert_status(202);
    until_done(addr, res.header("location").unwrap()).await;
    let hits = origin.hits();
    get(addr, "/tagged/s", "").await;
    get(addr, "/single", "").await;
    assert_eq!(origin.hits(), hits + 2, "both purged");
    let admin = server.addr_of("admin");
    let status = get(admin, "/status", "").await;
    status.assert_status(200);
    assert!(status.text().contains("cache: hit "), "{}", status.text());
    let list = get(admin, "/cache/purges", "").await;
    assert!(list.text().contains("\"kind\":\"tag\""), "{}", list.text());
}
