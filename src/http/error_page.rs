//! Small error responses: a status with a one-line HTML page ("404 Not Found"), and the
//! helpers that add what some statuses need (`Allow` for 405, `Location` for redirects).
//!
//! Called by `files::serve` for every error and, later, by the edge for limits and routing
//! errors. The page names only the status: no path, file name or error text reaches the client,
//! so nothing here can leak what the server holds. Pure functions; no I/O.

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderValue, Method, Response, StatusCode};

use crate::http::Body;

/// A response with `status` and a tiny HTML page naming it, with an exact `Content-Length`.
///
/// 1xx, 204 and 304 responses cannot carry content (RFC 9110 §6.4.1) and get an empty body.
pub fn response(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = status;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return res;
    }
    let page = page(status);
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    // The page is ours, but browsers must not sniff it into something else.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    *res.body_mut() = Body::full(page);
    res
}

/// 405 with `Allow` listing `allowed` (RFC 9110 §15.5.6: the server MUST send `Allow`).
pub fn method_not_allowed(allowed: &[Method]) -> Response<Body> {
    let list = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let res = response(StatusCode::METHOD_NOT_ALLOWED);
    match HeaderValue::from_str(&list) {
        Ok(value) => with_header(res, header::ALLOW, value),
        // Method names are tokens, always valid header text; an empty list stays empty.
        Err(_) => res,
    }
}

/// A redirect (`status` should be 3xx) to `location`, with a page linking nowhere: the
/// `Location` header is what clients follow (RFC 9110 §10.2.2).
pub fn redirect(status: StatusCode, location: HeaderValue) -> Response<Body> {
    with_header(response(status), header::LOCATION, location)
}

/// `res` with one more header, replacing any value of that name.
pub fn with_header(
    mut res: Response<Body>,
    name: HeaderName,
    value: HeaderValue,
) -> Response<Body> {
    res.headers_mut().insert(name, value);
    res
}

/// The page for a status: `<title>` and `<h1>` are both "404 Not Found".
fn page(status: StatusCode) -> Bytes {
    let reason = status.canonical_reason().unwrap_or("");
    let line = format!("{} {reason}", status.as_str());
    let line = line.trim_end();
    Bytes::from(format!(
        "<!DOCTYPE html>\n<html><head><title>{line}</title></head>\
         <body><h1>{line}</h1></body></html>\n"
    ))
}

const HTML: &str = "text/html; charset=utf-8";

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn not_found_page_names_the_status() {
        let res = response(StatusCode::NOT_FOUND);
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], HTML);
        let length: usize = res.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = text(res).await;
        assert!(body.contains("<h1>404 Not Found</h1>"), "{body}");
        assert_eq!(body.len(), length);
    }

    #[tokio::test]
    async fn not_modified_has_no_body_or_type() {
        let res = response(StatusCode::NOT_MODIFIED);
        assert!(res.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(text(res).await, "");
    }

    #[tokio::test]
    async fn unknown_status_has_a_page_without_reason() {
        let res = response(StatusCode::from_u16(599).unwrap());
        assert!(text(res).await.contains("<h1>599</h1>"));
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let res = method_not_allowed(&[Method::GET, Method::HEAD]);
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn redirect_sets_location() {
        let res = redirect(
            StatusCode::MOVED_PERMANENTLY,
            HeaderValue::from_static("/a/"),
        );
        assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(res.headers()[header::LOCATION], "/a/");
    }
}
