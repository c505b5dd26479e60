//! The shared cache on a `proxy` route with `cache = true`, against a real origin (a hyper
//! server in the test that counts what reaches it): a miss then hits with `Cache-Status` and
//! `Age`, HEAD from a stored GET, 100 concurrent misses making one origin request, `no-store`,
//! `private` and `Authorization` not reused, `Vary`, invalidation by POST, validation with a
//! 304, `stale-if-error` with the origin failing, and `only-if-cached`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Response, StatusCode};

use crate::harness::origin::{Origin, full, handler};
use crate::harness::raw::{RawConn, RawResponse, exchange, get};
use crate::harness::{Server, WorkDir};

/// An origin whose answers depend on the path; `failing` makes `/flaky` answer 500.
async fn origin(failing: Arc<AtomicUsize>) -> Origin {
    let served = Arc::new(AtomicUsize::new(0));
    Origin::start(
        "cached",
        handler(move |req, _seen| {
            let served = served.clone();
            let failing = failing.clone();
            async move {
                let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                let path = req.uri().path().to_string();
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let answer = |cc: &str, body: String| {
                    Response::builder()
                        .header("cache-control", cc)
                        .header("content-type", "text/plain")
                        .body(full(body))
                        .unwrap()
                };
                match path.as_str() {
                    "/slow" => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        answer("max-age=60", format!("slow {n}"))
                    }
                    "/nostore" => answer("no-store", format!("n {n}")),
                    "/private" => answer("private, max-age=60", format!("p {n}")),
                    "/vary" => Response::builder()
                        .header("cache-control", "max-age=60")
                        .header("vary", "accept-language")
                        .body(full(format!("lang {} {n}", header("accept-language"))))
                        .unwrap(),
                    "/etag" if header("if-none-match") == "\"v1\"" => Response::builder()
                        .status(StatusCode::NOT_MODIFIED)
                        .header("cache-control", "max-age=60")
                        .header("etag", "\"v1\"")
                        .body(full(""))
                        .unwrap(),
                    "/etag" => Response::builder()
                        .header("cache-control", "max-age=1")
                        .header("etag", "\"v1\"")
                        .body(full(format!("etag {n}")))
                        .unwrap(),
                    "/flaky" if failing.load(Ordering::SeqCst) == 1 => Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .body(full("down"))
                        .unwrap(),
                    "/flaky" => answer("max-age=1, stale-if-error=60", format!("flaky {n}")),
                    _ => answer("max-age=60", format!("{path} {n}")),
                }
            }
        }),
    )
    .await
}

fn config(origin: &Origin) -> String {
    format!(
        r#"
[server]
workers = 1

[cache]
memory = "8m"
lock_timeout = "5s"

[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
methods = ["GET", "HEAD", "POST"]
proxy = {{ upstream = "app", cache = true }}
"#,
        origin.addr
    )
}

#[tokio::test]
async fn a_miss_is_stored_and_then_served_with_its_age() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    let first = get(server.addr(), "/page", "").await;
    first.assert_status(200);
    assert!(
        first.cache_status().contains("fwd=uri-miss"),
        "{}",
        first.cache_status()
    );
    assert!(first.cache_status().contains("stored"));
    let second = get(server.addr(), "/page", "").await;
    assert_eq!(second.body, first.body);
    assert!(
        second.cache_status().starts_with("portico; hit"),
        "{}",
        second.cache_status()
    );
    assert!(second.header("age").is_some());
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("HEAD /page HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n")
        .await;
    let head = conn.read_head_response().await;
    assert_eq!(head.header("content-length"), Some("7"));
    assert!(
        head.cache_status().contains("hit"),
        "HEAD from the stored GET"
    );
    assert_eq!(origin.hits(), 1);
    // The key has the host: another host is another object.
    let other = exchange(
        server.addr(),
        "GET /page HTTP/1.1\r\nHost: d.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(other.cache_status().contains("uri-miss"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_misses_make_one_origin_request() {
    let origin = origin(Arc::default()).await;
    let server = Arc::new(Server::start(WorkDir::new(), &config(&origin)));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            get(server.addr(), "/slow", "").await
        }));
    }
    for task in tasks {
        let res = task.await.unwrap();
        res.assert_status(200);
        assert_eq!(res.body, b"slow 1");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn what_may_not_be_shared_is_not_reused() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    for path in ["/nostore", "/private"] {
        let a = get(server.addr(), path, "").await;
        let b = get(server.addr(), path, "").await;
        assert_ne!(a.body, b.body, "{path}");
        assert!(!b.cache_status().contains("hit"), "{path}");
    }
    // A request with credentials neither stores nor is served from what others stored.
    let auth = "Authorization: Basic eDp5\r\n";
    get(server.addr(), "/shared", "").await;
    let with = get(server.addr(), "/secret", auth).await;
    assert!(
        with.cache_status().contains("detail=authorization"),
        "{}",
        with.cache_status()
    );
    let again = get(server.addr(), "/secret", "").await;
    assert!(again.cache_status().contains("uri-miss"));
    assert_eq!(origin.hits(), 7);
}

#[tokio::test]
async fn variants_follow_vary() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    let en = get(server.addr(), "/vary", "Accept-Language: en\r\n").await;
    let fr = get(server.addr(), "/vary", "Accept-Language: fr\r\n").await;
    assert_eq!(en.body, b"lang en 1");
    assert_eq!(fr.body, b"lang fr 2");
    let en_again = get(server.addr(), "/vary", "Accept-Language: en\r\n").await;
    assert_eq!(en_again.body, b"lang en 1");
    assert!(en_again.cache_status().contains("hit"));
}

#[tokio::test]
async fn a_post_invalidates_the_stored_response() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    get(server.addr(), "/item", "").await;
    assert!(
        get(server.addr(), "/item", "")
            .await
            .cache_status()
            .contains("hit")
    );
    let post = exchange(
        server.addr(),
        "POST /item HTTP/1.1\r\nHost: c.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    post.assert_status(200);
    assert!(post.cache_status().contains("fwd=method"));
    let after = get(server.addr(), "/item", "").await;
    assert!(
        after.cache_status().contains("uri-miss"),
        "{}",
        after.cache_status()
    );
}

#[tokio::test]
async fn a_stale_response_is_validated_with_a_304() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    let first = get(server.addr(), "/etag", "").await;
    assert_eq!(first.body, b"etag 1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = get(server.addr(), "/etag", "").await;
    second.assert_status(200);
    assert_eq!(second.body, b"etag 1", "the stored body, validated");
    assert!(
        second.cache_status().contains("fwd=stale; fwd-status=304"),
        "{}",
        second.cache_status()
    );
    // Fresh again for max-age=60: a hit without the origin.
    let third = get(server.addr(), "/etag", "").await;
    assert!(third.cache_status().contains("hit"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn stale_if_error_serves_the_stored_response_when_the_origin_fails() {
    let failing = Arc::new(AtomicUsize::new(0));
    let origin = origin(failing.clone()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    assert_eq!(get(server.addr(), "/flaky", "").await.body, b"flaky 1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    failing.store(1, Ordering::SeqCst);
    let res = get(server.addr(), "/flaky", "").await;
    res.assert_status(200);
    assert_eq!(res.body, b"flaky 1");
    // Without a stored response the failure goes through.
    failing.store(1, Ordering::SeqCst);
    let only = get(server.addr(), "/never", "Cache-Control: only-if-cached\r\n").await;
    only.assert_status(504);
}

#[tokio::test]
async fn the_quick_start_caches_with_its_cache_flag() {
    let origin = origin(Arc::default()).await;
    let to = origin.addr.to_string();
    let server = Server::start_with_args(
        WorkDir::new(),
        &[
            "--data-dir",
            "state",
            "reverse-proxy",
            "--to",
            to.as_str(),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--cache",
        ],
    );
    get(server.addr(), "/quick", "").await;
    let again = get(server.addr(), "/quick", "").await;
    assert!(
        again.cache_status().contains("hit"),
        "{}",
        again.cache_status()
    );
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_hit_on_a_kept_alive_connection_is_answered_alike_by_both_lanes() {
    let origin = origin(Arc::default()).await;
    let server = Server::start(WorkDir::new(), &config(&origin));
    let mut conn = RawConn::connect(server.addr()).await;
    let plain = "GET /both HTTP/1.1\r\nHost: c.test\r\nUser-Agent: t/1\r\n\r\n";
    conn.send(plain).await;
    let miss = conn.read_response().await;
    assert!(miss.cache_status().contains("uri-miss"));
    // A plain GET: the express lane answers the hit.
    conn.send(plain).await;
    let express = conn.read_response().await;
    // One more field: hyper's path answers it.
    conn.send("GET /both HTTP/1.1\r\nHost: c.test\r\nUser-Agent: t/1\r\nX-Lane: hyper\r\n\r\n")
        .await;
    let hyper = conn.read_response().await;
    assert_eq!(origin.hits(), 1);
    assert_eq!(express.body, miss.body);
    assert_eq!(express.body, hyper.body);
    let fields = |res: &RawResponse| {
        let mut v: Vec<(String, String)> = res
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| n != "age" && n != "cache-status")
            .collect();
        v.sort();
        v
    };
    assert_eq!(fields(&express), fields(&hyper));
    for res in [&express, &hyper] {
        assert!(
            res.cache_status().starts_with("portico; hit; ttl="),
            "{}",
            res.cache_status()
        );
        assert_eq!(res.header_all("cache-status").len(), 1);
        assert!(res.header("age").is_some());
    }
}
