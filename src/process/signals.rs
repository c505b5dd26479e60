//! Signals to a serving process. Today: SIGTERM and SIGINT ask for a graceful stop. (HUP,
//! QUIT, USR1 and USR2 come with the master process, issue #3.)

use tokio::signal::unix::{SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: stop accepting, finish requests in flight, exit.
    Stop,
}

/// Waits for the next signal that asks for something.
pub async fn next() -> std::io::Result<Request> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok(Request::Stop),
        _ = int.recv() => Ok(Request::Stop),
    }
}
