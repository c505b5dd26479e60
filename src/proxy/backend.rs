//! An upstream at run time: its pool (`lb::Pool`) and its HTTP client, a pool of kept-alive
//! connections per member (hyper-util's client), one per upstream per worker process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_util::sync::CancellationToken;

use super::body::RequestBody;
use super::settings::Upstream;
use crate::lb;

/// One upstream, ready for requests.
pub struct Backend {
    pub pool: Arc<lb::Pool>,
    pub settings: Upstream,
    pub(super) client: Client<HttpConnector, RequestBody>,
    /// The edge's express lane may forward plain GETs here (`proxy::h1`): HTTP/1.1 members
    /// at IP addresses, chosen without reading the request.
    pub express: Option<Express>,
}

/// What the express lane needs of an upstream: each member's address, and the kept
/// connections it owns (apart from hyper-util's, which the hyper path uses).
pub struct Express {
    pub addrs: Vec<std::net::SocketAddr>,
    pub conns: super::h1::Conns,
}

/// Every upstream of a configuration, in the order of `edge::Settings::upstreams` (routes
/// name them by index), and the client of the forward proxy (absolute-form requests).
pub struct Backends {
    upstreams: Vec<Arc<Backend>>,
    /// Made on the first absolute-form request (most configurations never forward one), one
    /// per connect timeout the forward proxies use.
    forward: Mutex<Vec<(Duration, Client<HttpConnector, RequestBody>)>>,
}

impl Backend {
    pub fn new(settings: &Upstream) -> Self {
        Backend::with_client(settings, client(settings))
    }

    /// A backend using an existing client (whose kept connections it shares).
    pub fn with_client(settings: &Upstream, client: Client<HttpConnector, RequestBody>) -> Self {
        let pool = Arc::new(lb::Pool::new(settings.pool.clone()));
        let addrs: Option<Vec<std::net::SocketAddr>> = settings
            .pool
            .members
            .iter()
            .map(|m| m.authority.as_str().parse().ok())
            .collect();
        let express = match addrs {
            Some(addrs) if !settings.http2 && !pool.reads_request() => Some(Express {
                conns: super::h1::Conns::new(
                    addrs.len(),
                    settings.keepalive,
                    settings.keepalive_timeout,
                ),
                addrs,
            }),
            _ => None,
        };
        Backend {
            pool,
            settings: settings.clone(),
            client,
            express,
        }
    }
}

/// An HTTP client with the upstream's connect timeout and connection reuse.
fn client(settings: &Upstream) -> Client<HttpConnector, RequestBody> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(settings.timeouts.connect));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(settings.keepalive_timeout)
        .pool_max_idle_per_host(settings.keepalive)
        .http2_only(settings.http2)
        // The Host field is the proxy's choice (`proxy::HostHeader`), not the URI's.
        .set_host(false)
        .build(connector)
}

impl Backends {
    pub fn new(upstreams: &[Upstream]) -> Self {
        Backends {
            upstreams: upstreams
                .iter()
                .map(|u| Arc::new(Backend::new(u)))
                .collect(),
            forward: Mutex::new(Vec::new()),
        }
    }

    /// The upstream at `index` (as a route's `proxy::Settings::upstream` names it).
    pub fn get(&self, index: usize) -> Option<&Arc<Backend>> {
        self.upstreams.get(index)
    }

    /// The forward proxy's client for `connect_timeout` (its kept connections are per
    /// target).
    pub fn forward_client(&self, connect_timeout: Duration) -> Client<HttpConnector, RequestBody> {
        let mut clients = match self.forward.lock() {
            Ok(clients) => clients,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return client.clone();
        }
        let mut settings = Upstream::new(lb::Settings::new("forward-proxy", Vec::new()));
        settings.timeouts.connect = connect_timeout;
        let made = client(&settings);
        clients.push((connect_timeout, made.clone()));
        made
    }

    /// Starts the active health checks of every upstream that has them; they stop with `stop`.
    /// Must be called inside the runtime.
    pub fn start_checks(&self, stop: &CancellationToken) {
        for backend in &self.upstreams {
            lb::health::active::start(&backend.pool, stop);
        }
    }
}
