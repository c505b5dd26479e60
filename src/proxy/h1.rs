//! A lean HTTP/1.1 exchange with a member, for the edge's express lane (`edge::express`):
//! kept-alive connections per member, owned by the request that uses them (no connection
//! task, no channel), a response head parsed with `httparse`, and the framing of its body.
//!
//! Why it exists (measured, BENCHMARKS.md § Reverse proxy): through hyper's server and
//! hyper-util's pooled client a proxied 1 KiB GET cost about 28 µs of CPU against nginx's
//! 13 µs, half of it in user space: two HTTP state machines, a task hop and a channel per
//! request. The express lane answers plain GETs with the four system calls a proxy needs and
//! little else. Everything that is not plain (bodies, upgrades, HTTP/2 members, names to
//! resolve, policies that read the request) stays on the hyper path (`proxy::forward`).

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Largest response head accepted from a member.
pub const MAX_HEAD: usize = 64 * 1024;

/// Kept-alive connections to each member of one upstream.
pub struct Conns {
    idle: Vec<Mutex<Vec<(TcpStream, Instant)>>>,
    keep: usize,
    idle_timeout: Duration,
}

impl Conns {
    pub fn new(members: usize, keep: usize, idle_timeout: Duration) -> Conns {
        Conns {
            idle: (0..members).map(|_| Mutex::new(Vec::new())).collect(),
            keep,
            idle_timeout,
        }
    }

    /// A kept connection to member `index` that has not idled too long, most recent first.
    pub fn checkout(&self, index: usize) -> Option<TcpStream> {
        let mut idle = self.idle[index].lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() < self.idle_timeout {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps a connection whose exchange ended cleanly, unless enough are kept.
    pub fn checkin(&self, index: usize, stream: TcpStream) {
        let mut idle = self.idle[index].lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push((stream, Instant::now()));
        }
    }
}

/// A new connection to `addr` within `timeout`, with Nagle off.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (204, 304, or `Content-Length: 0`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, relayed as it is.
    Chunked,
    /// Until the member closes.
    Close,
}

/// The framing of a response with `status` and these fields; `None` when the fields
/// contradict each other or cannot be read (a bad response: 502).
pub fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Option<Framing> {
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(Framing::Empty);
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(&[]);
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Some(Framing::Close);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let value = crate::http::framing::parse_content_length(h.value)?;
            if length.is_some_and(|l| l != value) {
                return None;
            }
            length = Some(value);
        }
    }
    Some(match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(0)) => Framing::Empty,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_rfc_9112() {
        let h = |name: &'static str, value: &'static [u8]| httparse::Header { name, value };
        assert_eq!(
            framing(200, &[h("Content-Length", b"12")]),
            Some(Framing::Length(12))
        );
        assert_eq!(
            framing(200, &[h("content-length", b"0")]),
            Some(Framing::Empty)
        );
        assert_eq!(
            framing(204, &[h("content-length", b"5")]),
            Some(Framing::Empty)
        );
        assert_eq!(framing(304, &[]), Some(Framing::Empty));
        assert_eq!(
            framing(
                200,
                &[
                    h("Transfer-Encoding", b"gzip, chunked"),
                    h("Content-Length", b"3")
                ]
            ),
            Some(Framing::Chunked)
        );
        assert_eq!(
            framing(200, &[h("transfer-encoding", b"gzip")]),
            Some(Framing::Close)
        );
        assert_eq!(framing(200, &[]), Some(Framing::Close));
        assert_eq!(
            framing(200, &[h("content-length", b"1"), h("content-length", b"2")]),
            None
        );
        assert_eq!(framing(200, &[h("content-length", b"x")]), None);
    }
}
