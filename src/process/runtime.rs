//! The async runtime of a serving process: tokio's multi-threaded scheduler, one thread per
//! CPU unless configured, one lightweight task per connection.
//!
//! Why threads plus tasks inside a process: a task switch is a function return and a queue
//! push (tens of nanoseconds), a thread switch is a trip through the kernel (microseconds), so
//! ten thousand connections cost ten thousand small tasks on a few threads rather than ten
//! thousand threads. See `docs/ARCHITECTURE.md`.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// Builds the runtime with `threads` workers (`None` = one per CPU). With one thread the
/// current-thread scheduler runs it: the same tasks, without the cross-thread wake-ups and
/// work-stealing bookkeeping that one thread has no use for (measured: BENCHMARKS.md).
pub fn build(threads: Option<usize>) -> io::Result<Runtime> {
    let mut builder = if threads == Some(1) {
        Builder::new_current_thread()
    } else {
        let mut builder = Builder::new_multi_thread();
        if let Some(n) = threads {
            builder.worker_threads(n.max(1));
        }
        builder
    };
    builder.enable_all().thread_name("portico-worker");
    builder.build()
}
