//! Static file responses (stub; being written).
use http::{Response, StatusCode, request::Parts};

use super::Settings;
use crate::http::Body;

/// Answers GET or HEAD for `path` (the raw request path, still percent-encoded, already
/// stripped of the route prefix when the settings say so) from the root in `settings`.
pub async fn serve(_req: &Parts, _path: &str, _settings: &Settings) -> Response<Body> {
    let mut res = Response::new(Body::from("not yet\n"));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}
