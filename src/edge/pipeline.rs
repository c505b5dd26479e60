//! The request phases, in the order they run. Each phase either passes the request on or
//! answers it; the list below is the whole life of a request in the edge:
//!
//! 1. `admit` — a slot among `max_requests_in_flight`, else 503 with `Retry-After`.
//! 2. `check_request` — `OPTIONS *`, target length (HTTP/2; HTTP/1 heads were checked by the
//!    gate).
//! 3. `route` — ACME http-01 challenge answers; purge statuses (`edge::purge`); the site by
//!    listener and host (503 in maintenance); `PURGE` for its cached routes (before the HTTPS
//!    redirect); CONNECT and absolute-form requests for other hosts to the site's forward
//!    proxy (405 for CONNECT without one); else the route by path (404).
//! 4. `check_method` — OPTIONS answers `Allow`; TRACE echoes when enabled; other methods the
//!    route does not allow get 405 with `Allow`, unknown ones 501.
//! 5. `read_body` — 413 before reading when `Content-Length` is too large (so no
//!    `100 Continue` is sent), else the body is read and discarded within the size and time
//!    limits. A `proxy` route streams the body to the origin instead, with the same limits
//!    (`proxy/body.rs`).
//! 6. `produce` — the route's handler makes the response; a proxied `101` or an opened
//!    CONNECT also leaves a tunnel, which the connection runs once hyper lets go of the socket
//!    (HTTP/1, `edge/conn.rs`) or which runs on the upgraded stream (HTTP/2 CONNECT).
//! 7. `filter_response` — `Server`, a `Content-Type` on every body, `Connection: close`
//!    when the connection will not be reused (also after an upgrade or CONNECT request that
//!    did not become a tunnel: the gate stopped checking that connection's bytes).
//! 8. `log` — when the response body ends (`edge/tracked.rs`).
//!
//! Phases 2 to 6 run at once, inside hyper's call of the service, whenever nothing needs
//! waiting: early answers, and requests without a body whose handler answers from memory
//! (cached files, redirects, fixed responses). Only the rest (a file to open, a body to drain,
//! a request to forward) gets a boxed future. A panic in a phase is caught here, logged, and answered with 500; the
//! connection and the worker carry on.

// Phases return `Result<_, Response<Body>>`: the error is the early answer. It is built and
// moved once per request; boxing it would add an allocation to every early answer.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::conn::ConnCtx;
use super::router::{CompiledRoute, request_host};
use super::settings::{Handler, PathMatch};
use super::tracked::Tracked;
use super::{methods, purge, redirect, respond};
use crate::http::{Body, error_page};
use crate::telemetry::access_log::Record;
use crate::{files, proxy};

/// Seconds a client is asked to wait in `Retry-After` when the server is overloaded or a site
/// is in maintenance.
const RETRY_AFTER_SECS: &str = "5";

/// Answers one request: at once when every phase can answer without waiting (most requests:
/// cached files, redirects, fixed responses, early errors), else in a boxed future. The
/// immediate path saves the future's allocation and its moves (BENCHMARKS.md).
pub fn handle(ctx: Arc<ConnCtx>, req: Request<Incoming>) -> Answer {
    let log = ctx
        .shared
        .access_log
        .as_ref()
        .map(|_| Box::new(Record::begin(&req, ctx.peer)));
    let is_h1 = req.version() < Version::HTTP_2;
    let close = is_h1 && client_wants_close(&req);
    let hsts = if ctx.tls { hsts(&ctx, &req) } else { None };
    let opaque = if is_h1 { opaque(&req) } else { Opaque::No };
    let permit = match admit(&ctx) {
        Ok(permit) => permit,
        Err(response) => {
            let response = close_unless_tunnel(response, opaque);
            return Answer::now(finish(ctx, response, None, log, is_h1, close, hsts));
        }
    };
    let span = tracing::debug_span!("request", method = %req.method(), target = %req.uri());
    let immediate = {
        let _entered = span.enter();
        std::panic::catch_unwind(AssertUnwindSafe(|| answer_now(&ctx, req)))
    };
    match immediate {
        Ok(Now::Answered(response)) => {
            let response = close_unless_tunnel(response, opaque);
            Answer::now(finish(ctx, response, Some(permit), log, is_h1, close, hsts))
        }
        Ok(Now::Later(req)) => Answer::Later(Box::pin(
            async move {
                let answered = AssertUnwindSafe(answer(&ctx, req)).catch_unwind().await;
                let response = answered.unwrap_or_else(|panic| panicked(&ctx, panic));
                let response = close_unless_tunnel(response, opaque);
                finish(ctx, response, Some(permit), log, is_h1, close, hsts)
            }
            .instrument(span),
        )),
        Err(panic) => {
            let response = panicked(&ctx, panic);
            Answer::now(finish(ctx, response, Some(permit), log, is_h1, close, hsts))
        }
    }
}

/// The answer to a request, as the hyper service's future.
pub enum Answer {
    /// Answered without waiting; `None` once taken.
    Now(Option<Response<Tracked>>),
    /// Still to be produced (a file to read, a body to drain).
    Later(Pin<Box<dyn Future<Output = Response<Tracked>> + Send>>),
}

impl Answer {
    fn now(response: Response<Tracked>) -> Self {
        Answer::Now(Some(response))
    }
}

impl Future for Answer {
    type Output = Result<Response<Tracked>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(response) => Poll::Ready(Ok(response
                .take()
                .expect("hyper polls a service future only until it is ready"))),
            Answer::Later(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// What the immediate path could do.
enum Now {
    Answered(Response<Body>),
    /// Needs to wait: the request goes through the async phases.
    Later(Request<Incoming>),
}

/// Phases 2 to 6 for what needs no waiting: every early answer, requests without a body whose
/// handler answers from memory.
fn answer_now(ctx: &ConnCtx, req: Request<Incoming>) -> Now {
    use http_body::Body as _;
    let (parts, body) = req.into_parts();
    super::fault::inject(parts.uri.path());
    let route = match route(ctx, &parts) {
        Ok(Routed::Route(route)) => route,
        Ok(Routed::Connect(_) | Routed::Forward(_) | Routed::Purge | Routed::PurgeStatus) => {
            return Now::Later(Request::from_parts(parts, body));
        }
        Err(response) => return Now::Answered(response),
    };
    if !body.is_end_stream() {
        return Now::Later(Request::from_parts(parts, body));
    }
    match &route.route.handler {
        Handler::Static(settings) => {
            let path = static_path(route, settings, parts.uri.path());
            match files::serve_from_memory(&parts, &path, settings) {
                Some(response) => Now::Answered(response),
                None => Now::Later(Request::from_parts(parts, body)),
            }
        }
        Handler::Redirect(settings) => {
            Now::Answered(redirect::answer(settings, &route.route.path, &parts))
        }
        Handler::Respond(settings) => Now::Answered(respond::answer(settings)),
        Handler::Proxy(_) | Handler::Httpbin => Now::Later(Request::from_parts(parts, body)),
    }
}

/// Phases 7 and 8: the response's common headers, and the body that settles the request.
fn finish(
    ctx: Arc<ConnCtx>,
    mut response: Response<Body>,
    permit: Option<OwnedSemaphorePermit>,
    mut log: Option<Box<Record>>,
    is_h1: bool,
    client_wants_close: bool,
    hsts: Option<HeaderValue>,
) -> Response<Tracked> {
    filter_response(&ctx, &mut response, is_h1, client_wants_close);
    if let Some(hsts) = hsts {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    let status = response.status().as_u16();
    if let Some(record) = log.as_mut() {
        record.status = status;
    }
    response.map(|body| Tracked::new(body, ctx, permit, status, log))
}

/// The `Strict-Transport-Security` value of the request's site (HTTPS only).
fn hsts(ctx: &ConnCtx, req: &Request<Incoming>) -> Option<HeaderValue> {
    ctx.shared
        .router
        .site_for(ctx.listener, || {
            super::router::host_of(req.uri(), req.headers())
        })
        .and_then(|site| site.hsts.clone())
}

/// A panic in a phase: logged, answered with 500.
fn panicked(ctx: &ConnCtx, panic: Box<dyn std::any::Any + Send>) -> Response<Body> {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(peer = %ctx.peer, panic = %what, "request handler panicked");
    error_page::response(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Phase 1: a slot among the requests in flight.
fn admit(ctx: &ConnCtx) -> Result<OwnedSemaphorePermit, Response<Body>> {
    let permit = ctx
        .shared
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| unavailable())?;
    ctx.shared
        .count(crate::telemetry::counters::Counter::InFlight, 1);
    Ok(permit)
}

/// Phases 2 to 6, for requests that may wait.
async fn answer(ctx: &ConnCtx, mut req: Request<Incoming>) -> Response<Body> {
    // An HTTP/2 CONNECT becomes a tunnel on its own stream; hyper hands the stream over here.
    let on_upgrade = (req.version() == Version::HTTP_2 && req.method() == Method::CONNECT)
        .then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let route = match route(ctx, &parts) {
        Ok(Routed::Route(route)) => route,
        Ok(Routed::Connect(forward_proxy)) => {
            let outcome = proxy::forward_proxy::connect(forward_proxy, &parts.uri).await;
            return hand_over_tunnel(ctx, outcome, on_upgrade);
        }
        Ok(Routed::Forward(forward_proxy)) => {
            if let Err(response) = check_declared_length(ctx, &parts) {
                return response;
            }
            let client = downstream(ctx, None);
            let backends = &ctx.shared.backends;
            let outcome =
                proxy::forward_proxy::absolute(forward_proxy, backends, &client, &parts, body)
                    .await;
            return hand_over_tunnel(ctx, outcome, None);
        }
        Ok(Routed::Purge) => return purge::purge(ctx, &parts).await,
        Ok(Routed::PurgeStatus) => return purge::status(ctx, &parts).await,
        Err(response) => return response,
    };
    if let Handler::Proxy(settings) = &route.route.handler {
        return proxy_pass(ctx, route, settings, &parts, body).await;
    }
    let mut kept = Vec::new();
    let keep = matches!(route.route.handler, Handler::Httpbin).then_some(&mut kept);
    let body_bytes = match read_body(ctx, &parts, body, keep).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    if matches!(route.route.handler, Handler::Httpbin) {
        let exchange = super::httpbin::Exchange {
            peer: ctx.peer,
            local: ctx.local,
            body_bytes,
            body: &kept,
        };
        return super::httpbin::answer(&parts, &exchange).await;
    }
    produce(route, &parts).await
}

/// What answers a request.
enum Routed<'a> {
    /// A route of the site.
    Route(&'a CompiledRoute),
    /// A CONNECT to the site's forward proxy.
    Connect(&'a proxy::ForwardProxy),
    /// An absolute-form request for a host the site does not claim, on a forward proxy.
    Forward(&'a proxy::ForwardProxy),
    /// `PURGE` on a cached route (`edge::purge`).
    Purge,
    /// A purge's status (`edge::purge::STATUS_PATH`).
    PurgeStatus,
}

/// Phases 2 to 4: the checks before any handler, and what answers.
fn route<'a>(ctx: &'a ConnCtx, parts: &http::request::Parts) -> Result<Routed<'a>, Response<Body>> {
    check_request(ctx, parts)?;
    if let Some(dir) = &ctx.shared.acme_challenges {
        acme_challenge(dir, parts)?;
    }
    if ctx.shared.purges().is_some() && purge::is_status(parts) {
        return Ok(Routed::PurgeStatus);
    }
    let Some(site) = ctx
        .shared
        .router
        .site_for(ctx.listener, || request_host(parts))
    else {
        return Err(error_page::response(StatusCode::NOT_FOUND));
    };
    if site.maintenance {
        return Err(unavailable());
    }
    // Before the redirect to HTTPS: a purge names its scheme (absolute form) or is for this one.
    if purge::is_purge(&parts.method)
        && let Some(route) = site.route(parts.uri.path())
        && matches!(&route.route.handler, Handler::Proxy(p) if p.cache)
    {
        return Ok(Routed::Purge);
    }
    if let Some(to) = site.redirect_to
        && !ctx.tls
    {
        return Err(to_https(parts, ctx.shared.bound_port(to)));
    }
    if parts.method == Method::CONNECT {
        return match &site.forward_proxy {
            Some(forward_proxy) => Ok(Routed::Connect(forward_proxy)),
            None => Err(not_a_forward_proxy()),
        };
    }
    if let Some(forward_proxy) = &site.forward_proxy
        && parts.version < Version::HTTP_2
        && parts.uri.scheme().is_some()
        && !request_host(parts).is_some_and(|host| site.claims(&host))
    {
        return Ok(Routed::Forward(forward_proxy));
    }
    let Some(route) = site.route(parts.uri.path()) else {
        return Err(error_page::response(StatusCode::NOT_FOUND));
    };
    check_method(route, parts)?;
    Ok(Routed::Route(route))
}

/// CONNECT on a site without a forward proxy: 405 with the server's methods.
fn not_a_forward_proxy() -> Response<Body> {
    let mut res = error_page::response(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static(methods::SERVER_METHODS),
    );
    res
}

/// Phase 2: the answer to an ACME http-01 challenge the master published, on any host and
/// before any redirect to HTTPS (the CA asks over plain HTTP). A token with no published
/// answer goes on to the routes, where a site may serve its own.
fn acme_challenge(
    dir: &std::path::Path,
    parts: &http::request::Parts,
) -> Result<(), Response<Body>> {
    if !(parts.method == Method::GET || parts.method == Method::HEAD) {
        return Ok(());
    }
    match crate::tls::acme::store::challenge_answer(dir, parts.uri.path()) {
        Some(answer) => {
            let mut res = Response::new(Body::full(answer));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            Err(res)
        }
        None => Ok(()),
    }
}

/// Phase 2: requests that need no route.
fn check_request(ctx: &ConnCtx, parts: &http::request::Parts) -> Result<(), Response<Body>> {
    if parts.method == Method::OPTIONS && parts.uri == "*" {
        return Err(methods::options_star());
    }
    if parts.method == Method::CONNECT {
        // An authority, not a path: the site's forward proxy checks it.
        return Ok(());
    }
    let target_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > ctx.shared.limits.max_uri_bytes {
        return Err(error_page::response(StatusCode::URI_TOO_LONG));
    }
    if !parts.uri.path().starts_with('/') {
        return Err(error_page::response(StatusCode::BAD_REQUEST));
    }
    Ok(())
}

/// Phase 4: OPTIONS, TRACE, and methods the route does not allow.
fn check_method(route: &CompiledRoute, parts: &http::request::Parts) -> Result<(), Response<Body>> {
    let method = &parts.method;
    let forwards = matches!(route.route.handler, Handler::Proxy(_));
    if *method == Method::OPTIONS && !forwards {
        return Err(methods::options(&route.allow_header));
    }
    if *method == Method::TRACE && route.route.trace {
        return Err(methods::trace(parts));
    }
    if route.allow.contains(method) || (route.any_method && *method != Method::TRACE) {
        return Ok(());
    }
    let status = if methods::is_known(method) {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        StatusCode::NOT_IMPLEMENTED
    };
    let mut res = error_page::response(status);
    res.headers_mut()
        .insert(header::ALLOW, route.allow_header.clone());
    Err(res)
}

/// Phase 5: the body's size and pace, checked before and while reading it; its length, and
/// its first bytes in `keep` (up to `httpbin::ECHO_BODY_BYTES`) when asked.
async fn read_body(
    ctx: &ConnCtx,
    parts: &http::request::Parts,
    mut body: Incoming,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<u64, Response<Body>> {
    use http_body::Body as _;
    if body.is_end_stream() {
        return Ok(0);
    }
    check_declared_length(ctx, parts)?;
    let limits = &ctx.shared.limits;
    let mut total: u64 = 0;
    loop {
        match tokio::time::timeout(limits.body_read_timeout, body.frame()).await {
            Err(_) => return Err(error_page::response(StatusCode::REQUEST_TIMEOUT)),
            Ok(None) => return Ok(total),
            Ok(Some(Err(_))) => return Err(error_page::response(StatusCode::BAD_REQUEST)),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    total += data.len() as u64;
                    if let Some(keep) = keep.as_deref_mut() {
                        let room = super::httpbin::ECHO_BODY_BYTES.saturating_sub(keep.len());
                        keep.extend_from_slice(&data[..room.min(data.len())]);
                    }
                    if total > limits.max_body_bytes {
                        return Err(error_page::response(StatusCode::PAYLOAD_TOO_LARGE));
                    }
                }
            }
        }
    }
}

/// 413 when `Content-Length` is over the limit, before the body is polled (so hyper never
/// sends `100 Continue`).
fn check_declared_length(
    ctx: &ConnCtx,
    parts: &http::request::Parts,
) -> Result<(), Response<Body>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > ctx.shared.limits.max_body_bytes) {
        return Err(error_page::response(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(())
}

/// Phases 5 and 6 for a `proxy` route: the body streams to the upstream within the limits.
async fn proxy_pass(
    ctx: &ConnCtx,
    route: &CompiledRoute,
    settings: &proxy::Settings,
    parts: &http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    if let Err(response) = check_declared_length(ctx, parts) {
        return response;
    }
    let Some(backend) = ctx.shared.backends.get(settings.upstream) else {
        // Resolution names only upstreams that exist; this cannot happen.
        return error_page::response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let client = downstream(ctx, stripped_prefix(route, settings));
    let outcome = match (&ctx.shared.cache, settings.cache) {
        (Some(cache), true) => {
            // The host as the client wrote it (with its port): the express lane keys alike.
            let host = super::router::raw_host(&parts.uri, &parts.headers).unwrap_or_default();
            let req = crate::cache::handler::Request {
                backend,
                settings,
                client: &client,
                parts,
                scheme: if ctx.tls { "https" } else { "http" },
                host,
                counters: ctx.shared.counters.as_ref(),
            };
            crate::cache::handler::answer(cache, req, body).await
        }
        _ => proxy::forward(backend, settings, &client, parts, Some(body)).await,
    };
    hand_over_tunnel(ctx, outcome, None)
}

/// The client as the proxy sees it, with the body limits.
fn downstream<'a>(ctx: &ConnCtx, strip: Option<&'a str>) -> proxy::Downstream<'a> {
    let limits = &ctx.shared.limits;
    proxy::Downstream {
        peer: ctx.peer,
        tls: ctx.tls,
        strip,
        limits: proxy::body::BodyLimits {
            max_bytes: limits.max_body_bytes,
            read_timeout: limits.body_read_timeout,
        },
    }
}

/// The response of a forward; its tunnel, if any, goes to the connection (HTTP/1, run once
/// hyper has written the response) or runs on the upgraded HTTP/2 stream.
fn hand_over_tunnel(
    ctx: &ConnCtx,
    outcome: proxy::Outcome,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    let Some(tunnel) = outcome.tunnel else {
        return outcome.response;
    };
    match on_upgrade {
        None => ctx.set_tunnel(tunnel),
        Some(on_upgrade) => {
            let shared = ctx.shared.clone();
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let stream = hyper_util::rt::TokioIo::new(upgraded);
                    tunnel.run(stream, &[], shared.idle_close()).await;
                }
            });
        }
    }
    outcome.response
}

/// Phase 6: the handler.
async fn produce(route: &CompiledRoute, parts: &http::request::Parts) -> Response<Body> {
    match &route.route.handler {
        Handler::Static(settings) => {
            let path = static_path(route, settings, parts.uri.path());
            files::serve(parts, &path, settings).await
        }
        Handler::Redirect(settings) => redirect::answer(settings, &route.route.path, parts),
        Handler::Respond(settings) => respond::answer(settings),
        // Answered in `answer`, with the body.
        Handler::Proxy(_) | Handler::Httpbin => {
            error_page::response(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The prefix a `proxy` route takes off the path before forwarding, if it strips one.
pub(super) fn stripped_prefix<'a>(
    route: &'a CompiledRoute,
    settings: &proxy::Settings,
) -> Option<&'a str> {
    match (&route.route.path, settings.strip_prefix) {
        (PathMatch::Prefix(prefix), true) => Some(prefix.as_str()),
        _ => None,
    }
}

/// The path a `static` handler maps: the whole request path (nginx `root`), or what follows
/// the route's prefix (nginx `alias`, `strip_prefix`).
pub(super) fn static_path<'a>(
    route: &CompiledRoute,
    settings: &files::Settings,
    path: &'a str,
) -> Cow<'a, str> {
    match (&route.route.path, settings.strip_prefix) {
        (super::PathMatch::Prefix(prefix), true) => {
            let rest = &path[prefix.len().min(path.len())..];
            if rest.starts_with('/') {
                Cow::Borrowed(rest)
            } else {
                Cow::Owned(format!("/{rest}"))
            }
        }
        _ => Cow::Borrowed(path),
    }
}

/// Phase 7: headers every response gets.
fn filter_response(ctx: &ConnCtx, res: &mut Response<Body>, is_h1: bool, client_wants_close: bool) {
    let headers = res.headers_mut();
    // Responses built ahead (the open-file cache's heads) already carry it: no insert then,
    // which would grow a cloned map.
    if !headers.contains_key(header::SERVER) {
        headers.insert(header::SERVER, crate::http::SERVER_NAME);
    }
    let has_body = !matches!(res.body(), Body::Empty);
    if has_body && !res.headers().contains_key(header::CONTENT_TYPE) {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    if !is_h1 {
        return;
    }
    let status = res.status();
    let error_closes = matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::URI_TOO_LONG
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    if error_closes || ctx.shared.drain.is_cancelled() {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if error_closes
        || client_wants_close
        || res
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v == "close")
    {
        ctx.state.close_after_response();
    }
}

/// A plain-HTTP request to a site that wants HTTPS: 301 for GET and HEAD, 308 for other
/// methods (which must be repeated with their body), to the same host, path and query.
fn to_https(parts: &http::request::Parts, port: u16) -> Response<Body> {
    let host = request_host(parts).unwrap_or(Cow::Borrowed("localhost"));
    let host = if host.contains(':') && !host.starts_with('[') {
        Cow::Owned(format!("[{host}]"))
    } else {
        host
    };
    let authority = if port == 443 {
        host.into_owned()
    } else {
        format!("{host}:{port}")
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let status = if parts.method == Method::GET || parts.method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let location = format!("https://{authority}{target}");
    let mut res = error_page::response(status);
    if let Ok(value) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// 503 with `Retry-After`.
fn unavailable() -> Response<Body> {
    let mut res = error_page::response(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    res
}

/// Whether the gate passes an HTTP/1 connection's bytes unchecked after this request
/// (`edge/gate.rs`, `Framing::Opaque`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opaque {
    No,
    /// An `Upgrade` request: a tunnel after a `101`.
    Upgrade,
    /// A CONNECT: a tunnel after a 2xx.
    Connect,
}

fn opaque(req: &Request<Incoming>) -> Opaque {
    if req.method() == Method::CONNECT {
        Opaque::Connect
    } else if req.headers().contains_key(header::UPGRADE) {
        Opaque::Upgrade
    } else {
        Opaque::No
    }
}

/// The answer to an opaque request that does not become a tunnel ends its connection: what
/// follows was never checked by the gate.
fn close_unless_tunnel(mut response: Response<Body>, opaque: Opaque) -> Response<Body> {
    let tunnel = match opaque {
        Opaque::No => return response,
        Opaque::Upgrade => response.status() == StatusCode::SWITCHING_PROTOCOLS,
        Opaque::Connect => response.status().is_success(),
    };
    if !tunnel {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// HTTP/1.0 without `keep-alive`, or any `Connection: close` (RFC 9112 §9.3).
fn client_wants_close(req: &Request<Incoming>) -> bool {
    let mut tokens = proxy::headers::connection_tokens(req.headers());
    let (mut close, mut keep_alive) = (false, false);
    for token in &mut tokens {
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    close || (req.version() == Version::HTTP_10 && !keep_alive)
}
