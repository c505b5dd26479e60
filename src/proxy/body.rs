//! Bodies in flight through the proxy, streamed frame by frame, never collected.
//!
//! - [`RequestBody`]: the client's body on its way to a member. It enforces
//!   `client_max_body_size` and `client_body_timeout` as it goes (the edge's own body reader
//!   is not used on this path), records progress for the first-byte and idle timers
//!   ([`Progress`]), and, if a failed attempt dropped it before reading a byte, hands the
//!   client's body back so another member can be tried. A body once read is never replayed.
//! - [`ResponseBody`]: the member's body on its way to the client, cut when it pauses longer
//!   than `idle_timeout`; it holds the member's lease, so the request counts as in flight
//!   until its last byte.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::error::BodyFault;
use super::settings::Timeouts;
use crate::lb::Lease;

/// Where a client's unread body waits between attempts.
pub type Unread = Arc<Mutex<Option<Incoming>>>;

/// The client's body as one attempt sends it.
pub struct RequestBody {
    inner: Option<Incoming>,
    /// Where `inner` goes back when dropped unread (`None` for a body known to be empty).
    unread: Option<Unread>,
    polled: bool,
    limits: BodyLimits,
    seen: u64,
    /// The body timer: armed when a wait for the client begins, checked while it lasts.
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    progress: Arc<Progress>,
}

/// The limits on a client's body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: u64,
    pub read_timeout: Duration,
}

/// How far one attempt got with the request, shared by its body and the timer that watches
/// the member.
pub struct Progress {
    origin: Instant,
    /// When a frame was last taken from the client (ms after `origin`).
    last_ms: AtomicU64,
    /// When the body ended (ms after `origin`, plus one); 0 while it goes on.
    done_ms: AtomicU64,
    /// Waiting for the client's next bytes: a pause then is the client's, not the member's.
    waiting_on_client: AtomicBool,
    fault: OnceLock<BodyFault>,
}

/// The member's body, with the idle timer and the lease.
pub struct ResponseBody {
    inner: Incoming,
    idle: Duration,
    /// The idle timer: armed when a wait for the member begins (a client that reads slowly
    /// is not the member's pause).
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    lease: Option<Lease>,
}

impl RequestBody {
    /// A body with nothing in it (GET and the like): nothing to hand back.
    pub fn empty(progress: Arc<Progress>, limits: BodyLimits) -> Self {
        RequestBody {
            inner: None,
            unread: None,
            polled: false,
            limits,
            seen: 0,
            sleep: None,
            waiting: false,
            progress,
        }
    }

    /// Takes the client's body from `unread` for one attempt; `None` when an earlier attempt
    /// read it (it cannot be sent again).
    pub fn take(unread: &Unread, progress: Arc<Progress>, limits: BodyLimits) -> Option<Self> {
        let inner = unread.lock().ok()?.take()?;
        Some(RequestBody {
            inner: Some(inner),
            unread: Some(unread.clone()),
            polled: false,
            limits,
            seen: 0,
            sleep: None,
            waiting: false,
            progress,
        })
    }

    fn fail(&mut self, fault: BodyFault) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        let _ = self.progress.fault.set(fault);
        self.inner = None;
        Poll::Ready(Some(Err(fault)))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyFault;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.progress
                    .waiting_on_client
                    .store(false, Ordering::Relaxed);
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limits.max_bytes {
                        return this.fail(BodyFault::TooLarge);
                    }
                }
                this.progress.moved();
                this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => this.fail(BodyFault::Broken),
            Poll::Ready(None) => {
                this.progress.finish();
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let timeout = this.limits.read_timeout;
                if !this.waiting {
                    this.waiting = true;
                    this.progress
                        .waiting_on_client
                        .store(true, Ordering::Relaxed);
                    arm(&mut this.sleep, timeout);
                }
                let Some(sleep) = this.sleep.as_mut() else {
                    return Poll::Pending;
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(BodyFault::Timeout),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if self.polled {
            return;
        }
        if let (Some(inner), Some(unread)) = (self.inner.take(), &self.unread)
            && let Ok(mut slot) = unread.lock()
        {
            *slot = Some(inner);
        }
    }
}

impl Progress {
    /// A new attempt; `sent` when the request has no body (it is all sent once the head is).
    pub fn new(sent: bool) -> Arc<Self> {
        Arc::new(Progress {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            done_ms: AtomicU64::new(u64::from(sent)),
            waiting_on_client: AtomicBool::new(false),
            fault: OnceLock::new(),
        })
    }

    /// What went wrong with the client's body, if anything.
    pub fn fault(&self) -> Option<BodyFault> {
        self.fault.get().copied()
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn moved(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn finish(&self) {
        self.done_ms.store(self.now_ms() + 1, Ordering::Relaxed);
    }

    /// Completes when the member is late: no response head `first_byte` after the body ended,
    /// or the member took no body bytes for `idle` while the client had them ready.
    pub async fn member_late(&self, timeouts: &Timeouts) {
        loop {
            let now = Instant::now();
            let deadline = self.deadline(timeouts, now);
            if deadline <= now {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    fn deadline(&self, timeouts: &Timeouts, now: Instant) -> Instant {
        let done = self.done_ms.load(Ordering::Relaxed);
        if done != 0 {
            return self.origin + Duration::from_millis(done - 1) + timeouts.first_byte;
        }
        if self.waiting_on_client.load(Ordering::Relaxed) {
            // The client's pause: its own body timer answers it. Look again later.
            return now + timeouts.idle;
        }
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + timeouts.idle
    }
}

impl ResponseBody {
    pub fn new(inner: Incoming, idle: Duration, lease: Lease) -> Self {
        ResponseBody {
            inner,
            idle,
            sleep: None,
            waiting: false,
            lease: Some(lease),
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(lease) = this.lease.take() {
                    lease.failed();
                }
                Poll::Ready(Some(Err(io::Error::other(e))))
            }
            Poll::Ready(None) => {
                this.lease = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    arm(&mut this.sleep, this.idle);
                }
                let Some(sleep) = this.sleep.as_mut() else {
                    return Poll::Pending;
                };
                ready!(sleep.as_mut().poll(cx));
                if let Some(lease) = this.lease.take() {
                    lease.failed();
                }
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the upstream's body paused longer than idle_timeout",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Sets `sleep` to end `after` from now, reusing its allocation.
fn arm(sleep: &mut Option<Pin<Box<Sleep>>>, after: Duration) {
    let deadline = Instant::now() + after;
    match sleep {
        Some(sleep) => sleep.as_mut().reset(deadline),
        None => *sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
    }
}
