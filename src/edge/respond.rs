//! The `respond` handler: a fixed status, headers and body from the configuration.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::settings::Respond;
use crate::http::Body;

/// The configured response; a body without a configured `Content-Type` is `text/plain`.
pub fn answer(settings: &Respond) -> Response<Body> {
    let no_body = settings.status.is_informational()
        || settings.status == StatusCode::NO_CONTENT
        || settings.status == StatusCode::NOT_MODIFIED;
    let body = if no_body {
        Body::Empty
    } else {
        Body::full(settings.body.clone())
    };
    let mut res = Response::new(body);
    *res.status_mut() = settings.status;
    *res.headers_mut() = settings.headers.clone();
    if !no_body && !settings.body.is_empty() && !res.headers().contains_key(header::CONTENT_TYPE) {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    res
}
