//! Stale responses with the origin stopped (RFC 5861 and `[cache] grace`): a stored response
//! past its freshness is served while it is refreshed in the background once
//! (`stale-while-revalidate`), or when the origin cannot answer (`stale-if-error`, `grace`);
//! without either the failure goes to the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Response;

use crate::harness::origin::{Origin, full, handler};
use crate::harness::raw::get;
use crate::harness::{Server, WorkDir};

/// Numbered answers, each path with its own `Cache-Control`.
async fn origin() -> Origin {
    let served = Arc::new(AtomicUsize::new(0));
    Origin::start(
        "stale",
        handler(move |req, _seen| {
            let served = served.clone();
            async move {
                let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                let cc = match req.uri().path() {
                    "/swr" => "max-age=1, stale-while-revalidate=60",
                    "/sie" => "max-age=1, stale-if-error=60",
                    _ => "max-age=1",
                };
                Response::builder()
                    .header("cache-control", cc)
                    .body(full(format!("{} {n}", req.uri().path())))
                    .unwrap()
            }
        }),
    )
    .await
}

fn config(origin: &Origin, grace: &str) -> String {
    format!(
        r#"
[server]
workers = 1

[cache]
memory = "8m"
{grace}

[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
proxy = {{ upstream = "app", cache = true }}
"#,
        origin.addr
    )
}

/// Past the 1 s freshness of every stored response.
async fn go_stale() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

#[tokio::test]
async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
    let origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    assert_eq!(get(server.addr(), "/swr", "").await.text(), "/swr 1");
    go_stale().await;
    // Stale: served as it is (a validation would have answered "/swr 2"), while one
    // background refresh runs for the burst.
    let first = get(server.addr(), "/swr", "").await;
    assert_eq!(first.text(), "/swr 1");
    assert!(first.header("cache-status").unwrap().contains("hit"));
    for _ in 0..4 {
        get(server.addr(), "/swr", "").await.assert_status(200);
    }
    for _ in 0..50 {
        if get(server.addr(), "/swr", "").await.text() == "/swr 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get(server.addr(), "/swr", "").await.text(),
        "/swr 2",
        "the refresh was stored"
    );
    assert_eq!(origin.hits(), 2, "one refresh for five stale requests");
}

#[tokio::test]
async fn stale_while_revalidate_with_the_origin_stopped() {
    let mut origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    assert_eq!(get(server.addr(), "/swr", "").await.text(), "/swr 1");
    origin.stop().await;
    go_stale().await;
    for _ in 0..3 {
        let res = get(server.addr(), "/swr", "").await;
        res.assert_status(200);
        assert_eq!(res.text(), "/swr 1");
    }
}

#[tokio::test]
async fn stale_if_error_with_the_origin_stopped() {
    let mut origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, ""));
    assert_eq!(get(server.addr(), "/sie", "").await.text(), "/sie 1");
    assert_eq!(get(server.addr(), "/plain", "").await.text(), "/plain 2");
    origin.stop().await;
    go_stale().await;
    let res = get(server.addr(), "/sie", "").await;
    res.assert_status(200);
    assert_eq!(res.text(), "/sie 1");
    // No stale-if-error and no grace: the failure is the answer.
    let plain = get(server.addr(), "/plain", "").await;
    assert!(plain.status >= 500, "{plain:?}");
}

#[tokio::test]
async fn grace_serves_stale_with_the_origin_stopped() {
    let mut origin = origin().await;
    let server = Server::start(WorkDir::new(), &config(&origin, "grace = \"1h\""));
    assert_eq!(get(server.addr(), "/plain", "").await.text(), "/plain 1");
    origin.stop().await;
    go_stale().await;
    let res = get(server.addr(), "/plain", "").await;
    res.assert_status(200);
    assert_eq!(res.text(), "/plain 1");
    let age: u64 = res.header("age").unwrap().parse().unwrap();
    assert!(age >= 2, "served stale with its age: {age}");
}
