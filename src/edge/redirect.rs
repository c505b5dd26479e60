//! The `redirect` handler: a status (301, 302, 303, 307, 308) and a `Location` built from the
//! route's template.

use http::Response;
use http::header::{self, HeaderValue};

use super::router::request_host;
use super::settings::{PathMatch, Redirect};
use crate::http::{Body, error_page};

/// Answers with the redirect; a target that is not a valid header value gives 500.
pub fn answer(
    settings: &Redirect,
    path_match: &PathMatch,
    parts: &http::request::Parts,
) -> Response<Body> {
    let target = expand(&settings.to, path_match, parts);
    let Ok(location) = HeaderValue::from_str(&target) else {
        return error_page::response(http::StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = settings.status;
    res.headers_mut().insert(header::LOCATION, location);
    res
}

/// Fills `{scheme}`, `{host}`, `{path}`, `{query}`, `{uri}` and `{suffix}` in a template.
pub fn expand(template: &str, path_match: &PathMatch, parts: &http::request::Parts) -> String {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let uri = parts.uri.path_and_query().map_or(path, |pq| pq.as_str());
    let host_with_port = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .or_else(|| request_host(parts).map(|h| h.into_owned()))
        .unwrap_or_default();
    let suffix = match path_match {
        PathMatch::Prefix(prefix) => path.get(prefix.len()..).unwrap_or(""),
        PathMatch::Exact(_) => "",
    };
    let scheme = parts.uri.scheme_str().unwrap_or("http");
    let mut out = String::with_capacity(template.len() + uri.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let value = match &after[1..close] {
            "scheme" => Some(scheme),
            "host" => Some(host_with_port.as_str()),
            "path" => Some(path),
            "query" => Some(query),
            "uri" => Some(uri),
            "suffix" => Some(suffix),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_placeholders_are_filled() {
        let (parts, _) = http::Request::builder()
            .uri("/old/page?x=1")
            .header("host", "example.com:8080")
            .body(())
            .unwrap()
            .into_parts();
        let prefix = PathMatch::Prefix("/old/".into());
        assert_eq!(
            expand("https://{host}{uri}", &prefix, &parts),
            "https://example.com:8080/old/page?x=1"
        );
        assert_eq!(
            expand("/new/{suffix}?{query}", &prefix, &parts),
            "/new/page?x=1"
        );
        assert_eq!(
            expand("{scheme}://{host}{path}{unknown}", &prefix, &parts),
            "http://example.com:8080/old/page{unknown}"
        );
    }
}
