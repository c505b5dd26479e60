//! The integration-test harness: runs the real `portico` binary and talks to it.
//!
//! - [`workdir`]: a temporary folder per test that holds the config, site files and logs.
//! - [`server`]: starts `portico` in its own process group on `127.0.0.x:0`, waits for the
//!   `listening`/`ready` lines with a deadline, exposes the bound addresses, stops the group on
//!   drop and prints the server's stdout/stderr when the test failed.
//! - [`command`]: one-shot CLI runs (`check`, `--version`) with a bounded run time.
//! - [`client`]: a hyper HTTP/1.1 and h2c (prior knowledge) client returning whole responses.
//! - [`origin`]: origin servers for proxy tests (hyper servers in the test, counting requests,
//!   stopped and restarted at will).
//! - [`raw`]: bytes over a plain TCP socket, for what a well-behaved client cannot send
//!   (malformed heads, pipelining, slow writers) and for observing connection closes.
//!
//! Nothing here sleeps to synchronise: every wait polls with a deadline and panics with what
//! it saw when the deadline passes.

// Each test module uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod command;
pub mod origin;
pub mod raw;
pub mod server;
pub mod workdir;

use std::time::Duration;

pub use client::{H1Client, H2Client, Response, get, send};
pub use command::{CliOutput, portico};
pub use raw::{RawConn, RawResponse, exchange};
pub use server::Server;
pub use workdir::WorkDir;

/// How long any single network wait (connect, one response, a close) may take before the test
/// fails. Generous: it bounds hangs, it is not a speed requirement.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to print its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
