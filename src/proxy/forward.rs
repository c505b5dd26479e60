//! Forwarding one request to an upstream, in order:
//!
//! 1. `prepare` — the head the members get: path (prefix stripped if asked), hop-by-hop
//!    fields out, `X-Forwarded-*`/`Forwarded`/`Via` in, `Host` as configured, the upgrade
//!    kept when the client asked for one.
//! 2. attempts — a member from the pool (503 with `Retry-After` when none is available),
//!    the request sent with its body streamed (`proxy/body.rs`), raced against the first-byte
//!    and idle timers; a failure that allows it (`Error::is_retryable`) is tried on another
//!    member, at most `retries` times, and only while the client's body is still unread.
//! 3. `respond` — the member's head with hop-by-hop fields out, `Via` in, redirects to the
//!    member rewritten, the sticky cookie set; its body streamed back; a `101` turned into a
//!    tunnel for the edge to run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;

use super::backend::Backend;
use super::body::{BodyLimits, Progress, RequestBody, ResponseBody};
use super::error::Error;
use super::headers::{self, Mapping};
use super::settings::{HostHeader, Settings};
use super::tunnel::Tunnel;
use crate::http::{Body, error_page};
use crate::lb::Subject;

/// The client as the proxy sees it.
pub struct Downstream<'a> {
    pub peer: SocketAddr,
    /// The client came over HTTPS.
    pub tls: bool,
    /// With `strip_prefix`: the route's prefix, taken off the path.
    pub strip: Option<&'a str>,
    pub limits: BodyLimits,
}

/// The answer for the client, and a tunnel to run when it is a `101`.
pub struct Outcome {
    pub response: Response<Body>,
    pub tunnel: Option<Tunnel>,
}

/// Seconds a client is asked to wait in `Retry-After` when no member is available.
const RETRY_AFTER_SECS: HeaderValue = HeaderValue::from_static("5");

/// Forwards a request to `backend` as `route` says; `body` is the client's (`None` for a
/// request portico makes itself, such as a cache refresh).
pub async fn forward(
    backend: &Backend,
    route: &Settings,
    client: &Downstream<'_>,
    parts: &http::request::Parts,
    body: Option<Incoming>,
) -> Outcome {
    let mut head = prepare(route, client, parts);
    let subject = Subject {
        parts,
        client_ip: client.peer.ip(),
    };
    // RFC 9110 §9.2.2: repeating these has the effect of doing it once.
    let idempotent = parts.method.is_idempotent();
    let unread = body
        .filter(|body| !body.is_end_stream())
        .map(|body| Arc::new(Mutex::new(Some(body))));
    let mut tried = Vec::with_capacity(2);
    let mut failure = None;
    for _ in 0..=backend.settings.retries {
        let Some(index) = backend.pool.choose(&subject, &tried) else {
            break;
        };
        tried.push(index);
        let lease = backend.pool.lease(index);
        let member = lease.member().settings.authority.clone();
        let progress = Progress::new(unread.is_none());
        let body = match &unread {
            None => RequestBody::empty(progress.clone(), client.limits),
            Some(unread) => match RequestBody::take(unread, progress.clone(), client.limits) {
                Some(body) => body,
                // An earlier attempt read some of it: it cannot be sent again.
                None => break,
            },
        };
        // The head is moved into the last attempt there can be, copied into the others.
        let last = tried.len() > backend.settings.retries as usize
            || tried.len() >= backend.pool.members().len();
        let request = head.request(&member, body, last);
        match send(backend, request, &progress, &member).await {
            Ok(response) => {
                lease.succeeded();
                let sticky = backend.pool.sticky_set_cookie(&subject, index, client.tls);
                return respond(response, lease, &head, &member, sticky, backend).await;
            }
            Err(error) => {
                tracing::debug!(upstream = backend.pool.name(), %member, %error, "attempt failed");
                if error.blames_member() {
                    lease.failed();
                }
                let retry = error.is_retryable(idempotent);
                failure = Some(error);
                if !retry {
                    break;
                }
            }
        }
    }
    Outcome {
        response: error_response(&failure.unwrap_or(Error::NoMember)),
        tunnel: None,
    }
}

/// The answer for a failure: its status, and `Retry-After` with 503.
pub fn error_response(error: &Error) -> Response<Body> {
    let mut response = error_page::response(error.status());
    if error.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECS);
    }
    response
}

/// The request head every attempt sends, and what the response needs from the request.
struct Head {
    method: Method,
    target: PathAndQuery,
    headers: HeaderMap,
    /// `Host` per member (`host = "upstream"`); else `headers` has it.
    host_per_member: bool,
    /// The protocol the client asked to switch to.
    upgrade: Option<HeaderValue>,
    /// How the client reached portico: scheme, host as sent, the stripped prefix.
    scheme: &'static str,
    client_host: Option<String>,
    prefix: String,
}

/// Step 1: the head for the members.
fn prepare(route: &Settings, client: &Downstream<'_>, parts: &http::request::Parts) -> Head {
    let scheme = if client.tls { "https" } else { "http" };
    let client_host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()));
    let mut headers = parts.headers.clone();
    let upgrade = headers::upgrade_protocol(parts.version, &headers);
    headers::remove_hop_by_hop(&mut headers);
    // portico answers `Expect: 100-continue` itself, when the body is first read.
    headers.remove(header::EXPECT);
    let forwarding = headers::Client {
        ip: client.peer.ip(),
        trusted: route.trusted_proxies.contains(client.peer.ip()),
        proto: scheme,
        host: client_host.as_deref(),
    };
    headers::add_forwarded(&mut headers, &forwarding);
    headers::add_via(&mut headers, parts.version);
    match &route.host {
        HostHeader::Pass => {
            if let Some(host) = client_host
                .as_deref()
                .and_then(|h| HeaderValue::from_str(h).ok())
            {
                headers.insert(header::HOST, host);
            }
        }
        HostHeader::Fixed(value) => {
            headers.insert(header::HOST, value.clone());
        }
        HostHeader::Upstream => {}
    }
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    let (target, prefix) = target(parts, client.strip);
    Head {
        method: parts.method.clone(),
        target,
        headers,
        host_per_member: route.host == HostHeader::Upstream,
        upgrade,
        scheme,
        client_host,
        prefix,
    }
}

/// The path and query the member gets, and the prefix taken off (without its last `/`).
fn target(parts: &http::request::Parts, strip: Option<&str>) -> (PathAndQuery, String) {
    let Some((text, prefix)) = strip_prefix(parts.uri.path(), parts.uri.query(), strip) else {
        let whole = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        return (whole, String::new());
    };
    let target = text
        .parse()
        .unwrap_or_else(|_| PathAndQuery::from_static("/"));
    (target, prefix)
}

/// `path?query` without `prefix` (kept starting with `/`), and the prefix without its last
/// `/` (what redirects get back); `None` when there is no prefix or the path does not start
/// with it. Shared by both lanes of the proxy.
pub fn strip_prefix(
    path: &str,
    query: Option<&str>,
    prefix: Option<&str>,
) -> Option<(String, String)> {
    let prefix = prefix.filter(|p| path.starts_with(p))?;
    let rest = &path[prefix.len()..];
    let slash = if rest.starts_with('/') { "" } else { "/" };
    let text = match query {
        Some(q) => format!("{slash}{rest}?{q}"),
        None => format!("{slash}{rest}"),
    };
    Some((text, prefix.trim_end_matches('/').to_string()))
}

impl Head {
    /// The request for one attempt on `member`; `last` when no other attempt can follow (the
    /// fields are then moved, not copied).
    fn request(
        &mut self,
        member: &Authority,
        body: RequestBody,
        last: bool,
    ) -> Request<RequestBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(http::uri::Scheme::HTTP);
            parts.authority = Some(member.clone());
            parts.path_and_query = Some(self.target.clone());
            parts
        })
        .unwrap_or_default();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = if last {
            std::mem::take(&mut self.headers)
        } else {
            self.headers.clone()
        };
        // `host = "upstream"`, or a client that sent none (HTTP/1.0): the member's address,
        // since an HTTP/1.1 request needs one (RFC 9112 §3.2).
        let needs_host = self.host_per_member || !request.headers().contains_key(header::HOST);
        if needs_host && let Ok(host) = HeaderValue::from_str(member.as_str()) {
            request.headers_mut().insert(header::HOST, host);
        }
        request
    }
}

/// Step 2 for one attempt: the response head, or why there is none.
async fn send(
    backend: &Backend,
    mut request: Request<RequestBody>,
    progress: &Progress,
    member: &Authority,
) -> Result<Response<Incoming>, Error> {
    if backend.settings.http2 {
        *request.version_mut() = Version::HTTP_2;
    }
    let sent = tokio::select! {
        biased;
        sent = backend.client.request(request) => sent,
        () = progress.member_late(&backend.settings.timeouts) => {
            return Err(progress.fault().map_or_else(
                || Error::Timeout { member: member.clone() },
                Error::ClientBody,
            ));
        }
    };
    sent.map_err(|error| classify(&error, progress, member))
}

/// What a client error means: the client's body, a connection that was never made (a timeout
/// or a refusal), or a broken exchange after the request left.
fn classify(
    error: &hyper_util::client::legacy::Error,
    progress: &Progress,
    member: &Authority,
) -> Error {
    if let Some(fault) = progress.fault() {
        return Error::ClientBody(fault);
    }
    let reason = source_chain(error);
    if error.is_connect() {
        if timed_out(error) {
            return Error::ConnectTimeout {
                member: member.clone(),
            };
        }
        return Error::Connect {
            member: member.clone(),
            reason,
        };
    }
    Error::BadResponse {
        member: member.clone(),
        reason,
    }
}

/// Whether an I/O timeout is among the error's causes.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The error and its causes, `: `-separated, for logs.
fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Step 3: the member's response as the client gets it.
async fn respond(
    mut response: Response<Incoming>,
    lease: crate::lb::Lease,
    head: &Head,
    member: &Authority,
    sticky: Option<HeaderValue>,
    backend: &Backend,
) -> Outcome {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching && head.upgrade.is_none() {
        // A switch the client did not ask for cannot be passed on.
        lease.failed();
        return Outcome {
            response: error_response(&Error::BadResponse {
                member: member.clone(),
                reason: "101 without an upgrade request".into(),
            }),
            tunnel: None,
        };
    }
    let version = response.version();
    let upgrade = response.headers().get(header::UPGRADE).cloned();
    let headers = response.headers_mut();
    headers::remove_hop_by_hop(headers);
    headers::add_via(headers, version);
    if let Some(host) = head.client_host.as_deref() {
        let mapping = Mapping {
            member,
            scheme: head.scheme,
            host,
            prefix: &head.prefix,
        };
        headers::rewrite_redirects(headers, &mapping);
    }
    if let Some(cookie) = sticky {
        headers.append(header::SET_COOKIE, cookie);
    }
    if switching {
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(upgrade) = upgrade {
            headers.insert(header::UPGRADE, upgrade);
        }
        let tunnel = match hyper::upgrade::on(&mut response).await {
            Ok(upgraded) => Tunnel::new(
                hyper_util::rt::TokioIo::new(upgraded),
                backend.settings.timeouts.idle,
            ),
            Err(error) => {
                lease.failed();
                return Outcome {
                    response: error_response(&Error::BadResponse {
                        member: member.clone(),
                        reason: error.to_string(),
                    }),
                    tunnel: None,
                };
            }
        };
        let (parts, _) = response.into_parts();
        return Outcome {
            response: Response::from_parts(parts, Body::Empty),
            tunnel: Some(tunnel),
        };
    }
    let idle = backend.settings.timeouts.idle;
    let response = response.map(|body| {
        if body.is_end_stream() {
            Body::Empty
        } else {
            Body::stream(ResponseBody::new(body, idle, lease))
        }
    });
    Outcome {
        response,
        tunnel: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str) -> http::request::Parts {
        Request::get(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn targets_keep_the_query_and_lose_a_stripped_prefix() {
        let (t, p) = target(&parts("/api/users?id=1"), Some("/api/"));
        assert_eq!((t.as_str(), p.as_str()), ("/users?id=1", "/api"));
        let (t, _) = target(&parts("/api"), Some("/api"));
        assert_eq!(t.as_str(), "/");
        let (t, p) = target(&parts("/other?x"), None);
        assert_eq!((t.as_str(), p.as_str()), ("/other?x", ""));
    }
}
