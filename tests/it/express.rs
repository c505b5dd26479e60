//! The express lane (`edge/express.rs`) answers plain keep-alive GETs of cached files below
//! hyper. These tests hold it to the main path: the same request sent once plain (express) and
//! once with a field the lane does not take (so hyper and the pipeline answer) must get the
//! same bytes, `Date` aside. The server logs each express answer at trace level, which tells
//! the tests which lane answered.

use std::time::Duration;

use crate::harness::{RawConn, RawResponse, Server, WorkDir};

/// Trace for the express lane only: one line per request it answers.
const LOG: &str = "portico::edge::express=trace,info";
const ANSWERED: &str = "express lane answered";

/// A field the express lane does not take and no handler reads: sends a request to hyper.
const TO_HYPER: &str = "X-Lane: hyper\r\n";

fn site() -> WorkDir {
    let work = WorkDir::new();
    work.write("public/a.txt", "hello, express\n");
    work.write("public/1k.bin", [7u8; 1024]);
    work.write("public/page.html", "<p>compress me</p>\n".repeat(40));
    work.write("public/style.css", "body { color: black }\n".repeat(30));
    work.write(
        "public/style.css.gz",
        b"\x1f\x8b not really gzip, but a sibling",
    );
    work.write("public/dir/index.html", "<h1>index</h1>\n");
    work.write("public/sp ace.txt", "spaced\n");
    work.write("public/empty.txt", "");
    // Large enough for the cache to keep its descriptor: both lanes send it with sendfile.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    work.write("public/big.bin", big);
    work.write("assets/logo.txt", "logo\n");
    work.write("b/b.txt", "site b\n");
    work
}

const CONFIG: &str = r#"
[access_log]
path = "access.log"
format = "combined"

[[site]]
name = "a"
listen = ["127.0.0.1:0"]
default = true

[[site.route]]
prefix = "/assets/"
[site.route.static]
root = "assets"
strip_prefix = true

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"

[[site]]
name = "b"
listen = ["127.0.0.1:0"]
hosts = ["b.test"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "b"
"#;

/// The response bytes with the `date` field's value blanked.
fn without_date(r: &RawResponse) -> Vec<u8> {
    let text = String::from_utf8_lossy(&r.raw).into_owned();
    let mut out = String::new();
    for (i, part) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        if part.to_ascii_lowercase().starts_with("date: ") {
            out.push_str("date: -");
        } else {
            out.push_str(part);
        }
    }
    out.into_bytes()
}

/// Same status, fields (but `date`) and content; a body compressed on the fly (chunked) is
/// compared uncompressed, since its chunks and gzip blocks follow the timing of the writes.
fn same_answer(a: &RawResponse, b: &RawResponse, target: &str) {
    assert_eq!(a.status, b.status, "{target}");
    let fields = |r: &RawResponse| {
        let mut f = r.headers.clone();
        f.retain(|(name, _)| !name.eq_ignore_ascii_case("date"));
        f
    };
    assert_eq!(fields(a), fields(b), "{target}");
    if a.header("transfer-encoding").is_some() {
        assert_eq!(gunzip(&a.body), gunzip(&b.body), "{target}");
    } else {
        assert_eq!(a.body, b.body, "{target}");
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn express_count(server: &Server) -> usize {
    server.stderr().matches(ANSWERED).count()
}

/// Waits (bounded) until the server logged `n` express answers; the count it reached.
async fn wait_express(server: &Server, n: usize) -> usize {
    for _ in 0..100 {
        if express_count(server) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    express_count(server)
}

async fn exchange(conn: &mut RawConn, request: &str) -> RawResponse {
    conn.send(request).await;
    conn.read_response().await
}

#[tokio::test]
async fn both_lanes_answer_byte_for_byte_alike() {
    let server = Server::start_logging(site(), CONFIG, Some(LOG));
    let addr = server.addr();
    // (host, target, extra fields, answered by the express lane once cached)
    let cases: &[(&str, &str, &str, bool)] = &[
        ("localhost", "/a.txt", "", true),
        ("localhost", "/a.txt?v=1&x=%41", "", true),
        (
            "localhost",
            "/1k.bin",
            "User-Agent: t/1\r\nAccept: */*\r\n",
            true,
        ),
        ("LOCALHOST:80", "/dir/", "", true),
        ("localhost", "/sp%20ace.txt", "", true),
        ("localhost", "/empty.txt", "", true),
        ("localhost", "/big.bin", "", true),
        ("localhost", "/assets/logo.txt", "", true),
        ("b.test", "/b.txt", "", true),
        ("B.Test:8080", "/b.txt", "Connection: keep-alive\r\n", true),
        // A precompressed sibling, chosen by Accept-Encoding.
        ("localhost", "/style.css", "Accept-Encoding: gzip\r\n", true),
        (
            "localhost",
            "/style.css",
            "Accept-Encoding: br;q=1, gzip;q=0.5\r\n",
            true,
        ),
        ("localhost", "/style.css", "", true),
        // Compressed on the fly: hyper's path in both cases.
        (
            "localhost",
            "/page.html",
            "Accept-Encoding: gzip\r\n",
            false,
        ),
        // Not cached: misses, folders without a slash, missing files.
        ("localhost", "/dir", "", false),
        ("localhost", "/missing.txt", "", false),
    ];
    for &(host, target, extra, express) in cases {
        let mut conn = RawConn::connect(addr).await;
        let plain = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n");
        let hyper = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}{TO_HYPER}\r\n");
        // The first answer fills the open-file cache.
        let first = exchange(&mut conn, &hyper).await;
        let before = express_count(&server);
        let via_express = exchange(&mut conn, &plain).await;
        let via_hyper = exchange(&mut conn, &hyper).await;
        if express {
            assert_eq!(
                String::from_utf8_lossy(&without_date(&via_express)),
                String::from_utf8_lossy(&without_date(&via_hyper)),
                "GET {target} (Host: {host}, {extra:?}) differs between the lanes"
            );
        } else {
            same_answer(&via_express, &via_hyper, target);
        }
        // From disk the first time, from the cache after.
        same_answer(&first, &via_hyper, target);
        let after = wait_express(&server, before + usize::from(express)).await;
        assert_eq!(
            after - before,
            usize::from(express),
            "GET {target} (Host: {host}, {extra:?}): express lane expected: {express}\n{via_express}"
        );
    }
    // Never cached, so never express: a traversal attempt meets the path checks.
    let before = express_count(&server);
    for target in ["/../public/a.txt", "/%2e%2e/public/a.txt", "/dir/../a.txt"] {
        let r = crate::harness::exchange(addr, format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .await;
        assert!(r.status == 400 || r.status == 404, "{target}: {r}");
    }
    assert_eq!(express_count(&server), before);
}

#[tokio::test]
async fn a_connection_switches_lanes_both_ways_and_pipelines_in_order() {
    let server = Server::start_logging(site(), CONFIG, Some(LOG));
    let addr = server.addr();
    let plain = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let to_hyper = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\n{TO_HYPER}\r\n");
    let mut conn = RawConn::connect(addr).await;
    // Hyper fills the cache; the next plain request leaves hyper for the express lane.
    exchange(&mut conn, &to_hyper).await.assert_status(200);
    let r = exchange(&mut conn, plain).await;
    r.assert_status(200);
    assert_eq!(r.text(), "hello, express\n");
    assert_eq!(wait_express(&server, 1).await, 1);
    // And back: a conditional request goes to hyper (304), then plain again.
    let etag = r.header("etag").unwrap().to_string();
    let revalidate = format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n");
    exchange(&mut conn, &revalidate).await.assert_status(304);
    exchange(&mut conn, plain).await.assert_status(200);
    assert_eq!(wait_express(&server, 2).await, 2);

    // Pipelined in one write: the first plain one goes through the express lane, the rest
    // (HEAD, a range, a miss, plain ones behind them) through hyper, which already holds
    // them; all answered in order.
    let batch = format!(
        "{plain}HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n{plain}GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n{plain}"
    );
    conn.send(batch).await;
    let first = conn.read_response().await;
    first.assert_status(200);
    assert_eq!(first.text(), "hello, express\n");
    let head = conn.read_head_response().await;
    head.assert_status(200);
    assert!(head.body.is_empty());
    conn.read_response().await.assert_status(200);
    let range = conn.read_response().await;
    range.assert_status(206);
    assert_eq!(range.text(), "hello");
    conn.read_response().await.assert_status(404);
    let last = conn.read_response().await;
    last.assert_status(200);
    assert_eq!(last.text(), "hello, express\n");
    assert!(wait_express(&server, 3).await >= 3);
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn the_express_lane_sees_a_changed_file() {
    let work = site();
    let server = Server::start_logging(work, CONFIG, Some(LOG));
    let addr = server.addr();
    let plain = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut conn = RawConn::connect(addr).await;
    exchange(&mut conn, plain).await.assert_status(200);
    let cached = exchange(&mut conn, plain).await;
    assert_eq!(cached.text(), "hello, express\n");
    assert!(wait_express(&server, 1).await >= 1);
    server
        .work()
        .write("public/a.txt", "changed on disk, longer than before\n");
    // The open-file cache checks a file again at most a second after the last check.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let fresh = exchange(&mut conn, plain).await;
    assert_eq!(
        fresh.text(),
        "changed on disk, longer than before\n",
        "{fresh}"
    );
}

#[tokio::test]
async fn express_answers_are_logged_like_the_others() {
    let server = Server::start_logging(site(), CONFIG, Some(LOG));
    let addr = server.addr();
    let fields = "User-Agent: agent/1\r\nReferer: http://ref.test/\r\n";
    let mut conn = RawConn::connect(addr).await;
    let to_hyper =
        format!("GET /a.txt?q=1 HTTP/1.1\r\nHost: b.test.example\r\n{fields}{TO_HYPER}\r\n");
    let plain = format!("GET /a.txt?q=1 HTTP/1.1\r\nHost: b.test.example\r\n{fields}\r\n");
    exchange(&mut conn, &to_hyper).await.assert_status(200);
    exchange(&mut conn, &plain).await.assert_status(200);
    assert_eq!(wait_express(&server, 1).await, 1);
    let mut lines = Vec::new();
    for _ in 0..250 {
        let text = server
            .work()
            .read_to_string("access.log")
            .unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Equal but for the time, the duration and the TCP figures:
    // `client - - [time] "request" status bytes "referer" "agent" seconds rtt=… retrans=…`.
    let stable = |line: &str| {
        let after_time = line.split_once("] ").map_or(line, |(_, rest)| rest);
        let end = after_time.rfind('"').map_or(after_time.len(), |at| at + 1);
        after_time[..end].to_string()
    };
    assert_eq!(stable(&lines[0]), stable(&lines[1]), "{lines:?}");
    assert!(
        lines[1].contains("\"GET /a.txt?q=1 HTTP/1.1\" 200 15 \"http://ref.test/\" \"agent/1\""),
        "{}",
        lines[1]
    );
}
