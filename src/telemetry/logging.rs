//! The error log: `tracing` to stderr, filtered by `RUST_LOG` when set, else by the
//! configuration's `log_level`, else `info`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `rust_log` is the environment's `RUST_LOG`, read once by
/// `cli`. Calling it twice is harmless (the second call changes nothing).
pub fn init(rust_log: Option<&str>, level: Option<&str>) {
    let filter = rust_log
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
