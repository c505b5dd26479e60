//! Signals to a serving process. Today: SIGTERM and SIGINT ask for a graceful stop. (HUP,
//! QUIT, USR1 and USR2 come with the master process, issue #3.)
//!
//! The handlers are installed by [`Signals::install`] before the process says it is ready, so
//! a signal sent right after the ready line is never met by the default action (death).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: stop accepting, finish requests in flight, exit.
    Stop,
}

/// Installed signal handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers; from here on the signals are queued for [`Signals::next`].
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next signal that asks for something.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop,
            _ = self.int.recv() => Request::Stop,
        }
    }
}
