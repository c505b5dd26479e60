//! Signals, as users of nginx know them: TERM/INT fast stop, QUIT graceful stop, HUP reload,
//! USR1 reopen log files, USR2 upgrade the binary in place. The master acts on all of them;
//! a worker or a single process on the stops and USR1 (see `process::worker`).
//!
//! The handlers are installed by [`Signals::install`] before the process says it is ready, so
//! a signal sent right after the ready line is never met by the default action (death).

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::edge::server::StopMode;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// TERM or INT: fast stop; QUIT: polite stop (see `edge::server::StopMode`).
    Stop(StopMode),
    /// HUP: read the configuration again and apply it.
    Reload,
    /// USR1: reopen log files (after logrotate moved them).
    Reopen,
    /// USR2: start the binary again, handing it the listening sockets.
    Upgrade,
}

/// Installed signal handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    /// Installs the handlers; from here on the signals are queued for [`Signals::next`].
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop(StopMode::Fast),
            _ = self.int.recv() => Request::Stop(StopMode::Fast),
            _ = self.quit.recv() => Request::Stop(StopMode::Polite),
            _ = self.hup.recv() => Request::Reload,
            _ = self.usr1.recv() => Request::Reopen,
            _ = self.usr2.recv() => Request::Upgrade,
        }
    }
}
