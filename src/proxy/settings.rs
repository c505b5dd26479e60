//! The resolved settings of forwarding: upstreams (a pool with its timeouts, retries and
//! connection reuse), a route's `proxy` handler, and a site's forward proxy (CONNECT). Built
//! by `config` (or directly in tests); every value here is already valid.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::lb;

/// An upstream: a pool of origin servers and how requests to it are made.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The members and how one is chosen (the name is the pool's).
    pub pool: lb::Settings,
    pub timeouts: Timeouts,
    /// How many other members a failed request may be tried on (idempotent requests, or any
    /// request that never reached a member). Default 1.
    pub retries: u32,
    /// Idle connections kept open per member, per worker. Default 256: more requests in flight than idle connections kept
    /// means a new connection (and a closed one) for the surplus at every burst.
    pub keepalive: usize,
    /// How long an idle kept connection stays open. Default 60 s.
    pub keepalive_timeout: Duration,
    /// Speak HTTP/2 (with prior knowledge, h2c) to the members instead of HTTP/1.1.
    pub http2: bool,
}

/// Timeouts of a request to a member. Defaults follow nginx's `proxy_*_timeout` where it has
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection. Default 5 s.
    pub connect: Duration,
    /// From the end of the request (its last body byte) to the response head. Default 60 s.
    pub first_byte: Duration,
    /// Longest pause between two pieces of the response body, or while the member does not
    /// take the request body. Default 60 s.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

impl Upstream {
    /// An upstream over `pool` with the default timeouts and reuse.
    pub fn new(pool: lb::Settings) -> Self {
        Upstream {
            pool,
            timeouts: Timeouts::default(),
            retries: 1,
            keepalive: 256,
            keepalive_timeout: Duration::from_secs(60),
            http2: false,
        }
    }
}

/// A route's `proxy` handler.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The upstream, as an index into `edge::Settings::upstreams`.
    pub upstream: usize,
    /// The `Host` the member receives.
    pub host: HostHeader,
    /// Send the path after the route's prefix instead of the whole path.
    pub strip_prefix: bool,
    /// Clients whose `X-Forwarded-*` and `Forwarded` fields are kept (and extended); from any
    /// other client they are replaced.
    pub trusted_proxies: TrustedProxies,
    /// Responses go through the shared cache (`edge::Settings::cache`).
    pub cache: bool,
}

/// Which `Host` a member receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The client's, as it came (Caddy's default).
    Pass,
    /// The member's own `host:port` (nginx's default).
    Upstream,
    /// A fixed value.
    Fixed(http::HeaderValue),
}

/// Address ranges of proxies in front of portico whose forwarding fields are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        crate::net::in_networks(&self.0, ip)
    }
}

/// A site's forward proxy: CONNECT tunnels and absolute-form requests to the targets the
/// allow-list names.
#[derive(Debug, Clone)]
pub struct ForwardProxy {
    /// Targets a client may reach; anything else is refused with 403.
    pub allow: Vec<AllowRule>,
    /// A tunnel with no byte in either direction for this long is closed. Default 5 min.
    pub idle_timeout: Duration,
    /// To open the connection to the target. Default 10 s.
    pub connect_timeout: Duration,
}

/// One allow-list entry: a host pattern and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    pub host: AllowHost,
    /// `None`: any port.
    pub port: Option<u16>,
}

/// The host part of an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowHost {
    /// Any host (`*`).
    Any,
    /// This name, lower-case.
    Name(String),
    /// Names ending in this (`*.example.com` is stored as `.example.com`).
    Suffix(String),
    /// Addresses in this range (a single address is a /32 or /128); matches targets written
    /// as addresses only.
    Net(IpNet),
}

impl AllowRule {
    /// Whether a target `host` (lower-case; an address without brackets) and `port` match.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            AllowHost::Any => true,
            AllowHost::Name(name) => name == host,
            AllowHost::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            AllowHost::Net(net) => host.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(host: AllowHost, port: Option<u16>) -> AllowRule {
        AllowRule { host, port }
    }

    #[test]
    fn allow_rules_match_host_and_port() {
        let name = rule(AllowHost::Name("example.com".into()), Some(443));
        assert!(name.allows("example.com", 443));
        assert!(!name.allows("example.com", 80));
        assert!(!name.allows("www.example.com", 443));
        let suffix = rule(AllowHost::Suffix(".example.com".into()), None);
        assert!(suffix.allows("a.example.com", 1));
        assert!(!suffix.allows("example.com", 1));
        assert!(!suffix.allows("badexample.com", 1));
        let net = rule(AllowHost::Net("10.0.0.0/8".parse().unwrap()), Some(22));
        assert!(net.allows("10.1.2.3", 22));
        assert!(!net.allows("11.1.2.3", 22));
        assert!(!net.allows("ten.example", 22));
        assert!(rule(AllowHost::Any, Some(443)).allows("anything", 443));
    }

    #[test]
    fn trusted_proxies_see_through_mapped_addresses() {
        let trusted = TrustedProxies(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(trusted.contains("127.0.0.1".parse().unwrap()));
        assert!(trusted.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!trusted.contains("10.0.0.1".parse().unwrap()));
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
    }
}
