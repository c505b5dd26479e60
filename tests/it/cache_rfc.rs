//! RFC 9111's requirements on a shared cache, one test per MUST (or per few MUSTs that share a
//! set-up), each against the real binary with an origin started by the test. Each test names
//! its section; docs/cache-conformance.md is the checklist that maps every requirement to its
//! test. What tests/it/cache.rs already shows (a hit with `Age`, HEAD from a stored GET,
//! `no-store`, unqualified `private`, Authorization without an allowing directive, `Vary`
//! variants, POST invalidation, validation with a 304, `stale-if-error`, `only-if-cached` on a
//! miss) is not repeated here.
//!
//! Staleness is made without sleeping where it can be: an origin `Age` or a `Date` in the past
//! makes a response stale on arrival.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::harness::origin::{Origin, OriginBody, full, handler};
use crate::harness::raw::{RawConn, RawResponse, exchange, get, request};
use crate::harness::{Server, WorkDir};

/// One request as the origin received it.
#[derive(Debug, Clone)]
struct Asked {
    method: String,
    /// Path and query.
    target: String,
    headers: HeaderMap,
    /// How many requests for this target the origin has had, this one included.
    n: usize,
}

impl Asked {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What reached the origin.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Asked>>>);

impl Log {
    /// Requests for `target`.
    fn count(&self, target: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.target == target)
            .count()
    }

    /// The last request for `target`.
    fn last(&self, target: &str) -> Asked {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|a| a.target == target)
            .cloned()
            .unwrap_or_else(|| panic!("the origin never saw {target}"))
    }
}

/// An origin answering each request with `answer`, logging what it was asked.
async fn origin(
    answer: impl Fn(&Asked) -> Response<OriginBody> + Send + Sync + 'static,
) -> (Origin, Log) {
    let log = Log::default();
    let kept = log.clone();
    let answer = Arc::new(answer);
    let origin = Origin::start(
        "rfc",
        handler(move |req, _seen| {
            let log = kept.clone();
            let answer = answer.clone();
            async move {
                let target = req
                    .uri()
                    .path_and_query()
                    .map_or("/".to_string(), |pq| pq.to_string());
                let asked = {
                    let mut all = log.0.lock().unwrap();
                    let n = all.iter().filter(|a| a.target == target).count() + 1;
                    let asked = Asked {
                        method: req.method().to_string(),
                        target,
                        headers: req.headers().clone(),
                        n,
                    };
                    all.push(asked.clone());
                    asked
                };
                answer(&asked)
            }
        }),
    )
    .await;
    (origin, log)
}

/// A response with `fields` and `body`.
fn res(status: u16, fields: &[(&str, &str)], body: impl Into<Bytes>) -> Response<OriginBody> {
    let mut builder = Response::builder().status(status);
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(full(body)).unwrap()
}

fn config(origin: SocketAddr, cache: &str) -> String {
    format!(
        r#"
[server]
workers = 1

[cache]
memory = "8m"
{cache}

[[upstream]]
name = "app"
servers = ["{origin}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "FROB"]
proxy = {{ upstream = "app", cache = true }}
"#
    )
}

fn start(origin: &Origin) -> Server {
    Server::start(WorkDir::new(), &config(origin.addr, ""))
}

async fn send(server: &Server, method: &str, target: &str, extra: &str) -> RawResponse {
    request(
        server.addr(),
        method,
        target,
        &format!("{extra}Content-Length: 0\r\n"),
    )
    .await
}

async fn head(server: &Server, target: &str, extra: &str) -> RawResponse {
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send(format!(
        "HEAD {target} HTTP/1.1\r\nHost: c.test\r\n{extra}Connection: close\r\n\r\n"
    ))
    .await;
    conn.read_head_response().await
}

/// An HTTP-date `secs` seconds from now (negative: in the past).
fn date_in(secs: i64) -> String {
    let now = SystemTime::now();
    let at = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

/// A TCP origin that reads one request head per connection, writes what `answer` gives for
/// the n-th request (from 1) and closes: for answers hyper would not send (no `Date`, a body
/// cut short, trailers).
struct ByteOrigin {
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ByteOrigin {
    async fn start(answer: fn(usize) -> Vec<u8>) -> ByteOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    let _ = stream.write_all(&answer(n)).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        ByteOrigin { addr, served, task }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for ByteOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- §3 storing responses

// RFC 9111 §3.1: a cache MUST include all received header fields, unrecognized ones too, when
// storing; Set-Cookie does not inhibit storing (§7.3 of RFC 9111's security notes).
#[tokio::test]
async fn unrecognized_fields_and_set_cookie_are_stored_and_served() {
    let (origin, _log) = origin(|a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("x-unknown-field", "kept; as=is"),
                ("set-cookie", "a=1"),
            ],
            format!("body {}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/f", "").await;
    let hit = get(server.addr(), "/f", "").await;
    hit.assert_hit();
    assert_eq!(hit.text(), "body 1");
    assert_eq!(hit.header("x-unknown-field"), Some("kept; as=is"));
    assert_eq!(hit.header("set-cookie"), Some("a=1"));
}

// RFC 9111 §3.1: fields named by Connection are not stored, nor fields specific to the proxy
// that forwarded the request (Proxy-Authenticate, Proxy-Authentication-Info).
#[tokio::test]
async fn connection_named_and_proxy_specific_fields_are_not_served_from_the_cache() {
    let (origin, _log) = origin(|a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("proxy-authenticate", "Basic realm=\"p\""),
                ("proxy-authentication-info", "nextnonce=\"abc\""),
                ("x-end", "kept"),
            ],
            format!("body {}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/p", "").await;
    let hit = get(server.addr(), "/p", "").await;
    hit.assert_hit();
    for field in ["x-hop", "proxy-authenticate", "proxy-authentication-info"] {
        assert_eq!(hit.header(field), None, "{field} in\n{hit}");
    }
    assert_eq!(hit.header("x-end"), Some("kept"));
}

// RFC 9111 §3.1: a cache MUST NOT combine trailer fields with header fields.
#[tokio::test]
async fn trailer_fields_are_not_stored_as_header_fields() {
    let origin = ByteOrigin::start(|_| {
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\
          Trailer: X-Checksum\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"
            .to_vec()
    })
    .await;
    let server = Server::start(WorkDir::new(), &config(origin.addr, ""));
    let first = get(server.addr(), "/t", "").await;
    assert_eq!(first.text(), "hello");
    let hit = get(server.addr(), "/t", "").await;
    hit.assert_hit();
    assert_eq!(hit.text(), "hello");
    assert_eq!(hit.header("x-checksum"), None, "{hit}");
    assert_eq!(origin.served(), 1);
}

// RFC 9111 §3.3: a cache MUST NOT use an incomplete response to answer requests.
#[tokio::test]
async fn an_incomplete_response_is_not_used_to_answer_a_later_request() {
    let origin = ByteOrigin::start(|n| {
        if n == 1 {
            // 100 bytes announced, 10 sent, then the connection closes.
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\
              Connection: close\r\n\r\n0123456789"
                .to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\
              Connection: close\r\n\r\nwhole"
                .to_vec()
        }
    })
    .await;
    let server = Server::start(WorkDir::new(), &config(origin.addr, ""));
    let mut conn = RawConn::connect(server.addr()).await;
    conn.send("GET /cut HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n")
        .await;
    let broken = conn.read_to_end().await;
    assert!(
        !broken.ends_with(b"whole"),
        "{}",
        String::from_utf8_lossy(&broken)
    );
    let second = get(server.addr(), "/cut", "").await;
    second.assert_status(200);
    assert_eq!(second.text(), "whole");
    second.assert_not_hit();
    assert_eq!(origin.served(), 2);
}

// RFC 9111 §3, §3.3, §3.4: a 206 is stored only by a cache that can combine ranges (portico
// does not), so it never answers a request without Range. portico asks the origin for the whole
// response on a ranged miss and cuts the range from what it stored; a 206 the origin sends
// anyway goes to that client and is not stored.
#[tokio::test]
async fn a_206_is_not_stored_nor_served_to_a_request_without_range() {
    let (origin, log) = origin(|a| {
        if a.target == "/always-partial" || !a.header("range").is_empty() {
            res(
                206,
                &[
                    ("cache-control", "max-age=60"),
                    ("content-range", "bytes 0-1/10"),
                ],
                "01",
            )
        } else {
            res(200, &[("cache-control", "max-age=60")], "0123456789")
        }
    })
    .await;
    let server = start(&origin);
    let part = get(server.addr(), "/r", "Range: bytes=0-1\r\n").await;
    part.assert_status(206);
    assert_eq!(part.text(), "01");
    assert_eq!(
        log.last("/r").header("range"),
        "",
        "the whole response was asked for"
    );
    let whole = get(server.addr(), "/r", "").await;
    whole.assert_status(200);
    assert_eq!(whole.text(), "0123456789");
    assert_eq!(
        log.count("/r"),
        1,
        "the range was cut from the stored response"
    );
    let first = get(server.addr(), "/always-partial", "").await;
    first.assert_status(206);
    let again = get(server.addr(), "/always-partial", "").await;
    again.assert_not_hit();
    assert_eq!(log.count("/always-partial"), 2);
}

// RFC 9111 §3 and §5.2.2.3: with must-understand, a response is stored only if the cache
// understands its status, and then despite no-store. (Without must-understand, RFC 9111 lets
// a cache store a status it does not know when the response has explicit freshness — RFC 7234
// did not — but never heuristically.)
#[tokio::test]
async fn must_understand_needs_a_known_status_and_then_overrides_no_store() {
    let (origin, log) = origin(|a| {
        let (status, cc) = match a.target.as_str() {
            "/299-must-understand" => (299, "must-understand, no-store, max-age=60"),
            "/599-fresh" => (599, "max-age=60"),
            "/599-bare" => (599, ""),
            _ => (200, "must-understand, no-store, max-age=60"),
        };
        res(status, &[("cache-control", cc)], format!("body {}", a.n))
    })
    .await;
    let server = start(&origin);
    let targets = [
        "/299-must-understand",
        "/599-fresh",
        "/599-bare",
        "/understood",
    ];
    for target in targets {
        get(server.addr(), target, "").await;
        get(server.addr(), target, "").await;
    }
    let counts: Vec<usize> = targets.iter().map(|t| log.count(t)).collect();
    assert_eq!(counts, [2, 1, 2, 1], "origin requests for {targets:?}");
}

// RFC 9111 §3: nothing exempts a response without content; a 204 is heuristically cacheable.
#[tokio::test]
async fn responses_without_content_are_stored() {
    let (origin, log) = origin(|a| {
        let status = if a.target == "/204" { 204 } else { 200 };
        res(status, &[("cache-control", "max-age=60")], "")
    })
    .await;
    let server = start(&origin);
    for (target, status) in [("/204", 204), ("/empty", 200)] {
        get(server.addr(), target, "").await.assert_status(status);
        let again = get(server.addr(), target, "").await;
        again.assert_status(status);
        again.assert_hit();
        assert_eq!(log.count(target), 1, "{target}");
    }
    // RFC 9110 §8.6: a 204 never carries Content-Length, in either lane (plain requests on a
    // kept-alive connection are answered by the express lane).
    let mut conn = RawConn::connect(server.addr()).await;
    for _ in 0..2 {
        conn.send("GET /204 HTTP/1.1\r\nHost: c.test\r\n\r\n").await;
        let res = conn.read_response().await;
        res.assert_status(204);
        res.assert_hit();
        assert_eq!(res.header("content-length"), None, "{res}");
    }
}

// RFC 9111 §5.2.1.5: with no-store in the request, the cache MUST NOT store the response.
#[tokio::test]
async fn no_store_in_the_request_keeps_the_response_out_of_the_cache() {
    let (origin, log) =
        origin(|a| res(200, &[("cache-control", "max-age=60")], format!("{}", a.n))).await;
    let server = start(&origin);
    let first = get(server.addr(), "/ns", "Cache-Control: no-store\r\n").await;
    assert!(!first.cache_status().contains("stored"), "{first}");
    let second = get(server.addr(), "/ns", "").await;
    second.assert_not_hit();
    assert_eq!(second.text(), "2");
    assert_eq!(log.count("/ns"), 2);
}

// RFC 9111 §3.5: a response to a request with Authorization may be stored and reused when
// `public`, `s-maxage` or `must-revalidate` allows it.
#[tokio::test]
async fn responses_to_authorized_requests_are_shared_when_a_directive_allows_it() {
    let (origin, log) = origin(|a| {
        let cc = match a.target.as_str() {
            "/public" => "public, max-age=60",
            "/s-maxage" => "s-maxage=60",
            _ => "must-revalidate, max-age=60",
        };
        res(
            200,
            &[("cache-control", cc)],
            format!("{} {}", a.target, a.n),
        )
    })
    .await;
    let server = start(&origin);
    let auth = "Authorization: Basic eDp5\r\n";
    for target in ["/public", "/s-maxage", "/must-revalidate"] {
        get(server.addr(), target, auth).await;
        let again = get(server.addr(), target, auth).await;
        again.assert_hit();
        assert_eq!(again.text(), format!("{target} 1"));
        assert_eq!(log.count(target), 1);
    }
}

// ------------------------------------------------ §4 constructing responses from caches

// RFC 9111 §4: the presented target URI, query included, must match the stored one.
#[tokio::test]
async fn the_query_is_part_of_the_target_that_must_match() {
    let (origin, log) =
        origin(|a| res(200, &[("cache-control", "max-age=60")], a.target.clone())).await;
    let server = start(&origin);
    assert_eq!(get(server.addr(), "/q?a=1", "").await.text(), "/q?a=1");
    let other = get(server.addr(), "/q?a=2", "").await;
    other.assert_not_hit();
    assert_eq!(other.text(), "/q?a=2");
    get(server.addr(), "/q?a=1", "").await.assert_hit();
    assert_eq!(log.count("/q?a=1") + log.count("/q?a=2"), 2);
}

// RFC 9111 §4.1: `Vary: *` always fails to match.
#[tokio::test]
async fn vary_star_never_matches() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[("cache-control", "max-age=60"), ("vary", "*")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/v", "").await;
    let second = get(server.addr(), "/v", "").await;
    second.assert_not_hit();
    assert_eq!(log.count("/v"), 2);
}

// RFC 9111 §4.1: every field nominated by Vary (across several Vary lines) must match, and a
// field absent from the original request matches only a request where it is absent too.
#[tokio::test]
async fn every_vary_field_must_match_and_absent_matches_only_absent() {
    let (origin, log) = origin(|a| {
        let mut response = res(200, &[("cache-control", "max-age=60")], format!("{}", a.n));
        response
            .headers_mut()
            .append("vary", "X-Mode".parse().unwrap());
        response
            .headers_mut()
            .append("vary", "x-lang".parse().unwrap());
        response
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/m", "X-Lang: en\r\n").await;
    get(server.addr(), "/m", "X-Lang: en\r\n")
        .await
        .assert_hit();
    let with_mode = get(server.addr(), "/m", "X-Lang: en\r\nX-Mode: a\r\n").await;
    with_mode.assert_not_hit();
    let other_lang = get(server.addr(), "/m", "X-Lang: fr\r\n").await;
    other_lang.assert_not_hit();
    assert_eq!(log.count("/m"), 3);
}

// RFC 9111 §4 and §5.1: a response reused without validation gets an Age equal to its
// current age, which (§4.2.3) counts the Age the origin sent.
#[tokio::test]
async fn the_served_age_includes_the_age_the_origin_sent() {
    let (origin, _log) = origin(|a| {
        res(
            200,
            &[("cache-control", "max-age=3600"), ("age", "100")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/a", "").await;
    let hit = get(server.addr(), "/a", "").await;
    hit.assert_hit();
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!((100..200).contains(&age), "Age {age}");
    assert_eq!(hit.header_all("age").len(), 1);
}

// RFC 9111 §4.2.3: the current age counts the origin's Age and the apparent age (a Date in
// the past), so a response older than its max-age is stale on arrival and not reused.
#[tokio::test]
async fn age_and_a_past_date_make_a_response_stale_on_arrival() {
    let (origin, log) = origin(|a| {
        let old = date_in(-120);
        let fields: Vec<(&str, &str)> = match a.target.as_str() {
            "/aged" => vec![("cache-control", "max-age=60"), ("age", "90")],
            _ => vec![("cache-control", "max-age=60"), ("date", &old)],
        };
        res(200, &fields, format!("{}", a.n))
    })
    .await;
    let server = start(&origin);
    for target in ["/aged", "/dated"] {
        get(server.addr(), target, "").await;
        let second = get(server.addr(), target, "").await;
        second.assert_not_hit();
        assert_eq!(log.count(target), 2, "{target}");
    }
}

// RFC 9110 §6.6.1 (a cache that receives a response without Date MUST add one with the time
// it was received) and RFC 9111 §4.2.3 (date_value): the hit carries the Date of receipt.
#[tokio::test]
async fn a_response_without_date_is_stored_with_the_time_it_was_received() {
    let origin = ByteOrigin::start(|_| {
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 4\r\n\
          Connection: close\r\n\r\nbody"
            .to_vec()
    })
    .await;
    let server = Server::start(WorkDir::new(), &config(origin.addr, ""));
    let first = get(server.addr(), "/nd", "").await;
    let received = first.header("date").expect("a Date added").to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let hit = get(server.addr(), "/nd", "").await;
    hit.assert_hit();
    assert_eq!(hit.header("date"), Some(received.as_str()), "{hit}");
    assert_eq!(origin.served(), 1);
}

// RFC 9111 §4.2.1 and §5.2.2.10: for a shared cache s-maxage overrides max-age and Expires;
// §5.3: with max-age (or s-maxage) present, Expires MUST be ignored.
#[tokio::test]
async fn s_maxage_and_max_age_override_expires() {
    let (origin, log) = origin(|a| {
        let past = date_in(-3600);
        let cc = match a.target.as_str() {
            "/s" => "s-maxage=60, max-age=0",
            _ => "max-age=60",
        };
        res(
            200,
            &[("cache-control", cc), ("expires", &past)],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    for target in ["/s", "/m"] {
        get(server.addr(), target, "").await;
        get(server.addr(), target, "").await.assert_hit();
        assert_eq!(log.count(target), 1, "{target}");
    }
}

// RFC 9111 §5.3: invalid Expires values, especially "0", mean already expired; §4.2.2: with
// an Expires present no heuristic is used, even with an old Last-Modified.
#[tokio::test]
async fn expires_zero_or_invalid_means_already_expired() {
    let (origin, log) = origin(|a| {
        let value = if a.target == "/zero" {
            "0"
        } else {
            "next tuesday"
        };
        let old = date_in(-365 * 86_400);
        res(
            200,
            &[("expires", value), ("last-modified", &old)],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    for target in ["/zero", "/garbage"] {
        get(server.addr(), target, "").await;
        let second = get(server.addr(), target, "").await;
        second.assert_not_hit();
        assert_eq!(log.count(target), 2, "{target}");
    }
}

// RFC 9110 §5.6.7 (recipients MUST accept all three HTTP-date formats) for Expires (§5.3).
#[tokio::test]
async fn expires_in_the_obsolete_date_formats_gives_freshness() {
    let (origin, log) = origin(|a| {
        let value = if a.target == "/rfc850" {
            "Sunday, 06-Nov-39 08:49:37 GMT"
        } else {
            "Sun Nov  6 08:49:37 2039"
        };
        res(200, &[("expires", value)], format!("{}", a.n))
    })
    .await;
    let server = start(&origin);
    for target in ["/rfc850", "/asctime"] {
        get(server.addr(), target, "").await;
        get(server.addr(), target, "").await.assert_hit();
        assert_eq!(log.count(target), 1, "{target}");
    }
}

// RFC 9111 §4.2.2 and §3: a heuristic freshness only for a heuristically cacheable status
// (404 with Last-Modified is reused); a 302 without explicit freshness is not stored.
#[tokio::test]
async fn heuristic_freshness_only_for_heuristically_cacheable_statuses() {
    let (origin, log) = origin(|a| {
        let old = date_in(-10 * 86_400);
        let status = if a.target == "/missing" { 404 } else { 302 };
        res(
            status,
            &[("last-modified", &old), ("location", "/elsewhere")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/missing", "").await;
    let again = get(server.addr(), "/missing", "").await;
    again.assert_status(404);
    again.assert_hit();
    get(server.addr(), "/moved", "").await;
    let moved = get(server.addr(), "/moved", "").await;
    moved.assert_status(302);
    moved.assert_not_hit();
    assert_eq!((log.count("/missing"), log.count("/moved")), (1, 2));
}

// ----------------------------------------------------- §4.2.4 serving stale responses

// RFC 9111 §4.2.4: a stale response is not served unless the client or origin allows it;
// §4.3.3: a 5xx during validation is forwarded when nothing allows stale.
#[tokio::test]
async fn a_stale_response_is_not_served_without_permission() {
    let (origin, _log) = origin(|a| {
        if a.n == 1 {
            res(
                200,
                &[("cache-control", "max-age=1"), ("age", "5")],
                "stale",
            )
        } else {
            res(500, &[], "origin error")
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/s", "").await;
    let second = get(server.addr(), "/s", "").await;
    second.assert_status(500);
    assert_eq!(second.text(), "origin error");
}

// RFC 9111 §5.2.1.2: max-stale without a value accepts any staleness; with a value, at most
// that much.
#[tokio::test]
async fn max_stale_accepts_staleness_up_to_its_value() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[("cache-control", "max-age=10"), ("age", "100")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/ms", "").await;
    let any = get(server.addr(), "/ms", "Cache-Control: max-stale\r\n").await;
    any.assert_hit();
    assert_eq!(any.text(), "1");
    get(server.addr(), "/ms", "Cache-Control: max-stale=1000\r\n")
        .await
        .assert_hit();
    let too_stale = get(server.addr(), "/ms", "Cache-Control: max-stale=30\r\n").await;
    too_stale.assert_not_hit();
    assert_eq!(log.count("/ms"), 2);
}

// RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10, §4.2.4: must-revalidate, proxy-revalidate and
// s-maxage forbid serving the response stale, even to a client that accepts it.
#[tokio::test]
async fn revalidate_directives_forbid_stale_even_with_max_stale() {
    let (origin, log) = origin(|a| {
        let cc = match a.target.as_str() {
            "/must" => "max-age=1, must-revalidate",
            "/proxy" => "max-age=1, proxy-revalidate",
            _ => "s-maxage=1",
        };
        res(
            200,
            &[("cache-control", cc), ("age", "5")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    for target in ["/must", "/proxy", "/smaxage"] {
        get(server.addr(), target, "").await;
        let second = get(server.addr(), target, "Cache-Control: max-stale\r\n").await;
        second.assert_not_hit();
        assert_eq!(second.text(), "2", "{target}");
        assert_eq!(log.count(target), 2, "{target}");
    }
}

// RFC 9111 §5.2.2.2: with must-revalidate, a cache that cannot reach the origin MUST answer
// with an error, never the stale response — even with stale-if-error and a configured grace,
// which do serve a response without must-revalidate.
#[tokio::test]
async fn must_revalidate_answers_an_error_when_the_origin_is_unreachable() {
    let (mut origin, _log) = origin(|a| {
        let cc = if a.target == "/must" {
            "max-age=1, must-revalidate, stale-if-error=3600"
        } else {
            "max-age=1, stale-if-error=3600"
        };
        res(200, &[("cache-control", cc), ("age", "5")], "stored")
    })
    .await;
    let server = Server::start(WorkDir::new(), &config(origin.addr, "grace = \"1h\""));
    get(server.addr(), "/must", "").await;
    get(server.addr(), "/lenient", "").await;
    origin.stop().await;
    let lenient = get(server.addr(), "/lenient", "").await;
    lenient.assert_status(200);
    assert_eq!(lenient.text(), "stored");
    let must = get(server.addr(), "/must", "").await;
    assert!(
        must.status == 502 || must.status == 504,
        "an error, not the stale response:\n{must}"
    );
    assert_ne!(must.text(), "stored");
}

// -------------------------------------------------------------------- §4.3 validation

// RFC 9111 §4.3.1: the validation request MUST carry the stored entity tag (If-None-Match)
// and SHOULD carry its Last-Modified (If-Modified-Since).
#[tokio::test]
async fn validation_sends_the_stored_etag_and_last_modified() {
    let lm = date_in(-86_400);
    let (origin, log) = origin(move |a| {
        if a.n == 1 {
            res(
                200,
                &[
                    ("cache-control", "max-age=1"),
                    ("age", "5"),
                    ("etag", "\"e1\""),
                    ("last-modified", &lm),
                ],
                "first",
            )
        } else {
            res(
                304,
                &[("cache-control", "max-age=60"), ("etag", "\"e1\"")],
                "",
            )
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/val", "").await;
    let second = get(server.addr(), "/val", "").await;
    second.assert_status(200);
    assert_eq!(second.text(), "first");
    let asked = log.last("/val");
    assert_eq!(asked.header("if-none-match"), "\"e1\"");
    assert!(!asked.header("if-modified-since").is_empty());
}

// RFC 9111 §3.2 and §4.3.4: a 304 updates the stored fields (replacing those present) except
// Content-Length; the stored body and the fields the 304 lacks are kept. The age is counted
// from the 304 on (§4.2.3): the stored response's old Age no longer applies.
#[tokio::test]
async fn a_304_updates_stored_fields_but_not_content_length() {
    let (origin, log) = origin(|a| {
        if a.n == 1 {
            res(
                200,
                &[
                    ("cache-control", "max-age=60"),
                    ("age", "100"),
                    ("etag", "\"e1\""),
                    ("x-version", "1"),
                    ("x-kept", "yes"),
                ],
                "0123456789",
            )
        } else {
            res(
                304,
                &[
                    ("cache-control", "max-age=60"),
                    ("etag", "\"e1\""),
                    ("x-version", "2"),
                ],
                "",
            )
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/u", "").await;
    let validated = get(server.addr(), "/u", "").await;
    let hit = get(server.addr(), "/u", "").await;
    for res in [&validated, &hit] {
        res.assert_status(200);
        assert_eq!(res.text(), "0123456789");
        assert_eq!(res.header("content-length"), Some("10"));
        assert_eq!(res.header("x-version"), Some("2"));
        assert_eq!(res.header("x-kept"), Some("yes"));
        assert_eq!(res.header("cache-control"), Some("max-age=60"));
    }
    hit.assert_hit();
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!(age < 60, "Age {age}");
    assert_eq!(log.count("/u"), 2);
}

// RFC 9111 §4.3.4: a 304 whose strong validator matches no stored response MUST NOT update
// it; the client, which did not ask conditionally, gets a full response (RFC 9110 §15.4.5).
#[tokio::test]
async fn a_304_for_another_etag_updates_nothing_and_the_client_gets_a_full_response() {
    let (origin, log) = origin(|a| {
        if !a.header("if-none-match").is_empty() {
            res(304, &[("etag", "\"other\""), ("x-version", "304")], "")
        } else {
            res(
                200,
                &[
                    ("cache-control", "max-age=1"),
                    ("age", "5"),
                    ("etag", format!("\"e{}\"", a.n).as_str()),
                ],
                format!("full {}", a.n),
            )
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/o", "").await;
    let second = get(server.addr(), "/o", "").await;
    second.assert_status(200);
    assert_eq!(second.header("x-version"), None);
    assert!(second.text().starts_with("full "), "{second}");
    assert!(log.count("/o") >= 2);
}

// RFC 9111 §4.3.3: a full response to a validation request is used to answer the request
// (and, being storable, replaces the stored one: §4 then uses the most recent).
#[tokio::test]
async fn a_full_response_to_validation_answers_and_replaces_the_stored_one() {
    let (origin, log) = origin(|a| {
        let cc = if a.n == 1 { "max-age=1" } else { "max-age=60" };
        res(
            200,
            &[
                ("cache-control", cc),
                ("age", "5"),
                ("etag", format!("\"e{}\"", a.n).as_str()),
            ],
            format!("version {}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/full", "").await;
    let second = get(server.addr(), "/full", "").await;
    assert_eq!(second.text(), "version 2");
    assert_eq!(log.last("/full").header("if-none-match"), "\"e1\"");
    // Age: 5 on a max-age=60: still fresh.
    let third = get(server.addr(), "/full", "").await;
    third.assert_hit();
    assert_eq!(third.text(), "version 2");
    assert_eq!(log.count("/full"), 2);
}

// RFC 9110 §13.2.1 (a cache MUST evaluate the preconditions it receives) and RFC 9111 §4.3.2:
// a fresh stored response answers If-None-Match and If-Modified-Since with a 304.
#[tokio::test]
async fn a_fresh_stored_response_answers_conditional_requests() {
    let lm = date_in(-86_400);
    let (origin, log) = origin(move |a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("etag", "W/\"e1\""),
                ("last-modified", &lm),
            ],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/c", "").await;
    let matching = get(server.addr(), "/c", "If-None-Match: \"x\", \"e1\"\r\n").await;
    matching.assert_status(304);
    assert_eq!(matching.header("etag"), Some("W/\"e1\""));
    assert!(matching.body.is_empty());
    let other = get(server.addr(), "/c", "If-None-Match: \"e2\"\r\n").await;
    other.assert_status(200);
    assert_eq!(other.text(), "1");
    let since = format!("If-Modified-Since: {}\r\n", date_in(0));
    get(server.addr(), "/c", &since).await.assert_status(304);
    let before = format!("If-Modified-Since: {}\r\n", date_in(-10 * 86_400));
    get(server.addr(), "/c", &before).await.assert_status(200);
    assert_eq!(log.count("/c"), 1);
}

// RFC 9111 §5.2.2.4: a response with no-cache MUST NOT be reused without successful
// validation; after a 304 the stored response is served (not the 304).
#[tokio::test]
async fn no_cache_responses_are_validated_before_every_reuse() {
    let (origin, log) = origin(|a| {
        if a.header("if-none-match") == "\"e1\"" {
            res(
                304,
                &[("cache-control", "no-cache"), ("etag", "\"e1\"")],
                "",
            )
        } else {
            res(
                200,
                &[("cache-control", "no-cache"), ("etag", "\"e1\"")],
                format!("body {}", a.n),
            )
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/nc", "").await;
    for _ in 0..2 {
        let again = get(server.addr(), "/nc", "").await;
        again.assert_status(200);
        assert_eq!(again.text(), "body 1");
    }
    assert_eq!(log.count("/nc"), 3);
    assert_eq!(log.last("/nc").header("if-none-match"), "\"e1\"");
}

// RFC 9111 §5.2.2.4: with no-cache="field", the response may be reused, but the named field
// MUST NOT be sent without successful revalidation.
#[tokio::test]
async fn no_cache_with_a_field_name_reuses_the_rest_without_that_field() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60, no-cache=\"x-secret\""),
                ("x-secret", "s"),
                ("x-public", "p"),
            ],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    assert_eq!(
        get(server.addr(), "/nf", "").await.header("x-secret"),
        Some("s")
    );
    let hit = get(server.addr(), "/nf", "").await;
    hit.assert_hit();
    assert_eq!(hit.header("x-secret"), None, "{hit}");
    assert_eq!(hit.header("x-public"), Some("p"));
    assert_eq!(log.count("/nf"), 1);
}

// RFC 9111 §5.2.2.7: with private="field", a shared cache MUST NOT store that field and may
// store the rest.
#[tokio::test]
async fn private_with_a_field_name_stores_the_rest_without_that_field() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60, private=\"set-cookie\""),
                ("set-cookie", "session=1"),
                ("x-public", "p"),
            ],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/pf", "").await;
    let hit = get(server.addr(), "/pf", "").await;
    hit.assert_hit();
    assert_eq!(hit.header("set-cookie"), None, "{hit}");
    assert_eq!(hit.header("x-public"), Some("p"));
    assert_eq!(log.count("/pf"), 1);
}

// RFC 9111 §5.2 (a proxy MUST pass cache directives through) and §5.2.3 (a cache MUST ignore
// unrecognized directives, which never lift the known ones).
#[tokio::test]
async fn unknown_directives_are_ignored_and_passed_through() {
    let (origin, log) = origin(|a| {
        let cc = if a.target == "/ext" {
            "max-age=60, community=\"UCI\", x-ext=\"a,b\""
        } else {
            "private, community=\"UCI\""
        };
        res(200, &[("cache-control", cc)], format!("{}", a.n))
    })
    .await;
    let server = start(&origin);
    let first = get(
        server.addr(),
        "/ext",
        "Cache-Control: max-stale=5, x-req-ext\r\n",
    )
    .await;
    assert_eq!(
        log.last("/ext").header("cache-control"),
        "max-stale=5, x-req-ext"
    );
    let hit = get(server.addr(), "/ext", "").await;
    hit.assert_hit();
    for res in [&first, &hit] {
        assert_eq!(
            res.header("cache-control"),
            Some("max-age=60, community=\"UCI\", x-ext=\"a,b\"")
        );
    }
    get(server.addr(), "/priv", "").await;
    get(server.addr(), "/priv", "").await.assert_not_hit();
    assert_eq!(log.count("/priv"), 2);
}

// RFC 9111 §5.2.2.6 and RFC 9110 §7.7: the content of a no-transform response is never
// transformed (no compression on its way through).
#[tokio::test]
async fn no_transform_content_is_passed_unchanged() {
    let text = "plain text that compresses well ".repeat(100);
    let body = text.clone();
    let (origin, _log) = origin(move |_| {
        res(
            200,
            &[
                ("cache-control", "max-age=60, no-transform"),
                ("content-type", "text/plain"),
            ],
            body.clone(),
        )
    })
    .await;
    let server = start(&origin);
    for _ in 0..2 {
        let res = get(server.addr(), "/nt", "Accept-Encoding: gzip, br\r\n").await;
        assert_eq!(res.header("content-encoding"), None);
        assert_eq!(res.text(), text);
    }
}

// ------------------------------------------------------------ §5.2.1 request directives

// RFC 9111 §5.2.1.1: the client does not take a response older than its max-age; max-age=0
// forces validation of a fresh stored response, answered with the stored body after a 304.
#[tokio::test]
async fn request_max_age_limits_the_age_accepted() {
    let (origin, log) = origin(|a| {
        if a.header("if-none-match") == "\"e1\"" {
            res(
                304,
                &[("cache-control", "max-age=600"), ("etag", "\"e1\"")],
                "",
            )
        } else {
            res(
                200,
                &[
                    ("cache-control", "max-age=600"),
                    ("age", "30"),
                    ("etag", "\"e1\""),
                ],
                format!("body {}", a.n),
            )
        }
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/ma", "").await;
    get(server.addr(), "/ma", "Cache-Control: max-age=100\r\n")
        .await
        .assert_hit();
    assert_eq!(log.count("/ma"), 1);
    let younger = get(server.addr(), "/ma", "Cache-Control: max-age=10\r\n").await;
    younger.assert_status(200);
    assert_eq!(younger.text(), "body 1");
    assert_eq!(log.count("/ma"), 2);
    let zero = get(server.addr(), "/ma", "Cache-Control: max-age=0\r\n").await;
    zero.assert_status(200);
    assert_eq!(zero.text(), "body 1");
    assert_eq!(log.count("/ma"), 3);
    assert_eq!(log.last("/ma").header("if-none-match"), "\"e1\"");
}

// RFC 9111 §5.2.1.3: min-fresh asks for a response fresh for at least that much longer.
#[tokio::test]
async fn request_min_fresh_asks_for_remaining_freshness() {
    let (origin, log) =
        origin(|a| res(200, &[("cache-control", "max-age=60")], format!("{}", a.n))).await;
    let server = start(&origin);
    get(server.addr(), "/mf", "").await;
    get(server.addr(), "/mf", "Cache-Control: min-fresh=10\r\n")
        .await
        .assert_hit();
    let more = get(server.addr(), "/mf", "Cache-Control: min-fresh=120\r\n").await;
    more.assert_not_hit();
    assert_eq!(log.count("/mf"), 2);
}

// RFC 9111 §5.2.1.4: request no-cache validates before reuse; §5.4: Pragma: no-cache counts
// only when the request has no Cache-Control.
#[tokio::test]
async fn request_no_cache_and_pragma_validate_before_reuse() {
    let (origin, log) =
        origin(|a| res(200, &[("cache-control", "max-age=60")], format!("{}", a.n))).await;
    let server = start(&origin);
    get(server.addr(), "/rn", "").await;
    get(server.addr(), "/rn", "Cache-Control: no-cache\r\n")
        .await
        .assert_not_hit();
    assert_eq!(log.count("/rn"), 2);
    get(server.addr(), "/rn", "Pragma: no-cache\r\n")
        .await
        .assert_not_hit();
    assert_eq!(log.count("/rn"), 3);
    let with_cc = get(
        server.addr(),
        "/rn",
        "Pragma: no-cache\r\nCache-Control: max-stale\r\n",
    )
    .await;
    with_cc.assert_hit();
    assert_eq!(log.count("/rn"), 3);
}

// RFC 9111 §5.2.1.7: only-if-cached with only a stale stored response: the cache answers
// without contacting the origin (504), not with a validation.
#[tokio::test]
async fn only_if_cached_does_not_contact_the_origin_for_a_stale_response() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[("cache-control", "max-age=1"), ("age", "5")],
            format!("{}", a.n),
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/oic", "").await;
    let only = get(server.addr(), "/oic", "Cache-Control: only-if-cached\r\n").await;
    only.assert_status(504);
    assert_eq!(log.count("/oic"), 1);
    let accepting = get(
        server.addr(),
        "/oic",
        "Cache-Control: only-if-cached, max-stale\r\n",
    )
    .await;
    accepting.assert_status(200);
    assert_eq!(accepting.text(), "1");
    assert_eq!(log.count("/oic"), 1);
}

// ------------------------------------------------------------------ §4.4 invalidation

// RFC 9111 §4.4: a non-error response to an unsafe method (PUT, DELETE, one of unknown
// safety) invalidates the target URI; an error response does not.
#[tokio::test]
async fn unsafe_methods_invalidate_the_target_uri_only_on_success() {
    let (origin, log) = origin(|a| {
        if a.method != "GET" {
            let status = if a.target == "/kept" { 500 } else { 200 };
            return res(status, &[], "done");
        }
        res(200, &[("cache-control", "max-age=60")], format!("{}", a.n))
    })
    .await;
    let server = start(&origin);
    for (method, target) in [("PUT", "/put"), ("DELETE", "/delete"), ("FROB", "/frob")] {
        get(server.addr(), target, "").await;
        get(server.addr(), target, "").await.assert_hit();
        send(&server, method, target, "").await.assert_status(200);
        get(server.addr(), target, "").await.assert_not_hit();
    }
    get(server.addr(), "/kept", "").await;
    send(&server, "POST", "/kept", "").await.assert_status(500);
    get(server.addr(), "/kept", "").await.assert_hit();
    assert_eq!(log.count("/kept"), 2);
}

// RFC 9111 §4.4: Location and Content-Location may be invalidated, but only when they share
// the target's origin (MUST NOT otherwise).
#[tokio::test]
async fn location_and_content_location_are_invalidated_only_on_the_same_origin() {
    let (origin, _log) = origin(|a| {
        if a.method == "POST" {
            return res(
                201,
                &[
                    ("location", "/created"),
                    ("content-location", "http://c.test/described"),
                ],
                "",
            );
        }
        if a.method == "PUT" {
            return res(
                200,
                &[
                    ("location", "http://elsewhere.test/foreign"),
                    ("content-location", "http://elsewhere.test/foreign2"),
                ],
                "",
            );
        }
        res(200, &[("cache-control", "max-age=60")], format!("{}", a.n))
    })
    .await;
    let server = start(&origin);
    let elsewhere = |target: &str| {
        exchange(
            server.addr(),
            format!("GET {target} HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n"),
        )
    };
    for target in ["/created", "/described"] {
        get(server.addr(), target, "").await;
    }
    for target in ["/foreign", "/foreign2"] {
        elsewhere(target).await;
        (elsewhere(target).await).assert_hit();
    }
    send(&server, "POST", "/list", "").await.assert_status(201);
    get(server.addr(), "/created", "").await.assert_not_hit();
    get(server.addr(), "/described", "").await.assert_not_hit();
    // A PUT on c.test names URLs of elsewhere.test: another origin, not to be touched.
    send(&server, "PUT", "/item", "").await.assert_status(200);
    (elsewhere("/foreign").await).assert_hit();
    (elsewhere("/foreign2").await).assert_hit();
}

// RFC 9111 §4 (the stored GET answers HEAD), §4.4 (HEAD is safe: it invalidates nothing) and
// §4.3.5: a HEAD that reaches the origin never replaces the stored GET's body.
#[tokio::test]
async fn a_head_never_replaces_or_invalidates_the_stored_get() {
    let (origin, log) = origin(|a| {
        res(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("etag", format!("\"e{}\"", a.n).as_str()),
            ],
            "0123456789",
        )
    })
    .await;
    let server = start(&origin);
    get(server.addr(), "/h", "").await;
    let answered = head(&server, "/h", "").await;
    answered.assert_hit();
    assert_eq!(answered.header("content-length"), Some("10"));
    // A HEAD that must go to the origin (no-cache), which answers 200 with a new ETag.
    let forwarded = head(&server, "/h", "Cache-Control: no-cache\r\n").await;
    forwarded.assert_status(200);
    assert_eq!(log.last("/h").method, "HEAD");
    let after = get(server.addr(), "/h", "").await;
    after.assert_status(200);
    assert_eq!(after.text(), "0123456789", "{after}");
    assert_eq!(after.header("content-length"), Some("10"));
}
