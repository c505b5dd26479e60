//! The resolved, typed settings of the HTTP front. Built by `config` (or directly in tests);
//! every value here is already valid, so the edge never re-checks it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::{files, proxy};

/// Everything the edge needs to serve: where to listen, which sites, which limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Addresses to listen on, each with the sites reachable through it.
    pub listeners: Vec<SocketAddr>,
    /// For each listener (same index), its TLS configuration when it is an HTTPS listener.
    pub tls: Vec<Option<Arc<crate::tls::ListenerTls>>>,
    /// Sites in configuration order; a site names the listeners it is reachable through.
    pub sites: Vec<Site>,
    /// Limits and timeouts that protect the server from clients.
    pub limits: Limits,
    /// The folder of published ACME http-01 challenge answers, when a site uses ACME.
    pub acme_challenges: Option<std::path::PathBuf>,
    /// The shared cache, when a `proxy` route uses it.
    pub cache: Option<crate::cache::Settings>,
    /// Upstream pools that `proxy` routes forward to (routes name them by index).
    pub upstreams: Vec<proxy::Upstream>,
}

/// A site: a set of host names on some listeners, with routes.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site's name, for logs (`[[site]] name`).
    pub name: String,
    /// Host names this site answers (`example.com`, `*.example.com`); empty = any host.
    pub hosts: Vec<HostPattern>,
    /// Listeners this site is reachable through.
    pub listen: Vec<SocketAddr>,
    /// Chosen when no site's host matches on a listener (at most one per listener).
    pub default: bool,
    /// Every request answers 503 with `Retry-After` while true.
    pub maintenance: bool,
    /// The site's HTTPS policy, when it has HTTPS listeners.
    pub tls: Option<SiteTls>,
    /// CONNECT tunnels (and absolute-form requests) to allowed targets; `None`: CONNECT gets
    /// 405.
    pub forward_proxy: Option<proxy::ForwardProxy>,
    /// Routes, tried in order of specificity: exact paths, then the longest prefix.
    pub routes: Vec<Route>,
}

/// A host name pattern, lower-case, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `example.com`
    Exact(String),
    /// `*.example.com`, stored as `.example.com`; matches any name ending in it.
    Suffix(String),
}

/// What a site does about HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteTls {
    /// `Strict-Transport-Security` max-age on HTTPS responses.
    pub hsts: Option<Duration>,
    /// Plain-HTTP requests are redirected to HTTPS on this listener (as configured; port 0
    /// means the port the kernel chose).
    pub redirect_to: Option<SocketAddr>,
}

/// A route: a path match, the methods it allows, and what answers.
#[derive(Debug, Clone)]
pub struct Route {
    pub path: PathMatch,
    /// Methods allowed; `None` means the handler's own set (see `Handler::methods`).
    pub methods: Option<Vec<Method>>,
    /// Answer TRACE by echoing the request (off by default: 405).
    pub trace: bool,
    pub handler: Handler,
}

/// How a route's path is matched against the request path (before percent-decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path equals this string.
    Exact(String),
    /// The path starts with this string.
    Prefix(String),
}

/// What produces the response for a route.
#[derive(Debug, Clone)]
pub enum Handler {
    /// Files from a root folder.
    Static(files::Settings),
    /// A redirect to a target built from a template.
    Redirect(Redirect),
    /// A fixed response.
    Respond(Respond),
    /// Forwarding to an upstream pool.
    Proxy(proxy::Settings),
    /// The built-in test origin (`edge/httpbin.rs`).
    Httpbin,
}

/// `redirect` handler: status 301, 302, 303, 307 or 308 and a target template.
///
/// The template may contain `{scheme}`, `{host}` (with port when the request had one),
/// `{path}`, `{query}` (without `?`), `{uri}` (path and `?query`) and `{suffix}` (the part of
/// the path after the route's prefix).
#[derive(Debug, Clone)]
pub struct Redirect {
    pub status: StatusCode,
    pub to: String,
}

/// `respond` handler: a fixed status, headers and body.
#[derive(Debug, Clone)]
pub struct Respond {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Limits and timeouts. Defaults follow nginx where it has one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (request line and headers); more gets 431. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more gets 431. Default 100.
    pub max_headers: usize,
    /// Longest request target; longer gets 414. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// Largest request body; larger gets 413 (before reading it or sending `100 Continue`).
    /// Default 1 MiB, as nginx's `client_max_body_size`.
    pub max_body_bytes: u64,
    /// Time to receive a whole request head once its first byte arrived. Default 10 s.
    pub header_read_timeout: Duration,
    /// Longest pause between two reads of a request body; then 408. Default 60 s.
    pub body_read_timeout: Duration,
    /// How long an idle keep-alive connection is kept between requests. Default 75 s.
    pub keepalive_timeout: Duration,
    /// Longest pause while the client does not accept response bytes. Default 60 s.
    pub send_timeout: Duration,
    /// After an error response, how long to read and discard what the client still sends
    /// before closing, so it reads the response instead of a reset. Default 5 s.
    pub linger_timeout: Duration,
    /// Most open client connections; more are answered 503 and closed. Default 16384.
    pub max_connections: usize,
    /// Most requests being answered at once; more get 503 with `Retry-After`. Default 4096.
    pub max_requests_in_flight: usize,
    /// How long a graceful stop waits for requests in flight. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(60),
            linger_timeout: Duration::from_secs(5),
            max_connections: 16384,
            max_requests_in_flight: 4096,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Handler {
    /// Whether the handler takes any method when the route does not list its own (a proxy
    /// leaves methods to the origin; `Handler::methods` is then only what `Allow` shows).
    pub fn takes_any_method(&self) -> bool {
        matches!(self, Handler::Proxy(_))
    }

    /// The methods a handler answers when the route does not list its own.
    pub fn methods(&self) -> Vec<Method> {
        match self {
            Handler::Static(_) => vec![Method::GET, Method::HEAD, Method::OPTIONS],
            Handler::Redirect(_) | Handler::Respond(_) | Handler::Proxy(_) | Handler::Httpbin => {
                vec![
                    Method::GET,
                    Method::HEAD,
                    Method::POST,
                    Method::PUT,
                    Method::DELETE,
                    Method::PATCH,
                    Method::OPTIONS,
                ]
            }
        }
    }
}
