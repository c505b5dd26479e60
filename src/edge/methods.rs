//! Methods answered by the edge itself: OPTIONS (`Allow`, and `OPTIONS *` for the server),
//! TRACE (an echo of the request as `message/http`, off unless a route enables it; RFC 9110
//! §9.3.8), and which methods are known at all (unknown ones get 501, RFC 9110 §15.6.2).

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::http::Body;

/// Every method the server implements somewhere.
pub const SERVER_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE";

/// Fields never echoed by TRACE: they carry credentials (RFC 9110 §9.3.8).
const SECRET_FIELDS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// True for the methods of RFC 9110 and RFC 5789 (PATCH).
pub fn is_known(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    )
}

/// OPTIONS on a route: 204 with the route's `Allow`.
pub fn options(allow: &HeaderValue) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::NO_CONTENT;
    res.headers_mut().insert(header::ALLOW, allow.clone());
    res
}

/// `OPTIONS *`: the server's own methods (RFC 9110 §9.3.7).
pub fn options_star() -> Response<Body> {
    options(&HeaderValue::from_static(SERVER_METHODS))
}

/// TRACE: the request head as received, as a `message/http` body.
pub fn trace(parts: &http::request::Parts) -> Response<Body> {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut text = format!("{} {} {:?}\r\n", parts.method, target, parts.version);
    for (name, value) in &parts.headers {
        if SECRET_FIELDS.contains(&name.as_str()) {
            continue;
        }
        text.push_str(name.as_str());
        text.push_str(": ");
        text.push_str(&String::from_utf8_lossy(value.as_bytes()));
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut res = Response::new(Body::from(text));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/http"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_echoes_head_without_credentials() {
        let (parts, _) = http::Request::builder()
            .method("TRACE")
            .uri("/a?b=1")
            .header("x-one", "1")
            .header("cookie", "secret")
            .body(())
            .unwrap()
            .into_parts();
        let res = trace(&parts);
        let Body::Full(Some(bytes)) = res.body() else {
            panic!("expected a full body")
        };
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.starts_with("TRACE /a?b=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("x-one: 1\r\n"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn extension_methods_are_unknown() {
        assert!(!is_known(&Method::from_bytes(b"FOO").unwrap()));
        assert!(is_known(&Method::PATCH));
    }
}
