//! HTTP/1.x as bytes over a plain TCP socket: send exactly what a test wrote (malformed heads,
//! pipelined requests, one byte at a time), read responses framed by their own headers, and
//! observe whether and when the server closes the connection.
//!
//! Every read has a deadline of [`IO_TIMEOUT`]; a read that times out or hits an unexpected end
//! panics with every byte received so far.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::IO_TIMEOUT;
use super::client::{comma_set, printable_body};

/// A client connection that speaks raw bytes.
pub struct RawConn {
    addr: SocketAddr,
    stream: TcpStream,
    /// Received bytes not yet consumed by a response.
    pending: Vec<u8>,
    /// Bytes consumed by the response being read (kept for failure messages).
    current: Vec<u8>,
    /// The server closed (EOF or reset).
    closed: bool,
}

/// One response as received: the parsed parts and the exact bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// The body after removing chunked framing.
    pub body: Vec<u8>,
    /// Every byte of the response as received (head and framed body).
    pub raw: Vec<u8>,
}

/// Sends `METHOD target` for host `c.test` with the `extra` field lines (each ending in
/// CRLF) and `Connection: close`, and reads the response.
pub async fn request(addr: SocketAddr, method: &str, target: &str, extra: &str) -> RawResponse {
    exchange(
        addr,
        format!("{method} {target} HTTP/1.1\r\nHost: c.test\r\n{extra}Connection: close\r\n\r\n"),
    )
    .await
}

/// [`request`] with GET.
pub async fn get(addr: SocketAddr, target: &str, extra: &str) -> RawResponse {
    request(addr, "GET", target, extra).await
}

/// Connects, sends `request` as given, and reads one response.
pub async fn exchange(addr: SocketAddr, request: impl AsRef<[u8]>) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request).await;
    conn.read_response().await
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        RawConn::from_stream(addr, stream)
    }

    /// Tries to connect once; the error is returned (refused, reset) instead of panicking.
    pub async fn try_connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(RawConn::from_stream(addr, stream))
    }

    /// Connects with a small receive buffer (which also turns off receive-window
    /// auto-tuning), so that a large response stays in flight until the test reads it.
    pub async fn connect_with_small_buffer(addr: SocketAddr, recv_buffer: u32) -> RawConn {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(recv_buffer).expect("SO_RCVBUF");
        let stream = tokio::time::timeout(IO_TIMEOUT, socket.connect(addr))
            .await
            .unwrap_or_else(|_| panic!("connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        RawConn::from_stream(addr, stream)
    }

    fn from_stream(addr: SocketAddr, stream: TcpStream) -> RawConn {
        RawConn {
            addr,
            stream,
            pending: Vec::new(),
            current: Vec::new(),
            closed: false,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes all bytes; panics if the server does not take them.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes)
            .await
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.addr));
    }

    /// Shuts down the write side (a half-close): the server reads end of input, and may still
    /// answer.
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Writes all bytes, returning the error (the server may have closed already).
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        let bytes = bytes.as_ref();
        match tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Reads one response to a request that may have a body (GET, POST…).
    pub async fn read_response(&mut self) -> RawResponse {
        self.read_framed(false).await
    }

    /// Reads one response to a HEAD request: the head only, whatever it announces.
    pub async fn read_head_response(&mut self) -> RawResponse {
        self.read_framed(true).await
    }

    /// Waits until at least `n` bytes have arrived, without consuming them (to know a
    /// response has started).
    pub async fn wait_for_bytes(&mut self, n: usize) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.pending.len() < n {
            self.fill_or_panic(deadline).await;
        }
    }

    /// Reads until the server closes; panics if it has not within [`IO_TIMEOUT`].
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        match self.wait_closed(IO_TIMEOUT).await {
            Ok(bytes) => bytes,
            Err(bytes) => panic!(
                "server {} did not close within {IO_TIMEOUT:?}; received meanwhile:\n{}",
                self.addr,
                printable_body(&bytes)
            ),
        }
    }

    /// Reads until the server closes (EOF or reset). `Ok` carries the bytes received before the
    /// close, `Err` the bytes received by the deadline while the connection stayed open.
    pub async fn wait_closed(&mut self, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let deadline = Instant::now() + within;
        while !self.closed {
            match self.fill(deadline).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(std::mem::take(&mut self.pending));
                }
                Err(_) => self.closed = true,
            }
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// Whether the server has been seen closing the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    async fn read_framed(&mut self, head_only: bool) -> RawResponse {
        let deadline = Instant::now() + IO_TIMEOUT;
        self.current.clear();
        let head = self.take_until(b"\r\n\r\n", deadline).await;
        let mut response = parse_head(&head).unwrap_or_else(|e| {
            panic!(
                "unparsable response head ({e}):\n{}",
                String::from_utf8_lossy(&head)
            )
        });
        let bodiless = head_only
            || (100..200).contains(&response.status)
            || response.status == 204
            || response.status == 304;
        if !bodiless {
            let chunked = response
                .header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
            response.body = if chunked {
                self.take_chunked(deadline).await
            } else if let Some(length) = response.header("content-length") {
                let length: usize = length.trim().parse().unwrap_or_else(|_| {
                    panic!("bad Content-Length in:\n{}", String::from_utf8_lossy(&head))
                });
                self.take_exact(length, deadline).await
            } else {
                self.take_to_eof(deadline).await
            };
        }
        response.raw = std::mem::take(&mut self.current);
        response
    }

    async fn take_chunked(&mut self, deadline: Instant) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.take_until(b"\r\n", deadline).await;
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let size_text = text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {text:?} in:\n{}", self.seen()));
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let trailer = self.take_until(b"\r\n", deadline).await;
                    if trailer == b"\r\n" {
                        return body;
                    }
                }
            }
            body.extend(self.take_exact(size, deadline).await);
            let crlf = self.take_exact(2, deadline).await;
            assert_eq!(
                crlf,
                b"\r\n",
                "chunk not followed by CRLF in:\n{}",
                self.seen()
            );
        }
    }

    /// Consumes up to and including `delim`.
    async fn take_until(&mut self, delim: &[u8], deadline: Instant) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.pending, delim) {
                return self.consume(at + delim.len());
            }
            self.fill_or_panic(deadline).await;
        }
    }

    async fn take_exact(&mut self, n: usize, deadline: Instant) -> Vec<u8> {
        while self.pending.len() < n {
            self.fill_or_panic(deadline).await;
        }
        self.consume(n)
    }

    async fn take_to_eof(&mut self, deadline: Instant) -> Vec<u8> {
        while !self.closed {
            match self.fill(deadline).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => panic!(
                    "response without length: server did not close within {IO_TIMEOUT:?}; so far:\n{}",
                    self.seen()
                ),
                Err(_) => self.closed = true,
            }
        }
        let n = self.pending.len();
        self.consume(n)
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let taken: Vec<u8> = self.pending.drain(..n).collect();
        self.current.extend_from_slice(&taken);
        taken
    }

    async fn fill_or_panic(&mut self, deadline: Instant) {
        if self.closed {
            panic!(
                "server {} closed the connection mid-response; received:\n{}",
                self.addr,
                self.seen()
            );
        }
        match self.fill(deadline).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => panic!(
                "incomplete response from {} after {IO_TIMEOUT:?}; received:\n{}",
                self.addr,
                self.seen()
            ),
            Err(e) => {
                self.closed = true;
                panic!(
                    "server {} closed the connection mid-response ({e}); received:\n{}",
                    self.addr,
                    self.seen()
                )
            }
        }
    }

    /// Reads once into `pending`. EOF is reported as an `UnexpectedEof` error, a passed
    /// deadline as `TimedOut`.
    async fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read deadline")),
            Ok(Ok(0)) => {
                self.closed = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed by server",
                ))
            }
            Ok(Ok(n)) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(e)) => {
                self.closed = true;
                Err(e)
            }
        }
    }

    fn seen(&self) -> String {
        let mut all = self.current.clone();
        all.extend_from_slice(&self.pending);
        printable_body(&all)
    }
}

impl RawResponse {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The methods of the `Allow` header, upper-cased.
    pub fn allow(&self) -> BTreeSet<String> {
        comma_set(self.header_all("allow").into_iter())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `Cache-Status` field, or "".
    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }

    #[track_caller]
    pub fn assert_hit(&self) {
        assert!(
            self.cache_status().starts_with("portico; hit"),
            "expected a hit:\n{self}"
        );
    }

    #[track_caller]
    pub fn assert_not_hit(&self) {
        assert!(
            !self.cache_status().contains("hit"),
            "expected no hit:\n{self}"
        );
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status, status,
            "unexpected status; whole response:\n{self}"
        );
    }
}

impl fmt::Display for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", printable_body(&self.raw))
    }
}

fn parse_head(head: &[u8]) -> Result<RawResponse, String> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("partial head".into()),
        Err(e) => return Err(e.to_string()),
    }
    let version = match parsed.version {
        Some(0) => "HTTP/1.0",
        Some(1) => "HTTP/1.1",
        _ => "HTTP/?",
    };
    Ok(RawResponse {
        version: version.to_string(),
        status: parsed.code.unwrap_or(0),
        reason: parsed.reason.unwrap_or("").to_string(),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
        raw: Vec::new(),
    })
}

/// The position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
