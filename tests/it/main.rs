//! portico's integration tests: the real binary, started per test with a config written
//! inline, spoken to over loopback sockets. One module per feature; the harness lives in
//! [`harness`].
//!
//! Run everything: `cargo test --test it`; one feature: `cargo test --test it static_files::`;
//! one test: `cargo test --test it -- --exact limits::uri_too_long_is_414`. Tests wait on
//! timers (idle timeouts, slow clients) rather than the CPU, so more threads than cores
//! shortens the run: `cargo test --test it -- --test-threads 8`.

// The harness sends signals to the server under test (libc::kill); each block says why it is
// sound.
#![allow(unsafe_code)]

mod harness;

mod access_log;
mod acme;
mod cache;
mod cache_disk;
mod cache_purge;
mod cache_rfc;
mod cache_stale;
mod cli;
mod config_errors;
mod connections;
mod examples;
mod express;
mod express_proxy;
mod handlers;
mod lb;
mod lifecycle;
mod limits;
mod malformed;
mod methods;
mod parking;
mod processes;
mod proxy;
mod static_files;
mod tls;
mod traversal;
