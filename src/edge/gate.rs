//! The request-head gate: a strict check of every HTTP/1 request head before hyper sees it.
//!
//! hyper's parser is lenient where a front server must be strict: it accepts a request with
//! both `Content-Length` and `Transfer-Encoding` (Transfer-Encoding wins, RFC 9112 §6.1), and
//! its limits answer differently from what our configuration promises. Those are exactly the
//! places where request smuggling lives, so this hand-written layer sits between the socket and
//! hyper, holds back each request head until it is complete, checks it with `httparse`, and
//! only then lets hyper read it. Its framing (Content-Length count, chunk-size lines) is used
//! only to find where the next head starts; hyper still decodes bodies itself, so the two
//! parsers must agree for a request to pass, and a disagreement ends in a rejection, never in
//! a second request slipped past the check.
//!
//! A rejected head is never given to hyper: the gate records a [`Rejection`] and reports end of
//! input, hyper finishes what it was doing, and the connection driver writes the error
//! response itself and closes (`edge/conn.rs`).
//!
//! Invariants:
//! - no byte of a head reaches hyper before the whole head passed [`check_head`];
//! - after a rejection no further byte reaches hyper.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::framing::{Chunk, parse_content_length, scan_chunked};
use crate::telemetry::counters::{Counter, Counters};

/// Why a request head was refused, and the status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a valid HTTP/1 request (syntax, framing, smuggling patterns): 400.
    Malformed(&'static str),
    /// The request target is longer than allowed: 414.
    UriTooLong,
    /// The head is larger, or has more fields, than allowed: 431.
    HeadTooLarge,
}

impl Rejection {
    /// The status code of the response that reports this rejection.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::UriTooLong => StatusCode::URI_TOO_LONG,
            Rejection::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }
}

/// Limits the gate enforces on each head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
}

/// How a checked head says its body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body, or `Content-Length` bytes of body.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The connection turns into something else after this request (Upgrade, CONNECT): the
    /// gate stops looking at bytes.
    Opaque,
}

/// Where the gate is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for a complete request head.
    Head,
    /// This many body bytes still belong to the current request.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// No more checking (upgrade) — everything passes.
    Opaque,
    /// A head was refused; nothing passes any more.
    Rejected(Rejection),
    /// A body's framing was invalid: input ends for hyper, which is inside that request and
    /// answers it (400) itself, so the gate reports no rejection of its own.
    Cut,
    /// A head the express lane answers arrived while hyper sat idle: input ends for hyper,
    /// which stops, and the connection driver hands the head to the express lane
    /// (`edge/express.rs`). Cleared by [`Gate::restart`].
    Yield,
}

/// When the request head now being received started to arrive, shared with the connection
/// driver, which enforces `client_header_timeout` (the gate only records; it has no timer).
#[derive(Debug)]
pub struct HeadClock {
    origin: std::time::Instant,
    /// Milliseconds after `origin` (plus one, so 0 means "no head in progress").
    started: std::sync::atomic::AtomicU64,
}

impl HeadClock {
    pub fn new() -> Self {
        HeadClock {
            origin: std::time::Instant::now(),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How long the head in progress has been arriving, if one is.
    pub fn pending_for(&self) -> Option<std::time::Duration> {
        let started = self.started.load(std::sync::atomic::Ordering::Relaxed);
        (started != 0).then(|| {
            let now = self.origin.elapsed().as_millis() as u64 + 1;
            std::time::Duration::from_millis(now.saturating_sub(started))
        })
    }

    fn start(&self) {
        if self.started.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let now = self.origin.elapsed().as_millis() as u64 + 1;
            self.started
                .store(now, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn stop(&self) {
        self.started.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Default for HeadClock {
    fn default() -> Self {
        Self::new()
    }
}

/// An I/O wrapper that lets a request head through only once it is complete and valid.
pub struct Gate<S> {
    io: S,
    clock: std::sync::Arc<HeadClock>,
    limits: HeadLimits,
    stage: Stage,
    /// Bytes read from the socket that hyper has not been given yet.
    inbuf: BytesMut,
    /// How many bytes at the front of `inbuf` are checked and may be given to hyper.
    ready: usize,
    /// The socket reported end of input.
    eof: bool,
    /// Every byte written so far was flushed: nothing of a response is left in a buffer above
    /// the socket (hyper flushes its buffer completely before it flushes the socket).
    clean: bool,
    /// While hyper reads: tells whether a complete head should go to the express lane.
    probe: Option<Probe>,
    /// Where bytes read from the client are counted.
    counters: Option<Counters>,
}

/// Asked with each complete head (no body) that arrives while every write was flushed: true
/// when the express lane should answer it instead of hyper.
pub type Probe = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// A request head at the front of the gate, as the express lane sees it.
pub enum Pending<T> {
    /// More bytes are needed.
    Incomplete,
    /// The head was refused; [`Gate::rejection`] says why.
    Rejected,
    /// A valid head of `len` bytes; `seen` is what the visitor took from it.
    Complete {
        len: usize,
        framing: Framing,
        seen: T,
    },
}

impl<S> Gate<S> {
    /// Wraps a socket whose next byte starts a request head; `clock` records when each head
    /// starts to arrive.
    pub fn new(io: S, limits: HeadLimits, clock: std::sync::Arc<HeadClock>) -> Self {
        Gate {
            io,
            clock,
            limits,
            stage: Stage::Head,
            inbuf: BytesMut::new(),
            ready: 0,
            eof: false,
            clean: true,
            probe: None,
            counters: None,
        }
    }

    /// Counts the bytes read from the client in `counters`.
    pub fn set_counters(&mut self, counters: Option<Counters>) {
        self.counters = counters;
    }

    fn count_in(&self, n: usize) {
        if let Some(counters) = &self.counters {
            counters.add(Counter::BytesIn, n as u64);
        }
    }

    /// Sets or clears the probe that lets heads bypass hyper (see [`Stage::Yield`]).
    pub fn set_probe(&mut self, probe: Option<Probe>) {
        self.probe = probe;
    }

    /// Checks the head at the front of the buffer without giving it to anyone: for the
    /// express lane, which answers it itself ([`Gate::consume`]) or hands it to hyper
    /// ([`Gate::hand_over`]). `visit` sees the parsed head of a valid one. Only at a message
    /// boundary with nothing handed over (after [`Gate::new`] or [`Gate::restart`]).
    pub fn pending_head<T>(
        &mut self,
        visit: impl FnOnce(&httparse::Request<'_, '_>, Framing) -> T,
    ) -> Pending<T> {
        if !matches!(self.stage, Stage::Head) || self.ready != 0 {
            return Pending::Incomplete;
        }
        match check_head_with(&self.inbuf, self.limits, visit) {
            (HeadCheck::Complete { len, framing }, Some(seen)) => {
                self.clock.stop();
                Pending::Complete { len, framing, seen }
            }
            (HeadCheck::Rejected(r), _) => {
                self.stage = Stage::Rejected(r);
                Pending::Rejected
            }
            _ => {
                if !self.inbuf.is_empty() {
                    self.clock.start();
                }
                if self.inbuf.len() > self.limits.max_head_bytes {
                    self.stage = Stage::Rejected(too_large(&self.inbuf, self.limits));
                    return Pending::Rejected;
                }
                Pending::Incomplete
            }
        }
    }

    /// The buffered bytes (the pending head starts at 0).
    pub fn buffered(&self) -> &[u8] {
        &self.inbuf
    }

    /// Drops a head of `len` bytes the express lane answered (a head with no body).
    pub fn consume(&mut self, len: usize) {
        self.inbuf.advance(len);
    }

    /// Lets hyper read what is buffered: checks it and marks what may pass.
    pub fn hand_over(&mut self) {
        self.advance();
    }

    /// Reads more bytes from the socket into the buffer; 0 at end of input.
    pub async fn fill(&mut self) -> io::Result<usize>
    where
        S: AsyncRead + Unpin,
    {
        if self.inbuf.capacity() - self.inbuf.len() < 1024 {
            self.inbuf.reserve(4096);
        }
        let n = std::future::poll_fn(|cx| {
            tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.inbuf)
        })
        .await?;
        if n == 0 {
            self.eof = true;
        }
        self.count_in(n);
        Ok(n)
    }

    /// The rejection, once a head was refused.
    pub fn rejection(&self) -> Option<Rejection> {
        match self.stage {
            Stage::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// True when the gate holds bytes not given to hyper (a pipelined request).
    pub fn has_buffered(&self) -> bool {
        !self.inbuf.is_empty()
    }

    /// Starts over at a message boundary after hyper stopped: `unread` is what hyper had read
    /// but not used (the start of the next request), put back in front of what the gate holds.
    /// Heads in it are checked again, which is harmless.
    pub fn restart(&mut self, unread: &[u8]) {
        if !unread.is_empty() {
            let mut buf = BytesMut::with_capacity(unread.len() + self.inbuf.len());
            buf.extend_from_slice(unread);
            buf.extend_from_slice(&self.inbuf);
            self.inbuf = buf;
        }
        if !matches!(self.stage, Stage::Rejected(_) | Stage::Cut) {
            self.stage = Stage::Head;
        }
        self.ready = 0;
    }

    /// Frees the read buffer while the connection is idle, so a parked connection holds no
    /// buffer memory.
    pub fn release_buffer(&mut self) {
        if self.inbuf.is_empty() {
            self.inbuf = BytesMut::new();
        }
    }

    /// True when input ended: the socket reported end of input, or a body's framing was
    /// invalid and the rest of the input is refused.
    pub fn is_eof(&self) -> bool {
        self.eof || self.stage == Stage::Cut
    }

    /// The socket, once the gate holds nothing (see [`Gate::has_buffered`]).
    pub fn into_inner(self) -> S {
        self.io
    }

    pub fn get_ref(&self) -> &S {
        &self.io
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Advances the stage over buffered bytes, marking what may be given to hyper.
    fn advance(&mut self) {
        loop {
            let unchecked = &self.inbuf[self.ready..];
            if unchecked.is_empty() {
                return;
            }
            match self.stage {
                Stage::Head => match check_head(unchecked, self.limits) {
                    HeadCheck::Incomplete => {
                        self.clock.start();
                        if unchecked.len() > self.limits.max_head_bytes {
                            self.stage = Stage::Rejected(too_large(unchecked, self.limits));
                        }
                        return;
                    }
                    HeadCheck::Rejected(r) => {
                        self.stage = Stage::Rejected(r);
                        return;
                    }
                    HeadCheck::Complete { len, framing } => {
                        self.clock.stop();
                        if self.ready == 0
                            && self.clean
                            && framing == Framing::Length(0)
                            && let Some(probe) = self.probe.as_mut()
                            && probe(&unchecked[..len])
                        {
                            self.stage = Stage::Yield;
                            return;
                        }
                        self.ready += len;
                        self.stage = match framing {
                            Framing::Length(0) => Stage::Head,
                            Framing::Length(n) => Stage::Body(n),
                            Framing::Chunked => Stage::Chunked(Chunk::default()),
                            Framing::Opaque => Stage::Opaque,
                        };
                    }
                },
                Stage::Body(left) => {
                    let take = left.min(unchecked.len() as u64);
                    self.ready += take as usize;
                    self.stage = if take == left {
                        Stage::Head
                    } else {
                        Stage::Body(left - take)
                    };
                }
                Stage::Chunked(chunk) => match scan_chunked(chunk, unchecked) {
                    Ok((used, Some(chunk))) => {
                        self.ready += used;
                        self.stage = Stage::Chunked(chunk);
                    }
                    Ok((used, None)) => {
                        self.ready += used;
                        self.stage = Stage::Head;
                    }
                    Err(reason) => {
                        tracing::debug!(reason, "chunked body framing rejected");
                        self.stage = Stage::Cut;
                        return;
                    }
                },
                Stage::Opaque => {
                    self.ready = self.inbuf.len();
                    return;
                }
                Stage::Rejected(_) | Stage::Cut | Stage::Yield => return,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.inbuf[..n]);
                this.inbuf.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if matches!(this.stage, Stage::Rejected(_) | Stage::Cut | Stage::Yield) || this.eof {
                // End of input for hyper: a rejected head never reaches it, nor one the
                // express lane takes.
                return Poll::Ready(Ok(()));
            }
            // Fast path: nothing held back and the body is plain bytes: read straight into
            // hyper's buffer and account for what came.
            if this.inbuf.is_empty() && matches!(this.stage, Stage::Opaque | Stage::Body(_)) {
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                let got = buf.filled().len() - before;
                this.count_in(got);
                if got == 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                if let Stage::Body(left) = this.stage {
                    if got as u64 >= left {
                        // The read ran past this body into the next head: hold those bytes
                        // back until that head is checked.
                        let keep = before + left as usize;
                        this.inbuf.extend_from_slice(&buf.filled()[keep..]);
                        buf.set_filled(keep);
                        this.stage = Stage::Head;
                        this.advance();
                    } else {
                        this.stage = Stage::Body(left - got as u64);
                    }
                }
                return Poll::Ready(Ok(()));
            }
            if this.inbuf.capacity() - this.inbuf.len() < 1024 {
                this.inbuf.reserve(4096);
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.inbuf
            ))?;
            this.count_in(n);
            if n == 0 {
                // Deliver what was checked, then report the end; an unfinished head is dropped.
                this.eof = true;
                continue;
            }
            this.advance();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clean = false;
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clean = false;
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.clean = true;
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The outcome of checking the bytes that should start with a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadCheck {
    /// More bytes are needed.
    Incomplete,
    /// The head is `len` bytes (leading empty lines included) and valid.
    Complete {
        len: usize,
        framing: Framing,
    },
    Rejected(Rejection),
}

/// Checks one request head at the start of `bytes` (RFC 9112 §2–§6).
///
/// Rules beyond httparse's syntax check: CR LF line ends only (no bare LF); exactly one
/// `Host` in HTTP/1.1 (RFC 9112 §3.2); `Content-Length` and `Transfer-Encoding` never
/// together, `Content-Length` values all equal and valid, `Transfer-Encoding` ending in
/// `chunked` and only in HTTP/1.1 (RFC 9112 §6.1, §6.3); target, head size and field count
/// within the limits.
pub fn check_head(bytes: &[u8], limits: HeadLimits) -> HeadCheck {
    check_head_with(bytes, limits, |_, _| ()).0
}

/// [`check_head`], and for a valid head what `visit` takes from the parsed request (so a
/// caller that needs the fields parses the head once).
pub fn check_head_with<T>(
    bytes: &[u8],
    limits: HeadLimits,
    visit: impl FnOnce(&httparse::Request<'_, '_>, Framing) -> T,
) -> (HeadCheck, Option<T>) {
    let check = |c: HeadCheck| (c, None);
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    let skipped = bytes
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let start = &bytes[skipped..];
    let Some(end) = find_head_end(start) else {
        if let Some(line_end) = start.iter().position(|&b| b == b'\n') {
            return check(
                check_line_ends(&start[..=line_end])
                    .map_or(HeadCheck::Incomplete, HeadCheck::Rejected),
            );
        }
        // The request line alone is already longer than any target we accept.
        if start.len() > limits.max_uri_bytes + 32 && !start.contains(&b'\n') {
            return check(HeadCheck::Rejected(Rejection::UriTooLong));
        }
        return check(HeadCheck::Incomplete);
    };
    let head = &start[..end];
    if let Some(r) = check_line_ends(head) {
        return check(HeadCheck::Rejected(r));
    }
    // Header slots on the stack for the usual limit, left uninitialised (httparse writes
    // before it reads); a larger limit pays for an allocation.
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut on_stack[..limits.max_headers]
    } else {
        on_heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut on_heap
    };
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, slots) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return check(HeadCheck::Rejected(Rejection::Malformed("incomplete head")));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return check(HeadCheck::Rejected(Rejection::HeadTooLarge));
        }
        Err(_) => {
            return check(HeadCheck::Rejected(Rejection::Malformed(
                "invalid request syntax",
            )));
        }
    }
    let path = req.path.unwrap_or("");
    if path.len() > limits.max_uri_bytes {
        return check(HeadCheck::Rejected(Rejection::UriTooLong));
    }
    if skipped + end > limits.max_head_bytes {
        return check(HeadCheck::Rejected(Rejection::HeadTooLarge));
    }
    let http11 = req.version == Some(1);
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut chunked_last = None;
    let mut upgrade = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_content_length(h.value) else {
                return check(HeadCheck::Rejected(Rejection::Malformed(
                    "invalid Content-Length",
                )));
            };
            if content_length.is_some_and(|prev| prev != n) {
                return check(HeadCheck::Rejected(Rejection::Malformed(
                    "conflicting Content-Length",
                )));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return check(HeadCheck::Rejected(Rejection::Malformed(
                    "Transfer-Encoding in HTTP/1.0",
                )));
            }
            let Ok(value) = std::str::from_utf8(h.value) else {
                return check(HeadCheck::Rejected(Rejection::Malformed(
                    "invalid Transfer-Encoding",
                )));
            };
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked_last = Some(last.eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if http11 && hosts != 1 {
        return check(HeadCheck::Rejected(Rejection::Malformed(
            "HTTP/1.1 needs exactly one Host",
        )));
    }
    if hosts > 1 {
        return check(HeadCheck::Rejected(Rejection::Malformed(
            "more than one Host",
        )));
    }
    let framing = match (chunked_last, content_length) {
        (Some(_), Some(_)) => {
            return check(HeadCheck::Rejected(Rejection::Malformed(
                "Content-Length with Transfer-Encoding",
            )));
        }
        (Some(false), None) => {
            return check(HeadCheck::Rejected(Rejection::Malformed(
                "Transfer-Encoding not ending in chunked",
            )));
        }
        (Some(true), None) => Framing::Chunked,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::Length(0),
    };
    let framing = if upgrade || req.method == Some("CONNECT") {
        Framing::Opaque
    } else {
        framing
    };
    let seen = visit(&req, framing);
    (
        HeadCheck::Complete {
            len: skipped + end,
            framing,
        },
        Some(seen),
    )
}

/// Header slots kept on the stack while checking a head.
const STACK_HEADERS: usize = 128;

/// The length of the head up to and including the blank line, if it is all there.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    // A bare LF head end ("\n\n") is found too, so that it is rejected rather than waited on.
    // memchr: this runs over every head, so the line ends are found with SIMD.
    for at in memchr::memchr_iter(b'\n', bytes) {
        let next = &bytes[at + 1..];
        if next.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        if next.is_empty() || next == b"\r" {
            return None;
        }
    }
    None
}

/// Every LF must follow a CR; no NUL anywhere.
fn check_line_ends(head: &[u8]) -> Option<Rejection> {
    if memchr::memchr(0, head).is_some() {
        return Some(Rejection::Malformed("NUL in head"));
    }
    memchr::memchr_iter(b'\n', head)
        .any(|i| i == 0 || head[i - 1] != b'\r')
        .then_some(Rejection::Malformed("bare LF"))
}

/// 414 when the request line alone is too long, else 431.
fn too_large(bytes: &[u8], limits: HeadLimits) -> Rejection {
    let line = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    if line > limits.max_uri_bytes {
        Rejection::UriTooLong
    } else {
        Rejection::HeadTooLarge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_head_bytes: 1024,
        max_headers: 8,
        max_uri_bytes: 64,
    };

    fn check(text: &str) -> HeadCheck {
        check_head(text.as_bytes(), LIMITS)
    }

    fn rejected(text: &str) -> Rejection {
        match check(text) {
            HeadCheck::Rejected(r) => r,
            other => panic!("expected a rejection for {text:?}, got {other:?}"),
        }
    }

    /// Reads what the gate gives its reader (hyper) until it reports end of input.
    async fn read_all<S: AsyncRead + Unpin>(gate: &mut Gate<S>) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), gate.read(&mut buf))
                .await
                .expect("the gate answers")
                .unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn a_head_yields_to_the_probe_only_when_every_write_was_flushed() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(4096);
        let mut gate = Gate::new(server, LIMITS, std::sync::Arc::new(HeadClock::new()));
        gate.set_probe(Some(Box::new(|head: &[u8]| head.starts_with(b"GET /fast"))));
        // A response written and not yet flushed: the head goes to the reader as usual.
        gate.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        client
            .write_all(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::io::AsyncReadExt::read(&mut gate, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n");
        // Flushed: the next such head is held back and the reader sees end of input.
        gate.flush().await.unwrap();
        client
            .write_all(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_all(&mut gate).await, b"");
        assert!(gate.has_buffered());
        assert_eq!(gate.rejection(), None);
        // After a restart the head is still there, for the express lane to take.
        gate.set_probe(None);
        gate.restart(&[]);
        match gate.pending_head(|req, _| req.path.map(str::to_string)) {
            Pending::Complete { len, seen, .. } => {
                assert_eq!(seen.as_deref(), Some("/fast"));
                gate.consume(len);
            }
            _ => panic!("the held head is complete"),
        }
        assert!(!gate.has_buffered());
    }

    #[tokio::test]
    async fn a_head_the_probe_declines_passes_to_the_reader() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(4096);
        let mut gate = Gate::new(server, LIMITS, std::sync::Arc::new(HeadClock::new()));
        gate.set_probe(Some(Box::new(|head: &[u8]| head.starts_with(b"GET /fast"))));
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        drop(client);
        assert_eq!(
            read_all(&mut gate).await,
            b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
        );
    }

    #[test]
    fn simple_get_passes_with_no_body() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            check(text),
            HeadCheck::Complete {
                len: text.len(),
                framing: Framing::Length(0)
            }
        );
    }

    #[test]
    fn partial_head_waits() {
        assert_eq!(
            check("GET / HTTP/1.1\r\nHost: a\r\n"),
            HeadCheck::Incomplete
        );
        assert_eq!(check("GET / HT"), HeadCheck::Incomplete);
    }

    #[test]
    fn leading_empty_line_is_skipped() {
        let text = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(check(text), HeadCheck::Complete { len, .. } if len == text.len()));
    }

    #[test]
    fn content_length_with_transfer_encoding_is_rejected() {
        let r = rejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        rejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        );
    }

    #[test]
    fn differing_content_lengths_are_rejected_equal_ones_pass() {
        rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n");
        rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n");
        rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n");
        assert!(matches!(
            check("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            HeadCheck::Complete {
                framing: Framing::Length(5),
                ..
            }
        ));
    }

    #[test]
    fn transfer_encoding_must_end_in_chunked() {
        rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n");
        rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(matches!(
            check("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HeadCheck::Complete {
                framing: Framing::Chunked,
                ..
            }
        ));
    }

    #[test]
    fn host_rules() {
        rejected("GET / HTTP/1.1\r\n\r\n");
        rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        assert!(matches!(
            check("GET / HTTP/1.0\r\n\r\n"),
            HeadCheck::Complete { .. }
        ));
    }

    #[test]
    fn bare_lf_nul_and_folding_are_rejected() {
        rejected("GET / HTTP/1.1\nHost: a\n\n");
        rejected("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n");
        rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n");
        rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n");
        rejected("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n");
        rejected("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n");
    }

    #[test]
    fn limits_give_414_and_431() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
        assert_eq!(rejected(&long), Rejection::UriTooLong);
        let many: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(rejected(&text), Rejection::HeadTooLarge);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(2000)
        );
        assert_eq!(rejected(&big), Rejection::HeadTooLarge);
    }

    #[test]
    fn upgrade_and_connect_turn_opaque() {
        assert!(matches!(
            check("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
            HeadCheck::Complete {
                framing: Framing::Opaque,
                ..
            }
        ));
        assert!(matches!(
            check("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
            HeadCheck::Complete {
                framing: Framing::Opaque,
                ..
            }
        ));
    }

    #[test]
    fn chunked_scan_finds_the_end_and_rejects_bad_sizes() {
        let start = Chunk::Size { size: 0, digits: 0 };
        let body = b"5\r\nhello\r\n0\r\n\r\nNEXT";
        assert_eq!(scan_chunked(start, body), Ok((body.len() - 4, None)));
        let ext = b"5;name=v\r\nhello\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(scan_chunked(start, ext), Ok((ext.len(), None)));
        assert!(scan_chunked(start, b"zz\r\n").is_err());
        assert!(scan_chunked(start, b"\r\n").is_err());
        assert!(scan_chunked(start, b"5\r\nhelloXX").is_err());
        assert!(scan_chunked(start, b"ffffffffffffffffff\r\n").is_err());
    }

    #[test]
    fn chunked_scan_resumes_across_reads() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        let mut chunk = Chunk::Size { size: 0, digits: 0 };
        for (i, byte) in body.iter().enumerate() {
            match scan_chunked(chunk, std::slice::from_ref(byte)).unwrap() {
                (1, Some(next)) => chunk = next,
                (1, None) => assert_eq!(i, body.len() - 1),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
