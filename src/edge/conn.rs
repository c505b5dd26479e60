//! One client connection, from accept to close: protocol sniffing (h2c prior knowledge or
//! HTTP/1), the HTTP/1 keep-alive cycle, and the close.
//!
//! HTTP/1 keep-alive without idle memory: hyper keeps about 1.2 KiB of state and two 8 KiB
//! buffers for a connection's whole life, so a hyper connection here lives only while requests
//! come. A watchdog (one timer per active connection, reset per tick, not per request) finds
//! the connection idle between requests at two ticks in a row — idleness known from the
//! request cycle, never guessed from the socket — ends the hyper connection gracefully (hyper
//! is idle, so it just stops), takes the socket back together with any bytes hyper had read
//! ahead, and hands it to the parking lot (`edge/park.rs`), which holds it outside the runtime
//! until its next request. The hyper connection is boxed, so the task stays small. Because the
//! response head was written before the body ended, stopping hyper never adds
//! `Connection: close` to a response. The same watchdog closes a connection whose request head
//! takes longer than `client_header_timeout` (the gate records when each head starts).
//!
//! Every HTTP/1 request head passes the [`Gate`](super::gate) before hyper reads it. A
//! connection that must not be reused (the client asked to close, a body was left unread, a
//! head was rejected, the server drains) ends with a lingering close (`net/linger.rs`).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::express::{self, Lane};
use super::gate::{Gate, HeadClock, HeadLimits, Rejection};
use super::pipeline;
use super::server::Shared;
use super::settings::Limits;
use super::tracked::Tracked;
use crate::net::sendfile::{Hint, Sendfile};
use crate::net::{linger, timeout::WriteTimeout};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a request needs to know about its connection.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Index of the listener that accepted the connection (in `Settings::listeners`).
    pub listener: usize,
    /// File bytes the current response offers for `sendfile(2)` (HTTP/1).
    pub sendfile: Hint,
    pub state: ConnState,
    /// The socket's descriptor number, for TCP_INFO samples (`net/tcp_info.rs`).
    pub fd: std::os::fd::RawFd,
    /// The connection is HTTPS.
    pub tls: bool,
    /// A tunnel the current response opens (a proxied `101`, a CONNECT): run on the socket
    /// once hyper has written the response and stopped.
    tunnel: std::sync::Mutex<Option<crate::proxy::Tunnel>>,
}

/// Request accounting of one connection, shared by the driver and the requests on it.
#[derive(Default)]
pub struct ConnState {
    /// Requests whose handling began on the current hyper connection.
    started: AtomicU32,
    /// Responses whose body ended (or was dropped) on the current hyper connection.
    finished: AtomicU32,
    /// Something on the connection rules out reuse (client asked to close, unread body,
    /// an error answered with `Connection: close`).
    close: AtomicBool,
}

impl ConnState {
    pub fn request_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn response_finished(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the connection as not reusable.
    pub fn close_after_response(&self) {
        self.close.store(true, Ordering::Relaxed);
    }

    pub fn must_close(&self) -> bool {
        self.close.load(Ordering::Relaxed)
    }

    /// True when at least one request was answered and none is in flight: the hyper
    /// connection sits between requests.
    pub(super) fn is_idle(&self) -> bool {
        let started = self.started.load(Ordering::Relaxed);
        started > 0 && started == self.finished.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.started.store(0, Ordering::Relaxed);
        self.finished.store(0, Ordering::Relaxed);
    }
}

/// How a connection's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The connection is closed.
    Closed,
    /// The connection is idle in the parking lot (`edge/park.rs`), still open.
    Parked,
}

/// Serves one accepted connection until it closes or parks.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: usize,
    shared: Arc<Shared>,
) -> Ended {
    let _ = stream.set_nodelay(true);
    let acceptor = shared.tls.get(listener).cloned().flatten();
    let ctx = ConnCtx::new(&stream, peer, listener, shared);
    if let Some(acceptor) = acceptor {
        Box::pin(serve_tls(stream, acceptor, ctx)).await;
        return Ended::Closed;
    }
    let limits = &ctx.shared.limits;
    match sniff(&stream, limits.header_read_timeout, &ctx).await {
        Protocol::Http2 => {
            // Boxed: an HTTP/2 connection's state is several KiB, and an inline future would
            // make every connection's task that large.
            let io = WriteTimeout::new(stream, limits.send_timeout);
            Box::pin(serve_h2(io, ctx)).await;
            Ended::Closed
        }
        Protocol::Http1 => Box::pin(serve_h1(stream, ctx)).await,
        Protocol::Gone => Ended::Closed,
    }
}

/// An HTTPS connection: the handshake (within `client_header_timeout`), then HTTP/2 or
/// HTTP/1.1 as ALPN chose. TLS connections keep their hyper connection for their whole life
/// (no parking, no express lane, no `sendfile`: the bytes must be encrypted in user space).
async fn serve_tls(stream: TcpStream, tls: Arc<crate::tls::ListenerTls>, ctx: Arc<ConnCtx>) {
    let limits = &ctx.shared.limits;
    // The client's hello first: its server name picks the site's configuration (certificate,
    // client certificates), then the handshake goes on with it.
    let handshake = async {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
                .await?;
        let config = tls
            .config_for(start.client_hello().server_name())
            .ok_or_else(|| std::io::Error::other("no certificate for that name"))?;
        start.into_stream(config).await
    };
    let handshake = tokio::select! {
        done = tokio::time::timeout(limits.header_read_timeout, handshake) => done,
        _ = ctx.shared.idle_close() => return,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(peer = %ctx.peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %ctx.peer, "TLS handshake not done within client_header_timeout");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = WriteTimeout::new(tls, limits.send_timeout);
    if h2 {
        serve_h2(io, ctx).await;
    } else {
        serve_tls_h1(io, ctx).await;
    }
}

/// HTTP/1.1 over TLS: one hyper connection behind the gate until it closes, idles out
/// (`keepalive_timeout`), or the server stops.
async fn serve_tls_h1<S>(io: WriteTimeout<S>, ctx: Arc<ConnCtx>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &ctx.shared.limits;
    let clock = Arc::new(HeadClock::new());
    let mut gate = Gate::new(io, head_limits(limits), clock.clone());
    gate.set_counters(ctx.shared.counters.clone());
    let builder = http1_builder(limits);
    let service = Service {
        ctx: ctx.clone(),
        zero_copy: false,
    };
    let mut conn = Box::pin(builder.serve_connection(TokioIo::new(gate), service));
    let tick = watchdog_tick(limits);
    let mut watchdog = tokio::time::interval(tick);
    let drain = ctx.shared.idle_close();
    tokio::pin!(drain);
    let mut stopping = false;
    let mut idle_since = tokio::time::Instant::now();
    let mut finished_seen = 0;
    let result = loop {
        tokio::select! {
            result = poll_fn(|cx| conn.as_mut().poll_without_shutdown(cx)) => break result,
            _ = watchdog.tick() => {
                if clock.pending_for().is_some_and(|t| t >= limits.header_read_timeout) {
                    tracing::debug!(peer = %ctx.peer, "request head not received within client_header_timeout");
                    return;
                }
                let finished = ctx.state.finished.load(Ordering::Relaxed);
                // A polite drain gives an idle connection the same grace as a parked one.
                let idle_limit = if ctx.shared.drain.is_cancelled() {
                    super::server::POLITE_GRACE.min(limits.keepalive_timeout)
                } else {
                    limits.keepalive_timeout
                };
                if !ctx.state.is_idle() || finished != finished_seen {
                    idle_since = tokio::time::Instant::now();
                    finished_seen = finished;
                } else if !stopping && idle_since.elapsed() >= idle_limit {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = &mut drain, if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => {
            let parts = Pin::into_inner(conn).into_parts();
            let mut gate = parts.io.into_inner();
            if let Some(tunnel) = ctx.take_tunnel() {
                run_tunnel(gate, &parts.read_buf, tunnel, &ctx).await;
                return;
            }
            if let Some(rejection) = gate.rejection() {
                reject(gate, rejection, &ctx.shared).await;
            } else {
                let _ = gate.get_mut().shutdown().await;
            }
        }
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, error = %e, "HTTPS connection ended with an error");
        }
    }
}

/// Serves a connection the parking lot hands back: HTTP/1, at the start of a request.
pub async fn resume(
    stream: TcpStream,
    peer: SocketAddr,
    listener: usize,
    shared: Arc<Shared>,
) -> Ended {
    let ctx = ConnCtx::new(&stream, peer, listener, shared);
    Box::pin(serve_h1(stream, ctx)).await
}

impl ConnCtx {
    /// Adds the connection's round-trip time and retransmissions to the counters, once, as
    /// it closes.
    fn sample_tcp(&self) {
        use crate::telemetry::counters::Counter;
        if let (Some(counters), Some(tcp)) =
            (&self.shared.counters, crate::net::tcp_info::sample(self.fd))
        {
            counters.add(Counter::RttMicrosSum, u64::from(tcp.rtt_us));
            counters.add(Counter::RttSamples, 1);
            counters.add(Counter::Retransmits, u64::from(tcp.retransmits));
        }
    }

    fn new(
        stream: &TcpStream,
        peer: SocketAddr,
        listener: usize,
        shared: Arc<Shared>,
    ) -> Arc<Self> {
        let shared_is_tls = shared.tls.get(listener).is_some_and(Option::is_some);
        Arc::new(ConnCtx {
            shared,
            peer,
            local: stream.local_addr().unwrap_or(peer),
            listener,
            sendfile: Hint::default(),
            state: ConnState::default(),
            fd: std::os::fd::AsRawFd::as_raw_fd(stream),
            tls: shared_is_tls,
            tunnel: std::sync::Mutex::new(None),
        })
    }

    /// Leaves a tunnel for the connection to run after the current response.
    pub fn set_tunnel(&self, tunnel: crate::proxy::Tunnel) {
        if let Ok(mut slot) = self.tunnel.lock() {
            *slot = Some(tunnel);
        }
    }

    fn take_tunnel(&self) -> Option<crate::proxy::Tunnel> {
        self.tunnel.lock().ok()?.take()
    }
}

/// Runs a tunnel on a client connection hyper let go of: `early` is what hyper had read past
/// the request head (the first bytes of the new protocol). The connection closes after it.
async fn run_tunnel<S>(mut io: S, early: &[u8], tunnel: crate::proxy::Tunnel, ctx: &ConnCtx)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (ended, up, down) = tunnel.run(&mut io, early, ctx.shared.idle_close()).await;
    tracing::debug!(peer = %ctx.peer, ?ended, up, down, "tunnel closed");
    let _ = io.shutdown().await;
}

/// The HTTP/1 keep-alive cycle: bursts of requests on a hyper connection, parked in between.
async fn serve_h1(stream: TcpStream, ctx: Arc<ConnCtx>) -> Ended {
    let limits = &ctx.shared.limits;
    let gate_limits = head_limits(limits);
    let clock = Arc::new(HeadClock::new());
    let mut gate = Gate::new(
        WriteTimeout::new(
            Sendfile::new(stream, ctx.sendfile.clone()),
            limits.send_timeout,
        ),
        gate_limits,
        clock.clone(),
    );
    gate.set_counters(ctx.shared.counters.clone());
    loop {
        match express::serve(&mut gate, &ctx, &clock).await {
            Lane::Closed => return Ended::Closed,
            Lane::Stop => {}
            Lane::Hyper => {
                ctx.state.reset();
                gate = match Box::pin(serve_h1_burst(gate, &ctx, &clock)).await {
                    Some(gate) => gate,
                    None => return Ended::Closed,
                };
            }
        }
        let closing = gate.rejection().is_some()
            || ctx.state.must_close()
            || gate.is_eof()
            || ctx.shared.closing_idle();
        if closing {
            ctx.sample_tcp();
        }
        if let Some(rejection) = gate.rejection() {
            reject(gate, rejection, &ctx.shared).await;
            return Ended::Closed;
        }
        if ctx.shared.closing_idle() && !gate.has_buffered() {
            // Stopping, and the last response was marked `Connection: close`: no lingering,
            // so a client that keeps its end open does not hold up the stop.
            let _ = gate.get_mut().shutdown().await;
            return Ended::Closed;
        }
        if ctx.state.must_close() || gate.is_eof() || ctx.shared.closing_idle() {
            linger::close(gate, limits.linger_timeout).await;
            return Ended::Closed;
        }
        if gate.has_buffered() {
            continue;
        }
        gate.release_buffer();
        tracing::trace!(peer = %ctx.peer, "parking an idle connection");
        ctx.shared.parks.fetch_add(1, Ordering::Relaxed);
        // The connection was idle for about two watchdog ticks before it parked.
        let idle_left = limits
            .keepalive_timeout
            .saturating_sub(watchdog_tick(limits) * 2);
        if let Some(lot) = ctx.shared.lot.as_ref() {
            let stream = gate.into_inner().into_inner().into_inner();
            return match lot.park(stream, ctx.peer, ctx.listener, idle_left) {
                Ok(()) => {
                    ctx.shared.idle_changed(true, 1);
                    Ended::Parked
                }
                Err(e) => {
                    tracing::debug!(peer = %ctx.peer, error = %e, "cannot park a connection; closing it");
                    Ended::Closed
                }
            };
        }
        if !park(gate.get_ref().get_ref().get_ref(), idle_left, &ctx).await {
            return Ended::Closed;
        }
    }
}

/// Which protocol the client speaks, told by its first bytes.
enum Protocol {
    Http1,
    Http2,
    Gone,
}

/// Peeks at the first bytes: the HTTP/2 preface means h2c with prior knowledge.
async fn sniff(stream: &TcpStream, limit: Duration, ctx: &ConnCtx) -> Protocol {
    let sniffing = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            if stream.readable().await.is_err() {
                return Protocol::Gone;
            }
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return Protocol::Gone,
                Ok(n) if buf[..n] == H2_PREFACE[..n] => {
                    if n == H2_PREFACE.len() {
                        return Protocol::Http2;
                    }
                    // A prefix of the preface: wait for more (bounded by the timeout).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(_) => return Protocol::Http1,
            }
        }
    };
    tokio::select! {
        p = tokio::time::timeout(limit, sniffing) => p.unwrap_or(Protocol::Gone),
        _ = ctx.shared.idle_close() => Protocol::Gone,
    }
}

/// Without a parking lot (its epoll set could not be made): waits on the bare socket in the
/// connection's task until the next request starts. False when the connection should close
/// instead (idle timeout, drain, error).
async fn park(stream: &TcpStream, keepalive: Duration, ctx: &ConnCtx) -> bool {
    tokio::select! {
        r = stream.readable() => r.is_ok(),
        _ = tokio::time::sleep(keepalive) => false,
        _ = ctx.shared.idle_close() => false,
    }
}

pub(super) type Io = Gate<WriteTimeout<Sendfile>>;

/// Runs one hyper HTTP/1 connection until it has been idle between requests for a tick or
/// two, then takes the socket back. `None` when the connection failed or timed out and is gone.
///
/// A watchdog timer, reset once per tick rather than once per request, does the two checks
/// that need a clock: a request head arriving for longer than `client_header_timeout` closes
/// the connection (the gate records when each head starts), and a connection found idle at two
/// ticks in a row with no response finished in between is parked. Keeping hyper through short
/// pauses and parking only after a tick keeps the per-request cost of parking off a busy
/// connection (measured: BENCHMARKS.md).
async fn serve_h1_burst(mut gate: Io, ctx: &Arc<ConnCtx>, clock: &HeadClock) -> Option<Io> {
    let limits = &ctx.shared.limits;
    gate.hand_over();
    gate.set_probe(Some(express::probe(ctx.clone())));
    let tick = watchdog_tick(limits);
    let builder = http1_builder(limits);
    let service = Service {
        ctx: ctx.clone(),
        zero_copy: true,
    };
    let mut conn = Box::pin(builder.serve_connection(TokioIo::new(gate), service));
    let watchdog = tokio::time::sleep(tick);
    let drain = ctx.shared.idle_close();
    tokio::pin!(watchdog, drain);
    let mut stopping = false;
    let mut finished_at_last_tick = None;
    let result = loop {
        tokio::select! {
            result = poll_fn(|cx| conn.as_mut().poll_without_shutdown(cx)) => break result,
            _ = &mut watchdog => {
                if clock.pending_for().is_some_and(|t| t >= limits.header_read_timeout) {
                    tracing::debug!(peer = %ctx.peer, "request head not received within client_header_timeout");
                    return None;
                }
                let finished = ctx.state.finished.load(Ordering::Relaxed);
                if !stopping && ctx.state.is_idle() && finished_at_last_tick == Some(finished) {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                finished_at_last_tick = Some(finished);
                watchdog.as_mut().reset(tokio::time::Instant::now() + tick);
            }
            _ = &mut drain, if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => {
            let conn = Pin::into_inner(conn);
            let parts = conn.into_parts();
            let mut gate = parts.io.into_inner();
            if let Some(tunnel) = ctx.take_tunnel() {
                run_tunnel(gate, &parts.read_buf, tunnel, ctx).await;
                return None;
            }
            gate.set_probe(None);
            gate.restart(&parts.read_buf);
            Some(gate)
        }
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, error = %e, "HTTP/1 connection ended with an error");
            None
        }
    }
}

/// hyper's HTTP/1 settings for every connection.
fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // No hyper header timer: hyper arms one (30 s by default once a timer is set) for every
    // request head, a boxed sleep registered and cancelled per request; the watchdog enforces
    // `client_header_timeout` instead.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192) + 8192)
        .max_headers(limits.max_headers)
        .keep_alive(true)
        // A client may shut its write side after its request and wait for the answer (RFC
        // 9112 §9.6 lets it); without this hyper drops the request at the end of input.
        // The connection still closes after the answer: nothing more can be read.
        .half_close(true);
    builder
}

/// The gate's limits from the configured ones.
fn head_limits(limits: &Limits) -> HeadLimits {
    HeadLimits {
        max_head_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
        max_uri_bytes: limits.max_uri_bytes,
    }
}

/// The watchdog's period: fine enough for the header timeout and the keep-alive timeout
/// (a quarter of the shorter), at most 100 ms, at least 10 ms.
pub(super) fn watchdog_tick(limits: &Limits) -> Duration {
    let shorter = limits.header_read_timeout.min(limits.keepalive_timeout);
    (shorter / 4).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// Serves an HTTP/2 connection (h2c with prior knowledge) until it ends.
async fn serve_h2<S>(io: WriteTimeout<S>, ctx: Arc<ConnCtx>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &ctx.shared.limits;
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(None);
    let service = Service {
        ctx: ctx.clone(),
        zero_copy: false,
    };
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut stopping = false;
    let idle_limit = limits.keepalive_timeout;
    let mut idle_since = tokio::time::Instant::now();
    let mut finished_at_last_tick = 0;
    // Once idle, the server sends GOAWAY; a client that never answers h2's closing PING would
    // keep the connection, so it is dropped after `lingering_timeout`.
    let mut give_up: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle_limit));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %ctx.peer, error = %e, "HTTP/2 connection ended with an error");
                }
                return;
            }
            _ = ctx.shared.drain.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !stopping => {
                // HTTP/2 idle timeout: no stream open, and none finished, for keepalive_timeout.
                let started = ctx.state.started.load(Ordering::Relaxed);
                let finished = ctx.state.finished.load(Ordering::Relaxed);
                if started != finished || finished != finished_at_last_tick {
                    idle_since = tokio::time::Instant::now();
                    finished_at_last_tick = finished;
                } else if idle_since.elapsed() >= idle_limit {
                    stopping = true;
                    give_up = Some(tokio::time::Instant::now() + limits.linger_timeout);
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep_until(give_up.unwrap_or_else(tokio::time::Instant::now)), if give_up.is_some() => {
                tracing::debug!(peer = %ctx.peer, "idle HTTP/2 connection did not close after GOAWAY");
                return;
            }
        }
    }
}

/// Answers a rejected head directly on the socket, then closes it.
async fn reject<S>(mut gate: Gate<S>, rejection: Rejection, shared: &Shared)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let status = rejection.status();
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!("{} {}\n", status.as_u16(), reason);
    let head = format!(
        "HTTP/1.1 {} {}\r\nServer: portico\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status.as_u16(),
        reason,
        body.len(),
        body
    );
    if let Rejection::Malformed(why) = rejection {
        tracing::debug!(reason = why, "request head rejected");
    }
    if let Some(counters) = &shared.counters {
        counters.response(status.as_u16(), body.len() as u64);
    }
    if gate.get_mut().write_all(head.as_bytes()).await.is_ok() {
        let _ = gate.get_mut().flush().await;
        linger::close(gate.get_mut(), shared.limits.linger_timeout).await;
    }
}

/// The hyper service: every request goes through the pipeline.
#[derive(Clone)]
struct Service {
    ctx: Arc<ConnCtx>,
    /// The connection's socket sends file regions itself (HTTP/1 on plain TCP): responses may
    /// carry `Body::Region` (see `http::ZeroCopy`).
    zero_copy: bool,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Tracked>;
    type Error = std::convert::Infallible;
    type Future = pipeline::Answer;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        self.ctx.state.request_started();
        if self.zero_copy {
            req.extensions_mut().insert(crate::http::ZeroCopy);
        }
        pipeline::handle(self.ctx.clone(), req)
    }
}
