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
            let value = std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()?;
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

/// Finds where a chunked body ends as its bytes go by (RFC 9112 §7.1), without decoding it:
/// sizes, data, the last chunk and the trailer section.
#[derive(Debug, Default)]
pub struct ChunkScanner {
    state: Scan,
    /// Data bytes left in the current chunk.
    left: u64,
    /// Bytes of the current line (size line or trailer line) seen so far.
    line: usize,
    size_digits: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    #[default]
    Size,
    /// After the size's digits: an extension, up to the line's end.
    SizeRest,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// A trailer line (or the empty line that ends the body).
    Trailer,
    TrailerLf,
    Done,
}

/// A chunked body that breaks RFC 9112 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct BadChunk;

/// Longest size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

impl ChunkScanner {
    /// Takes the next bytes; `Ok(Some(n))` when the body ends after the first `n` of them,
    /// `Ok(None)` when it goes on, `Err` for a malformed body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                Scan::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).ok_or(BadChunk)? as u64;
                        self.size_digits += 1;
                        if self.size_digits > 15 {
                            return Err(BadChunk);
                        }
                        self.left = self.left * 16 + digit;
                    }
                    b';' | b' ' | b'\t' if self.size_digits > 0 => self.state = Scan::SizeRest,
                    b'\r' if self.size_digits > 0 => self.state = Scan::SizeLf,
                    _ => return Err(BadChunk),
                },
                Scan::SizeRest => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(BadChunk);
                    }
                    if b == b'\r' {
                        self.state = Scan::SizeLf;
                    } else if b == b'\n' {
                        return Err(BadChunk);
                    }
                }
                Scan::SizeLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.line = 0;
                    self.size_digits = 0;
                    self.state = if self.left == 0 {
                        Scan::Trailer
                    } else {
                        Scan::Data
                    };
                }
                Scan::Data => {
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    self.left -= take as u64;
                    i += take;
                    if self.left == 0 {
                        self.state = Scan::DataCr;
                    }
                    continue;
                }
                Scan::DataCr => {
                    if b != b'\r' {
                        return Err(BadChunk);
                    }
                    self.state = Scan::DataLf;
                }
                Scan::DataLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = Scan::Size;
                }
                Scan::Trailer => {
                    if b == b'\r' {
                        self.state = Scan::TrailerLf;
                    } else {
                        self.line += 1;
                        if self.line > MAX_LINE || b == b'\n' {
                            return Err(BadChunk);
                        }
                    }
                }
                Scan::TrailerLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    if self.line == 0 {
                        self.state = Scan::Done;
                        return Ok(Some(i + 1));
                    }
                    self.line = 0;
                    self.state = Scan::Trailer;
                }
                Scan::Done => return Ok(Some(i)),
            }
            i += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(body: &[u8], split: usize) -> Result<Option<usize>, BadChunk> {
        let mut scanner = ChunkScanner::default();
        let (a, b) = body.split_at(split.min(body.len()));
        match scanner.feed(a)? {
            Some(n) => Ok(Some(n)),
            None => Ok(scanner.feed(b)?.map(|n| a.len() + n)),
        }
    }

    #[test]
    fn the_end_of_a_chunked_body_is_found_wherever_the_bytes_split() {
        let body =
            b"5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..body.len() {
            assert_eq!(end_of(body, split), Ok(Some(end)), "split at {split}");
        }
        assert_eq!(end_of(b"0\r\n\r\n", 1), Ok(Some(5)));
        assert_eq!(end_of(b"3\r\nabc\r\n", 4), Ok(None));
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"5\nhello",
            b"ffffffffffffffffff\r\n",
            b"0\r\nbad\nline\r\n\r\n",
        ] {
            assert_eq!(ChunkScanner::default().feed(bad), Err(BadChunk), "{bad:?}");
        }
    }

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
