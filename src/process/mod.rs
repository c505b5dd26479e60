//! The process that runs the server: the async runtime, signals and the graceful stop.
//!
//! Today one process serves (the master/worker family comes with the process issue, #3);
//! the runtime is tokio's multi-threaded scheduler with one task per connection.

pub mod memory;
pub mod runtime;
pub mod signals;

/// Settings of the serving process.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Runtime threads; `None` = one per CPU.
    pub threads: Option<usize>,
}
