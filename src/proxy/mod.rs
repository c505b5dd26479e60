//! Forwarding to origins: the reverse proxy (a route's `proxy` handler sends requests to an
//! upstream pool), tunnels for upgrades, and the forward proxy (CONNECT to allowed targets).
//!
//! - [`forward`]: one request's way to a member and back — head rewriting, attempts and
//!   retries, the response; [`headers`] holds the header rules as plain functions.
//! - [`body`]: request and response bodies streamed both ways with their limits and timers.
//! - [`backend`]: an upstream at run time (its `lb::Pool` and its pooled HTTP client).
//! - [`tunnel`]: the byte tunnel after a `101` or a CONNECT; [`forward_proxy`]: CONNECT and
//!   absolute-form requests to the targets a site's allow-list names.
//! - [`error`]: why a forward failed, the side to blame, the status.
//!
//! Called by the edge's pipeline for routes with a `proxy` handler and for CONNECT; uses `lb`
//! to choose members and `http` for bodies and error pages. The edge owns the client's
//! connection: a tunnel is handed back to it to run.

pub mod backend;
pub mod body;
pub mod error;
pub mod forward;
pub mod forward_proxy;
pub mod h1;
pub mod headers;
pub mod settings;
pub mod tunnel;

pub use backend::{Backend, Backends};
pub use error::Error;
pub use forward::{Downstream, Outcome, forward};
pub use settings::{
    AllowHost, AllowRule, ForwardProxy, HostHeader, Settings, Timeouts, TrustedProxies, Upstream,
};
pub use tunnel::Tunnel;
