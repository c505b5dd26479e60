//! Zero-copy sending of file bytes from under hyper.
//!
//! hyper writes bodies through `poll_write_vectored` and cannot `sendfile`. A response body
//! that comes from a file (`http::Body::File`) still carries the file's bytes, so anything can
//! write it; when it yields them it also *offers* a [`Hint`]: "the bytes at this address are
//! this file at this offset". [`Sendfile`], the connection's socket, looks for that address
//! among the buffers hyper asks it to write and sends that part with `sendfile(2)` from the
//! file instead of copying it from memory: on loopback and most NICs the page-cache pages go
//! to the socket without a copy (nginx `sendfile on`).
//!
//! Safety of the address match: the hint keeps a clone of the offered `Bytes`, so that memory
//! stays allocated, and cannot be reused for other data, for as long as the hint exists. The
//! bytes sent are the same either way unless the file changed in place after it was cached
//! (then, as with nginx, the new content goes out); if the file got shorter, `sendfile` sends
//! what is left and the rest is written from memory, so the length always matches the head.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Where some bytes in memory also are in a file.
struct Region {
    bytes: Bytes,
    file: Arc<File>,
    offset: u64,
}

/// The bytes that stand in for a file's content that was never read (files too large for the
/// open-file cache): zeros that must never reach a client. [`placeholder`] hands out slices of
/// them; the socket sends the file instead, and refuses to write them from memory (the
/// connection fails rather than send zeros).
static PLACEHOLDER: [u8; PLACEHOLDER_BYTES] = [0; PLACEHOLDER_BYTES];

/// The largest placeholder frame.
pub const PLACEHOLDER_BYTES: usize = 1 << 20;

/// A frame of `len` (at most [`PLACEHOLDER_BYTES`]) placeholder bytes.
pub fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len.min(PLACEHOLDER_BYTES)])
}

/// A placeholder that cannot be sent from its file: the file got shorter than its response's
/// length (or the offer was lost). The promised bytes cannot be sent, and zeros must not be:
/// the connection ends.
fn placeholder_without_file() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file bytes no longer there (file shorter than its Content-Length); connection closed",
    )
}

fn is_placeholder(buf: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= start && at < start + PLACEHOLDER_BYTES
}

/// The current offer of one connection (one response body at a time on HTTP/1).
#[derive(Clone, Default)]
pub struct Hint(Arc<Offer>);

#[derive(Default)]
struct Offer {
    /// Set once anything was offered: until then a write costs one atomic load, no lock.
    ever: AtomicBool,
    /// Offers in the order their bytes will be written. Placeholder frames all share the same
    /// addresses, so only the oldest offer a buffer falls in may match: writes go in order.
    regions: Mutex<VecDeque<Region>>,
}

impl Hint {
    /// Offers `bytes`, which are `file` from `offset` on, for zero-copy sending.
    pub fn offer(&self, bytes: &Bytes, file: &Arc<File>, offset: u64) {
        if let Ok(mut regions) = self.0.regions.lock() {
            regions.push_back(Region {
                bytes: bytes.clone(),
                file: file.clone(),
                offset,
            });
            self.0.ever.store(true, Ordering::Release);
        }
    }

    /// The oldest offer's bytes were all sent: drop it.
    fn sent(&self) {
        if let Ok(mut regions) = self.0.regions.lock() {
            regions.pop_front();
        }
    }

    /// The file and offset for a buffer that lies inside the offered bytes, with how many of
    /// its bytes do.
    /// For bytes inside the offer: the file, their offset in it, how many of them are in the
    /// offer, and how many the offer holds from there to its end.
    fn find(&self, buf: &[u8]) -> Option<(Arc<File>, u64, usize, usize)> {
        if !self.0.ever.load(Ordering::Acquire) {
            return None;
        }
        let mut regions = self.0.regions.lock().ok()?;
        let at = buf.as_ptr() as usize;
        let contains = |region: &Region| {
            let start = region.bytes.as_ptr() as usize;
            at >= start && at < start + region.bytes.len()
        };
        // Offers before the first one that holds the buffer are over (sent, or abandoned with
        // their response): drop them.
        let index = regions.iter().position(contains)?;
        regions.drain(..index);
        let region = regions.front()?;
        let (start, end) = (
            region.bytes.as_ptr() as usize,
            region.bytes.as_ptr() as usize + region.bytes.len(),
        );
        if buf.is_empty() {
            return None;
        }
        let len = buf.len().min(end - at);
        Some((
            region.file.clone(),
            region.offset + (at - start) as u64,
            len,
            end - at,
        ))
    }
}

/// A TCP stream that sends offered file bytes with `sendfile(2)`.
pub struct Sendfile {
    io: TcpStream,
    hint: Hint,
    /// `TCP_CORK` is set: the kernel sends only full segments until it is cleared.
    corked: bool,
}

impl Sendfile {
    pub fn new(io: TcpStream, hint: Hint) -> Self {
        Sendfile {
            io,
            hint,
            corked: false,
        }
    }

    /// Sets or clears `TCP_CORK` (nginx `tcp_nopush`). While a file goes out with `sendfile`,
    /// each call can end on a partial segment when the socket buffer fills, and the kernel
    /// pushes it at once: measured on loopback, 39 KB segments on average instead of 64 KB and
    /// 15 % fewer MB/s than nginx. Corked from the response head to the file's last byte, the
    /// kernel sends full segments only (BENCHMARKS.md).
    fn cork(&mut self, on: bool) {
        if self.corked != on {
            self.corked = on;
            let _ = socket2::SockRef::from(&self.io).set_tcp_cork(on);
        }
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.io
    }

    pub fn into_inner(self) -> TcpStream {
        self.io
    }

    /// Sends up to `len` bytes of `file` from `offset`; 0 when the file has no more (it got
    /// shorter than when it was cached).
    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, || {
            let mut at = libc::off_t::try_from(offset).map_err(io::Error::other)?;
            nix::sys::sendfile::sendfile(&self.io, file, Some(&mut at), len)
                .map_err(io::Error::from)
        })
    }

    /// Runs a non-blocking write `op` on the socket once it is writable, waiting again when the
    /// socket turns out full.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_write_ready(cx))?;
            match self.io.try_io(Interest::WRITABLE, &mut op) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for Sendfile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Sendfile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some((file, offset, len, to_end)) = this.hint.find(buf) {
            this.cork(true);
            match ready!(this.poll_sendfile(cx, &file, offset, len)) {
                Ok(0) => {}
                Ok(n) => {
                    if n == to_end {
                        // The offer's last byte is out: push what is held.
                        this.hint.sent();
                        this.cork(false);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if is_placeholder(buf) {
            return Poll::Ready(Err(placeholder_without_file()));
        }
        // Bytes from memory: nothing held back any more.
        this.cork(false);
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let file_at = bufs.iter().position(|b| this.hint.find(b).is_some());
        // What goes out from memory: everything before the file's part.
        let from_memory = &bufs[..file_at.unwrap_or(bufs.len())];
        if from_memory.iter().any(|b| is_placeholder(b)) {
            return Poll::Ready(Err(placeholder_without_file()));
        }
        match file_at {
            // The file's part first in line: send it alone, from the file.
            Some(0) => Pin::new(this).poll_write(cx, &bufs[0]),
            // The response head before it: corked, so it goes out in one segment with the
            // file's first bytes; the file's part goes in the next call.
            Some(_) => {
                this.cork(true);
                Pin::new(&mut this.io).poll_write_vectored(cx, from_memory)
            }
            None => {
                this.cork(false);
                Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn offered_bytes_go_out_from_the_file_others_from_memory() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        tmp.write_all(&content).unwrap();
        let file = Arc::new(File::open(tmp.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hint = Hint::default();
        let mut out = Sendfile::new(server, hint.clone());
        let bytes = Bytes::from(content.clone());
        let tail = bytes.slice(1000..);
        hint.offer(&tail, &file, 1000);
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let corked = |out: &Sendfile| socket2::SockRef::from(out.get_ref()).tcp_cork().unwrap();
        // The head before the file's bytes is held (corked) until the file's last byte is out.
        let sent = out
            .write_vectored(&[io::IoSlice::new(b"head:"), io::IoSlice::new(&tail)])
            .await
            .unwrap();
        assert_eq!(
            sent, 5,
            "the head goes alone, the file's bytes in the next call"
        );
        assert!(corked(&out), "the head waits for the file's bytes");
        out.write_all(&tail).await.unwrap();
        assert!(
            !corked(&out),
            "nothing stays held after the file's last byte"
        );
        out.shutdown().await.unwrap();
        drop(out);
        let got = reader.await.unwrap();
        assert_eq!(&got[..5], b"head:");
        assert!(got[5..] == content[1000..], "file bytes differ");
    }

    #[tokio::test]
    async fn placeholder_frames_go_out_from_the_file_and_never_as_they_are() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251 + 1) as u8).collect();
        tmp.write_all(&content).unwrap();
        let file = Arc::new(File::open(tmp.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let hint = Hint::default();
        let mut out = Sendfile::new(server, hint.clone());
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        });
        // Two frames of 150,000 placeholder bytes (the same addresses), offered in order.
        let (first, second) = (placeholder(150_000), placeholder(150_000));
        hint.offer(&first, &file, 0);
        hint.offer(&second, &file, 150_000);
        out.write_all(&first).await.unwrap();
        out.write_all(&second).await.unwrap();
        // A third frame past the end of the file: nothing to send it from.
        let third = placeholder(1000);
        hint.offer(&third, &file, 300_000);
        let err = out.write_all(&third).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // And one never offered at all.
        assert!(out.write_all(&placeholder(10)).await.is_err());
        drop(out);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), content.len());
        assert!(got == content, "the bytes sent are not the file's");
    }

    #[test]
    fn only_buffers_inside_the_offer_match() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let file = Arc::new(File::open(tmp.path()).unwrap());
        let hint = Hint::default();
        let bytes = Bytes::from(vec![7u8; 100]);
        hint.offer(&bytes.slice(10..), &file, 10);
        assert!(hint.find(&bytes[..5]).is_none());
        let (_, offset, len, to_end) = hint.find(&bytes[20..]).unwrap();
        assert_eq!((offset, len, to_end), (20, 80, 80));
        assert!(hint.find(&[1, 2, 3]).is_none());
    }
}
