//! Resolves `[[upstream]]` into `proxy::Upstream` (with its `lb::Settings`), a route's
//! `proxy = { ... }` into `proxy::Settings`, and a site's `[site.forward_proxy]` into
//! `proxy::ForwardProxy`.
//!
//! Upstreams are resolved before sites, so a route naming an upstream that does not exist is
//! reported at the route's `upstream` key.

use std::net::IpAddr;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderName, HeaderValue, StatusCode};
use ipnet::IpNet;
use toml::Spanned;

use super::limits::{count, duration, override_with};
use super::{Context, Problem};
use crate::config::schema;
use crate::lb;
use crate::proxy;

/// Every upstream, in order; their names go into the context for the routes.
pub(super) fn upstreams(
    cx: &mut Context<'_>,
    raw: &[Spanned<schema::Upstream>],
) -> Vec<proxy::Upstream> {
    let mut names: Vec<String> = Vec::new();
    let mut resolved = Vec::new();
    for upstream in raw {
        let name = match &upstream.get_ref().name {
            Some(name) if name.get_ref().trim().is_empty() => {
                cx.error(name.span(), "the upstream `name` is empty");
                None
            }
            Some(name) if names.contains(name.get_ref()) => {
                cx.error_with_hint(
                    name.span(),
                    format!("upstream `{}` is defined twice", name.get_ref()),
                    "give each [[upstream]] its own name",
                );
                None
            }
            Some(name) => Some(name.get_ref().clone()),
            None => {
                cx.error_with_hint(
                    upstream.span(),
                    "an [[upstream]] has no `name`",
                    "add name = \"app\"; routes name it with proxy = { upstream = \"app\" }",
                );
                None
            }
        };
        if let Some(name) = &name {
            names.push(name.clone());
        }
        resolved.push(self::upstream(cx, name.unwrap_or_default(), upstream));
    }
    cx.upstreams = names;
    // A `None` was reported, so the whole resolution fails; indexes need not match then.
    resolved.into_iter().flatten().collect()
}

fn upstream(
    cx: &mut Context<'_>,
    name: String,
    raw: &Spanned<schema::Upstream>,
) -> Option<proxy::Upstream> {
    let table = raw.get_ref();
    let members = servers(cx, raw);
    let policy = policy(cx, table);
    let sticky_cookie = table
        .sticky_cookie
        .as_ref()
        .and_then(|c| cookie_name(cx, c));
    let active = table.health.as_ref().and_then(|h| health(cx, h));
    let mut passive = lb::PassiveHealth::default();
    if let Some(max_fails) = whole(cx, "max_fails", &table.max_fails, 0..=1000) {
        passive.max_fails = max_fails;
    }
    override_with(
        &mut passive.fail_timeout,
        duration(cx, "fail_timeout", &table.fail_timeout),
    );
    let mut timeouts = proxy::Timeouts::default();
    override_with(
        &mut timeouts.connect,
        duration(cx, "connect_timeout", &table.connect_timeout),
    );
    override_with(
        &mut timeouts.first_byte,
        duration(cx, "first_byte_timeout", &table.first_byte_timeout),
    );
    override_with(
        &mut timeouts.idle,
        duration(cx, "idle_timeout", &table.idle_timeout),
    );
    let pool = lb::Settings {
        name,
        members: members?,
        policy: policy?,
        sticky_cookie,
        active,
        passive,
    };
    let mut upstream = proxy::Upstream::new(pool);
    upstream.timeouts = timeouts;
    if let Some(retries) = whole(cx, "retries", &table.retries, 0..=10) {
        upstream.retries = retries;
    }
    if let Some(keepalive) = whole(cx, "keepalive", &table.keepalive, 0..=100_000) {
        upstream.keepalive = keepalive as usize;
    }
    override_with(
        &mut upstream.keepalive_timeout,
        duration(cx, "keepalive_timeout", &table.keepalive_timeout),
    );
    upstream.http2 = table.http2.unwrap_or(false);
    Some(upstream)
}

/// `servers`: at least one, each `host:port` with a weight of 1 to 100.
fn servers(
    cx: &mut Context<'_>,
    raw: &Spanned<schema::Upstream>,
) -> Option<Vec<lb::MemberSettings>> {
    let Some(servers) = &raw.get_ref().servers else {
        cx.error_with_hint(
            raw.span(),
            "the upstream has no `servers`",
            "add servers = [\"127.0.0.1:9000\"]",
        );
        return None;
    };
    if servers.get_ref().is_empty() {
        cx.error_with_hint(
            servers.span(),
            "`servers` is empty",
            "list at least one \"host:port\"",
        );
        return None;
    }
    let mut members = Vec::new();
    let mut valid = true;
    for entry in servers.get_ref() {
        let (addr, span, weight) = match entry.get_ref() {
            schema::UpstreamServer::Addr(addr) => (addr.as_str(), entry.span(), None),
            schema::UpstreamServer::Table(table) => match &table.addr {
                Some(addr) => (addr.get_ref().as_str(), addr.span(), table.weight.as_ref()),
                None => {
                    cx.error_with_hint(
                        entry.span(),
                        "a server has no `addr`",
                        "write { addr = \"127.0.0.1:9000\", weight = 2 }",
                    );
                    valid = false;
                    continue;
                }
            },
        };
        let weight = match weight {
            None => Some(1),
            Some(w) => match u32::try_from(*w.get_ref()) {
                Ok(w @ 1..=100) => Some(w),
                _ => {
                    cx.error(w.span(), "a server's `weight` is 1 to 100");
                    None
                }
            },
        };
        match (member_address(addr), weight) {
            (Ok(authority), Some(weight)) => {
                if members
                    .iter()
                    .any(|m: &lb::MemberSettings| m.authority == authority)
                {
                    cx.error(span, format!("server `{addr}` is listed twice"));
                    valid = false;
                } else {
                    members.push(lb::MemberSettings { authority, weight });
                }
            }
            (Err(problem), _) => {
                cx.report(Some(span), problem);
                valid = false;
            }
            (_, None) => valid = false,
        }
    }
    valid.then_some(members)
}

/// `host:port` or `http://host:port[/]`: the member's authority.
pub(super) fn member_address(text: &str) -> Result<Authority, Problem> {
    let text = text.trim();
    let hint = "write \"127.0.0.1:9000\", \"http://app.internal:8080\" or \"[::1]:9000\"";
    let bare = if let Some(rest) = text.strip_prefix("http://") {
        rest.strip_suffix('/').unwrap_or(rest)
    } else if text.contains("://") {
        return Err(
            Problem::new(format!("`{text}`: only http:// members are supported")).with_hint(
                "TLS to origins is not built yet; reach the member over plain HTTP on a private network",
            ),
        );
    } else {
        text
    };
    let invalid = || Problem::new(format!("`{text}` is not a host and port")).with_hint(hint);
    if bare.is_empty() || bare.contains(['/', '@', '?', '#']) {
        return Err(invalid());
    }
    let authority: Authority = bare.parse().map_err(|_| invalid())?;
    let with_port = match authority.port_u16() {
        Some(0) => return Err(invalid()),
        Some(_) => authority,
        None if text.starts_with("http://") => {
            format!("{bare}:80").parse().map_err(|_| invalid())?
        }
        None => {
            return Err(Problem::new(format!("`{text}` has no port"))
                .with_hint(format!("write \"{bare}:80\" or \"http://{bare}\"")));
        }
    };
    Ok(with_port)
}

/// `policy` and `hash_key`.
fn policy(cx: &mut Context<'_>, table: &schema::Upstream) -> Option<lb::Policy> {
    let name = table.policy.as_ref().map(|p| p.get_ref().as_str());
    let policy = match name {
        None | Some("round_robin") => lb::Policy::RoundRobin,
        Some("least_conn") => lb::Policy::LeastConn,
        Some("p2c") => lb::Policy::P2c,
        Some("hash") => {
            let key = match &table.hash_key {
                None => Some(lb::HashKey::Uri),
                Some(key) => match hash_key(key.get_ref()) {
                    Ok(key) => Some(key),
                    Err(problem) => {
                        cx.report(Some(key.span()), problem);
                        None
                    }
                },
            };
            lb::Policy::Hash(key?)
        }
        Some(other) => {
            let span = table.policy.as_ref().map(Spanned::span);
            cx.report(
                span,
                Problem::new(format!("unknown policy `{other}`"))
                    .with_hint("use \"round_robin\", \"least_conn\", \"hash\" or \"p2c\""),
            );
            return None;
        }
    };
    if let Some(key) = &table.hash_key
        && !matches!(policy, lb::Policy::Hash(_))
    {
        cx.error_with_hint(
            key.span(),
            "`hash_key` is only used with policy = \"hash\"",
            "add policy = \"hash\", or remove `hash_key`",
        );
        return None;
    }
    Some(policy)
}

/// `uri`, `client_ip`, `header:NAME`, `cookie:NAME`.
pub(super) fn hash_key(text: &str) -> Result<lb::HashKey, Problem> {
    let hint = "use \"uri\", \"client_ip\", \"header:X-User\" or \"cookie:session\"";
    match text.split_once(':') {
        None if text == "uri" => Ok(lb::HashKey::Uri),
        None if text == "client_ip" => Ok(lb::HashKey::ClientIp),
        Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
            .map(lb::HashKey::Header)
            .map_err(|_| {
                Problem::new(format!("`{name}` is not a valid header name")).with_hint(hint)
            }),
        Some(("cookie", name)) if is_token(name) => Ok(lb::HashKey::Cookie(name.to_string())),
        _ => Err(Problem::new(format!("unknown hash key `{text}`")).with_hint(hint)),
    }
}

fn cookie_name(cx: &mut Context<'_>, raw: &Spanned<String>) -> Option<String> {
    if is_token(raw.get_ref()) {
        Some(raw.get_ref().clone())
    } else {
        cx.error_with_hint(
            raw.span(),
            format!("`{}` is not a valid cookie name", raw.get_ref()),
            "a cookie name is letters, digits and `-_.!#$%&'*+^`|~`",
        );
        None
    }
}

/// RFC 9110 §5.6.2 `token` (a cookie name is one, RFC 6265 §4.1.1).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `[upstream.health]`.
fn health(cx: &mut Context<'_>, raw: &Spanned<schema::Health>) -> Option<lb::ActiveHealth> {
    let table = raw.get_ref();
    let path = match &table.path {
        None => Some("/".to_string()),
        Some(path) => {
            let text = path.get_ref();
            if text.starts_with('/') && text.bytes().all(|b| b.is_ascii_graphic()) {
                Some(text.clone())
            } else {
                cx.error_with_hint(
                    path.span(),
                    format!("`{text}` is not a request path"),
                    "write a path such as \"/healthz\"",
                );
                None
            }
        }
    };
    let status = table.status.as_ref().and_then(|status| {
        let code = *status.get_ref();
        let valid = u16::try_from(code)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .and_then(|c| StatusCode::from_u16(c).ok());
        if valid.is_none() {
            cx.error(status.span(), format!("{code} is not an HTTP status"));
        }
        valid
    });
    let mut health = lb::ActiveHealth {
        path: path?,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        status,
        rise: 2,
        fall: 3,
    };
    override_with(
        &mut health.interval,
        duration(cx, "interval", &table.interval),
    );
    override_with(&mut health.timeout, duration(cx, "timeout", &table.timeout));
    if let Some(rise) = count(cx, "rise", &table.rise) {
        health.rise = u32::try_from(rise).unwrap_or(u32::MAX);
    }
    if let Some(fall) = count(cx, "fall", &table.fall) {
        health.fall = u32::try_from(fall).unwrap_or(u32::MAX);
    }
    Some(health)
}

/// A route's `proxy = { ... }`.
pub(super) fn proxy(cx: &mut Context<'_>, raw: &Spanned<schema::Proxy>) -> Option<proxy::Settings> {
    let table = raw.get_ref();
    let upstream = match &table.upstream {
        None => {
            cx.error_with_hint(
                raw.span(),
                "`proxy` has no `upstream`",
                "add upstream = \"NAME\", the name of an [[upstream]]",
            );
            None
        }
        Some(name) => {
            let found = cx.upstreams.iter().position(|n| n == name.get_ref());
            if found.is_none() {
                let known = if cx.upstreams.is_empty() {
                    "there is no [[upstream]] yet".to_string()
                } else {
                    format!("known upstreams: {}", cx.upstreams.join(", "))
                };
                cx.error_with_hint(
                    name.span(),
                    format!("no upstream is named `{}`", name.get_ref()),
                    known,
                );
            }
            found
        }
    };
    let host = match &table.host {
        None => Some(proxy::HostHeader::Pass),
        Some(host) => match host.get_ref().as_str() {
            "pass" => Some(proxy::HostHeader::Pass),
            "upstream" => Some(proxy::HostHeader::Upstream),
            text => match HeaderValue::from_str(text) {
                Ok(value) if !text.trim().is_empty() => Some(proxy::HostHeader::Fixed(value)),
                _ => {
                    cx.error_with_hint(
                        host.span(),
                        format!("`{text}` cannot be a Host value"),
                        "use \"pass\", \"upstream\" or a host name such as \"app.internal\"",
                    );
                    None
                }
            },
        },
    };
    let trusted = networks(cx, table.trusted_proxies.as_deref().unwrap_or_default());
    Some(proxy::Settings {
        upstream: upstream?,
        host: host?,
        strip_prefix: table.strip_prefix.unwrap_or(false),
        trusted_proxies: proxy::TrustedProxies(trusted),
        cache: table.cache.unwrap_or(false),
    })
}

/// `10.0.0.0/8`, `192.0.2.1` (a /32), `2001:db8::/32`, `::1`.
/// A list of addresses and CIDR ranges, each mistake reported at its place.
pub(super) fn networks(cx: &mut Context<'_>, list: &[Spanned<String>]) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for entry in list {
        match network(entry.get_ref()) {
            Some(net) => nets.push(net),
            None => cx.error_with_hint(
                entry.span(),
                format!("`{}` is not an address or CIDR range", entry.get_ref()),
                "write \"10.0.0.0/8\", \"192.0.2.1\" or \"2001:db8::/32\"",
            ),
        }
    }
    nets
}

fn network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A site's `[site.forward_proxy]`.
pub(super) fn forward_proxy(
    cx: &mut Context<'_>,
    raw: &Spanned<schema::ForwardProxy>,
) -> Option<proxy::ForwardProxy> {
    let table = raw.get_ref();
    let hint = "write allow = [\"example.com:443\", \"*.example.org:443\", \"10.0.0.0/8:*\"]";
    let mut allow = Vec::new();
    let mut valid = true;
    match &table.allow {
        None => {
            cx.error_with_hint(raw.span(), "`forward_proxy` has no `allow`", hint);
            valid = false;
        }
        Some(list) if list.is_empty() => {
            cx.error_with_hint(
                raw.span(),
                "`allow` is empty, so every target is refused",
                hint,
            );
            valid = false;
        }
        Some(list) => {
            for entry in list {
                match allow_rule(entry.get_ref()) {
                    Ok(rule) => allow.push(rule),
                    Err(problem) => {
                        cx.report(Some(entry.span()), problem);
                        valid = false;
                    }
                }
            }
        }
    }
    let mut forward = proxy::ForwardProxy {
        allow,
        idle_timeout: Duration::from_secs(300),
        connect_timeout: Duration::from_secs(10),
    };
    override_with(
        &mut forward.idle_timeout,
        duration(cx, "idle_timeout", &table.idle_timeout),
    );
    override_with(
        &mut forward.connect_timeout,
        duration(cx, "connect_timeout", &table.connect_timeout),
    );
    valid.then_some(forward)
}

/// `host:port` of the allow-list: `*`, a name, `*.suffix`, an address or CIDR range (IPv6 in
/// brackets); the port a number or `*`.
pub(super) fn allow_rule(text: &str) -> Result<proxy::AllowRule, Problem> {
    let invalid = |why: &str| {
        Problem::new(format!("`{text}` {why}")).with_hint(
            "write \"example.com:443\", \"*.example.com:443\", \"10.0.0.0/8:*\" or \"[::1]:22\"",
        )
    };
    let (host, port) = text
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| invalid("needs a host and a port"))?;
    let port = match port {
        "*" => None,
        digits => match digits.parse::<u16>() {
            Ok(p) if p != 0 => Some(p),
            _ => return Err(invalid("has an invalid port")),
        },
    };
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if bracketed.is_none() && host.contains(':') {
        return Err(invalid("needs brackets around an IPv6 address"));
    }
    let bare = bracketed.unwrap_or(host);
    let host = if bare == "*" {
        proxy::AllowHost::Any
    } else if let Some(net) = network(bare) {
        proxy::AllowHost::Net(net)
    } else if bare.contains([':', '/']) {
        return Err(invalid("has an invalid address"));
    } else if let Some(suffix) = bare.strip_prefix("*.") {
        name_ok(suffix).ok_or_else(|| invalid("has an invalid host name"))?;
        proxy::AllowHost::Suffix(format!(".{}", suffix.to_ascii_lowercase()))
    } else {
        name_ok(bare).ok_or_else(|| invalid("has an invalid host name"))?;
        proxy::AllowHost::Name(bare.to_ascii_lowercase())
    };
    Ok(proxy::AllowRule { host, port })
}

/// A DNS name: labels of letters, digits, `-` and `_`.
fn name_ok(name: &str) -> Option<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(())
}

/// A whole number in `range`; `None` when absent or reported.
fn whole(
    cx: &mut Context<'_>,
    key: &str,
    value: &Option<Spanned<i64>>,
    range: std::ops::RangeInclusive<u32>,
) -> Option<u32> {
    let value = value.as_ref()?;
    match u32::try_from(*value.get_ref()) {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            cx.error(
                value.span(),
                format!("`{key}` is {} to {}", range.start(), range.end()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_addresses_are_host_and_port() {
        assert_eq!(member_address("127.0.0.1:9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(
            member_address("http://app.internal").unwrap(),
            "app.internal:80"
        );
        assert_eq!(member_address("http://[::1]:81/").unwrap(), "[::1]:81");
        assert!(member_address("app.internal").is_err());
        assert!(member_address("https://app:443").is_err());
        assert!(member_address("http://app:80/path").is_err());
        assert!(member_address("127.0.0.1:0").is_err());
        assert!(member_address("").is_err());
    }

    #[test]
    fn hash_keys() {
        assert_eq!(hash_key("uri").unwrap(), lb::HashKey::Uri);
        assert_eq!(hash_key("client_ip").unwrap(), lb::HashKey::ClientIp);
        assert_eq!(
            hash_key("header:X-User").unwrap(),
            lb::HashKey::Header(HeaderName::from_static("x-user"))
        );
        assert_eq!(
            hash_key("cookie:sid").unwrap(),
            lb::HashKey::Cookie("sid".into())
        );
        assert!(hash_key("header:").is_err());
        assert!(hash_key("query:x").is_err());
    }

    #[test]
    fn allow_rules() {
        use proxy::AllowHost;
        let rule = allow_rule("Example.com:443").unwrap();
        assert_eq!(rule.host, AllowHost::Name("example.com".into()));
        assert_eq!(rule.port, Some(443));
        assert_eq!(
            allow_rule("*.example.com:*").unwrap().host,
            AllowHost::Suffix(".example.com".into())
        );
        assert_eq!(allow_rule("*:443").unwrap().host, AllowHost::Any);
        assert_eq!(
            allow_rule("10.0.0.0/8:22").unwrap().host,
            AllowHost::Net("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            allow_rule("[::1]:22").unwrap().host,
            AllowHost::Net("::1/128".parse().unwrap())
        );
        for bad in [
            "example.com",
            ":443",
            "example.com:0",
            "example.com:x",
            "a b:1",
            "::1:22",
        ] {
            assert!(allow_rule(bad).is_err(), "{bad} was accepted");
        }
    }
}
