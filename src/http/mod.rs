//! HTTP vocabulary shared by the edge, files and (later) the proxy and client: the response
//! body type, conditional requests, byte ranges, content coding, error pages, and message
//! framing (`Content-Length`, chunked bodies).
//!
//! Everything here is plain functions over `http` types, tested without sockets.

pub mod body;
pub mod compress;
pub mod conditional;
pub mod date;
pub mod error_page;
pub mod framing;
pub mod range;
pub mod reader;

pub use body::Body;

/// A request extension: the connection's socket sends file regions itself (HTTP/1 on plain
/// TCP, `net/sendfile.rs`), so a response may carry `Body::Region`. Absent on TLS and HTTP/2,
/// which must be given the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ZeroCopy;

/// The `Server` field every response carries.
pub const SERVER_NAME: http::HeaderValue = http::HeaderValue::from_static("portico");
