//! The express lane's reverse proxy: plain GETs (`edge::express`) on a `proxy` route whose
//! upstream takes them (`proxy::Backend::express`: HTTP/1.1 members at IP addresses, a
//! policy that does not read the request) are forwarded below hyper, with the lean exchange
//! of `proxy::h1`.
//!
//! It does what the hyper path (`proxy::forward`) does for such a request, field for field:
//! the same head to the member (hop-by-hop fields out, `X-Forwarded-*`, `Forwarded`, `Via`,
//! `Host` as configured, the prefix stripped), the same retries (a refused or timed-out
//! connect on another member; a broken or late answer too, GET being idempotent), the same
//! statuses (502, 503 with `Retry-After`, 504), passive health and leases, and the same
//! response fields (hop-by-hop out, `Via`, redirects to the member rewritten, `Server`,
//! `Date`, a `Content-Type` on bodies). The body is relayed as it comes: by length, chunked
//! as it is (the client speaks HTTP/1.1), or until the member closes (then the client's
//! connection closes too). Integration tests run the proxy suite through both lanes.

use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::conn::{ConnCtx, Io};
use super::express::{self, write_all};
use super::router::CompiledRoute;
use crate::http::framing::ChunkScanner;
use crate::http::{Body, date};
use crate::proxy::h1::{self, Framing};
use crate::proxy::headers::{Mapping, is_hop_by_hop, rewrite_refresh, rewrite_url};
use crate::proxy::{self, Backend, Error, HostHeader};

/// A proxy route the express lane may answer.
pub struct Target<'a> {
    pub route: &'a CompiledRoute,
    pub settings: &'a proxy::Settings,
    pub backend: &'a Arc<Backend>,
}

/// How the exchange left the client's connection.
pub struct Sent {
    pub status: u16,
    pub body_bytes: u64,
    /// The client's connection must close (a body delimited by the member's close, a failure
    /// after the head was sent, a drain).
    pub close: bool,
    /// The member's body broke off or paused too long after the head was sent.
    pub broken: bool,
}

/// Forwards the plain GET whose head is `head` (target `target_text`, host `host`) and writes
/// the answer to the client. `Err` when the client's socket failed.
pub async fn exchange(
    gate: &mut Io,
    ctx: &ConnCtx,
    head: &[u8],
    target_text: &str,
    host: &str,
    target: Target<'_>,
) -> io::Result<Sent> {
    let backend = target.backend;
    let Some(express) = &backend.express else {
        return Err(io::Error::other("not an express upstream"));
    };
    let prefix = super::pipeline::stripped_prefix(target.route, target.settings);
    let (member_target, mapping_prefix) = strip(target_text, prefix);
    let timeouts = &backend.settings.timeouts;
    let pool = &backend.pool;
    let parts = http::Request::new(()).into_parts().0;
    let subject = crate::lb::Subject {
        parts: &parts,
        client_ip: ctx.peer.ip(),
    };
    let mut tried = Vec::with_capacity(2);
    let mut failure = Error::NoMember;
    for _ in 0..=backend.settings.retries {
        let Some(index) = pool.choose(&subject, &tried) else {
            break;
        };
        tried.push(index);
        let lease = pool.lease(index);
        let member = &lease.member().settings.authority;
        let request = request_head(
            head,
            &member_target,
            host,
            ctx.peer.ip(),
            target.settings,
            member.as_str(),
        );
        let Some(request) = request else {
            failure = Error::BadTarget;
            break;
        };
        let mapping = Mapping {
            member,
            scheme: "http",
            host,
            prefix: &mapping_prefix,
        };
        let draining = ctx.shared.drain.is_cancelled();
        let asked = ask(express, index, &request, timeouts, &mapping, draining).await;
        match asked {
            Ok(answer) => {
                lease.succeeded();
                let sent = relay(gate, answer, express, index, timeouts.idle).await;
                if sent.as_ref().is_ok_and(|s| s.broken) {
                    lease.failed();
                }
                drop(lease);
                return sent;
            }
            Err(error) => {
                tracing::debug!(upstream = pool.name(), %member, %error, "attempt failed");
                if error.blames_member() {
                    lease.failed();
                }
                let retry = error.is_retryable(true);
                failure = error;
                if !retry {
                    break;
                }
            }
        }
    }
    let response = proxy::forward::error_response(&failure);
    write_response(gate, ctx, response).await
}

/// The member's target: the client's, without the route's prefix when it is stripped; and
/// the prefix (without its last `/`) that redirects get back.
fn strip(target: &str, prefix: Option<&str>) -> (String, String) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    proxy::forward::strip_prefix(path, query, prefix)
        .unwrap_or_else(|| (target.to_string(), String::new()))
}

/// The request head the member gets, from the client's plain head.
fn request_head(
    head: &[u8],
    target: &str,
    host: &str,
    client: IpAddr,
    settings: &proxy::Settings,
    member: &str,
) -> Option<Vec<u8>> {
    let mut fields = [httparse::EMPTY_HEADER; express::MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    req.parse(head).ok()?;
    let mut out = Vec::with_capacity(head.len() + 256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    match &settings.host {
        HostHeader::Pass => out.extend_from_slice(host.as_bytes()),
        HostHeader::Fixed(value) => out.extend_from_slice(value.as_bytes()),
        HostHeader::Upstream => out.extend_from_slice(member.as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
    for field in req.headers.iter() {
        if field.name.eq_ignore_ascii_case("host") || field.name.eq_ignore_ascii_case("connection")
        {
            continue;
        }
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    // As `proxy::headers::add_forwarded` writes them for a request that brings none (a plain
    // request has no forwarding fields, so trust does not matter).
    use std::io::Write as _;
    out.extend_from_slice(b"x-forwarded-for: ");
    let _ = write!(out, "{client}");
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\nx-forwarded-host: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nforwarded: for=");
    let _ = match client {
        IpAddr::V4(v4) => write!(out, "{v4}"),
        IpAddr::V6(v6) => write!(out, "\"[{v6}]\""),
    };
    out.extend_from_slice(b";proto=http");
    if !host.contains(['"', '\\']) {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\"");
    }
    out.extend_from_slice(b"\r\nvia: 1.1 portico\r\n\r\n");
    Some(out)
}

/// A member's response head, parsed, with its connection and the bytes read so far.
struct Answer {
    stream: TcpStream,
    buf: BytesMut,
    head: Head,
}

/// Sends `request` to member `index` (a kept connection first; if that turns out closed
/// before answering, a new one) and reads the response head.
async fn ask(
    express: &proxy::backend::Express,
    index: usize,
    request: &[u8],
    timeouts: &proxy::Timeouts,
    mapping: &Mapping<'_>,
    draining: bool,
) -> Result<Answer, Error> {
    let (addr, member) = (express.addrs[index], mapping.member);
    let mut kept = express.conns.checkout(index);
    loop {
        let reused = kept.is_some();
        let mut stream = match kept.take() {
            Some(stream) => stream,
            None => h1::connect(addr, timeouts.connect).await.map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    Error::ConnectTimeout {
                        member: member.clone(),
                    }
                } else {
                    Error::Connect {
                        member: member.clone(),
                        reason: e.to_string(),
                    }
                }
            })?,
        };
        if let Err(e) = stream.write_all(request).await {
            if reused {
                continue;
            }
            return Err(bad(member, &e.to_string()));
        }
        let mut buf = BytesMut::with_capacity(4096);
        let read = tokio::time::timeout(
            timeouts.first_byte,
            read_head(&mut stream, &mut buf, mapping, draining),
        )
        .await;
        match read {
            Err(_) => {
                return Err(Error::Timeout {
                    member: member.clone(),
                });
            }
            Ok(Ok(Some(head))) => return Ok(Answer { stream, buf, head }),
            // Closed before a byte: a kept connection the member had already given up.
            Ok(Ok(None)) if reused => continue,
            Ok(Ok(None)) => return Err(bad(member, "connection closed before a response")),
            Ok(Err(e)) => return Err(bad(member, &e)),
        }
    }
}

fn bad(member: &http::uri::Authority, reason: &str) -> Error {
    Error::BadResponse {
        member: member.clone(),
        reason: reason.to_string(),
    }
}

/// Reads until a final response head is complete: `None` when the member closed before
/// sending anything. Interim (1xx) responses are passed over; a `101` is an error (nothing
/// asked to switch).
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    mapping: &Mapping<'_>,
    draining: bool,
) -> Result<Option<Head>, String> {
    loop {
        if !buf.is_empty() {
            let mut fields = [httparse::EMPTY_HEADER; 96];
            let mut res = httparse::Response::new(&mut fields);
            match res.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = res.code.unwrap_or(0);
                    if status == 101 {
                        return Err("101 without an upgrade request".into());
                    }
                    if (100..200).contains(&status) {
                        let _ = buf.split_to(len);
                        continue;
                    }
                    let framing = h1::framing(status, res.headers)
                        .ok_or_else(|| "contradictory Content-Length".to_string())?;
                    let minor = res.version.unwrap_or(1);
                    // The member's `Connection` tokens: fields it names are hop-by-hop, and
                    // `close` ends its connection. (An HTTP/1.0 member's connection is never
                    // kept: `relay` keeps only HTTP/1.1 ones.)
                    let named = connection_tokens(res.headers);
                    let closes = named.iter().any(|t| t.eq_ignore_ascii_case(b"close"));
                    let close = matches!(framing, Framing::Close) || draining;
                    let client_head =
                        client_head(res.headers, &named, status, minor, framing, mapping, close)?;
                    return Ok(Some(Head {
                        head_len: len,
                        status,
                        minor,
                        framing,
                        member_closes: closes,
                        close,
                        client_head,
                    }));
                }
                Ok(httparse::Status::Partial) => {
                    if buf.len() >= h1::MAX_HEAD {
                        return Err("response head too large".into());
                    }
                }
                Err(e) => return Err(format!("malformed response head: {e}")),
            }
        }
        buf.reserve(4096);
        let n = match stream.read_buf(buf).await {
            Ok(n) => n,
            // Reset before a byte came: as a close (a kept connection the member dropped).
            Err(_) if buf.is_empty() => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("connection closed in the response head".into())
            };
        }
    }
}

/// A member's final response head, parsed, and the client's version of it.
struct Head {
    /// Its length in the read buffer (the body's first bytes follow).
    head_len: usize,
    status: u16,
    minor: u8,
    framing: Framing,
    /// The member asked to close the connection after this response.
    member_closes: bool,
    /// The client's connection closes after this response.
    close: bool,
    /// The response head as the client gets it.
    client_head: Vec<u8>,
}

/// Writes the response head for the client and relays the body.
async fn relay(
    gate: &mut Io,
    mut answer: Answer,
    express: &proxy::backend::Express,
    index: usize,
    idle: std::time::Duration,
) -> io::Result<Sent> {
    let close = answer.head.close;
    let head = std::mem::take(&mut answer.head.client_head);
    let body_start = answer.head.head_len;
    let mut scanner = ChunkScanner::default();
    let mut left: u64 = match answer.head.framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut sent_body: u64 = 0;
    // The body bytes that came with the head.
    let first = answer.buf.split_off(body_start);
    let (first_part, mut done, mut clean) =
        take_body(&first, answer.head.framing, &mut left, &mut scanner);
    sent_body += first_part.len() as u64;
    write_all(gate, &mut [IoSlice::new(&head), IoSlice::new(first_part)]).await?;
    // Most small bodies came with the head: a buffer for the rest only when there is one.
    let mut buf = BytesMut::new();
    while !done {
        buf.clear();
        buf.reserve(16 * 1024);
        let read = tokio::time::timeout(idle, answer.stream.read_buf(&mut buf)).await;
        let n = match read {
            Ok(Ok(n)) => n,
            _ => {
                // Late or broken after the head went out: the client's connection ends early.
                return Ok(Sent {
                    status: answer.head.status,
                    body_bytes: sent_body,
                    close: true,
                    broken: true,
                });
            }
        };
        if n == 0 {
            if matches!(answer.head.framing, Framing::Close) {
                done = true;
                clean = false;
                continue;
            }
            return Ok(Sent {
                status: answer.head.status,
                body_bytes: sent_body,
                close: true,
                broken: true,
            });
        }
        let (part, finished, ok) = take_body(&buf, answer.head.framing, &mut left, &mut scanner);
        sent_body += part.len() as u64;
        write_all(gate, &mut [IoSlice::new(part)]).await?;
        done = finished;
        clean = ok;
        if !ok && !finished {
            return Ok(Sent {
                status: answer.head.status,
                body_bytes: sent_body,
                close: true,
                broken: true,
            });
        }
    }
    if clean && !answer.head.member_closes && answer.head.minor == 1 {
        express.conns.checkin(index, answer.stream);
    }
    Ok(Sent {
        status: answer.head.status,
        body_bytes: sent_body,
        close,
        broken: false,
    })
}

/// The part of `bytes` that belongs to the body, whether the body ended with it, and whether
/// it ended cleanly (nothing after its end, a well-formed chunked body).
fn take_body<'a>(
    bytes: &'a [u8],
    framing: Framing,
    left: &mut u64,
    scanner: &mut ChunkScanner,
) -> (&'a [u8], bool, bool) {
    match framing {
        Framing::Empty => (&[], true, bytes.is_empty()),
        Framing::Length(_) => {
            let take = (*left).min(bytes.len() as u64) as usize;
            *left -= take as u64;
            (&bytes[..take], *left == 0, take == bytes.len())
        }
        Framing::Chunked => match scanner.feed(bytes) {
            Ok(Some(end)) => (&bytes[..end], true, end == bytes.len()),
            Ok(None) => (bytes, false, true),
            Err(_) => (&[], false, false),
        },
        Framing::Close => (bytes, false, true),
    }
}

/// The response head as the client gets it, from the member's parsed fields.
/// The tokens of a head's `Connection` field lines, trimmed.
fn connection_tokens<'h>(headers: &[httparse::Header<'h>]) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .collect()
}

fn client_head(
    headers: &[httparse::Header<'_>],
    named: &[&[u8]],
    status: u16,
    minor: u8,
    framing: Framing,
    mapping: &Mapping<'_>,
    close: bool,
) -> Result<Vec<u8>, String> {
    let status = StatusCode::from_u16(status).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut via: Vec<&[u8]> = Vec::new();
    let (mut server, mut content_type, mut date) = (false, false, false);
    let mut length_written = false;
    for h in headers.iter() {
        let name = h.name;
        let hop = is_hop_by_hop(name)
            || named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        if hop {
            continue;
        }
        if name.eq_ignore_ascii_case("via") {
            via.push(h.value);
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length_written || matches!(framing, Framing::Chunked) {
                continue;
            }
            length_written = true;
        }
        server |= name.eq_ignore_ascii_case("server");
        content_type |= name.eq_ignore_ascii_case("content-type");
        date |= name.eq_ignore_ascii_case("date");
        let rewritten = if name.eq_ignore_ascii_case("location") {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| rewrite_url(v, mapping))
        } else if name.eq_ignore_ascii_case("refresh") {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| rewrite_refresh(v, mapping))
        } else {
            None
        };
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        out.extend_from_slice(b": ");
        match &rewritten {
            Some(value) => out.extend_from_slice(value.as_bytes()),
            None => out.extend_from_slice(h.value),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"via: ");
    for earlier in &via {
        out.extend_from_slice(earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(if minor == 0 {
        b"1.0 portico\r\n"
    } else {
        b"1.1 portico\r\n"
    });
    if !server {
        out.extend_from_slice(b"server: portico\r\n");
    }
    let has_body = !matches!(framing, Framing::Empty);
    if has_body && !content_type {
        out.extend_from_slice(b"content-type: application/octet-stream\r\n");
    }
    if matches!(framing, Framing::Chunked) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if date {
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(&date::date_line());
    }
    Ok(out)
}

/// An answer portico makes itself (an error page), written whole.
async fn write_response(
    gate: &mut Io,
    ctx: &ConnCtx,
    response: http::Response<Body>,
) -> io::Result<Sent> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Full(Some(bytes)) => bytes,
        _ => bytes::Bytes::new(),
    };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        head.extend_from_slice(format!("content-length: {}\r\n", bytes.len()).as_bytes());
    }
    head.extend_from_slice(b"server: portico\r\n");
    let close = ctx.shared.drain.is_cancelled();
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(&date::date_line());
    write_all(gate, &mut [IoSlice::new(&head), IoSlice::new(&bytes)]).await?;
    Ok(Sent {
        status: parts.status.as_u16(),
        body_bytes: bytes.len() as u64,
        close,
        broken: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_prefix_leaves_a_rooted_target() {
        assert_eq!(
            strip("/api/users?id=1", Some("/api/")),
            ("/users?id=1".into(), "/api".into())
        );
        assert_eq!(strip("/api", Some("/api")), ("/".into(), "/api".into()));
        assert_eq!(strip("/other?x", None), ("/other?x".into(), String::new()));
        assert_eq!(
            strip("/other", Some("/api/")),
            ("/other".into(), String::new())
        );
    }
}
