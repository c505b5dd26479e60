//! The access log: one line per request, JSON or nginx's combined format, written to a file
//! relative to the config's folder. Only `respond` routes, so these tests do not depend on
//! static files.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use tokio::time::Instant;

use crate::harness::{Server, WorkDir, get, send};

fn config(format: &str) -> String {
    format!(
        r#"
# One worker: with several, each writes its own lines and their order is not the requests'.
[server]
workers = 1

[access_log]
path = "access.log"
format = "{format}"

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/upload"
respond = {{ status = 201, body = "stored\n" }}

[[site.route]]
exact = "/index.html"
respond = {{ body = "<h1>logged</h1>\n", headers = {{ "Content-Type" = "text/html" }} }}
"#
    )
}

/// Polls the log file until it has `count` lines (bounded: 5 s); returns them.
async fn wait_for_lines(server: &Server, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server
            .work()
            .read_to_string("access.log")
            .unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "access.log has {} of {count} lines after 5 s:\n{text}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn json_format_logs_one_object_per_request() {
    let server = Server::start(WorkDir::new(), &config("json"));
    let addr = server.addr();
    let page = get(addr, "/index.html?from=test").await;
    page.assert_status(200);
    get(addr, "/missing.txt").await.assert_status(404);
    let post = Request::post("/upload")
        .body(Bytes::from_static(b"0123456789"))
        .unwrap();
    send(addr, post).await.assert_status(201);

    let lines = wait_for_lines(&server, 3).await;
    assert_eq!(
        lines.len(),
        3,
        "one line per request:\n{}",
        lines.join("\n")
    );
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let expected = [
        ("GET", "/index.html?from=test", 200, page.body.len()),
        ("GET", "/missing.txt", 404, usize::MAX),
        ("POST", "/upload", 201, "stored\n".len()),
    ];
    for (record, (method, target, status, bytes)) in records.iter().zip(expected) {
        assert_eq!(record["method"], method, "{record}");
        assert_eq!(record["target"], target, "{record}");
        assert_eq!(record["status"], status, "{record}");
        let logged = record["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("bytes is not a number: {record}"));
        if bytes != usize::MAX {
            assert_eq!(logged, bytes as u64, "bytes = body bytes sent: {record}");
        }
        let duration = record
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.starts_with("duration")))
            .map(|(_, v)| v.clone());
        assert!(
            duration
                .as_ref()
                .is_some_and(|d| d.as_f64().is_some_and(|d| d >= 0.0)),
            "no numeric duration field: {record}"
        );
        // The connection's TCP figures, from the kernel (TCP_INFO) as the response ended.
        assert!(
            record["tcp_rtt_us"].as_u64().is_some_and(|rtt| rtt > 0),
            "no round-trip time: {record}"
        );
        assert!(
            record["tcp_retransmits"].as_u64().is_some(),
            "no retransmit count: {record}"
        );
    }
}

#[tokio::test]
async fn combined_format_looks_like_nginx() {
    let server = Server::start(WorkDir::new(), &config("combined"));
    let request = Request::get("/index.html?x=1")
        .header("referer", "http://ref.test/page")
        .header("user-agent", "portico-it/1.0")
        .body(Bytes::new())
        .unwrap();
    let page = send(server.addr(), request).await;
    page.assert_status(200);

    let lines = wait_for_lines(&server, 1).await;
    assert_eq!(lines.len(), 1, "{}", lines.join("\n"));
    let line = &lines[0];
    // 127.0.0.1 - - [28/Nov/2025:12:45:01 +0000] "GET /index.html?x=1 HTTP/1.1" 200 16 "ref" "ua" …
    let rest = line
        .strip_prefix("127.0.0.1 - - [")
        .unwrap_or_else(|| panic!("remote address and identity: {line}"));
    let (time, rest) = rest
        .split_once("] ")
        .unwrap_or_else(|| panic!("time: {line}"));
    assert_eq!(
        time.len(),
        "28/Nov/2025:12:45:01 +0000".len(),
        "time {time:?} in {line}"
    );
    assert_eq!(&time[2..3], "/", "time {time:?}");
    assert_eq!(&time[11..12], ":", "time {time:?}");
    let expected = format!(
        "\"GET /index.html?x=1 HTTP/1.1\" 200 {} \"http://ref.test/page\" \"portico-it/1.0\"",
        page.body.len()
    );
    assert!(
        rest.starts_with(&expected),
        "expected {expected:?} after the time in:\n{line}"
    );
    // … seconds rtt=123us retrans=0: the connection's TCP figures (TCP_INFO).
    let fields: Vec<&str> = line.rsplit(' ').take(2).collect();
    let (rtt, retrans) = (fields[1], fields[0]);
    assert!(
        rtt.strip_prefix("rtt=")
            .and_then(|v| v.strip_suffix("us"))
            .is_some_and(|v| v.parse::<u32>().is_ok_and(|v| v > 0)),
        "no rtt=…us field at the end of {line}"
    );
    assert!(
        retrans
            .strip_prefix("retrans=")
            .is_some_and(|v| v.parse::<u32>().is_ok()),
        "no retrans=… field at the end of {line}"
    );
}
