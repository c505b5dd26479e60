//! The express lane: plain keep-alive GETs of files held in the open-file cache, answered
//! straight from the gate's buffer with one `writev`, below hyper.
//!
//! Why it exists (measured, BENCHMARKS.md): a cached 1 KiB file cost about 11,900 user-space
//! instructions per request through hyper and the pipeline, and the kernel is most of the rest;
//! nginx answers the same with one `recv` and one `writev`. The gate has already parsed each
//! head (`check_head_with` hands the parsed fields over, so a head is parsed once), the cache
//! entry holds its response head pre-encoded (`files::cache::Entry::plain_head`), and the only
//! per-request work left is routing, a cache lookup, the `Date` line and the write.
//!
//! What is "plain" is deliberately narrow, so that the lane never answers differently from
//! hyper and the pipeline: `GET`, HTTP/1.1, origin-form target of conservative characters, no
//! body, only fields from [`FIELDS`] (none of which changes a static file's response except
//! `Accept-Encoding`, which is negotiated exactly as the pipeline does), `Connection:
//! keep-alive` or none, a `static` route that allows GET on a site not in maintenance, a free
//! in-flight slot, no drain, and a cache entry sent as it is (from memory, or with `sendfile`
//! for large ones, as the main lane does). Everything else,
//! including every miss, goes to hyper unchanged: the head stays in the gate's buffer and hyper
//! reads it through the gate's usual checks. Integration tests compare both lanes byte for byte
//! (`tests/it/express.rs`).
//!
//! Switching lanes: a connection starts here. The first head that is not plain starts a hyper
//! connection (`conn::serve_h1_burst`); while hyper runs, the gate asks [`probe`] about each
//! complete head that arrives while hyper is idle with every byte flushed, and a yes ends hyper
//! (the gate reports end of input, hyper stops cleanly) so that the head comes back here. A
//! connection idle for two watchdog ticks goes to the parking lot from either lane.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::Arc;

use http::Method;
use tokio::io::AsyncWriteExt;

use super::conn::{ConnCtx, Io, watchdog_tick};
use super::express_proxy;
use super::gate::{self, Framing, HeadClock, Pending, Probe};
use super::pipeline::static_path;
use super::router::host_name;
use super::settings::Handler;
use crate::files::{self, cache::Entry};
use crate::http::date;
use crate::net::sendfile::Hint;
use crate::telemetry::access_log::Record;

/// How the express lane left a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A complete head it does not answer is at the front of the buffer: hyper's turn.
    Hyper,
    /// Nothing to answer: the connection is idle, input ended, a head was rejected, or the
    /// server drains. The driver decides from the gate and the server's state.
    Stop,
    /// The connection failed or timed out and is to be dropped.
    Closed,
}

/// Most fields a plain request may have (the proxy lane parses its head again into an array
/// of this size).
pub const MAX_FIELDS: usize = 64;

/// Request fields that may appear in a plain request (lower-case). None of them changes the
/// response of a static file, except `accept-encoding`, which selects the cache entry.
pub const FIELDS: &[&str] = &[
    "host",
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "connection",
    "referer",
    "cache-control",
    "pragma",
    "dnt",
    "priority",
    "upgrade-insecure-requests",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
];

/// A plain request head: where its parts are, as byte ranges of the gate's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plain {
    target: Range<usize>,
    host: Range<usize>,
    accept_encoding: Option<Range<usize>>,
    user_agent: Option<Range<usize>>,
    referer: Option<Range<usize>>,
}

impl Plain {
    /// The plain request in a parsed head whose bytes start at address `base`, if it is one.
    fn of(req: &httparse::Request<'_, '_>, framing: Framing, base: usize) -> Option<Plain> {
        if req.method != Some("GET")
            || req.version != Some(1)
            || framing != Framing::Length(0)
            || req.headers.len() > MAX_FIELDS
        {
            return None;
        }
        let target = req.path?;
        if !is_plain_target(target.as_bytes()) {
            return None;
        }
        let at = |bytes: &[u8]| {
            let start = bytes.as_ptr() as usize - base;
            start..start + bytes.len()
        };
        let mut host = None;
        let mut accept_encoding = None;
        let mut user_agent = None;
        let mut referer = None;
        for field in req.headers.iter() {
            let name = field.name;
            if name.eq_ignore_ascii_case("host") {
                // As `HeaderValue::to_str` takes it: visible ASCII only (else the pipeline
                // would route as if there were no host).
                if !field.value.iter().all(|b| (0x21..0x7f).contains(b)) {
                    return None;
                }
                host = Some(at(field.value));
            } else if name.eq_ignore_ascii_case("accept-encoding") {
                if accept_encoding.is_some() || !is_visible(field.value) {
                    return None;
                }
                accept_encoding = Some(at(field.value));
            } else if name.eq_ignore_ascii_case("user-agent") {
                user_agent = Some(at(field.value));
            } else if name.eq_ignore_ascii_case("referer") {
                referer = Some(at(field.value));
            } else if name.eq_ignore_ascii_case("connection") {
                if !field.value.trim_ascii().eq_ignore_ascii_case(b"keep-alive") {
                    return None;
                }
            } else if !FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                return None;
            }
        }
        Some(Plain {
            target: at(target.as_bytes()),
            host: host?,
            accept_encoding,
            user_agent,
            referer,
        })
    }
}

/// An origin-form target of unreserved, sub-delimiter and `:@/%?` characters: parsed alike by
/// every layer (no fragment, no quotes, no spaces, nothing above ASCII).
fn is_plain_target(target: &[u8]) -> bool {
    target.first() == Some(&b'/')
        && target.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'/'
                        | b'%'
                        | b'?'
                )
        })
}

/// Visible ASCII, space and tab: what `HeaderValue::to_str` accepts.
fn is_visible(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// What answers a plain request in the express lane.
enum Answer<'a> {
    /// A file from the open-file cache.
    File(Arc<Entry>),
    /// A `proxy` route whose upstream the lane can reach (`edge::express_proxy`).
    Proxy(express_proxy::Target<'a>),
    /// A fresh response in the shared cache of a `proxy` route with `cache = true`.
    Cached(Arc<crate::cache::memory::Object>),
}

/// What answers a plain request, if the express lane may answer it.
fn lookup<'a>(ctx: &'a ConnCtx, head: &[u8], plain: &Plain) -> Option<Answer<'a>> {
    let text = |range: &Range<usize>| std::str::from_utf8(&head[range.clone()]).ok();
    let site = ctx
        .shared
        .router
        .site_for(ctx.listener, || text(&plain.host).and_then(host_name))?;
    if site.maintenance || site.redirect_to.is_some() {
        return None;
    }
    let target = text(&plain.target)?;
    let path = memchr::memchr(b'?', target.as_bytes()).map_or(target, |at| &target[..at]);
    let route = site.route(path)?;
    if !route.allow.contains(&Method::GET) {
        return None;
    }
    match &route.route.handler {
        Handler::Static(settings) => {
            let path = static_path(route, settings, path);
            let accept_encoding = plain.accept_encoding.as_ref().and_then(text);
            files::serve::plain_entry(&path, settings, accept_encoding.into_iter())
                .map(Answer::File)
        }
        Handler::Proxy(settings) if !ctx.tls && settings.cache => {
            // Only a memory hit is answered here; anything else (a miss, a stale response, what
            // only the disk tier holds) goes to hyper's path untouched, which reads the disk
            // off the runtime, fetches, validates and stores.
            let cache = ctx.shared.cache.as_ref()?;
            let headers = head_fields(head)?;
            let key = crate::cache::key::primary("http", text(&plain.host)?, target);
            match cache.lookup_memory(&key, &headers, std::time::SystemTime::now()) {
                crate::cache::store::Lookup::Hit(object) => Some(Answer::Cached(object)),
                _ => None,
            }
        }
        Handler::Proxy(settings) if !ctx.tls && !settings.cache => {
            let backend = ctx.shared.backends.get(settings.upstream)?;
            backend.express.as_ref()?;
            Some(Answer::Proxy(express_proxy::Target {
                route,
                settings,
                backend,
            }))
        }
        _ => None,
    }
}

/// The gate's probe while hyper runs: true for a head the express lane would answer now.
pub fn probe(ctx: Arc<ConnCtx>) -> Probe {
    Box::new(move |head: &[u8]| {
        if !ctx.state.is_idle() || ctx.state.must_close() || ctx.shared.drain.is_cancelled() {
            return false;
        }
        let base = head.as_ptr() as usize;
        let limits = gate::HeadLimits {
            max_head_bytes: usize::MAX,
            max_headers: ctx.shared.limits.max_headers,
            max_uri_bytes: usize::MAX,
        };
        let (_, plain) =
            gate::check_head_with(head, limits, |req, framing| Plain::of(req, framing, base));
        plain
            .flatten()
            .is_some_and(|plain| lookup(&ctx, head, &plain).is_some())
    })
}

/// Answers plain requests on the connection until one needs hyper, the connection idles for
/// two watchdog ticks, or it ends.
pub async fn serve(gate: &mut Io, ctx: &ConnCtx, clock: &HeadClock) -> Lane {
    let limits = &ctx.shared.limits;
    let tick = watchdog_tick(limits);
    // One timer for the whole run, not one per request. A drain is noticed by the check before
    // each answer and, on an idle connection, at the next tick: waiting on the drain event as
    // well cost more per request than the rest of the loop (BENCHMARKS.md).
    let watchdog = tokio::time::sleep(tick);
    tokio::pin!(watchdog);
    let mut answered: u64 = 0;
    let mut answered_at_last_tick = None;
    loop {
        let base = gate.buffered().as_ptr() as usize;
        match gate.pending_head(|req, framing| Plain::of(req, framing, base)) {
            Pending::Complete {
                len,
                seen: Some(plain),
                ..
            } => {
                // Draining: hyper's path answers with `Connection: close`. At the in-flight
                // limit: hyper's path answers 503. The lane itself takes no in-flight slot: its
                // answer is written at once from memory, and a client slow to read it is bound
                // by `send_timeout` and `max_connections` like any connection.
                if ctx.shared.drain.is_cancelled() || ctx.shared.in_flight.available_permits() == 0
                {
                    return Lane::Hyper;
                }
                let entry = match lookup(ctx, gate.buffered(), &plain) {
                    Some(Answer::File(entry)) => entry,
                    Some(Answer::Proxy(target)) => {
                        match proxy(gate, ctx, &plain, len, target).await {
                            Some(lane) => return lane,
                            None => {
                                answered += 1;
                                continue;
                            }
                        }
                    }
                    Some(Answer::Cached(object)) => {
                        let record = ctx
                            .shared
                            .access_log
                            .as_ref()
                            .map(|_| record(ctx, gate.buffered(), &plain));
                        gate.consume(len);
                        let bytes = object.body.len() as u64;
                        let status = object.status.as_u16();
                        if let Err(e) = send_cached(gate, &object).await {
                            tracing::debug!(peer = %ctx.peer, error = %e, "cached response not sent");
                            return Lane::Closed;
                        }
                        if let Some(counters) = &ctx.shared.counters {
                            counters.add(crate::telemetry::counters::Counter::CacheHit, 1);
                        }
                        answered_with(ctx, record, status, bytes);
                        answered += 1;
                        continue;
                    }
                    None => return Lane::Hyper,
                };
                let record = ctx
                    .shared
                    .access_log
                    .as_ref()
                    .map(|_| record(ctx, gate.buffered(), &plain));
                gate.consume(len);
                if let Err(e) = send(gate, &entry, &ctx.sendfile).await {
                    tracing::debug!(peer = %ctx.peer, error = %e, "express response not sent");
                    return Lane::Closed;
                }
                answered_with(ctx, record, 200, entry.content.len() as u64);
                tracing::trace!(peer = %ctx.peer, "express lane answered");
                answered += 1;
                continue;
            }
            Pending::Complete { .. } => return Lane::Hyper,
            Pending::Rejected => return Lane::Stop,
            Pending::Incomplete => {}
        }
        if gate.is_eof() {
            return Lane::Stop;
        }
        tokio::select! {
            biased;
            read = gate.fill() => match read {
                Ok(0) => return Lane::Stop,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(peer = %ctx.peer, error = %e, "read failed");
                    return Lane::Closed;
                }
            },
            _ = &mut watchdog => {
                if clock.pending_for().is_some_and(|t| t >= limits.header_read_timeout) {
                    tracing::debug!(peer = %ctx.peer, "request head not received within client_header_timeout");
                    return Lane::Closed;
                }
                if gate.buffered().is_empty() && answered_at_last_tick == Some(answered) {
                    return Lane::Stop;
                }
                if ctx.shared.closing_idle() && gate.buffered().is_empty() {
                    return Lane::Stop;
                }
                answered_at_last_tick = Some(answered);
                watchdog.as_mut().reset(tokio::time::Instant::now() + tick);
            }
        }
    }
}

/// Forwards a plain GET through the express lane's proxy; `None` when the connection goes
/// on in the lane, else how it left it.
async fn proxy(
    gate: &mut Io,
    ctx: &ConnCtx,
    plain: &Plain,
    len: usize,
    target: express_proxy::Target<'_>,
) -> Option<Lane> {
    // Unlike a file from memory, a forward waits on the member: it holds an in-flight slot.
    let Ok(permit) = ctx.shared.in_flight.clone().try_acquire_owned() else {
        return Some(Lane::Hyper);
    };
    if let Some(counters) = &ctx.shared.counters {
        counters.add(crate::telemetry::counters::Counter::InFlight, 1);
    }
    let head = gate.buffered();
    let record = ctx
        .shared
        .access_log
        .as_ref()
        .map(|_| record(ctx, head, plain));
    let text = |range: &Range<usize>| String::from_utf8_lossy(&head[range.clone()]).into_owned();
    let (target_text, host) = (text(&plain.target), text(&plain.host));
    let head = head[..len].to_vec();
    gate.consume(len);
    let sent = express_proxy::exchange(gate, ctx, &head, &target_text, &host, target).await;
    drop(permit);
    if let Some(counters) = &ctx.shared.counters {
        counters.sub(crate::telemetry::counters::Counter::InFlight, 1);
    }
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, error = %e, "express proxy response not sent");
            return Some(Lane::Closed);
        }
    };
    answered_with(ctx, record, sent.status, sent.body_bytes);
    sent.close.then_some(Lane::Closed)
}

/// After an answer of the lane: its access log line (begun before the head was consumed) and
/// the response counters, as the pipeline's `log` phase does on hyper's path.
fn answered_with(ctx: &ConnCtx, record: Option<Record>, status: u16, body_bytes: u64) {
    if let (Some(mut record), Some(writer)) = (record, ctx.shared.access_log.as_ref()) {
        record.status = status;
        record.bytes = body_bytes;
        record.tcp = crate::net::tcp_info::sample(ctx.fd);
        writer.write(&record);
    }
    if let Some(counters) = &ctx.shared.counters {
        counters.response(status, body_bytes);
    }
}

/// The request fields of a plain head, for the cache's `Vary` and directive checks.
fn head_fields(head: &[u8]) -> Option<http::HeaderMap> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    req.parse(head).ok()?;
    let mut map = http::HeaderMap::with_capacity(req.headers.len());
    for field in req.headers.iter() {
        let name = http::header::HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = http::HeaderValue::from_bytes(field.value).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// Writes a cached response as `cache::handler` serves it on hyper's path: the stored fields,
/// `Age`, `Cache-Status`, `Server` and `Content-Type` when absent, `Date` when absent.
async fn send_cached(gate: &mut Io, object: &crate::cache::memory::Object) -> io::Result<()> {
    let now = std::time::SystemTime::now();
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(object.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(object.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &object.headers {
        if name == http::header::AGE || name.as_str() == "cache-status" {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"age: ");
    head.extend_from_slice(crate::cache::store::age(object, now).as_bytes());
    head.extend_from_slice(b"\r\ncache-status: ");
    let status = crate::cache::status::CacheStatus::Hit {
        ttl: crate::cache::store::ttl(object, now),
        collapsed: false,
    };
    head.extend_from_slice(status.header_value().as_bytes());
    head.extend_from_slice(b"\r\n");
    if !object.headers.contains_key(http::header::SERVER) {
        head.extend_from_slice(b"server: portico\r\n");
    }
    if !object.body.is_empty() && !object.headers.contains_key(http::header::CONTENT_TYPE) {
        head.extend_from_slice(b"content-type: application/octet-stream\r\n");
    }
    // RFC 9110 §8.6: never in a 204.
    if object.status != http::StatusCode::NO_CONTENT
        && !object.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        head.extend_from_slice(format!("content-length: {}\r\n", object.body.len()).as_bytes());
    }
    let date = date::date_line();
    let end: &[u8] = if object.headers.contains_key(http::header::DATE) {
        b"\r\n"
    } else {
        &date
    };
    write_all(
        gate,
        &mut [
            IoSlice::new(&head),
            IoSlice::new(end),
            IoSlice::new(&object.body),
        ],
    )
    .await
}

/// The access log record of a plain request.
fn record(ctx: &ConnCtx, head: &[u8], plain: &Plain) -> Record {
    let field = |range: &Option<Range<usize>>| range.as_ref().map_or(&[][..], |r| &head[r.clone()]);
    Record::from_head(
        ctx.peer,
        "GET",
        &head[plain.target.clone()],
        http::Version::HTTP_11,
        &head[plain.host.clone()],
        field(&plain.referer),
        field(&plain.user_agent),
    )
}

/// Writes the entry's response: its head, the date line and its bytes, in one `writev` when
/// the socket takes them (large entries: the head corked, then `sendfile`).
async fn send(gate: &mut Io, entry: &Entry, hint: &Hint) -> io::Result<()> {
    if let Some(file) = &entry.file
        && entry.content.len() as u64 >= files::cache::SENDFILE_MIN_BYTES
    {
        // As the main lane does: the socket sends these bytes from the file (`net/sendfile.rs`).
        hint.offer(&entry.content, file, 0);
    }
    let date = date::date_line();
    write_all(
        gate,
        &mut [
            IoSlice::new(entry.plain_head()),
            IoSlice::new(&date),
            IoSlice::new(&entry.content),
        ],
    )
    .await
}

/// Writes every byte of `parts` to the client, in as few system calls as the socket allows
/// (empty parts are skipped).
pub(super) async fn write_all(gate: &mut Io, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    let io = gate.get_mut();
    while !parts.is_empty() {
        let n = io.write_vectored(parts).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut parts, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(head: &str) -> Option<Plain> {
        let bytes = head.as_bytes();
        let base = bytes.as_ptr() as usize;
        let limits = gate::HeadLimits {
            max_head_bytes: 8192,
            max_headers: 100,
            max_uri_bytes: 8192,
        };
        gate::check_head_with(bytes, limits, |req, framing| Plain::of(req, framing, base))
            .1
            .flatten()
    }

    fn text<'a>(head: &'a str, range: &Range<usize>) -> &'a str {
        &head[range.clone()]
    }

    #[test]
    fn a_bare_get_is_plain_and_its_parts_are_found() {
        let head = "GET /a/b.txt?v=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: t/1\r\nAccept-Encoding: gzip, br\r\nReferer: /x\r\n\r\n";
        let p = plain(head).expect("plain");
        assert_eq!(text(head, &p.target), "/a/b.txt?v=1");
        assert_eq!(text(head, &p.host), "example.test:8080");
        assert_eq!(text(head, p.user_agent.as_ref().unwrap()), "t/1");
        assert_eq!(text(head, p.accept_encoding.as_ref().unwrap()), "gzip, br");
        assert_eq!(text(head, p.referer.as_ref().unwrap()), "/x");
    }

    #[test]
    fn a_browser_navigation_is_plain() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nsec-ch-ua: \"x\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nSec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nPriority: u=0, i\r\n\r\n";
        assert!(plain(head).is_some());
    }

    #[test]
    fn anything_that_can_change_the_answer_is_not_plain() {
        for head in [
            "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Tue, 01 Dec 2026 21:05:46 GMT\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(plain(head), None, "{head:?}");
        }
    }
}
