//! Cache keys (RFC 9111 §2, §4.1): the primary key is the client-facing scheme, host and
//! target, never an upstream address; secondary keys are the request fields a response
//! `Vary`s on, compared after normalization.
//!
//! Request fields that can change the response but are not in the key are the cache
//! poisoning risk; the proxy does not forward such fields (`X-Forwarded-Host` from clients,
//! for instance) unless they are in `Vary` — see the proxy's header rules.
//!
//! `Accept-Encoding` is compared by meaning, not by text: a stored response with a content
//! coding answers every request that accepts that coding, and an identity response answers
//! requests that accept none of br, zstd and gzip. So `gzip, deflate, br` and `br, gzip`
//! share one stored variant, and no client ever gets a coding it did not ask for.

use http::HeaderMap;
use http::header::{self, HeaderName};

use crate::http::compress::{Coding, negotiate};

/// The primary key: `scheme://host/path?query`, host lower-cased without a default port.
/// GET and HEAD share it (a HEAD is answered from a stored GET).
pub fn primary(scheme: &str, host: &str, path_and_query: &str) -> String {
    let host = host.to_ascii_lowercase();
    let host = match (scheme, host.rsplit_once(':')) {
        ("http", Some((name, "80"))) | ("https", Some((name, "443"))) => name.to_string(),
        _ => host,
    };
    let target = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    format!("{scheme}://{host}{target}")
}

/// What a stored response's variant was selected by: the normalized values of the request
/// fields its `Vary` names, and its content coding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variant {
    /// `(field, normalized value)`; `None` when the request had no such field.
    pub fields: Vec<(HeaderName, Option<String>)>,
    /// The response's `Content-Encoding`, lower-cased (`None` = identity).
    pub coding: Option<String>,
}

impl Variant {
    /// The variant of a response with headers `res` to a request with headers `req`.
    pub fn of(req: &HeaderMap, res: &HeaderMap) -> Variant {
        let fields = super::rules::vary_names(res)
            .into_iter()
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .map(|name| {
                let value = normalized(req, &name);
                (name, value)
            })
            .collect();
        let coding = res
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty() && v != "identity");
        Variant { fields, coding }
    }

    /// §4.1: whether this variant may answer a request with headers `req`.
    pub fn matches(&self, req: &HeaderMap) -> bool {
        self.fields.iter().all(|(name, stored)| {
            if name == header::ACCEPT_ENCODING {
                accepts(req, self.coding.as_deref())
            } else {
                normalized(req, name) == *stored
            }
        })
    }
}

/// Whether a request accepts a response in `coding` (`None` = identity, which answers only
/// requests that accept none of the codings origins commonly apply).
fn accepts(req: &HeaderMap, coding: Option<&str>) -> bool {
    match coding {
        None => negotiate(req, &Coding::ALL).is_empty(),
        Some(token) => match Coding::ALL.iter().find(|c| c.token() == token) {
            Some(known) => negotiate(req, &[*known]).contains(known),
            // A coding this server does not produce: accepted if named with q > 0.
            None => req
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|item| {
                    let mut parts = item.split(';');
                    let name = parts.next().unwrap_or("").trim();
                    let zero = parts.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
                    });
                    name.eq_ignore_ascii_case(token) && !zero
                }),
        },
    }
}

/// A field's value for comparison (§4.1): every line joined with `, `, items trimmed, inner
/// runs of whitespace collapsed, case kept (only the field's own semantics could drop it).
fn normalized(req: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut items = Vec::new();
    for value in req.get_all(name) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for item in text.split(',') {
            let item = item.split_whitespace().collect::<Vec<_>>().join(" ");
            if !item.is_empty() {
                items.push(item);
            }
        }
    }
    (!items.is_empty() || req.contains_key(name)).then(|| items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_primary_key_is_scheme_host_and_target() {
        assert_eq!(
            primary("http", "Example.COM:80", "/a?b=1"),
            "http://example.com/a?b=1"
        );
        assert_eq!(
            primary("https", "example.com:443", ""),
            "https://example.com/"
        );
        assert_eq!(
            primary("http", "example.com:8080", "/"),
            "http://example.com:8080/"
        );
        assert_ne!(
            primary("http", "a.test", "/"),
            primary("https", "a.test", "/")
        );
    }

    #[test]
    fn vary_fields_match_after_normalization() {
        let res = headers(&[("vary", "Accept-Language, X-Mode")]);
        let first = headers(&[("accept-language", "en,  fr"), ("x-mode", "a")]);
        let variant = Variant::of(&first, &res);
        assert!(variant.matches(&headers(&[
            ("accept-language", "en"),
            ("accept-language", "fr"),
            ("x-mode", "a")
        ])));
        assert!(!variant.matches(&headers(&[("accept-language", "en, fr"), ("x-mode", "b")])));
        // Absent and present differ.
        assert!(!variant.matches(&headers(&[("accept-language", "en, fr")])));
        let none = Variant::of(&HeaderMap::new(), &res);
        assert!(none.matches(&HeaderMap::new()));
        assert!(!none.matches(&headers(&[("x-mode", "a")])));
    }

    #[test]
    fn accept_encoding_is_compared_by_the_coding_accepted() {
        let vary = ("vary", "accept-encoding");
        let gzip = Variant::of(
            &headers(&[("accept-encoding", "gzip, deflate, br")]),
            &headers(&[vary, ("content-encoding", "gzip")]),
        );
        assert!(gzip.matches(&headers(&[("accept-encoding", "br, gzip")])));
        assert!(gzip.matches(&headers(&[("accept-encoding", "GZIP;q=0.5")])));
        assert!(!gzip.matches(&headers(&[("accept-encoding", "br")])));
        assert!(!gzip.matches(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!gzip.matches(&HeaderMap::new()));
        let identity = Variant::of(&HeaderMap::new(), &headers(&[vary]));
        assert!(identity.matches(&HeaderMap::new()));
        assert!(identity.matches(&headers(&[("accept-encoding", "identity")])));
        assert!(!identity.matches(&headers(&[("accept-encoding", "gzip")])));
        let deflate = Variant::of(
            &headers(&[("accept-encoding", "deflate")]),
            &headers(&[vary, ("content-encoding", "deflate")]),
        );
        assert!(deflate.matches(&headers(&[("accept-encoding", "gzip, deflate")])));
        assert!(!deflate.matches(&headers(&[("accept-encoding", "deflate;q=0, gzip")])));
    }
}
