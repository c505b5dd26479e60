//! The parking lot: idle keep-alive connections held outside the async runtime.
//!
//! A connection that has been idle between requests for a watchdog tick or two leaves its task:
//! its socket is taken out of tokio, registered in the lot's own epoll set, and kept in a slab
//! entry of a few dozen bytes (socket, peer address, listener, deadline). Nothing else of the
//! connection stays in memory: no task, no future, no buffer, no timer. When the socket turns
//! readable the lot hands it back to tokio in a new connection task that starts at the next
//! request; when its keep-alive deadline passes (checked once a second) or the server drains
//! fast, the lot closes it. A polite drain (reload, SIGQUIT) keeps parked connections for a
//! grace period instead, so a request already on its way is answered (with
//! `Connection: close`), and ends once no connection is left or the grace is over. Memory per idle connection is then below nginx's (BENCHMARKS.md).
//!
//! The slab is behind one `std::sync::Mutex`, held for a slot update and the `epoll_ctl` that
//! goes with it, never across `.await`. Event keys carry a generation, so an event for a slot
//! that was freed and reused meanwhile is ignored.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::conn;
use super::server::Shared;
use crate::net::epoll::EpollSet;

/// Idle connections waiting for their next request.
pub struct Lot {
    epoll: EpollSet,
    slots: Mutex<Slots>,
    origin: Instant,
    /// Seconds after `origin` when a polite drain's grace ends (`u64::MAX`: no drain).
    grace_until: AtomicU64,
}

/// One parked connection.
struct Parked {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    listener: u32,
    /// Seconds after the lot's origin when the keep-alive timeout ends.
    deadline_secs: u32,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Slot>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    parked: Option<Parked>,
}

impl Lot {
    /// Creates the lot's epoll set. Must be called inside the runtime.
    pub fn new() -> io::Result<Self> {
        Ok(Lot {
            epoll: EpollSet::new()?,
            slots: Mutex::new(Slots::default()),
            origin: Instant::now(),
            grace_until: AtomicU64::new(u64::MAX),
        })
    }

    /// Takes an idle connection out of the runtime until it turns readable or `keepalive`
    /// passes. On error the connection is closed (dropped) by the caller's drop of nothing:
    /// the stream is consumed either way.
    pub fn park(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        listener: usize,
        keepalive: Duration,
    ) -> io::Result<()> {
        if self.grace_over() {
            return Err(io::Error::other(
                "draining: the grace for idle connections is over",
            ));
        }
        let stream = stream.into_std()?;
        let deadline = self.origin.elapsed() + keepalive;
        let deadline_secs = u32::try_from(deadline.as_secs().saturating_add(1)).unwrap_or(u32::MAX);
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| io::Error::other("parking lot lock poisoned"))?;
        let index = match slots.free.pop() {
            Some(index) => index,
            None => {
                slots.entries.push(Slot::default());
                (slots.entries.len() - 1) as u32
            }
        };
        let slot = &mut slots.entries[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let key = u64::from(slot.generation) << 32 | u64::from(index);
        if let Err(e) = self.epoll.add(&stream, key) {
            slots.free.push(index);
            return Err(e);
        }
        slot.parked = Some(Parked {
            stream,
            peer,
            listener: listener as u32,
            deadline_secs,
        });
        Ok(())
    }

    /// Runs the lot until the server drains: resumes connections that turn readable, closes
    /// those past their deadline, and closes them all when draining.
    pub async fn run(shared: Arc<Shared>, tracker: TaskTracker) {
        let Some(lot) = shared.lot.as_ref() else {
            return;
        };
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut keys = Vec::new();
        let mut draining = false;
        loop {
            tokio::select! {
                waited = lot.epoll.wait(&mut keys) => {
                    if let Err(e) = waited {
                        tracing::error!(error = %e, "parking lot: epoll failed; idle connections are closed");
                        break;
                    }
                    for &key in &keys {
                        lot.resume(key, &shared, &tracker);
                    }
                }
                _ = sweep.tick() => {
                    lot.close_expired(&shared);
                    if draining
                        && (shared.connections.load(Ordering::Relaxed) == 0
                            || lot.grace_over()
                            || shared.closing_idle())
                    {
                        break;
                    }
                }
                _ = shared.drain.cancelled(), if !draining => {
                    if shared.closing_idle() {
                        break;
                    }
                    draining = true;
                    let grace = super::server::POLITE_GRACE.min(shared.limits.keepalive_timeout);
                    let until = (lot.origin.elapsed() + grace).as_secs();
                    lot.grace_until.store(until, Ordering::Relaxed);
                    sweep = tokio::time::interval(Duration::from_millis(100));
                }
            }
        }
        lot.close_all(&shared);
    }

    fn grace_over(&self) -> bool {
        self.origin.elapsed().as_secs() >= self.grace_until.load(Ordering::Relaxed)
    }

    /// Hands a parked connection that turned readable back to the runtime.
    fn resume(&self, key: u64, shared: &Arc<Shared>, tracker: &TaskTracker) {
        let (index, generation) = ((key & 0xffff_ffff) as usize, (key >> 32) as u32);
        let parked = {
            let Ok(mut slots) = self.slots.lock() else {
                return;
            };
            let Some(slot) = slots.entries.get_mut(index) else {
                return;
            };
            if slot.generation != generation {
                return;
            }
            let Some(parked) = slot.parked.take() else {
                return;
            };
            let _ = self.epoll.delete(&parked.stream);
            slots.free.push(index as u32);
            parked
        };
        shared.idle_changed(false, 1);
        match TcpStream::from_std(parked.stream) {
            Ok(stream) => {
                let shared = shared.clone();
                let span = tracing::debug_span!("conn", peer = %parked.peer, listener = parked.listener, resumed = true);
                tracker.spawn(
                    async move {
                        let ended = conn::resume(
                            stream,
                            parked.peer,
                            parked.listener as usize,
                            shared.clone(),
                        )
                        .await;
                        if ended == conn::Ended::Closed {
                            shared.connections_closed(1);
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "parking lot: cannot resume a connection");
                shared.connections_closed(1);
            }
        }
    }

    /// Closes connections whose keep-alive time is over.
    fn close_expired(&self, shared: &Shared) {
        let now = self.origin.elapsed().as_secs();
        let grace_over = now >= self.grace_until.load(Ordering::Relaxed);
        self.close_where(shared, |p| grace_over || u64::from(p.deadline_secs) <= now);
    }

    fn close_all(&self, shared: &Shared) {
        self.close_where(shared, |_| true);
    }

    fn close_where(&self, shared: &Shared, expired: impl Fn(&Parked) -> bool) {
        let closed: Vec<Parked> = {
            let Ok(mut slots) = self.slots.lock() else {
                return;
            };
            let mut closed = Vec::new();
            let mut freed = Vec::new();
            for (index, slot) in slots.entries.iter_mut().enumerate() {
                if slot.parked.as_ref().is_some_and(&expired)
                    && let Some(parked) = slot.parked.take()
                {
                    let _ = self.epoll.delete(&parked.stream);
                    closed.push(parked);
                    freed.push(index as u32);
                }
            }
            slots.free.extend(freed);
            closed
        };
        shared.idle_changed(false, closed.len());
        shared.connections_closed(closed.len());
        // Dropping the sockets closes them, outside the lock.
        drop(closed);
    }
}
