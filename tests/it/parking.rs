//! Idle keep-alive connections leave the async runtime for the parking lot (`edge/park.rs`)
//! and come back when their next request arrives. Observed from outside through the kernel:
//! `/proc/PID/fdinfo` lists, for every epoll set of the server, the sockets registered in it.

use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{RawConn, Server, WorkDir};

const CONFIG: &str = r#"
[server]
workers = 1

[limits]
keepalive_timeout = "30s"

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/hello"
respond = { body = "hello" }
"#;

/// For each epoll descriptor of `pid`: (fd, number of registered descriptors).
fn epoll_sets(pid: u32) -> Vec<(String, usize)> {
    let mut sets = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return sets;
    };
    for entry in dir.flatten() {
        let is_epoll = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().contains("eventpoll"))
            .unwrap_or(false);
        if !is_epoll {
            continue;
        }
        let fd = entry.file_name().to_string_lossy().into_owned();
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        sets.push((fd, info.lines().filter(|l| l.starts_with("tfd:")).count()));
    }
    sets
}

/// The parking lot's epoll set: the emptiest one at start (tokio's holds the listener).
fn lot_set(pid: u32) -> String {
    epoll_sets(pid)
        .into_iter()
        .min_by_key(|(_, n)| *n)
        .map(|(fd, _)| fd)
        .expect("the server has epoll sets")
}

/// Polls until the epoll set `fd` holds at least `n` descriptors, or panics after `within`.
async fn wait_for_set_size(pid: u32, fd: &str, at_least: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let sets = epoll_sets(pid);
        let size = sets.iter().find(|(f, _)| f == fd).map_or(0, |(_, n)| *n);
        if size >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "epoll set {fd} holds {size} descriptors, expected at least {at_least}; all sets: {sets:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_connections_are_parked_outside_the_runtime_and_resume() {
    const CONNS: usize = 40;
    let server = Server::start(WorkDir::new(), CONFIG);
    let pid = server.worker_pids()[0];
    let lot = lot_set(pid);

    let mut conns = Vec::new();
    for _ in 0..CONNS {
        let mut conn = RawConn::connect(server.addr()).await;
        conn.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let r = conn.read_response().await;
        r.assert_status(200);
        conns.push(conn);
    }
    wait_for_set_size(pid, &lot, CONNS, Duration::from_secs(10)).await;

    // Every parked connection still answers its next request on the same socket.
    for conn in &mut conns {
        conn.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").await;
        let r = conn.read_response().await;
        r.assert_status(200);
        assert_eq!(r.text(), "hello", "{r}");
    }
    // And they park again once idle.
    wait_for_set_size(pid, &lot, CONNS, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn parked_connections_close_at_the_keepalive_timeout_and_on_stop() {
    let config = CONFIG.replace("30s", "1s");
    let server = Server::start(WorkDir::new(), &config);
    let mut idle = RawConn::connect(server.addr()).await;
    idle.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").await;
    idle.read_response().await.assert_status(200);
    assert!(
        idle.wait_closed(Duration::from_secs(5)).await.is_ok(),
        "a parked connection outlived keepalive_timeout"
    );

    let mut server = Server::start(WorkDir::new(), CONFIG);
    let pid = server.worker_pids()[0];
    let lot = lot_set(pid);
    let mut parked = RawConn::connect(server.addr()).await;
    parked.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").await;
    parked.read_response().await.assert_status(200);
    wait_for_set_size(pid, &lot, 1, Duration::from_secs(10)).await;
    server.signal(libc::SIGTERM);
    assert!(
        parked.wait_closed(Duration::from_secs(3)).await.is_ok(),
        "a parked connection was not closed by a graceful stop"
    );
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0));
}
