//! The one response body type every handler returns.
//!
//! An enum rather than a boxed trait object so the common cases (empty, one buffer) cost no
//! allocation and report an exact size, which lets hyper write `Content-Length` and send
//! head and body in one write. Streams (files, compression) are boxed.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

/// A response body: empty, one buffer, or a boxed stream of buffers.
#[derive(Default)]
pub enum Body {
    /// No bytes (HEAD, 204, 304, redirects without text).
    #[default]
    Empty,
    /// One buffer, sent in one frame; `None` once sent.
    Full(Option<Bytes>),
    /// Any stream of bytes (a file read in chunks, a compressor).
    Stream(UnsyncBoxBody<Bytes, io::Error>),
    /// One buffer that is also `file` from `offset` on, sent in one frame; the connection may
    /// send it with `sendfile(2)` from the file instead (`net/sendfile.rs`).
    File {
        bytes: Option<Bytes>,
        file: Arc<File>,
        offset: u64,
    },
    /// `remaining` bytes of `file` from `offset`, never read into memory: the body yields
    /// placeholder frames (`net::sendfile::placeholder`) that an HTTP/1 connection's socket
    /// replaces with `sendfile(2)` from the file, and refuses to send as they are. Only for
    /// connections whose socket does that (HTTP/1; see `files::serve`).
    Region {
        file: Arc<File>,
        offset: u64,
        remaining: u64,
    },
}

impl Body {
    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(bytes))
        }
    }

    /// A body of bytes that are also `file` from `offset` on.
    pub fn file(bytes: Bytes, file: Arc<File>, offset: u64) -> Self {
        Body::File {
            bytes: Some(bytes),
            file,
            offset,
        }
    }

    /// A body from any `http_body::Body` with `io::Error` errors.
    pub fn stream<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes, Error = io::Error> + Send + 'static,
    {
        Body::Stream(UnsyncBoxBody::new(body))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) | Body::File { bytes, .. } => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            Body::Stream(body) => Pin::new(body).poll_frame(cx),
            Body::Region {
                offset, remaining, ..
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let len = (*remaining).min(crate::net::sendfile::PLACEHOLDER_BYTES as u64);
                *offset += len;
                *remaining -= len;
                Poll::Ready(Some(Ok(Frame::data(crate::net::sendfile::placeholder(
                    len as usize,
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) | Body::File { bytes, .. } => bytes.is_none(),
            Body::Stream(body) => body.is_end_stream(),
            Body::Region { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(bytes))
            | Body::File {
                bytes: Some(bytes), ..
            } => SizeHint::with_exact(bytes.len() as u64),
            Body::Full(None) | Body::File { bytes: None, .. } => SizeHint::with_exact(0),
            Body::Stream(body) => body.size_hint(),
            Body::Region { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::full(text)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::full(Bytes::from_static(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn full_body_reports_exact_size_and_yields_once() {
        let body = Body::full("hello");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[test]
    fn empty_buffer_is_empty_body() {
        assert!(matches!(Body::full(""), Body::Empty));
    }
}
