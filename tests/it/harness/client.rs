//! A well-behaved HTTP client on hyper's connection API: HTTP/1.1 (one fresh connection per
//! request) and h2c with prior knowledge (one connection, many concurrent streams).
//! Every exchange is bounded by [`IO_TIMEOUT`]; bodies are read whole.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::IO_TIMEOUT;

/// A whole response: status line, headers and the full body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// GET `path` on a new HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, Request::get(path).body(Bytes::new()).unwrap()).await
}

/// Sends one request on a new HTTP/1.1 connection. A `Host` header (the address) is added
/// when the request has none.
pub async fn send(addr: SocketAddr, request: Request<Bytes>) -> Response {
    let what = format!("{} {} to {addr}", request.method(), request.uri());
    tokio::time::timeout(IO_TIMEOUT, send_h1(addr, request))
        .await
        .unwrap_or_else(|_| panic!("no complete response within {IO_TIMEOUT:?} for {what}"))
}

async fn send_h1(addr: SocketAddr, request: Request<Bytes>) -> Response {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        parts
            .headers
            .insert(http::header::HOST, addr.to_string().parse().unwrap());
    }
    let request = Request::from_parts(parts, Full::new(body));
    let what = format!("{} {}", request.method(), request.uri());
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap_or_else(|e| panic!("http1 handshake with {addr}: {e}"));
    let driver = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{what} to {addr}: {e:?}"));
    let response = collect(response, &what).await;
    // Close the connection before returning, as a browser closing a tab would: a socket left
    // open would keep the server's graceful stop waiting when the test ends.
    drop(sender);
    close(driver).await;
    response
}

/// Waits (bounded) for a connection task to finish after its sender was dropped; aborts it
/// otherwise.
async fn close<T>(driver: tokio::task::JoinHandle<T>) {
    let abort = driver.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), driver)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// An h2c client (HTTP/2 over cleartext TCP, prior knowledge: no upgrade dance).
pub struct H2Client {
    addr: SocketAddr,
    sender: http2::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl H2Client {
    pub async fn connect(addr: SocketAddr) -> H2Client {
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap_or_else(|e| panic!("h2c handshake with {addr}: {e:?}"));
            (sender, tokio::spawn(conn))
        };
        let (sender, driver) = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| panic!("h2c connection to {addr} not ready within {IO_TIMEOUT:?}"));
        H2Client {
            addr,
            sender,
            driver,
        }
    }

    /// Closes the connection (GOAWAY, then the socket) and waits for it, bounded.
    pub async fn close(self) {
        drop(self.sender);
        close(self.driver).await;
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Request::get(path).body(Bytes::new()).unwrap())
            .await
    }

    /// Sends one request as a new stream on the shared connection; relative URIs get
    /// `http://<addr>` so that `:scheme` and `:authority` are set.
    pub async fn send(&self, request: Request<Bytes>) -> Response {
        let (mut parts, body) = request.into_parts();
        if parts.uri.authority().is_none() {
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            parts.uri = format!("http://{}{pq}", self.addr).parse::<Uri>().unwrap();
        }
        parts.version = Version::HTTP_2;
        let request = Request::from_parts(parts, Full::new(body));
        let what = format!("h2 {} {}", request.method(), request.uri());
        let mut sender = self.sender.clone();
        let exchange = async {
            sender
                .ready()
                .await
                .unwrap_or_else(|e| panic!("{what}: connection not ready: {e:?}"));
            let response = sender
                .send_request(request)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            collect(response, &what).await
        };
        tokio::time::timeout(IO_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("no complete h2 response within {IO_TIMEOUT:?}"))
    }
}

async fn collect(response: hyper::Response<hyper::body::Incoming>, what: &str) -> Response {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{what}: reading the body of a {} response: {e:?}",
                parts.status
            )
        })
        .to_bytes();
    Response {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

impl Response {
    /// The first value of a header, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The methods of a comma-separated `Allow` header, upper-cased.
    pub fn allow(&self) -> BTreeSet<String> {
        comma_set(
            self.headers
                .get_all("allow")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; whole response:\n{self}"
        );
    }

    #[track_caller]
    pub fn assert_header(&self, name: &str, value: &str) {
        assert_eq!(
            self.header(name),
            Some(value),
            "header {name}; whole response:\n{self}"
        );
    }
}

/// Splits comma-separated header values into an upper-cased set.
pub fn comma_set<'a>(values: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    values
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The expected set of methods, for comparing with [`Response::allow`].
pub fn methods(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|m| m.to_string()).collect()
}

/// How much of a body is printed in a failure message.
pub const BODY_PRINT_LIMIT: usize = 16 * 1024;

/// Body text for failure messages: lossy UTF-8, cut after [`BODY_PRINT_LIMIT`] bytes with a
/// note of how much was left out (the remaining bytes are never useful in a terminal).
pub fn printable_body(body: &[u8]) -> String {
    if body.len() <= BODY_PRINT_LIMIT {
        String::from_utf8_lossy(body).into_owned()
    } else {
        format!(
            "{}\n… ({} more bytes not shown)",
            String::from_utf8_lossy(&body[..BODY_PRINT_LIMIT]),
            body.len() - BODY_PRINT_LIMIT
        )
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?} {}", self.version, self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        writeln!(f)?;
        write!(f, "{}", printable_body(&self.body))
    }
}

/// An HTTP/1.1 client on one kept-alive connection: requests go one after another on it.
pub struct H1Client {
    addr: SocketAddr,
    sender: http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl H1Client {
    pub async fn connect(addr: SocketAddr) -> H1Client {
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            let (sender, conn) = http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap_or_else(|e| panic!("http1 handshake with {addr}: {e}"));
            (sender, tokio::spawn(conn))
        };
        let (sender, driver) = tokio::time::timeout(IO_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| panic!("connection to {addr} not ready within {IO_TIMEOUT:?}"));
        H1Client {
            addr,
            sender,
            driver,
        }
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.send(Request::get(path).body(Bytes::new()).unwrap())
            .await
    }

    /// Sends one request on the connection (adding `Host` when missing) and reads the whole
    /// response.
    pub async fn send(&mut self, request: Request<Bytes>) -> Response {
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(http::header::HOST) {
            parts
                .headers
                .insert(http::header::HOST, self.addr.to_string().parse().unwrap());
        }
        let request = Request::from_parts(parts, Full::new(body));
        let what = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            self.sender
                .ready()
                .await
                .unwrap_or_else(|e| panic!("{what}: connection not ready: {e:?}"));
            let response = self
                .sender
                .send_request(request)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            collect(response, &what).await
        };
        tokio::time::timeout(IO_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("no complete response within {IO_TIMEOUT:?}"))
    }

    /// Closes the connection and waits for it, bounded.
    pub async fn close(self) {
        drop(self.sender);
        close(self.driver).await;
    }
}
