//! The `httpbin` handler: a small built-in origin in the manner of httpbin.org, so that
//! proxying, load balancing and (later) caching can be tried without starting anything else.
//! The built-in demo serves it on its own loopback ports behind a proxied route.
//!
//! | path | answer |
//! |---|---|
//! | `/status/CODE` | that status (100–599) |
//! | `/delay/N` | the echo, after N seconds (at most 10) |
//! | `/cache/N` | JSON with the time it was made, `Cache-Control: public, max-age=N` |
//! | `/uuid` | a random UUID, `Cache-Control: no-store` |
//! | anything else | the echo: the request as JSON (method, path, query, headers, client and
//! |               | served-by addresses, body size and up to 64 KiB of it as text) |

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use crate::http::Body;

/// Longest `/delay/N`.
const MAX_DELAY_SECS: u64 = 10;

/// How much of a request body the echo shows.
pub const ECHO_BODY_BYTES: usize = 64 * 1024;

/// What the handler knows about a request beyond its head.
pub struct Exchange<'a> {
    pub peer: SocketAddr,
    /// The address that accepted the connection (which member answered).
    pub local: SocketAddr,
    /// The body's length, and its first [`ECHO_BODY_BYTES`].
    pub body_bytes: u64,
    pub body: &'a [u8],
}

/// Answers `parts` (the path is the whole request path).
pub async fn answer(parts: &http::request::Parts, exchange: &Exchange<'_>) -> Response<Body> {
    let path = parts.uri.path();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (first, rest) = (segments.next().unwrap_or(""), segments.next());
    match (first, rest.map(str::parse::<u64>)) {
        ("status", Some(Ok(code))) => status(code),
        ("delay", Some(Ok(secs))) => {
            tokio::time::sleep(Duration::from_secs(secs.min(MAX_DELAY_SECS))).await;
            echo(parts, exchange)
        }
        ("cache", Some(Ok(secs))) => cache(secs, exchange),
        ("uuid", None) => uuid(),
        _ => echo(parts, exchange),
    }
}

fn status(code: u64) -> Response<Body> {
    let Some(status) = u16::try_from(code)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return text(StatusCode::BAD_REQUEST, "a status is 100 to 599\n".into());
    };
    // 1xx, 204 and 304 have no content (RFC 9110 §15); hyper cannot send a 1xx alone.
    if status.is_informational() {
        return text(
            StatusCode::BAD_REQUEST,
            "portico cannot answer with a lone 1xx status\n".into(),
        );
    }
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = status;
        return response;
    }
    let reason = status.canonical_reason().unwrap_or("");
    text(status, format!("{} {reason}\n", status.as_u16()))
}

fn cache(secs: u64, exchange: &Exchange<'_>) -> Response<Body> {
    let now = SystemTime::now();
    let mut response = json_response(&json!({
        "made": httpdate::fmt_http_date(now),
        "max_age": secs,
        "served_by": exchange.local.to_string(),
    }));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={secs}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    response
}

fn uuid() -> Response<Body> {
    let mut response = json_response(&json!({ "uuid": random_uuid() }));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn echo(parts: &http::request::Parts, exchange: &Exchange<'_>) -> Response<Body> {
    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let args: BTreeMap<&str, &str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    let mut response = json_response(&json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "args": args,
        "headers": headers,
        "client": exchange.peer.to_string(),
        "served_by": exchange.local.to_string(),
        "body_bytes": exchange.body_bytes,
        "body": String::from_utf8_lossy(exchange.body),
    }));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    let mut response = Response::new(Body::full(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A version 4 UUID (RFC 9562 §5.4) from std's randomly keyed hasher; for a demo, not for
/// secrets.
fn random_uuid() -> String {
    let high = RandomState::new().hash_one(SystemTime::now());
    let low = RandomState::new().hash_one(high);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn parts(uri: &str) -> http::request::Parts {
        http::Request::get(uri)
            .header("x-test", "1")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn exchange() -> Exchange<'static> {
        Exchange {
            peer: "192.0.2.1:5000".parse().unwrap(),
            local: "127.0.0.1:8081".parse().unwrap(),
            body_bytes: 3,
            body: b"abc",
        }
    }

    async fn json_of(response: Response<Body>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn the_echo_shows_the_request() {
        let response = answer(&parts("/anything/x?a=1&b"), &exchange()).await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        let json = json_of(response).await;
        assert_eq!(json["path"], "/anything/x");
        assert_eq!(json["args"]["a"], "1");
        assert_eq!(json["args"]["b"], "");
        assert_eq!(json["headers"]["x-test"][0], "1");
        assert_eq!(json["served_by"], "127.0.0.1:8081");
        assert_eq!(json["body"], "abc");
    }

    #[tokio::test]
    async fn status_cache_and_uuid() {
        let response = answer(&parts("/status/418"), &exchange()).await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        let response = answer(&parts("/status/204"), &exchange()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(matches!(response.body(), Body::Empty));
        let response = answer(&parts("/status/999"), &exchange()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = answer(&parts("/cache/60"), &exchange()).await;
        assert_eq!(response.headers()["cache-control"], "public, max-age=60");
        let response = answer(&parts("/uuid"), &exchange()).await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        let uuid = json_of(response).await["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[tokio::test(start_paused = true)]
    async fn delays_are_capped() {
        let started = tokio::time::Instant::now();
        let response = answer(&parts("/delay/60"), &exchange()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(started.elapsed(), Duration::from_secs(MAX_DELAY_SECS));
    }
}
