//! Byte tunnels: after a `101 Switching Protocols` (WebSocket and other upgrades) or a
//! `200` to CONNECT, the client's connection and the other end (the member's upgraded
//! connection, or a TCP connection to the CONNECT target) are copied into each other until
//! both sides finish, either side fails, or no byte moves for the idle timeout.
//!
//! The proxy only makes the other end ([`Tunnel`]); the edge owns the client's connection
//! and runs the tunnel once hyper has written the response and let go of the socket. A
//! half-close is passed on (one direction may end while the other goes on).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// Anything a tunnel can copy to and from.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The far end of a tunnel, waiting for the client's connection.
pub struct Tunnel {
    far: Box<dyn Io>,
    idle_timeout: Duration,
}

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Both sides finished.
    Closed,
    /// No byte moved for the idle timeout.
    Idle,
    /// A side failed (reset, error).
    Failed,
    /// The server is stopping.
    Stopped,
}

impl Tunnel {
    pub fn new(far: impl Io + 'static, idle_timeout: Duration) -> Self {
        Tunnel {
            far: Box::new(far),
            idle_timeout,
        }
    }

    /// Copies between `client` and the far end. `early` are bytes the client sent after its
    /// request head that were already read (they go first); `stop` ends the tunnel early.
    /// Returns how it ended and the bytes moved each way (client to far, far to client).
    pub async fn run<C>(
        self,
        client: C,
        early: &[u8],
        stop: impl std::future::Future<Output = ()>,
    ) -> (Ended, u64, u64)
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let clock = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let mut far = Active::new(self.far, clock, last.clone());
        let mut client = Active::new(client, clock, last.clone());
        if !early.is_empty() && far.write_all(early).await.is_err() {
            return (Ended::Failed, 0, 0);
        }
        let idle = self.idle_timeout;
        let watch = async {
            loop {
                let at = clock + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
                if at <= Instant::now() {
                    return;
                }
                tokio::time::sleep_until(at).await;
            }
        };
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut far) => match copied {
                Ok((up, down)) => (Ended::Closed, up + early.len() as u64, down),
                Err(_) => (Ended::Failed, 0, 0),
            },
            () = watch => (Ended::Idle, 0, 0),
            () = stop => (Ended::Stopped, 0, 0),
        }
    }
}

/// An I/O object that records when bytes last moved through it.
struct Active<T> {
    inner: T,
    clock: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Active<T> {
    fn new(inner: T, clock: Instant, last: Arc<AtomicU64>) -> Self {
        Active { inner, clock, last }
    }

    fn touch(&self) {
        self.last
            .store(self.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Active<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Active<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, duplex};

    use super::*;

    #[tokio::test]
    async fn bytes_cross_both_ways_and_early_bytes_go_first() {
        let (client, client_peer) = duplex(64);
        let (far, mut far_peer) = duplex(64);
        let tunnel = Tunnel::new(far, Duration::from_secs(5));
        let run = tokio::spawn(async move {
            tunnel
                .run(client_peer, b"early ", std::future::pending())
                .await
        });
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 10];
        far_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early ping");
        far_peer.write_all(b"pong").await.unwrap();
        let mut got = [0u8; 4];
        client_read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        drop(far_peer);
        client_write.shutdown().await.unwrap();
        let (ended, up, down) = run.await.unwrap();
        assert_eq!((ended, up, down), (Ended::Closed, 10, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_tunnel_ends_after_the_idle_timeout() {
        let (_client, client_peer) = duplex(64);
        let (far, _far_peer) = duplex(64);
        let tunnel = Tunnel::new(far, Duration::from_secs(30));
        let started = Instant::now();
        let (ended, _, _) = tunnel.run(client_peer, b"", std::future::pending()).await;
        assert_eq!(ended, Ended::Idle);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
