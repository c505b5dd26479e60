//! The process family: a master ([`master`]) that binds the sockets, supervises worker
//! processes ([`worker`]) started by re-executing the binary ([`inherit`]), and takes signals
//! ([`signals`]) and control commands ([`ctl`]); exit codes ([`exit`]); each
//! worker's async runtime ([`runtime`]) and memory upkeep ([`memory`]). `--single-process`
//! runs the worker part alone, for debugging. The counters the family shares live in
//! `telemetry::shm`. Decisions: `docs/ARCHITECTURE.md`.

pub mod ctl;
pub mod exit;
pub mod inherit;
pub mod master;
pub mod memory;
pub mod runtime;
pub mod signals;
pub mod worker;

/// Settings of the serving process.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Runtime threads per worker; `None` = one per CPU.
    pub threads: Option<usize>,
    /// Worker processes; `None` = one per CPU.
    pub workers: Option<usize>,
    /// Serve in the master's own process (no workers, no reload): for debugging.
    pub single_process: bool,
}
