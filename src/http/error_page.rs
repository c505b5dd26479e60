//! Error responses: a short text page for a status code, with `Content-Type`.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::Body;

/// A small `text/plain` response saying the status, e.g. `404 Not Found`.
pub fn response(status: StatusCode) -> Response<Body> {
    let text = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut res = Response::new(Body::from(text));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_the_status() {
        let res = response(StatusCode::NOT_FOUND);
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    }
}
