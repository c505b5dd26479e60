//! Request fields that change what an origin answers but are not part of the cache key: the
//! way to poison a shared cache (one client's crafted field makes the origin answer
//! differently, and that answer is then served to everyone). Each such field is either made
//! part of the key or not forwarded on a cached route:
//!
//! - `X-Forwarded-Host`, `X-Forwarded-Proto` and `Forwarded` reach the origin only from a
//!   trusted proxy (`proxy::headers` replaces them for anyone else). From a trusted proxy they
//!   name the client-facing origin, so the key's scheme and host are taken from them.
//! - Fields that frameworks read to rewrite the URL, the method or the host
//!   ([`STRIPPED`]) are removed from GET and HEAD requests on a cached route: the key could
//!   not tell their answers apart, and nothing a cache may store depends on them legitimately.

use std::borrow::Cow;

use http::HeaderMap;
use http::header::HeaderName;

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Fields removed from cacheable requests before they are forwarded.
pub const STRIPPED: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The client-facing scheme and host of a request: what the connection says (`scheme`,
/// `host`), or, from a trusted proxy, what its `X-Forwarded-Proto`/`-Host` (else `Forwarded`)
/// say. Only the first (client-most) value of each counts; a scheme other than http or https
/// is ignored.
pub fn origin<'a>(
    headers: &'a HeaderMap,
    trusted: bool,
    scheme: &'static str,
    host: &'a str,
) -> (&'static str, Cow<'a, str>) {
    if !trusted {
        return (scheme, Cow::Borrowed(host));
    }
    let first = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded = |param: &str| {
        let element = first(&FORWARDED)?;
        element.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            name.eq_ignore_ascii_case(param)
                .then(|| value.trim_matches('"'))
        })
    };
    let proto = first(&X_FORWARDED_PROTO).or_else(|| forwarded("proto"));
    let scheme = match proto {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => scheme,
    };
    let host = first(&X_FORWARDED_HOST)
        .or_else(|| forwarded("host"))
        .map_or(Cow::Borrowed(host), |h| Cow::Owned(h.to_ascii_lowercase()));
    (scheme, host)
}

/// The request without the [`STRIPPED`] fields, when it has any.
pub fn strip(parts: &http::request::Parts) -> Option<http::request::Parts> {
    let has = |name: &&str| parts.headers.contains_key(*name);
    if !STRIPPED.iter().any(has) {
        return None;
    }
    let mut clean = parts.clone();
    for name in STRIPPED {
        clean.headers.remove(*name);
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::test_headers as headers;

    #[test]
    fn forwarding_fields_name_the_origin_only_from_a_trusted_proxy() {
        let h = headers(&[
            ("x-forwarded-host", "Shop.Example, inner.test"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            origin(&h, false, "http", "c.test"),
            ("http", "c.test".into())
        );
        assert_eq!(
            origin(&h, true, "http", "c.test"),
            ("https", "shop.example".into())
        );
        let f = headers(&[(
            "forwarded",
            "for=1.2.3.4;host=\"a.test\";proto=https, for=5.6.7.8",
        )]);
        assert_eq!(
            origin(&f, true, "http", "c.test"),
            ("https", "a.test".into())
        );
        let odd = headers(&[("x-forwarded-proto", "gopher")]);
        assert_eq!(
            origin(&odd, true, "http", "c.test"),
            ("http", "c.test".into())
        );
    }

    #[test]
    fn rewriting_fields_are_removed() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        assert!(strip(&parts).is_none());
        parts
            .headers
            .insert("x-original-url", "/admin".parse().unwrap());
        parts
            .headers
            .insert("x-http-method-override", "DELETE".parse().unwrap());
        parts.headers.insert("accept", "*/*".parse().unwrap());
        let clean = strip(&parts).unwrap();
        assert_eq!(clean.headers.len(), 1);
        assert!(clean.headers.contains_key("accept"));
    }
}
