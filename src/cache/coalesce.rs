//! Request coalescing: concurrent misses for one key make one origin fetch. The first request
//! for a key becomes its filler ([`Role::Fill`]); the others wait ([`Role::Wait`]) until the
//! filler reports how it went, then read the store again (or fetch for themselves).
//!
//! No wait is unbounded and nothing can deadlock: a waiter gives up after its own timeout and
//! fetches for itself; a filler that is dropped without reporting (its request was cancelled,
//! its task panicked) reports [`Outcome::Abandoned`] from `Drop`, so its waiters wake at once.
//! The key leaves the table when its filler reports or drops, so the next miss starts a new
//! flight. The table's mutex is held for a map operation only, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How a fill ended, as its waiters learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is in the store: read it from there.
    Stored,
    /// The origin answered with something that may not be shared: fetch for yourself.
    NotStorable,
    /// The fetch failed, or the filler went away before it finished.
    Abandoned,
    /// The waiter's own timeout passed first.
    TimedOut,
}

/// The flights in progress, by key.
#[derive(Debug, Default)]
pub struct Coalescer {
    flights: Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>,
}

/// What a miss should do.
pub enum Role {
    /// Fetch from the origin, then [`Filler::finish`].
    Fill(Filler),
    /// Someone else is fetching: [`Waiter::wait`].
    Wait(Waiter),
}

/// The request that fetches for everyone waiting on its key.
pub struct Filler {
    coalescer: Arc<Coalescer>,
    key: String,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

/// A request waiting for a filler.
pub struct Waiter {
    receiver: watch::Receiver<Option<Outcome>>,
}

impl Coalescer {
    /// Joins the flight for `key`, starting one when none is in progress.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(receiver) = flights.get(key) {
            return Role::Wait(Waiter {
                receiver: receiver.clone(),
            });
        }
        let (sender, receiver) = watch::channel(None);
        flights.insert(key.to_string(), receiver);
        Role::Fill(Filler {
            coalescer: self.clone(),
            key: key.to_string(),
            sender: Some(sender),
        })
    }

    /// Flights in progress.
    pub fn len(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Filler {
    /// Reports the fill's outcome to every waiter and ends the flight.
    pub fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: Outcome) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        // Out of the table first, so a request arriving after the report starts afresh
        // (and finds the stored response) instead of waiting on a finished flight.
        self.coalescer
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        let _ = sender.send(Some(outcome));
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.report(Outcome::Abandoned);
    }
}

impl Waiter {
    /// Waits for the filler's outcome, at most `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> Outcome {
        let wait = self.receiver.wait_for(Option::is_some);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(outcome)) => outcome.unwrap_or(Outcome::Abandoned),
            // The sender is gone without a report: only possible if it was dropped mid-send.
            Ok(Err(_)) => Outcome::Abandoned,
            Err(_) => Outcome::TimedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(role: Role) -> Filler {
        match role {
            Role::Fill(filler) => filler,
            Role::Wait(_) => panic!("expected to fill"),
        }
    }

    fn wait(role: Role) -> Waiter {
        match role {
            Role::Wait(waiter) => waiter,
            Role::Fill(_) => panic!("expected to wait"),
        }
    }

    #[tokio::test]
    async fn one_filler_per_key_and_every_waiter_learns_the_outcome() {
        let c = Arc::new(Coalescer::default());
        let filler = fill(c.join("k"));
        let waiters: Vec<_> = (0..100).map(|_| wait(c.join("k"))).collect();
        let other = fill(c.join("other"));
        let tasks: Vec<_> = waiters
            .into_iter()
            .map(|w| tokio::spawn(w.wait(Duration::from_secs(5))))
            .collect();
        filler.finish(Outcome::Stored);
        for task in tasks {
            assert_eq!(task.await.unwrap(), Outcome::Stored);
        }
        // The flight is over: the next miss fills again.
        assert_eq!(c.len(), 1);
        drop(other);
        assert!(c.is_empty());
        let _again = fill(c.join("k"));
    }

    #[tokio::test]
    async fn a_filler_that_goes_away_wakes_its_waiters() {
        let c = Arc::new(Coalescer::default());
        let filler = fill(c.join("k"));
        let waiter = tokio::spawn(wait(c.join("k")).wait(Duration::from_secs(5)));
        let task = tokio::spawn(async move {
            let _filler = filler;
            panic!("the filling request died");
        });
        assert!(task.await.is_err());
        assert_eq!(waiter.await.unwrap(), Outcome::Abandoned);
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_its_timeout() {
        let c = Arc::new(Coalescer::default());
        let _hanging = fill(c.join("k"));
        let outcome = wait(c.join("k")).wait(Duration::from_secs(2)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        // A late waiter still joins the same (hanging) flight.
        assert!(matches!(c.join("k"), Role::Wait(_)));
    }

    #[tokio::test]
    async fn a_waiter_that_joins_after_the_report_is_not_stuck() {
        let c = Arc::new(Coalescer::default());
        let filler = fill(c.join("k"));
        let waiter = wait(c.join("k"));
        filler.finish(Outcome::NotStorable);
        assert_eq!(
            waiter.wait(Duration::from_secs(1)).await,
            Outcome::NotStorable
        );
    }
}
