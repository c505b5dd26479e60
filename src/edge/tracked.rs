//! The response body as the connection sees it: counts the bytes sent and, when the body ends
//! or is dropped (HEAD, a client gone), settles the request exactly once — marks the response
//! finished for keep-alive parking, frees the in-flight slot, writes the access log line.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

use super::conn::ConnCtx;
use crate::http::Body;
use crate::telemetry::access_log::Record;

/// A response body with its request's bookkeeping.
pub struct Tracked {
    body: Body,
    bytes: u64,
    settle: Option<Settle>,
}

/// What is done once the response ends.
struct Settle {
    ctx: Arc<ConnCtx>,
    /// The in-flight slot, counted in the shared counters while held.
    permit: Option<OwnedSemaphorePermit>,
    status: u16,
    /// Boxed: a record is large, and the response is moved several times per request.
    log: Option<Box<Record>>,
}

impl Tracked {
    pub fn new(
        body: Body,
        ctx: Arc<ConnCtx>,
        permit: Option<OwnedSemaphorePermit>,
        status: u16,
        log: Option<Box<Record>>,
    ) -> Self {
        Tracked {
            body,
            bytes: 0,
            settle: Some(Settle {
                ctx,
                permit,
                status,
                log,
            }),
        }
    }

    fn settle(&mut self) {
        if let Some(settle) = self.settle.take() {
            let shared = &settle.ctx.shared;
            if let (Some(mut record), Some(writer)) = (settle.log, shared.access_log.as_ref()) {
                record.bytes = self.bytes;
                record.tcp = crate::net::tcp_info::sample(settle.ctx.fd);
                writer.write(&record);
            }
            if let Some(counters) = &shared.counters {
                counters.response(settle.status, self.bytes);
                if settle.permit.is_some() {
                    counters.sub(crate::telemetry::counters::Counter::InFlight, 1);
                }
            }
            drop(settle.permit);
            settle.ctx.state.response_finished();
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                    match (&self.body, &self.settle) {
                        (Body::File { file, offset, .. }, Some(settle)) => {
                            settle.ctx.sendfile.offer(data, file, *offset);
                        }
                        // The frame just taken ends at the region's new offset.
                        (Body::Region { file, offset, .. }, Some(settle)) => {
                            let start = *offset - data.len() as u64;
                            settle.ctx.sendfile.offer(data, file, start);
                        }
                        _ => {}
                    }
                }
            }
            Poll::Ready(None) => self.settle(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.settle();
    }
}
