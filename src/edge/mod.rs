//! The HTTP(S) front: listeners and connections, limits, routing by host and path, and the
//! request phases that turn a request into a response.

pub mod settings;

pub use settings::{Handler, HostPattern, Limits, PathMatch, Redirect, Respond, Route, Settings, Site};
