//! Load balancing: each policy's distribution over origins started by the test, sticky
//! sessions, and health (members taken out by active or passive checks, and back).
//!
//! Most tests run one worker: counts of requests in flight, latency averages and health are
//! each worker's own (docs/ARCHITECTURE.md), so one worker makes the distribution exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;

use crate::harness::origin::{Origin, full, handler};
use crate::harness::{H1Client, Server, WorkDir};

/// One worker, one upstream `app` over `origins` with `extra` keys, one site proxying to it.
fn config(origins: &[&Origin], extra: &str) -> String {
    let servers: Vec<String> = origins.iter().map(|o| format!("\"{}\"", o.addr)).collect();
    config_with_servers(&servers.join(", "), extra)
}

/// [`config`] with `servers` written out (`"addr", { addr = "...", weight = 2 }`).
fn config_with_servers(servers: &str, extra: &str) -> String {
    format!(
        r#"
[server]
workers = 1

[[upstream]]
name = "app"
servers = [{servers}]
{extra}

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "app" }}
"#
    )
}

/// How many of `n` GETs of `path` each origin answered (by `x-origin`).
async fn spread(client: &mut H1Client, path: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = client.get(path).await;
        r.assert_status(200);
        *counts
            .entry(r.header("x-origin").unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn round_robin_is_within_one_of_even_over_300_requests() {
    let (a, b, c) = (
        Origin::echo("a").await,
        Origin::echo("b").await,
        Origin::echo("c").await,
    );
    let server = Server::start(WorkDir::new(), &config(&[&a, &b, &c], ""));
    let mut client = H1Client::connect(server.addr()).await;
    let counts = spread(&mut client, "/", 300).await;
    for name in ["a", "b", "c"] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(got.abs_diff(100) <= 1, "{counts:?}");
    }
    client.close().await;
}

#[tokio::test]
async fn weights_set_each_members_share() {
    let (a, b) = (Origin::echo("a").await, Origin::echo("b").await);
    let servers = format!("\"{}\", {{ addr = \"{}\", weight = 2 }}", a.addr, b.addr);
    let server = Server::start(WorkDir::new(), &config_with_servers(&servers, ""));
    let mut client = H1Client::connect(server.addr()).await;
    let counts = spread(&mut client, "/", 300).await;
    assert_eq!(counts.get("a"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&200), "{counts:?}");
    client.close().await;
}

#[tokio::test]
async fn least_conn_avoids_a_member_holding_slow_requests() {
    let release = Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let slow = Origin::start(
        "slow",
        handler(move |_req, seen| {
            let held = held.clone();
            async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), held.notified()).await;
                http::Response::builder()
                    .header("x-origin", seen.name.as_str())
                    .body(full("late"))
                    .unwrap()
            }
        }),
    )
    .await;
    let fast = Origin::echo("fast").await;
    let server = Server::start(
        WorkDir::new(),
        &config(&[&slow, &fast], "policy = \"least_conn\""),
    );
    let addr = server.addr();
    // Start requests until the slow member holds one (ties rotate, so within a few).
    let mut background = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.active() == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow member never got a request"
        );
        background.push(tokio::spawn(async move {
            crate::harness::get(addr, "/hold").await
        }));
        let wait = Instant::now() + Duration::from_millis(500);
        while slow.active() == 0 && Instant::now() < wait {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let slow_hits = slow.hits();
    let mut client = H1Client::connect(addr).await;
    let counts = spread(&mut client, "/quick", 20).await;
    assert_eq!(counts.get("fast"), Some(&20), "{counts:?}");
    assert_eq!(slow.hits(), slow_hits, "a request went to the busy member");
    release.notify_waiters();
    for request in background {
        request.await.unwrap().assert_status(200);
    }
    client.close().await;
}

#[tokio::test]
async fn p2c_prefers_the_member_with_the_lower_latency() {
    let slow = Origin::start(
        "slow",
        handler(|_req, seen| async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            http::Response::builder()
                .header("x-origin", seen.name.as_str())
                .body(full("slow"))
                .unwrap()
        }),
    )
    .await;
    let fast = Origin::echo("fast").await;
    let server = Server::start(WorkDir::new(), &config(&[&slow, &fast], "policy = \"p2c\""));
    let mut client = H1Client::connect(server.addr()).await;
    let counts = spread(&mut client, "/", 40).await;
    // With two members both are always drawn: once each has answered, the fast one wins.
    assert!(counts.get("slow").copied().unwrap_or(0) <= 2, "{counts:?}");
    client.close().await;
}

/// Keys `key-0`.. sent in `X-Key`, and the member each went to.
async fn owners(client: &mut H1Client, keys: usize) -> Vec<String> {
    let mut owners = Vec::new();
    for k in 0..keys {
        let r = client
            .send(
                Request::get("/")
                    .header("x-key", format!("key-{k}"))
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await;
        r.assert_status(200);
        owners.push(r.header("x-origin").unwrap_or("?").to_string());
    }
    owners
}

#[tokio::test]
async fn consistent_hashing_moves_only_the_keys_of_a_member_that_leaves() {
    const KEYS: usize = 90;
    let mut origins = [
        Origin::echo("a").await,
        Origin::echo("b").await,
        Origin::echo("c").await,
    ];
    let refs: Vec<&Origin> = origins.iter().collect();
    let extra =
        "policy = \"hash\"\nhash_key = \"header:X-Key\"\nmax_fails = 1\nfail_timeout = \"60s\"";
    let server = Server::start(WorkDir::new(), &config(&refs, extra));
    let mut client = H1Client::connect(server.addr()).await;
    let before = owners(&mut client, KEYS).await;
    assert_eq!(
        owners(&mut client, KEYS).await,
        before,
        "a key changed member"
    );
    for name in ["a", "b", "c"] {
        assert!(
            before.iter().any(|o| o == name),
            "{name} owns no key: {before:?}"
        );
    }
    // Member c leaves: its keys go to the others (a GET to it is retried on the next member
    // of the ring, then it is ejected); no other key moves.
    origins[2].stop().await;
    let after = owners(&mut client, KEYS).await;
    let mut moved = 0;
    for (k, (was, is)) in before.iter().zip(&after).enumerate() {
        if was == "c" {
            assert_ne!(is, "c", "key-{k} still on the stopped member");
            moved += 1;
        } else {
            assert_eq!(was, is, "key-{k} moved from {was} to {is}");
        }
    }
    // How many moved is c's share, which depends on the ports the origins got: with 90 keys
    // it is 1/3 only within a few standard deviations (once 44 of 90 in CI). The ring's
    // balance is measured on fixed addresses and 20,000 keys by the unit test in
    // `lb/policy/consistent_hash.rs`; here every key of c moved and no other did.
    assert!(moved > 0);
    assert_eq!(owners(&mut client, KEYS).await, after, "keys moved again");
    client.close().await;
}

#[tokio::test]
async fn a_sticky_cookie_keeps_a_client_on_its_member() {
    let (a, b) = (Origin::echo("a").await, Origin::echo("b").await);
    let server = Server::start(
        WorkDir::new(),
        &config(&[&a, &b], "sticky_cookie = \"backend\""),
    );
    let mut client = H1Client::connect(server.addr()).await;
    let first = client.get("/").await;
    let cookie = first
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no sticky cookie: {first}"))
        .to_string();
    assert!(cookie.starts_with("backend="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let member = first.header("x-origin").unwrap().to_string();
    for _ in 0..10 {
        let r = client
            .send(
                Request::get("/")
                    .header("cookie", format!("theme=dark; {pair}"))
                    .body(Bytes::new())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.header("x-origin"), Some(member.as_str()), "{r}");
        assert!(
            r.header("set-cookie").is_none(),
            "the cookie was set again: {r}"
        );
    }
    // Without it, round robin goes on.
    let counts = spread(&mut client, "/", 10).await;
    assert_eq!(counts.len(), 2, "{counts:?}");
    client.close().await;
}

#[tokio::test]
async fn a_killed_origin_is_taken_out_by_health_checks_and_returns_when_healed() {
    let mut a = Origin::echo("a").await;
    let b = Origin::echo("b").await;
    // Two workers (each checks on its own); no retries and no passive checks, so only the
    // active checks keep requests away from the dead member.
    let config = format!(
        r#"
[server]
workers = 2

[[upstream]]
name = "app"
servers = ["{}", "{}"]
retries = 0
max_fails = 0
[upstream.health]
path = "/health"
interval = "100ms"
timeout = "500ms"
fall = 2
rise = 2

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
proxy = {{ upstream = "app" }}
"#,
        a.addr, b.addr
    );
    let server = Server::start(WorkDir::new(), &config);
    let addr = server.addr();
    a.stop().await;
    // Out within the checks: then every request succeeds, on b.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut good_in_a_row = 0;
    while good_in_a_row < 20 {
        assert!(
            Instant::now() < deadline,
            "the dead member was never taken out"
        );
        let r = crate::harness::get(addr, "/").await;
        if r.status == 200 {
            assert_eq!(r.header("x-origin"), Some("b"), "{r}");
            good_in_a_row += 1;
        } else {
            r.assert_status(502);
            good_in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Healed: back in rotation after `rise` passed checks.
    a.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "the healed member never came back"
        );
        let r = crate::harness::get(addr, "/").await;
        r.assert_status(200);
        if r.header("x-origin") == Some("a") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn consecutive_failures_eject_a_member_passively() {
    let dead = crate::harness::origin::refused_addr();
    let b = Origin::echo("b").await;
    let config = config_with_servers(
        &format!("\"{dead}\", \"{}\"", b.addr),
        "retries = 0\nmax_fails = 2\nfail_timeout = \"60s\"",
    );
    let server = Server::start(WorkDir::new(), &config);
    let mut client = H1Client::connect(server.addr()).await;
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(client.get("/").await.status.as_u16());
    }
    // Round robin: the dead member fails twice (502), then stays out.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 502).count(),
        2,
        "{statuses:?}"
    );
    assert!(statuses[4..].iter().all(|&s| s == 200), "{statuses:?}");
    client.close().await;
}

#[tokio::test]
async fn no_healthy_member_is_503_with_retry_after() {
    let sick = Origin::start(
        "sick",
        handler(|req, _seen| async move {
            let status = if req.uri().path() == "/health" {
                500
            } else {
                200
            };
            http::Response::builder()
                .status(status)
                .body(full("sick"))
                .unwrap()
        }),
    )
    .await;
    let extra = "[upstream.health]\npath = \"/health\"\ninterval = \"100ms\"\nfall = 1";
    let server = Server::start(WorkDir::new(), &config(&[&sick], extra));
    let mut client = H1Client::connect(server.addr()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = client.get("/").await;
        if r.status == 503 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the sick member was never taken out: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(r.header("retry-after").is_some(), "{r}");
    client.close().await;
}
