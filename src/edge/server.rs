//! The edge server: what all connections share, the accept loops, admission of connections
//! (`max_connections`, beyond which a client gets 503 and a close), and the graceful stop.
//!
//! Stop order: the drain event fires; accept loops stop and drop their sockets; parked
//! connections close; connections with a request in flight finish it (HTTP/1 answers with
//! `Connection: close`, HTTP/2 sends GOAWAY); the caller waits for all of them up to
//! `shutdown_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::conn;
use super::router::Router;
use super::settings::{Limits, Settings};
use crate::net::linger;
use crate::telemetry::access_log;
use crate::telemetry::counters::{Counter, Counters};

/// The answer to a connection over `max_connections`, written without parsing its request.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: portico\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n";

/// State every connection of one configuration generation shares.
pub struct Shared {
    pub router: Router,
    pub limits: Limits,
    pub access_log: Option<access_log::Writer>,
    /// Slots for requests being answered (`max_requests_in_flight`).
    pub in_flight: Arc<Semaphore>,
    /// Open client connections.
    pub connections: AtomicUsize,
    /// Fires when the server stops: every connection drains.
    pub drain: CancellationToken,
    /// Idle keep-alive connections held outside the runtime; `None` when its epoll set could
    /// not be made (connections then wait in their own tasks).
    pub lot: Option<super::park::Lot>,
    /// Connections parked so far (idle keep-alive connections whose buffers were freed).
    pub parks: std::sync::atomic::AtomicU64,
    /// The listeners as configured, and (once started) the addresses they are bound to.
    pub configured: Vec<SocketAddr>,
    pub bound: std::sync::OnceLock<Vec<SocketAddr>>,
    /// For each listener, its sites' TLS configurations when it is an HTTPS listener.
    pub tls: Vec<Option<Arc<crate::tls::ListenerTls>>>,
    /// This worker's counters in the shared-memory region, when there is one.
    pub counters: Option<Counters>,
    /// The drain is polite (reload, QUIT): idle keep-alive connections stay open for a grace
    /// period so that a request a client is already sending is answered (with
    /// `Connection: close`) instead of meeting a closed socket.
    pub polite: AtomicBool,
    /// Where ACME http-01 challenge answers are published, when a site uses ACME.
    pub acme_challenges: Option<std::path::PathBuf>,
    /// The shared cache of this worker, when a `proxy` route uses it.
    pub cache: Option<Arc<crate::cache::store::Cache>>,
    /// Who may `PURGE` (`[cache] purge_allow`).
    pub purge_allow: Vec<ipnet::IpNet>,
    /// The upstreams `proxy` routes forward to: pools, health state, kept-alive connections.
    pub backends: crate::proxy::Backends,
}

/// How the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGTERM/SIGINT: stop accepting, close idle connections now, let requests in flight
    /// finish within the limit.
    Fast,
    /// Reload and SIGQUIT: as fast, except idle keep-alive connections stay open for
    /// [`POLITE_GRACE`] (at most the keep-alive timeout) and their next request is answered
    /// with `Connection: close`. A connection is only ever ended after a response, never while
    /// a client may be writing a request to it, unless it stays idle through the grace period.
    Polite,
}

/// How long a polite drain keeps idle keep-alive connections open.
pub const POLITE_GRACE: Duration = Duration::from_secs(5);

impl Shared {
    /// True when connections should end now rather than wait for a next request: a fast
    /// stop. (A polite drain ends them after a response marked `Connection: close`.)
    pub fn closing_idle(&self) -> bool {
        self.drain.is_cancelled() && !self.polite.load(Ordering::Relaxed)
    }

    /// How purges reach the process that keeps them, when there is a cache.
    pub fn purges(&self) -> Option<&crate::cache::purge::Client> {
        self.cache.as_ref()?.family.get()
    }

    /// Turns a polite drain into a fast one: idle connections close at the next check.
    pub fn hurry(&self) {
        self.polite.store(false, Ordering::Relaxed);
    }

    /// The port listener `configured` is bound to (the kernel's choice for port 0).
    pub fn bound_port(&self, configured: SocketAddr) -> u16 {
        self.configured
            .iter()
            .position(|a| *a == configured)
            .and_then(|i| self.bound.get().and_then(|b| b.get(i)))
            .map_or(configured.port(), SocketAddr::port)
    }

    /// Completes when idle connections should close now: at a fast stop, never during a polite
    /// drain.
    pub async fn idle_close(&self) {
        self.drain.cancelled().await;
        if self.polite.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    }

    pub fn count(&self, counter: Counter, n: u64) {
        if let Some(counters) = &self.counters {
            counters.add(counter, n);
        }
    }

    /// A connection ended (closed by either side).
    pub fn connections_closed(&self, n: usize) {
        self.connections.fetch_sub(n, Ordering::Relaxed);
        if let Some(counters) = &self.counters {
            counters.sub(Counter::Open, n as u64);
        }
    }

    /// Idle connections entered (`parked` true) or left the parking lot.
    pub fn idle_changed(&self, parked: bool, n: usize) {
        if let Some(counters) = &self.counters {
            if parked {
                counters.add(Counter::Idle, n as u64);
            } else {
                counters.sub(Counter::Idle, n as u64);
            }
        }
    }
}

/// A running edge: its shared state and its tasks.
pub struct Server {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

impl Server {
    /// Builds the shared state for `settings`, the parking lot included. Must be called
    /// inside the runtime (the lot registers its epoll set with the reactor).
    pub fn new(
        settings: &Settings,
        access_log: Option<access_log::Writer>,
        counters: Option<Counters>,
    ) -> Self {
        let lot = super::park::Lot::new()
            .inspect_err(|e| {
                tracing::warn!(error = %e, "no parking lot: idle connections keep their tasks");
            })
            .ok();
        let shared = Arc::new(Shared {
            router: Router::new(settings),
            limits: settings.limits.clone(),
            access_log,
            in_flight: Arc::new(Semaphore::new(settings.limits.max_requests_in_flight)),
            connections: AtomicUsize::new(0),
            drain: CancellationToken::new(),
            parks: std::sync::atomic::AtomicU64::new(0),
            lot,
            counters,
            configured: settings.listeners.clone(),
            bound: std::sync::OnceLock::new(),
            tls: settings.tls.clone(),
            polite: AtomicBool::new(false),
            acme_challenges: settings.acme_challenges.clone(),
            cache: settings.cache.as_ref().map(|c| Arc::new(c.build())),
            purge_allow: settings
                .cache
                .as_ref()
                .map(|c| c.purge_allow.clone())
                .unwrap_or_default(),
            backends: crate::proxy::Backends::new(&settings.upstreams),
        });
        Server {
            shared,
            tracker: TaskTracker::new(),
        }
    }

    /// Starts accepting on already bound listeners, listener `i` being `Settings::listeners[i]`,
    /// and starts the parking lot. Must be called inside the runtime.
    pub fn start(&self, listeners: Vec<std::net::TcpListener>) -> std::io::Result<()> {
        let bound = listeners
            .iter()
            .zip(&self.shared.configured)
            .map(|(l, configured)| l.local_addr().unwrap_or(*configured))
            .collect();
        let _ = self.shared.bound.set(bound);
        // Health checks stop when the drain starts: an old generation stops judging members.
        self.shared.backends.start_checks(&self.shared.drain);
        self.tracker.spawn(super::park::Lot::run(
            self.shared.clone(),
            self.tracker.clone(),
        ));
        for (index, listener) in listeners.into_iter().enumerate() {
            let listener = TcpListener::from_std(listener)?;
            let shared = self.shared.clone();
            let tracker = self.tracker.clone();
            self.tracker
                .spawn(accept_loop(listener, index, shared, tracker));
        }
        Ok(())
    }

    /// How many times a connection was parked: the process returns freed memory to the OS
    /// when this grows (see `process::memory`).
    pub fn parks(&self) -> u64 {
        self.shared.parks.load(Ordering::Relaxed)
    }

    /// The shared state (the access log writer for a reopen, the counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops: no new connections, requests in flight finish within `limit` (see
    /// [`StopMode`]). True when everything finished in time.
    pub async fn stop(&self, limit: Duration, mode: StopMode) -> bool {
        self.shared
            .polite
            .store(mode == StopMode::Polite, Ordering::Relaxed);
        self.shared.drain.cancel();
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }
}

async fn accept_loop(
    listener: TcpListener,
    index: usize,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.drain.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let open = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        shared.count(Counter::Accepted, 1);
        shared.count(Counter::Open, 1);
        let shared = shared.clone();
        if open > shared.limits.max_connections {
            tracker.spawn(async move {
                refuse(stream, peer, &shared).await;
                shared.connections_closed(1);
            });
            continue;
        }
        // One span per connection (STYLE §5); disabled unless debug logging is on, when
        // creating it is a cached level check.
        let span = tracing::debug_span!("conn", %peer, listener = index);
        tracker.spawn(
            async move {
                if conn::serve(stream, peer, index, shared.clone()).await == conn::Ended::Closed {
                    shared.connections_closed(1);
                }
            }
            .instrument(span),
        );
    }
}

/// Answers a connection over the cap with 503 and closes it, spending at most a second.
async fn refuse(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    tracing::debug!(%peer, "connection over max_connections refused with 503");
    if let Some(counters) = &shared.counters {
        counters.response(503, 24); // the body of `OVERLOADED`
    }
    let write = async {
        if stream.write_all(OVERLOADED).await.is_ok() {
            linger::close(&mut stream, Duration::from_secs(1)).await;
        }
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2).min(shared.limits.linger_timeout + Duration::from_secs(1)),
        write,
    )
    .await;
}
