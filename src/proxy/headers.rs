//! Header rules of forwarding, as plain functions over header maps.
//!
//! - Hop-by-hop fields (RFC 9110 §7.6.1) describe one connection and are never forwarded:
//!   `Connection` and every field it names, plus the fixed list Go's `httputil.ReverseProxy`
//!   also removes (`Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
//!   `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`).
//! - `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` (RFC 7239) tell the member about the
//!   client. Values that came with the request are kept (and `For` extended) only when the
//!   client is a trusted proxy; from anyone else they are replaced, so a client cannot pass
//!   itself off as another address.
//! - `Via` (RFC 9110 §7.6.3) gets `<version> portico` in both directions.
//! - `Location` and `Refresh` that point at the member's own address are rewritten to the
//!   address the client used, so no internal address leaks (nginx's `proxy_redirect default`).

use std::net::IpAddr;

use http::Version;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

/// Fields removed in both directions besides those `Connection` names.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether `name` is one of the fixed hop-by-hop fields (any case; not counting those a
/// `Connection` field names).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|n| n.as_str().eq_ignore_ascii_case(name))
}

/// The tokens of every `Connection` field line, trimmed (RFC 9110 §7.6.1).
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop fields: those `Connection` names, then the fixed list.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol a client asks to switch to (`Upgrade` with `Connection: upgrade`, HTTP/1.1
/// only, RFC 9110 §7.8).
pub fn upgrade_protocol(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let asked = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    asked
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// What the member is told about the client.
pub struct Client<'a> {
    pub ip: IpAddr,
    /// The client is a trusted proxy: its forwarding fields are kept.
    pub trusted: bool,
    /// `http` or `https`: how the client reached portico.
    pub proto: &'static str,
    /// The host the client asked for (`Host` or the authority), as sent.
    pub host: Option<&'a str>,
}

/// Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` for `client`.
pub fn add_forwarded(headers: &mut HeaderMap, client: &Client<'_>) {
    let ip = client.ip.to_string();
    let xff = if client.trusted {
        let earlier = joined(headers, &X_FORWARDED_FOR);
        if earlier.is_empty() {
            ip.clone()
        } else {
            format!("{earlier}, {ip}")
        }
    } else {
        ip.clone()
    };
    set(headers, X_FORWARDED_FOR, &xff);
    if !(client.trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        set(headers, X_FORWARDED_PROTO, client.proto);
    }
    if !(client.trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match client.host {
            Some(host) => set(headers, X_FORWARDED_HOST, host),
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    // RFC 7239 §4–§6: `for` is a node (IPv6 in brackets, quoted); `host` may hold a port, which
    // a token cannot, so it is quoted.
    let node = match client.ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut element = format!("for={node};proto={}", client.proto);
    if let Some(host) = client.host.filter(|h| !h.contains(['"', '\\'])) {
        element.push_str(&format!(";host=\"{host}\""));
    }
    let forwarded = if client.trusted {
        let earlier = joined(headers, &header::FORWARDED);
        if earlier.is_empty() {
            element
        } else {
            format!("{earlier}, {element}")
        }
    } else {
        element
    };
    set(headers, header::FORWARDED, &forwarded);
}

/// Appends `<version> portico` to `Via` (RFC 9110 §7.6.3).
pub fn add_via(headers: &mut HeaderMap, version: Version) {
    let ours = match version {
        Version::HTTP_09 => "0.9 portico",
        Version::HTTP_10 => "1.0 portico",
        Version::HTTP_2 => "2 portico",
        Version::HTTP_3 => "3 portico",
        _ => "1.1 portico",
    };
    if !headers.contains_key(header::VIA) {
        // The usual case: a static value, nothing formatted per request.
        headers.insert(header::VIA, HeaderValue::from_static(ours));
        return;
    }
    let earlier = joined(headers, &header::VIA);
    set(headers, header::VIA, &format!("{earlier}, {ours}"));
}

/// Where the client sees the member: how a URL on the member's address is rewritten.
pub struct Mapping<'a> {
    /// The member's `host:port`.
    pub member: &'a Authority,
    /// `http` or `https`, as the client came.
    pub scheme: &'a str,
    /// The host (and port) the client asked for.
    pub host: &'a str,
    /// With `strip_prefix`: the route's prefix without its trailing `/`, put back in front of
    /// paths; else empty.
    pub prefix: &'a str,
}

/// Rewrites `Location` and `Refresh` values that point at the member (RFC 9110 §10.2.2).
pub fn rewrite_redirects(headers: &mut HeaderMap, mapping: &Mapping<'_>) {
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
        && let Some(new) = rewrite_url(location, mapping)
        && let Ok(value) = HeaderValue::from_str(&new)
    {
        headers.insert(header::LOCATION, value);
    }
    let refresh = HeaderName::from_static("refresh");
    if let Some(value) = headers.get(&refresh).and_then(|v| v.to_str().ok())
        && let Some(new) = rewrite_refresh(value, mapping)
        && let Ok(value) = HeaderValue::from_str(&new)
    {
        headers.insert(refresh, value);
    }
}

/// A URL on the member's address (`http://member/…`, the port optional when it is 80), or a
/// path when a prefix was stripped, as the client must ask for it; `None` when it is neither.
pub fn rewrite_url(url: &str, mapping: &Mapping<'_>) -> Option<String> {
    if url.starts_with('/') && !url.starts_with("//") {
        return (!mapping.prefix.is_empty()).then(|| format!("{}{url}", mapping.prefix));
    }
    let rest = strip_prefix_ignore_case(url, "http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !same_authority(authority, mapping.member) {
        return None;
    }
    let path = if path.starts_with('/') || mapping.prefix.is_empty() {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some(format!(
        "{}://{}{}{}",
        mapping.scheme, mapping.host, mapping.prefix, path
    ))
}

/// `Refresh: 5; url=http://member/next`: the URL part rewritten.
pub fn rewrite_refresh(value: &str, mapping: &Mapping<'_>) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find("url=")? + 4;
    let url = value[at..].trim().trim_matches(['\'', '"']);
    let new = rewrite_url(url, mapping)?;
    Some(format!("{}{new}", &value[..at]))
}

/// Whether `authority` (from a URL, `host[:port]`) names the member.
fn same_authority(authority: &str, member: &Authority) -> bool {
    let Ok(authority) = authority.parse::<Authority>() else {
        return false;
    };
    authority.host().eq_ignore_ascii_case(member.host())
        && authority.port_u16().unwrap_or(80) == member.port_u16().unwrap_or(80)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Every value of `name`, joined with `, ` (a list field's values, RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: &HeaderName) -> String {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if let Ok(text) = value.to_str() {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(text);
        }
    }
    out
}

/// Replaces every value of `name` with `value` (dropped if it is not a valid field value).
fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept"]);
    }

    #[test]
    fn upgrade_needs_connection_upgrade_and_http_1_1() {
        let headers = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(
            upgrade_protocol(Version::HTTP_11, &headers).unwrap(),
            "websocket"
        );
        assert!(upgrade_protocol(Version::HTTP_10, &headers).is_none());
        assert!(upgrade_protocol(Version::HTTP_11, &map(&[("upgrade", "websocket")])).is_none());
    }

    fn client(trusted: bool) -> Client<'static> {
        Client {
            ip: "192.0.2.7".parse().unwrap(),
            trusted,
            proto: "https",
            host: Some("example.com:8443"),
        }
    }

    #[test]
    fn untrusted_clients_forwarding_fields_are_replaced() {
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "evil.test"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        add_forwarded(&mut headers, &client(false));
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "example.com:8443");
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.7;proto=https;host=\"example.com:8443\""
        );
    }

    #[test]
    fn trusted_proxies_fields_are_kept_and_extended() {
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("x-forwarded-proto", "http"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        add_forwarded(&mut headers, &client(true));
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "example.com:8443");
        assert_eq!(
            headers["forwarded"],
            "for=1.2.3.4, for=192.0.2.7;proto=https;host=\"example.com:8443\""
        );
    }

    #[test]
    fn ipv6_clients_are_bracketed_and_quoted_in_forwarded() {
        let mut headers = HeaderMap::new();
        let c = Client {
            ip: "2001:db8::1".parse().unwrap(),
            trusted: false,
            proto: "http",
            host: None,
        };
        add_forwarded(&mut headers, &c);
        assert_eq!(headers["x-forwarded-for"], "2001:db8::1");
        assert_eq!(headers["forwarded"], "for=\"[2001:db8::1]\";proto=http");
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn via_is_appended() {
        let mut headers = map(&[("via", "1.1 cdn")]);
        add_via(&mut headers, Version::HTTP_2);
        assert_eq!(headers["via"], "1.1 cdn, 2 portico");
        let mut headers = HeaderMap::new();
        add_via(&mut headers, Version::HTTP_11);
        assert_eq!(headers["via"], "1.1 portico");
    }

    #[test]
    fn redirects_to_the_member_point_at_the_client_facing_address() {
        let member: Authority = "10.0.0.5:8080".parse().unwrap();
        let plain = Mapping {
            member: &member,
            scheme: "https",
            host: "example.com",
            prefix: "",
        };
        let rewrite = |url| rewrite_url(url, &plain);
        assert_eq!(
            rewrite("http://10.0.0.5:8080/login?next=/").as_deref(),
            Some("https://example.com/login?next=/")
        );
        assert_eq!(
            rewrite("HTTP://10.0.0.5:8080").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(rewrite("http://10.0.0.6:8080/"), None);
        assert_eq!(rewrite("http://10.0.0.5/"), None);
        assert_eq!(rewrite("https://elsewhere.test/"), None);
        assert_eq!(rewrite("/relative"), None);
        let port80: Authority = "app.internal:80".parse().unwrap();
        let stripped = Mapping {
            member: &port80,
            scheme: "http",
            host: "example.com:8080",
            prefix: "/app",
        };
        assert_eq!(
            rewrite_url("http://app.internal/x", &stripped).as_deref(),
            Some("http://example.com:8080/app/x")
        );
        assert_eq!(rewrite_url("/x", &stripped).as_deref(), Some("/app/x"));
        assert_eq!(rewrite_url("//cdn.test/x", &stripped), None);
        let mut headers = map(&[
            ("location", "http://app.internal/next"),
            ("refresh", "5; url=http://app.internal/later"),
        ]);
        rewrite_redirects(&mut headers, &stripped);
        assert_eq!(headers["location"], "http://example.com:8080/app/next");
        assert_eq!(
            headers["refresh"],
            "5; url=http://example.com:8080/app/later"
        );
    }
}
