//! Origin servers for proxy tests: small hyper HTTP/1.1 servers on `127.0.0.1:0`, run inside
//! the test, each answering with a handler the test gives and counting its requests. An
//! origin can be stopped (its listener and every connection closed) and started again on the
//! same address, to play a member that dies and comes back.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A response body an origin sends.
pub type OriginBody = BoxBody<Bytes, std::io::Error>;

/// Answers one request.
pub type Handler = Arc<
    dyn Fn(Request<Incoming>, Seen) -> Pin<Box<dyn Future<Output = Response<OriginBody>> + Send>>
        + Send
        + Sync,
>;

/// What the handler knows about its origin.
#[derive(Clone)]
pub struct Seen {
    /// The origin's name, for answers that say who served them.
    pub name: String,
    /// Requests being handled right now (this one included).
    pub active: Arc<AtomicUsize>,
}

/// A running origin.
pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    hits: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    handler: Handler,
    task: Option<JoinHandle<()>>,
    /// While stopped: the address, bound but not listening, so connections to it are refused
    /// and no other test's socket can take the port meanwhile.
    held: Option<tokio::net::TcpSocket>,
}

impl Origin {
    /// An origin on a free port of 127.0.0.1.
    pub async fn start(name: &str, handler: Handler) -> Origin {
        Origin::start_on("127.0.0.1:0".parse().unwrap(), name, handler).await
    }

    /// An origin answering every request with [`echo`].
    pub async fn echo(name: &str) -> Origin {
        Origin::start(
            name,
            handler(|req, seen| async move { echo(req, &seen).await }),
        )
        .await
    }

    /// An origin on `addr` (an address a stopped origin used, to bring it back).
    pub async fn start_on(addr: SocketAddr, name: &str, handler: Handler) -> Origin {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("origin {name}: bind {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(
            listener,
            handler.clone(),
            Seen {
                name: name.to_string(),
                active: active.clone(),
            },
            hits.clone(),
        ));
        Origin {
            addr,
            name: name.to_string(),
            hits,
            active,
            handler,
            task: Some(task),
            held: None,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests being handled now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Closes the listener and every open connection: the member is dead. Its address stays
    /// held (bound, not listening: connections are refused) until [`Origin::restart`], so that
    /// another test's socket cannot answer in its place.
    pub async fn stop(&mut self) {
        self.abort();
        let held = bind_again(self.addr, |addr| {
            let socket = tokio::net::TcpSocket::new_v4()?;
            // As a listener binds (past connections in TIME_WAIT); a port a socket is bound
            // to is still never handed out for port 0.
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            Ok(socket)
        })
        .await;
        self.held = Some(held);
    }

    fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Starts again on the same address with the same handler.
    pub async fn restart(&mut self) {
        self.abort();
        self.held = None;
        let listener = bind_again(self.addr, |addr| {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })
        .await;
        self.task = Some(tokio::spawn(serve(
            listener,
            self.handler.clone(),
            Seen {
                name: self.name.clone(),
                active: self.active.clone(),
            },
            self.hits.clone(),
        )));
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Binds `addr` again with `bind`, once the aborted task that held it let go of it (it drops
/// its listener when it is next polled): tried for up to 2 s.
async fn bind_again<T>(addr: SocketAddr, bind: impl Fn(SocketAddr) -> std::io::Result<T>) -> T {
    for _ in 0..100 {
        match bind(addr) {
            Ok(bound) => return bound,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    panic!("cannot bind {addr} again");
}

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>, Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<OriginBody>> + Send + 'static,
{
    Arc::new(move |req, seen| Box::pin(f(req, seen)))
}

/// A whole-buffer body.
pub fn full(text: impl Into<Bytes>) -> OriginBody {
    http_body_util::Full::new(text.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// The echo answer: `x-origin: NAME`, and a body of lines `origin NAME`, `method M`,
/// `target T`, `body-bytes N`, then `header NAME: VALUE` for each field received. The body is
/// read (and counted) first.
pub async fn echo(req: Request<Incoming>, seen: &Seen) -> Response<OriginBody> {
    let (parts, body) = req.into_parts();
    let mut bytes = 0u64;
    let mut body = body;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
        }
    }
    let mut text = format!(
        "origin {}\nmethod {}\ntarget {}\nbody-bytes {bytes}\n",
        seen.name, parts.method, parts.uri
    );
    for (name, value) in &parts.headers {
        text.push_str(&format!(
            "header {name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    Response::builder()
        .header("x-origin", seen.name.as_str())
        .header("content-type", "text/plain")
        .body(full(text))
        .unwrap()
}

/// The value of `header NAME: VALUE` in an echo body (the first, lower-case name).
pub fn echoed_header(body: &str, name: &str) -> Option<String> {
    let prefix = format!("header {name}: ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(str::to_string)
}

/// A body of `len` zero bytes in 64 KiB frames, made as it is read.
pub struct Zeros {
    pub left: u64,
}

impl http_body::Body for Zeros {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; n as usize])))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

async fn serve(listener: TcpListener, handler: Handler, seen: Seen, hits: Arc<AtomicUsize>) {
    // Owned here: aborting this task drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let handler = handler.clone();
        let seen = seen.clone();
        let hits = hits.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                hits.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let seen = seen.clone();
                async move {
                    seen.active.fetch_add(1, Ordering::SeqCst);
                    let response = handler(req, seen.clone()).await;
                    seen.active.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// How a [`RawOrigin`] misbehaves after reading a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Closes the connection without a byte of response.
    Close,
    /// Answers with bytes that are not HTTP.
    Garbage,
    /// Never answers (keeps the connection open until the test ends).
    Silent,
}

/// A TCP server that reads request heads and misbehaves, counting the heads it read.
pub struct RawOrigin {
    pub addr: SocketAddr,
    heads: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawOrigin {
    pub async fn start(how: Misbehaviour) -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(AtomicUsize::new(0));
        let counted = heads.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let counted = counted.clone();
                connections.spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    match how {
                        Misbehaviour::Close => {}
                        Misbehaviour::Garbage => {
                            let _ = stream.write_all(b"this is not http\r\n\r\n").await;
                        }
                        Misbehaviour::Silent => std::future::pending::<()>().await,
                    }
                });
            }
        });
        RawOrigin { addr, heads, task }
    }

    /// Request heads read so far.
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port free now (bound, then closed), for a server the test starts on it.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// An address nothing listens on: bound and never listening, and kept so for the rest of the
/// test run (the socket is leaked), so connections to it are refused and no other test's
/// socket can be given its port.
pub fn refused_addr() -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    std::mem::forget(socket);
    addr
}
