//! The cache on the proxy path: what a `proxy` route with `cache = true` does with a request
//! (RFC 9111 §4): answer from the cache, validate a stale response with the origin, or
//! forward — one request per key at a time (`coalesce`), the others waiting — and store what
//! may be stored as its body streams to the client. Unsafe methods invalidate (§4.4). Every
//! answer says what happened in `Cache-Status` (RFC 9211).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;

use super::coalesce::{Filler, Outcome, Role};
use super::key::primary;
use super::memory::Object;
use super::rules::{self, Received};
use super::status::{CacheStatus, Fwd};
use super::store::{self, Cache, Lookup};
use super::unkeyed;
use crate::http::conditional::{self, Validators};
use crate::http::range::{self, Ranges};
use crate::http::{Body, error_page};
use crate::proxy::{self, Backend, Downstream};
use crate::telemetry::counters::{Counter, Counters};

/// The cache's field in responses (RFC 9211).
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

/// Where a request goes, as the cache needs it.
pub struct Request<'a> {
    pub backend: &'a Arc<Backend>,
    pub settings: &'a proxy::Settings,
    pub client: &'a Downstream<'a>,
    pub parts: &'a http::request::Parts,
    /// `http` or `https`, and the host the client asked for: the primary key's origin.
    pub scheme: &'static str,
    pub host: &'a str,
    /// This worker's counters, for the hit/stale/miss/bypass totals.
    pub counters: Option<&'a Counters>,
}

impl Request<'_> {
    fn count(&self, counter: Counter) {
        if let Some(counters) = self.counters {
            counters.add(counter, 1);
        }
    }
}

/// Answers `req` through `cache`.
pub async fn answer(cache: &Arc<Cache>, req: Request<'_>, body: Incoming) -> proxy::Outcome {
    // The key's origin is the client-facing one; fields the key cannot tell apart are not
    // forwarded (`unkeyed`).
    let trusted = req.settings.trusted_proxies.contains(req.client.peer.ip());
    let (scheme, host) = unkeyed::origin(&req.parts.headers, trusted, req.scheme, req.host);
    let cacheable = req.parts.method == Method::GET || req.parts.method == Method::HEAD;
    let clean = cacheable.then(|| unkeyed::strip(req.parts)).flatten();
    let req = Request {
        scheme,
        host: &host,
        parts: clean.as_ref().unwrap_or(req.parts),
        ..req
    };
    let parts = req.parts;
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let key = primary(req.scheme, req.host, target);
    let method = &parts.method;
    if *method != Method::GET && *method != Method::HEAD {
        let mut outcome = forward(&req, Some(body)).await;
        let status = outcome.response.status();
        let mut keys = vec![key];
        for location in store::invalidated_locations(outcome.response.headers()) {
            if let Some(path) = same_origin_path(location, req.scheme, req.host) {
                keys.push(primary(req.scheme, req.host, &path));
            }
        }
        cache.invalidate(method, status, &keys).await;
        req.count(Counter::CacheBypass);
        mark(
            &mut outcome.response,
            fwd(Fwd::Method, Some(status.as_u16()), false, None),
        );
        return outcome;
    }
    let now = SystemTime::now();
    let headers = &parts.headers;
    match cache.lookup(&key, headers, now).await {
        Lookup::Hit(object) => {
            req.count(Counter::CacheHit);
            return served(parts, &object, now, false);
        }
        Lookup::StaleWhileRevalidate(object) => {
            req.count(Counter::CacheStale);
            refresh_in_background(cache, &req, &key);
            return served(parts, &object, now, false);
        }
        Lookup::Validate(object) if !store::only_if_cached(headers) => {
            return validate(cache, &req, &key, object, body).await;
        }
        Lookup::Validate(_) | Lookup::Miss(_) => {}
    }
    req.count(Counter::CacheMiss);
    if store::only_if_cached(&parts.headers) {
        // §5.2.1.7: nothing stored that may answer without the origin.
        let mut response = error_page::response(StatusCode::GATEWAY_TIMEOUT);
        mark(
            &mut response,
            fwd(Fwd::UriMiss, None, false, Some("only-if-cached")),
        );
        return proxy::Outcome {
            response,
            tunnel: None,
        };
    }
    if *method == Method::HEAD {
        let mut outcome = forward(&req, Some(body)).await;
        let status = outcome.response.status();
        mark(
            &mut outcome.response,
            fwd(Fwd::UriMiss, Some(status.as_u16()), false, None),
        );
        return outcome;
    }
    // A range is cut from the whole response, which is what gets fetched and stored.
    let whole = parts.headers.contains_key(header::RANGE).then(|| {
        let mut whole = parts.clone();
        whole.headers.remove(header::RANGE);
        whole.headers.remove(header::IF_RANGE);
        whole
    });
    let fetching = Request {
        parts: whole.as_ref().unwrap_or(parts),
        ..req
    };
    let outcome = match cache.coalescer.join(&key) {
        Role::Fill(filler) => {
            fetch(
                cache,
                &fetching,
                &key,
                Some(filler),
                Some(body),
                Fwd::UriMiss,
            )
            .await
        }
        Role::Wait(waiter) => {
            if waiter.wait(cache.lock_timeout).await == Outcome::Stored
                && let Lookup::Hit(object) =
                    cache.lookup(&key, &parts.headers, SystemTime::now()).await
            {
                // Counted as a miss above: the request waited for the origin.
                return served(parts, &object, SystemTime::now(), true);
            }
            fetch(cache, &fetching, &key, None, Some(body), Fwd::UriMiss).await
        }
    };
    match whole {
        Some(_) => cut_range(cache, parts, &key, outcome).await,
        None => outcome,
    }
}

/// The answer to a ranged miss, whose whole response was fetched: when that response is a
/// 200 being stored and small enough to hold, it is read whole and the range is served from
/// what was stored; anything else goes to the client as it is (a 200 for a `Range` is
/// allowed: RFC 9110 §14.2).
async fn cut_range(
    cache: &Arc<Cache>,
    parts: &http::request::Parts,
    key: &str,
    outcome: proxy::Outcome,
) -> proxy::Outcome {
    let response = &outcome.response;
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let stored = rules::storable(
        &Method::GET,
        &parts.headers,
        response.status(),
        response.headers(),
    )
    .is_ok();
    if response.status() != StatusCode::OK
        || !stored
        || length.is_none_or(|n| n > cache.memory_object_limit())
    {
        return outcome;
    }
    let (head, body) = outcome.response.into_parts();
    let Ok(collected) = http_body_util::BodyExt::collect(body).await else {
        return proxy::Outcome {
            response: error_page::response(StatusCode::BAD_GATEWAY),
            tunnel: None,
        };
    };
    let now = SystemTime::now();
    if let Lookup::Hit(object) = cache.lookup_memory(key, &parts.headers, now) {
        let mut outcome = served(parts, &object, now, false);
        if let Some(status) = head.headers.get(CACHE_STATUS) {
            outcome
                .response
                .headers_mut()
                .insert(CACHE_STATUS, status.clone());
        }
        return outcome;
    }
    proxy::Outcome {
        response: Response::from_parts(head, Body::full(collected.to_bytes())),
        tunnel: None,
    }
}

async fn forward(req: &Request<'_>, body: Option<Incoming>) -> proxy::Outcome {
    proxy::forward(req.backend, req.settings, req.client, req.parts, body).await
}

/// Forwards, and stores the response as its body streams to the client when RFC 9111
/// allows; the filler (if any) learns the outcome when the body ends.
async fn fetch(
    cache: &Arc<Cache>,
    req: &Request<'_>,
    key: &str,
    filler: Option<Filler>,
    body: Option<Incoming>,
    why: Fwd,
) -> proxy::Outcome {
    let request_time = SystemTime::now();
    let outcome = forward(req, body).await;
    let received = Received {
        request_time,
        response_time: SystemTime::now(),
    };
    if outcome.tunnel.is_some() {
        return outcome;
    }
    keep(cache, req, key, filler, outcome.response, received, why)
}

/// The client's response; stored on its way when it may be.
fn keep(
    cache: &Arc<Cache>,
    req: &Request<'_>,
    key: &str,
    filler: Option<Filler>,
    response: Response<Body>,
    received: Received,
    why: Fwd,
) -> proxy::Outcome {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    date_if_absent(&mut parts.headers, received);
    // A HEAD's answer (a validation or refresh sent as HEAD) has no body to store.
    let verdict = rules::storable(
        &req.parts.method,
        &req.parts.headers,
        status,
        &parts.headers,
    );
    let response = match verdict {
        Ok(()) => {
            // Stored without this answer's Cache-Status: each hit writes its own.
            let store = Store {
                cache: cache.clone(),
                key: key.to_string(),
                request: req.parts.headers.clone(),
                status,
                headers: parts.headers.clone(),
                received,
                filler,
            };
            store::hide_tags(&mut parts.headers);
            parts.headers.insert(
                CACHE_STATUS,
                fwd(why, Some(status.as_u16()), true, None).header_value(),
            );
            let limit = cache.memory_object_limit();
            let mut tee = Tee::new(body, limit, store);
            // An empty body (a 204, `Content-Length: 0`) may never be polled: store it now.
            if tee.inner.is_end_stream() {
                tee.finish();
            }
            Response::from_parts(parts, Body::stream(tee))
        }
        Err(reason) => {
            if let Some(filler) = filler {
                filler.finish(Outcome::NotStorable);
            }
            store::hide_tags(&mut parts.headers);
            parts.headers.insert(
                CACHE_STATUS,
                fwd(why, Some(status.as_u16()), false, Some(reason.as_str())).header_value(),
            );
            Response::from_parts(parts, body)
        }
    };
    proxy::Outcome {
        response,
        tunnel: None,
    }
}

/// §4.3: asks the origin whether the stale `object` is still good; a 304 refreshes and
/// serves it, an error may serve it stale (`stale-if-error`, `grace`), anything else
/// replaces it. A 304 that does not select the stored response (§4.3.4) updates nothing and
/// is not for the client, which did not ask conditionally: the request goes again, plain.
async fn validate(
    cache: &Arc<Cache>,
    req: &Request<'_>,
    key: &str,
    object: Arc<Object>,
    body: Incoming,
) -> proxy::Outcome {
    let conditional = req.parts.headers.contains_key(header::IF_NONE_MATCH)
        || req.parts.headers.contains_key(header::IF_MODIFIED_SINCE);
    let mut parts = req.parts.clone();
    if !conditional {
        parts.headers.extend(rules::validators(&object.headers));
    }
    let asking = Request {
        parts: &parts,
        ..*req
    };
    let request_time = SystemTime::now();
    let mut outcome = forward(&asking, Some(body)).await;
    let received = Received {
        request_time,
        response_time: SystemTime::now(),
    };
    let status = outcome.response.status();
    let now = SystemTime::now();
    if status == StatusCode::NOT_MODIFIED && !conditional {
        if !rules::validates(&object.headers, outcome.response.headers()) {
            return fetch(cache, req, key, None, None, Fwd::Stale).await;
        }
        date_if_absent(outcome.response.headers_mut(), received);
        // §4: successfully validated, so it answers this request whatever its freshness.
        let fresh = cache.refresh(&object, outcome.response.headers(), received);
        req.count(Counter::CacheStale);
        let mut outcome = served(req.parts, &fresh, now, false);
        mark(
            &mut outcome.response,
            fwd(Fwd::Stale, Some(304), true, None),
        );
        return outcome;
    }
    if status.is_server_error()
        && rules::stale_on_error(
            object.status,
            &object.headers,
            object.received,
            &req.parts.headers,
            now,
            cache.grace,
        )
    {
        req.count(Counter::CacheStale);
        return served(req.parts, &object, now, false);
    }
    req.count(Counter::CacheMiss);
    if conditional {
        return outcome;
    }
    keep(
        cache,
        req,
        key,
        None,
        outcome.response,
        received,
        Fwd::Stale,
    )
}

/// RFC 9110 §6.6.1: a response that came without `Date` gets the time it was received, before
/// it is stored or forwarded (the age calculation of §4.2.3 starts there).
fn date_if_absent(headers: &mut HeaderMap, received: Received) {
    if !headers.contains_key(header::DATE) {
        let date = httpdate::fmt_http_date(received.response_time);
        if let Ok(value) = header::HeaderValue::from_str(&date) {
            headers.insert(header::DATE, value);
        }
    }
}

/// RFC 5861: serve stale now, refresh once in the background (one per key: the coalescer).
fn refresh_in_background(cache: &Arc<Cache>, req: &Request<'_>, key: &str) {
    let Role::Fill(filler) = cache.coalescer.join(key) else {
        return;
    };
    let cache = cache.clone();
    let backend = req.backend.clone();
    let settings = req.settings.clone();
    let parts = req.parts.clone();
    let (peer, tls, limits) = (req.client.peer, req.client.tls, req.client.limits);
    let strip = req.client.strip.map(str::to_string);
    let (scheme, host, key) = (req.scheme, req.host.to_string(), key.to_string());
    tokio::spawn(async move {
        let client = Downstream {
            peer,
            tls,
            strip: strip.as_deref(),
            limits,
        };
        let req = Request {
            backend: &backend,
            settings: &settings,
            client: &client,
            parts: &parts,
            scheme,
            host: &host,
            counters: None,
        };
        let outcome = fetch(&cache, &req, &key, Some(filler), None, Fwd::Stale).await;
        // Read the body through so that the response is stored.
        let mut body = outcome.response.into_body();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if frame.is_err() {
                break;
            }
        }
    });
}

/// A stored response as the client gets it: `Age` and `Cache-Status` set, and the client's
/// own `If-None-Match`/`If-Modified-Since` (304) and `Range` (206, 416) answered from it
/// (RFC 9111 §4.3.2; RFC 9110 §13, §14). Only those preconditions are evaluated: `If-Match`
/// and `If-Unmodified-Since` are meant for the origin (§4.3.2).
fn served(
    req: &http::request::Parts,
    object: &Object,
    now: SystemTime,
    collapsed: bool,
) -> proxy::Outcome {
    let mut headers = object.headers.clone();
    headers.insert(header::AGE, store::age(object, now));
    let status = CacheStatus::Hit {
        ttl: store::ttl(object, now),
        collapsed,
    };
    headers.insert(CACHE_STATUS, status.header_value());
    let (status, body) = select(req, object, &mut headers);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    proxy::Outcome {
        response,
        tunnel: None,
    }
}

/// The status and body a stored response gives this request, its fields adjusted: 304 when
/// the client's own `If-None-Match`/`If-Modified-Since` say it has the response
/// (`rules::not_modified`, §4.3.2), else one range of a stored 200 (206, 416; `If-Range`
/// respected), else the whole response.
fn select(
    req: &http::request::Parts,
    object: &Object,
    headers: &mut HeaderMap,
) -> (StatusCode, Body) {
    if rules::not_modified(object.status, &object.headers, &req.headers) {
        headers.remove(header::CONTENT_LENGTH);
        return (StatusCode::NOT_MODIFIED, Body::Empty);
    }
    let full = (object.status, Body::full(object.body.clone()));
    if object.status != StatusCode::OK || !req.headers.contains_key(header::RANGE) {
        return full;
    }
    if !conditional::if_range_allows(&req.headers, &Validators::of(headers)) {
        return full;
    }
    let length = object.body.len() as u64;
    match range::from_headers(&req.method, &req.headers, length) {
        Ranges::Single(r) => {
            headers.insert(header::CONTENT_RANGE, r.content_range(length));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(r.len()));
            let body = object.body.slice(r.start as usize..=r.end as usize);
            (StatusCode::PARTIAL_CONTENT, Body::full(body))
        }
        Ranges::Unsatisfiable => {
            headers.insert(
                header::CONTENT_RANGE,
                range::unsatisfied_content_range(length),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
            (StatusCode::RANGE_NOT_SATISFIABLE, Body::Empty)
        }
        // Several ranges get the whole response, which RFC 9110 §14.2 allows.
        Ranges::Multiple(_) | Ranges::Ignore => full,
    }
}

fn fwd(why: Fwd, status: Option<u16>, stored: bool, detail: Option<&'static str>) -> CacheStatus {
    CacheStatus::Fwd {
        why,
        status,
        stored,
        detail,
    }
}

fn mark(response: &mut Response<Body>, status: CacheStatus) {
    response
        .headers_mut()
        .insert(CACHE_STATUS, status.header_value());
}

/// The path of a `Location`/`Content-Location` on the same origin (§4.4 invalidates only
/// those): a path, or an absolute URL with the request's scheme and host.
fn same_origin_path(location: &str, scheme: &str, host: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let rest = location.strip_prefix(scheme)?.strip_prefix("://")?;
    let rest = rest.strip_prefix(host)?;
    rest.starts_with('/').then(|| rest.to_string())
}

/// What to store when a teed body ends whole.
struct Store {
    cache: Arc<Cache>,
    key: String,
    request: HeaderMap,
    status: StatusCode,
    headers: HeaderMap,
    received: Received,
    filler: Option<Filler>,
}

/// A body passed to the client unchanged while a copy is collected for the cache (up to
/// `limit` bytes: a larger one is not stored); stored when it ends whole. A body that breaks
/// off or is dropped stores nothing and its filler reports `Abandoned`.
struct Tee {
    inner: Body,
    copy: BytesMut,
    limit: usize,
    store: Option<Store>,
}

impl Tee {
    fn new(inner: Body, limit: usize, store: Store) -> Tee {
        Tee {
            inner,
            copy: BytesMut::new(),
            limit,
            store: Some(store),
        }
    }
}

impl Tee {
    /// The body ended whole: store the copy and tell the waiters.
    fn finish(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let body = std::mem::take(&mut self.copy).freeze();
        let stored = store.cache.store(
            &store.key,
            &store.request,
            store.status,
            &store.headers,
            body,
            store.received,
        );
        if let Some(filler) = store.filler {
            filler.finish(if stored.is_ok() {
                Outcome::Stored
            } else {
                Outcome::NotStorable
            });
        }
    }
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.copy.len() + data.len() > this.limit {
                        if let Some(store) = this.store.take()
                            && let Some(filler) = store.filler
                        {
                            filler.finish(Outcome::NotStorable);
                        }
                    } else if this.store.is_some() {
                        this.copy.extend_from_slice(data);
                    }
                }
                // hyper stops polling a body of known length once it has it all, and any body
                // after its trailers (always the last frame), so the last frame may be the
                // last call: store now when the body says it ended.
                if this.inner.is_end_stream() || frame.is_trailers() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.store.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_locations_are_invalidated() {
        assert_eq!(
            same_origin_path("/a?b", "http", "x.test").as_deref(),
            Some("/a?b")
        );
        assert_eq!(
            same_origin_path("http://x.test/a", "http", "x.test").as_deref(),
            Some("/a")
        );
        assert_eq!(same_origin_path("http://y.test/a", "http", "x.test"), None);
        assert_eq!(same_origin_path("https://x.test/a", "http", "x.test"), None);
        assert_eq!(same_origin_path("//x.test/a", "http", "x.test"), None);
    }
}
