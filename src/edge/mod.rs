//! The HTTP(S) front: listeners and connections ([`server`], [`conn`]), the strict request-head
//! gate ([`gate`]), the express lane for plain GETs of cached files ([`express`]), routing by host and path ([`router`]), and the request phases that turn a
//! request into a response ([`pipeline`]), with the handlers that live here ([`redirect`],
//! [`respond`], [`methods`], and [`httpbin`], the built-in test origin).
//!
//! Called by `cli` (through `process`), which binds the sockets and builds the settings.

pub mod conn;
pub mod express;
pub mod express_proxy;
pub mod fault;
pub mod gate;
pub mod httpbin;
pub mod methods;
pub mod park;
pub mod pipeline;
pub mod purge;
pub mod redirect;
pub mod respond;
pub mod router;
pub mod server;
pub mod settings;
pub mod tracked;

pub use server::Server;
pub use settings::{
    Handler, HostPattern, Limits, PathMatch, Redirect, Respond, Route, Settings, Site, SiteTls,
};
