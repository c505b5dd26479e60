//! HTTP vocabulary shared by the edge, files and (later) the proxy and client: the response
//! body type, conditional requests, byte ranges, content coding and error pages.
//!
//! Everything here is plain functions over `http` types, tested without sockets.

pub mod body;
pub mod compress;
pub mod conditional;
pub mod date;
pub mod error_page;
pub mod range;
pub mod reader;

pub use body::Body;

/// The `Server` field every response carries.
pub const SERVER_NAME: http::HeaderValue = http::HeaderValue::from_static("portico");
