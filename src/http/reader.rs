//! A response body that reads any `AsyncRead` (a file, a slice of one, a compressor) in chunks.
//!
//! Used by `files::serve` for files too large to read whole and by `http::compress` for
//! on-the-fly encoders, each wrapped in [`crate::http::Body::stream`]. When the length is known
//! the body reports it exactly (so hyper may use it) and treats an early end of the reader (a
//! file truncated while being sent) as an error, which makes hyper abort the connection rather
//! than leave the client waiting for bytes promised in `Content-Length`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncRead;

/// Reads `R` to its end, `chunk_bytes` at most per frame.
pub struct ReaderBody<R> {
    /// `None` once the end or an error was reached.
    reader: Option<R>,
    chunk_bytes: usize,
    /// Bytes still expected, when the length is known.
    remaining: Option<u64>,
}

impl<R> ReaderBody<R> {
    /// A body of unknown length (a compressor's output).
    pub fn new(reader: R, chunk_bytes: usize) -> Self {
        ReaderBody {
            reader: Some(reader),
            chunk_bytes: chunk_bytes.max(1),
            remaining: None,
        }
    }

    /// A body of exactly `length` bytes; the reader must yield that many (limit it with
    /// `AsyncReadExt::take` first). Fewer is an `UnexpectedEof` error.
    pub fn with_length(reader: R, chunk_bytes: usize, length: u64) -> Self {
        ReaderBody {
            reader: (length > 0).then_some(reader),
            chunk_bytes: chunk_bytes.max(1),
            remaining: Some(length),
        }
    }
}

impl<R: AsyncRead + Unpin> http_body::Body for ReaderBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        let want = match this.remaining {
            Some(remaining) => {
                usize::try_from(remaining).map_or(this.chunk_bytes, |r| r.min(this.chunk_bytes))
            }
            None => this.chunk_bytes,
        };
        let mut buf = BytesMut::with_capacity(want);
        let result = ready!(tokio_util::io::poll_read_buf(
            Pin::new(reader),
            cx,
            &mut buf
        ));
        match result {
            Ok(0) => {
                this.reader = None;
                match this.remaining {
                    Some(remaining) if remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("body ended {remaining} bytes short of its length"),
                    )))),
                    _ => Poll::Ready(None),
                }
            }
            Ok(n) => {
                if let Some(remaining) = this.remaining.as_mut() {
                    *remaining = remaining.saturating_sub(n as u64);
                    if *remaining == 0 {
                        this.reader = None;
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
            }
            Err(err) => {
                this.reader = None;
                Poll::Ready(Some(Err(err)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reader.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(remaining) => SizeHint::with_exact(remaining),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn reads_in_chunks_of_the_given_size() {
        let data = [7u8; 10];
        let mut body = ReaderBody::with_length(&data[..], 4, 10);
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, vec![4, 4, 2]);
    }

    #[tokio::test]
    async fn exact_length_is_reported_and_counted_down() {
        let data = b"hello world";
        let mut body = ReaderBody::with_length(&data[..], 6, 11);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(11));
        body.frame().await.unwrap().unwrap();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        body.frame().await.unwrap().unwrap();
        assert!(http_body::Body::is_end_stream(&body));
    }

    #[tokio::test]
    async fn short_reader_is_an_error() {
        let data = b"short";
        let body = ReaderBody::with_length(&data[..], 64, 10);
        let err = body.collect().await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn take_limits_a_longer_reader() {
        let data = b"0123456789";
        let body = ReaderBody::with_length((&data[..]).take(3), 64, 3);
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"012");
    }

    #[tokio::test]
    async fn unknown_length_reads_to_the_end() {
        let data = b"abc";
        let body = ReaderBody::new(&data[..], 2);
        assert_eq!(http_body::Body::size_hint(&body).exact(), None);
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");
    }

    #[tokio::test]
    async fn zero_length_is_empty_at_once() {
        let body = ReaderBody::with_length(&b""[..], 8, 0);
        assert!(http_body::Body::is_end_stream(&body));
    }
}
