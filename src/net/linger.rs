//! Lingering close (RFC 9112 §9.6): after the last response on a connection the server
//! closes its sending side, then reads and discards what the client still sends, for a
//! bounded time, before closing. Closing at once while unread request bytes sit in the
//! kernel makes it send a reset, which can destroy the response before the client read it.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes discarded while lingering.
const MAX_DISCARD_BYTES: usize = 1024 * 1024;

/// Shuts down the write side, then discards input until end of input, `limit` elapsed, or
/// `MAX_DISCARD_BYTES` read. Errors only end the wait early.
pub async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, limit: Duration) {
    if io.shutdown().await.is_err() {
        return;
    }
    let discard = async {
        // On the heap: an inline buffer would make every connection task 4 KiB larger, since
        // a task is as large as the largest state of its future.
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        while total < MAX_DISCARD_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(limit, discard).await;
}
