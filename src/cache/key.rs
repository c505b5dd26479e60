//! Cache keys (RFC 9111 §2, §4.1): the primary key is the client-facing scheme, host and
//! target, never an upstream address; secondary keys are the request fields a response
//! `Vary`s on, compared after normalization.
//!
//! Request fields that can change the response but are not in the key are the cache
//! poisoning risk; the proxy does not forward such fields (`X-Forwarded-Host` from clients,
//! for instance) unless they are in `Vary` — see the proxy's header rules.
//!
//! `Accept-Encoding` is compared by meaning, not by text: requests are grouped by the coding
//! they would get from a server offering br, zstd and gzip ([`encoding_group`]: `br`, `zstd`,
//! `gzip` or `identity`), and a stored variant answers a request of its group that also
//! accepts the stored response's own coding. So `gzip, deflate, br` and `br, gzip` share one
//! variant, an origin that never compresses (images) still gets one variant per group rather
//! than a miss per request, and no client ever gets a coding it did not accept. The group is
//! computable from the request alone, which lets the disk tier name a variant's file.

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
                let value = if name == header::ACCEPT_ENCODING {
                    Some(encoding_group(req).to_string())
                } else {
                    normalized(req, &name)
                };
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
                stored.as_deref() == Some(encoding_group(req))
                    && accepts(req, self.coding.as_deref())
            } else {
                normalized(req, name) == *stored
            }
        })
    }
}

/// The coding a server offering br, zstd and gzip would choose for this request, or
/// `identity`: the `Accept-Encoding` part of a variant.
pub fn encoding_group(req: &HeaderMap) -> &'static str {
    negotiate(req, &Coding::ALL)
        .first()
        .map_or("identity", |c| c.token())
}

/// Whether a request accepts a response in `coding` (`None` = identity, refused only by an
/// explicit `identity;q=0`).
fn accepts(req: &HeaderMap, coding: Option<&str>) -> bool {
    match coding {
        None => !refused(req, "identity"),
        Some(token) => match Coding::ALL.iter().find(|c| c.token() == token) {
            Some(known) => negotiate(req, &[*known]).contains(known),
            // A coding this server does not produce: accepted if named with q > 0.
            None => items(req).any(|(name, q)| name.eq_ignore_ascii_case(token) && q > 0.0),
        },
    }
}

/// True when `Accept-Encoding` gives `token` a weight of 0.
fn refused(req: &HeaderMap, token: &str) -> bool {
    items(req).any(|(name, q)| name.eq_ignore_ascii_case(token) && q == 0.0)
}

/// `(coding, q)` of each `Accept-Encoding` item.
fn items(req: &HeaderMap) -> impl Iterator<Item = (&str, f32)> {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            (name, q)
        })
}

/// A field's value for comparison (§4.1): every line joined with `, `, items trimmed, inner
/// runs of whitespace collapsed, case kept (only the field's own semantics could drop it).
pub fn normalized(req: &HeaderMap, name: &HeaderName) -> Option<String> {
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
    use crate::cache::test_headers as headers;

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
    fn accept_encoding_is_compared_by_group_and_the_coding_accepted() {
        let vary = ("vary", "accept-encoding");
        let ae = |v: &str| headers(&[("accept-encoding", v)]);
        let gzip = Variant::of(
            &ae("gzip, deflate"),
            &headers(&[vary, ("content-encoding", "gzip")]),
        );
        assert!(gzip.matches(&ae("deflate, gzip")));
        assert!(gzip.matches(&ae("GZIP;q=0.5")));
        assert!(
            !gzip.matches(&ae("br, gzip")),
            "the br group is another variant"
        );
        assert!(!gzip.matches(&ae("gzip;q=0")));
        assert!(!gzip.matches(&HeaderMap::new()));
        // An origin that never compresses: one identity variant per group, each reusable.
        let image_for_br = Variant::of(&ae("gzip, br"), &headers(&[vary]));
        assert!(image_for_br.matches(&ae("br")));
        assert!(!image_for_br.matches(&ae("gzip")));
        let identity = Variant::of(&HeaderMap::new(), &headers(&[vary]));
        assert!(identity.matches(&HeaderMap::new()));
        assert!(identity.matches(&ae("identity")));
        assert!(!identity.matches(&ae("gzip")));
        // A coding this server does not produce, in the identity group.
        let deflate = Variant::of(
            &ae("deflate"),
            &headers(&[vary, ("content-encoding", "deflate")]),
        );
        assert!(deflate.matches(&ae("deflate;q=0.8")));
        assert!(!deflate.matches(&ae("identity")));
        assert_eq!(encoding_group(&ae("gzip;q=0.5, br;q=0.4")), "gzip");
        assert_eq!(encoding_group(&ae("deflate")), "identity");
    }
}
