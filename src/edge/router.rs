//! Routing: the site by listener and `Host`, then the route by path, compiled once from the
//! settings into lookup tables.
//!
//! Site choice per listener, as nginx's `server_name`: an exact host, then the longest
//! `*.suffix`, then a site with no hosts (any host), then the listener's default site (the one
//! marked `default`, else the first). Route choice within a site: an exact path, then the
//! longest prefix. Paths are matched as received (still percent-encoded); the files module
//! decodes and checks them.

use std::borrow::Cow;
use std::collections::HashMap;

use http::{HeaderValue, Method};

use super::settings::{HostPattern, PathMatch, Route, Settings, Site};

/// Sites and routes, ready for lookups.
pub struct Router {
    sites: Vec<CompiledSite>,
    /// One table per listener, in the order of `Settings::listeners`.
    listeners: Vec<SiteTable>,
}

/// A site with its routes compiled.
pub struct CompiledSite {
    pub name: String,
    pub maintenance: bool,
    /// `Strict-Transport-Security` for HTTPS responses.
    pub hsts: Option<http::HeaderValue>,
    /// Plain-HTTP requests are redirected to HTTPS on this listener (as configured).
    pub redirect_to: Option<std::net::SocketAddr>,
    /// CONNECT and absolute-form requests to other hosts go here when set.
    pub forward_proxy: Option<crate::proxy::ForwardProxy>,
    /// The site's own host patterns (an absolute-form request naming one is for the site).
    pub hosts: Vec<HostPattern>,
    routes: Vec<CompiledRoute>,
    exact: HashMap<String, usize>,
    /// Prefix routes, longest first.
    prefixes: Vec<(String, usize)>,
}

/// A route with its allowed methods worked out.
pub struct CompiledRoute {
    pub route: Route,
    /// Methods the route answers (OPTIONS always; TRACE when enabled).
    pub allow: Vec<Method>,
    /// The `Allow` header value for those methods.
    pub allow_header: HeaderValue,
    /// Any method but TRACE and CONNECT passes (a proxy route without `methods`).
    pub any_method: bool,
}

/// Which site answers which host on one listener.
#[derive(Default)]
struct SiteTable {
    /// The one site on this listener, when there is only one: every host leads to it, so
    /// the host need not even be read.
    only: Option<usize>,
    exact: HashMap<String, usize>,
    /// `.example.com` suffixes, longest first.
    suffixes: Vec<(String, usize)>,
    any: Option<usize>,
    default: Option<usize>,
}

impl Router {
    pub fn new(settings: &Settings) -> Self {
        let sites: Vec<CompiledSite> = settings.sites.iter().map(compile_site).collect();
        let listeners = settings
            .listeners
            .iter()
            .map(|addr| {
                let mut table = SiteTable::default();
                for (i, site) in settings.sites.iter().enumerate() {
                    if !site.listen.contains(addr) {
                        continue;
                    }
                    if site.hosts.is_empty() {
                        table.any.get_or_insert(i);
                    }
                    for host in &site.hosts {
                        match host {
                            HostPattern::Exact(name) => {
                                table.exact.entry(name.clone()).or_insert(i);
                            }
                            HostPattern::Suffix(suffix) => table.suffixes.push((suffix.clone(), i)),
                        }
                    }
                }
                // The first site is the default unless one is marked.
                if let Some(marked) = settings
                    .sites
                    .iter()
                    .position(|s| s.default && s.listen.contains(addr))
                {
                    table.default = Some(marked);
                } else {
                    table.default = settings.sites.iter().position(|s| s.listen.contains(addr));
                }
                table
                    .suffixes
                    .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
                let mut on_listener = settings
                    .sites
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.listen.contains(addr));
                if let (Some((only, _)), None) = (on_listener.next(), on_listener.next()) {
                    table.only = Some(only);
                }
                table
            })
            .collect();
        Router { sites, listeners }
    }

    /// The site for a request on listener `listener`; `host` gives the request's host
    /// (lower-case, no port) and is called only when the listener has several sites.
    pub fn site_for<'h>(
        &self,
        listener: usize,
        host: impl FnOnce() -> Option<Cow<'h, str>>,
    ) -> Option<&CompiledSite> {
        let table = self.listeners.get(listener)?;
        if let Some(only) = table.only {
            return self.sites.get(only);
        }
        self.site(listener, host().as_deref())
    }

    /// The site for a request on listener `listener` with host `host` (lower-case, no port).
    pub fn site(&self, listener: usize, host: Option<&str>) -> Option<&CompiledSite> {
        let table = self.listeners.get(listener)?;
        let index = host
            .and_then(|h| {
                table.exact.get(h).copied().or_else(|| {
                    table
                        .suffixes
                        .iter()
                        .find(|(suffix, _)| h.ends_with(suffix.as_str()) && h.len() > suffix.len())
                        .map(|(_, i)| *i)
                })
            })
            .or(table.any)
            .or(table.default)?;
        self.sites.get(index)
    }
}

impl CompiledSite {
    /// Whether `host` (lower-case, no port) is one of the site's own names; a site without
    /// names claims none.
    pub fn claims(&self, host: &str) -> bool {
        self.hosts.iter().any(|pattern| match pattern {
            HostPattern::Exact(name) => name == host,
            HostPattern::Suffix(suffix) => {
                host.ends_with(suffix.as_str()) && host.len() > suffix.len()
            }
        })
    }

    /// The route for a request path (without query).
    pub fn route(&self, path: &str) -> Option<&CompiledRoute> {
        let index = self.exact.get(path).copied().or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, i)| *i)
        })?;
        self.routes.get(index)
    }
}

fn compile_site(site: &Site) -> CompiledSite {
    let mut exact = HashMap::new();
    let mut prefixes = Vec::new();
    let routes: Vec<CompiledRoute> = site.routes.iter().map(compile_route).collect();
    for (i, route) in site.routes.iter().enumerate() {
        match &route.path {
            PathMatch::Exact(path) => {
                exact.entry(path.clone()).or_insert(i);
            }
            PathMatch::Prefix(prefix) => prefixes.push((prefix.clone(), i)),
        }
    }
    // Longest prefix first; among equals, configuration order (stable sort).
    prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    CompiledSite {
        name: site.name.clone(),
        maintenance: site.maintenance,
        hsts: site.tls.as_ref().and_then(|tls| tls.hsts).and_then(|age| {
            http::HeaderValue::from_str(&format!("max-age={}", age.as_secs())).ok()
        }),
        redirect_to: site.tls.as_ref().and_then(|tls| tls.redirect_to),
        forward_proxy: site.forward_proxy.clone(),
        hosts: site.hosts.clone(),
        routes,
        exact,
        prefixes,
    }
}

fn compile_route(route: &Route) -> CompiledRoute {
    let mut allow = route
        .methods
        .clone()
        .unwrap_or_else(|| route.handler.methods());
    if allow.contains(&Method::GET) && !allow.contains(&Method::HEAD) {
        allow.push(Method::HEAD);
    }
    if !allow.contains(&Method::OPTIONS) {
        allow.push(Method::OPTIONS);
    }
    allow.retain(|m| *m != Method::TRACE);
    if route.trace {
        allow.push(Method::TRACE);
    }
    let text = allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let allow_header = HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("GET, HEAD, OPTIONS"));
    CompiledRoute {
        route: route.clone(),
        allow,
        allow_header,
        any_method: route.methods.is_none() && route.handler.takes_any_method(),
    }
}

/// The host a request names: `Host` (HTTP/1) or the authority (HTTP/2), lower-case, without
/// port or trailing dot. Borrowed when the request already wrote it that way (the usual case).
pub fn request_host(parts: &http::request::Parts) -> Option<Cow<'_, str>> {
    host_of(&parts.uri, &parts.headers)
}

/// [`request_host`] from a request's target and fields.
pub fn host_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<Cow<'a, str>> {
    host_name(raw_host(uri, headers)?)
}

/// The host as the client wrote it: the target's authority, else `Host` (port included).
pub fn raw_host<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    uri.authority().map(|a| a.as_str()).or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

/// A `Host` value or authority as sites are matched: lower-case, without port or trailing dot.
pub fn host_name(raw: &str) -> Option<Cow<'_, str>> {
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or("")
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                raw
            }
        })
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        None
    } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    use super::*;
    use crate::edge::settings::{Handler, Limits, Respond};

    fn respond(body: &'static str) -> Handler {
        Handler::Respond(Respond {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    fn route(path: PathMatch, body: &'static str) -> Route {
        Route {
            path,
            methods: None,
            trace: false,
            handler: respond(body),
        }
    }

    fn site(name: &str, hosts: Vec<HostPattern>, default: bool, addr: SocketAddr) -> Site {
        Site {
            name: name.into(),
            hosts,
            listen: vec![addr],
            default,
            maintenance: false,
            tls: None,
            forward_proxy: None,
            routes: vec![
                route(PathMatch::Prefix("/".into()), "root"),
                route(PathMatch::Prefix("/static/".into()), "static"),
                route(PathMatch::Exact("/static/x".into()), "exact"),
            ],
        }
    }

    fn body_of(r: &CompiledRoute) -> &[u8] {
        match &r.route.handler {
            Handler::Respond(r) => &r.body,
            _ => unreachable!(),
        }
    }

    #[test]
    fn host_choice_follows_nginx_order() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let settings = Settings {
            tls: vec![None],
            listeners: vec![addr],
            sites: vec![
                site(
                    "first",
                    vec![HostPattern::Exact("a.test".into())],
                    false,
                    addr,
                ),
                site(
                    "wild",
                    vec![HostPattern::Suffix(".b.test".into())],
                    false,
                    addr,
                ),
                site(
                    "deeper",
                    vec![HostPattern::Suffix(".x.b.test".into())],
                    false,
                    addr,
                ),
                site(
                    "fallback",
                    vec![HostPattern::Exact("c.test".into())],
                    true,
                    addr,
                ),
            ],
            limits: Limits::default(),
            acme_challenges: None,
            cache: None,
            upstreams: Vec::new(),
        };
        let router = Router::new(&settings);
        assert_eq!(router.site(0, Some("a.test")).unwrap().name, "first");
        assert_eq!(router.site(0, Some("w.b.test")).unwrap().name, "wild");
        assert_eq!(router.site(0, Some("y.x.b.test")).unwrap().name, "deeper");
        assert_eq!(router.site(0, Some("b.test")).unwrap().name, "fallback");
        assert_eq!(router.site(0, Some("unknown")).unwrap().name, "fallback");
        assert_eq!(router.site(0, None).unwrap().name, "fallback");
        assert!(router.site(1, None).is_none());
    }

    #[test]
    fn a_lone_site_answers_without_reading_the_host() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let settings = Settings {
            tls: vec![None],
            listeners: vec![addr],
            sites: vec![site(
                "lone",
                vec![HostPattern::Exact("a.test".into())],
                false,
                addr,
            )],
            limits: Limits::default(),
            acme_challenges: None,
            cache: None,
            upstreams: Vec::new(),
        };
        let router = Router::new(&settings);
        let site = router.site_for(0, || panic!("the host was read")).unwrap();
        assert_eq!(site.name, "lone");
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let compiled = compile_site(&site("s", vec![], false, addr));
        assert_eq!(body_of(compiled.route("/static/x").unwrap()), b"exact");
        assert_eq!(body_of(compiled.route("/static/y").unwrap()), b"static");
        assert_eq!(body_of(compiled.route("/other").unwrap()), b"root");
    }

    #[test]
    fn allow_lists_options_head_and_trace_when_enabled() {
        let mut r = route(PathMatch::Prefix("/".into()), "x");
        r.methods = Some(vec![Method::GET]);
        r.trace = true;
        let c = compile_route(&r);
        assert_eq!(c.allow_header, "GET, HEAD, OPTIONS, TRACE");
    }

    #[test]
    fn host_is_normalised() {
        let req = http::Request::builder()
            .uri("/")
            .header("host", "Example.COM.:8080")
            .body(())
            .unwrap();
        assert_eq!(
            request_host(&req.into_parts().0).as_deref(),
            Some("example.com")
        );
        let req = http::Request::builder()
            .uri("/")
            .header("host", "[::1]:8080")
            .body(())
            .unwrap();
        assert_eq!(request_host(&req.into_parts().0).as_deref(), Some("::1"));
    }
}
