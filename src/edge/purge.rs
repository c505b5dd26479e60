//! `PURGE` on a cached `proxy` route, as Varnish and nginx's cache_purge know it, and the
//! purge statuses it points to. Only clients in `[cache] purge_allow` (default loopback) may;
//! others get 403.
//!
//! - `PURGE /path?query` removes that URL (every `Vary` variant) from every worker's memory
//!   tier and the disk tier: 200 with the purge's JSON status when done within 2 s, else 202.
//! - `PURGE /prefix*` bans every URL of the host starting with `/prefix`; `PURGE` with a
//!   `Surrogate-Key` or `Cache-Tag` field naming one tag bans every response tagged so: 202
//!   Accepted at once, `Location: /.well-known/portico/purges/ID`.
//! - `GET /.well-known/portico/purges/ID` answers the purge's status on any host.
//!
//! The URL purged is the client-facing one: the scheme of the connection (or of an
//! absolute-form target) and the `Host` as written, as the cache keys it.

use http::header::HeaderName;
use http::{Method, Response, StatusCode};

use super::conn::ConnCtx;
use crate::admin;
use crate::cache::key::primary;
use crate::cache::memory::Matcher;
use crate::http::{Body, error_page};

/// Where purge statuses are read on the edge.
pub const STATUS_PATH: &str = "/.well-known/portico/purges/";

const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Whether `method` is `PURGE`.
pub fn is_purge(method: &Method) -> bool {
    method.as_str() == "PURGE"
}

/// Whether a request asks for a purge status (answered before any route).
pub fn is_status(parts: &http::request::Parts) -> bool {
    (parts.method == Method::GET || parts.method == Method::HEAD)
        && parts.uri.path().starts_with(STATUS_PATH)
}

/// Answers a `PURGE` for a cached route.
pub async fn purge(ctx: &ConnCtx, parts: &http::request::Parts) -> Response<Body> {
    if !allowed(ctx) {
        return error_page::response(StatusCode::FORBIDDEN);
    }
    let Some(client) = ctx.shared.purges() else {
        return error_page::response(StatusCode::SERVICE_UNAVAILABLE);
    };
    let matcher = match matcher(ctx, parts) {
        Ok(matcher) if crate::cache::purge::encode(&matcher).is_some() => matcher,
        Ok(_) => return plain(StatusCode::BAD_REQUEST, "no white space in a purged key\n"),
        Err(why) => return plain(StatusCode::BAD_REQUEST, why),
    };
    convert(admin::purge_answer(client, matcher, STATUS_PATH).await)
}

/// Answers `GET /.well-known/portico/purges/ID`.
pub async fn status(ctx: &ConnCtx, parts: &http::request::Parts) -> Response<Body> {
    if !allowed(ctx) {
        return error_page::response(StatusCode::FORBIDDEN);
    }
    let Some(client) = ctx.shared.purges() else {
        return error_page::response(StatusCode::NOT_FOUND);
    };
    let id = &parts.uri.path()[STATUS_PATH.len()..];
    convert(admin::status_answer(client, id).await)
}

fn allowed(ctx: &ConnCtx) -> bool {
    crate::net::in_networks(&ctx.shared.purge_allow, ctx.peer.ip())
}

/// What a `PURGE` request names.
fn matcher(ctx: &ConnCtx, parts: &http::request::Parts) -> Result<Matcher, &'static str> {
    let mut tags = parts
        .headers
        .get_all(SURROGATE_KEY)
        .iter()
        .chain(parts.headers.get_all(CACHE_TAG))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([' ', ',']))
        .filter(|t| !t.is_empty());
    if let Some(tag) = tags.next() {
        if tags.next().is_some() {
            return Err("name one tag per PURGE\n");
        }
        return Ok(Matcher::Tag(tag.to_string()));
    }
    let scheme = match parts.uri.scheme_str() {
        Some("https") => "https",
        Some(_) => "http",
        None if ctx.tls => "https",
        None => "http",
    };
    let host = super::router::raw_host(&parts.uri, &parts.headers).ok_or("no host\n")?;
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    Ok(match target.strip_suffix('*') {
        Some(prefix) => Matcher::Prefix(primary(scheme, host, prefix)),
        None => Matcher::Exact(primary(scheme, host, target)),
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::full(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The admin API's answer as an edge response.
fn convert(res: admin::Answer) -> Response<Body> {
    res.map(Body::full)
}
