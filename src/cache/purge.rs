//! Purges across the process family. Each worker process has its own memory tier, and the
//! disk tier is shared, so a purge is a small distributed job: the process that keeps the
//! ledger (the master, or a `--single-process` server itself) gives it an id, tells every
//! participant — each live worker for its memory tier, one walk of the disk tier — and marks
//! it done when all have answered. Workers that exit meanwhile are no longer waited for
//! (their memory went with them). The ledger keeps the last [`KEPT`] purges for status
//! queries.
//!
//! Who asks: a `PURGE` request on a cached route (`edge::purge`), the admin API
//! (`admin`), and `portico ctl purge`. Each gets a [`Status`]: done, or still running (the
//! HTTP answers are then 202 Accepted with where to look: `GET …/purges/ID`).
//!
//! Wire format between master and workers (lines on their socket pair; see
//! `process::worker`): a [`Matcher`] is `exact KEY`, `prefix KEY` or `tag TAG`, none of which
//! holds white space or control characters ([`encode`] refuses them).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::memory::Matcher;

/// Purges the ledger remembers.
pub const KEPT: usize = 1024;

/// The disk tier's walk, as a participant (workers are their process ids).
pub const DISK: u32 = 0;

/// One purge as its askers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: u64,
    /// `exact`, `prefix` or `tag`.
    pub kind: String,
    /// The key, prefix or tag.
    pub value: String,
    /// `done` or `pending`.
    pub state: String,
    /// Stored responses removed so far (memory tiers and disk tier together).
    pub purged: u64,
    /// Participants (worker memory tiers, the disk tier) that have finished, and how many
    /// there are.
    pub finished: usize,
    pub participants: usize,
    /// Seconds since the Unix epoch.
    pub requested: u64,
    pub completed: Option<u64>,
}

impl Status {
    pub fn is_done(&self) -> bool {
        self.state == "done"
    }

    /// The JSON the HTTP answers carry.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// `kind value` for a matcher, or `None` when the value holds white space or control
/// characters (it could not be one line of the wire format).
pub fn encode(matcher: &Matcher) -> Option<String> {
    let (kind, value) = parts(matcher);
    let clean = !value.is_empty() && value.bytes().all(|b| b > b' ' && b != 0x7f);
    clean.then(|| format!("{kind} {value}"))
}

/// The matcher of an [`encode`]d line.
pub fn decode(line: &str) -> Option<Matcher> {
    let (kind, value) = line.split_once(' ')?;
    if value.is_empty() || value.contains(char::is_whitespace) {
        return None;
    }
    let value = value.to_string();
    match kind {
        "exact" => Some(Matcher::Exact(value)),
        "prefix" => Some(Matcher::Prefix(value)),
        "tag" => Some(Matcher::Tag(value)),
        _ => None,
    }
}

fn parts(matcher: &Matcher) -> (&'static str, &str) {
    match matcher {
        Matcher::Exact(key) => ("exact", key),
        Matcher::Prefix(prefix) => ("prefix", prefix),
        Matcher::Tag(tag) => ("tag", tag),
    }
}

fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Entry {
    status: Status,
    waiting: HashSet<u32>,
    waiters: Vec<oneshot::Sender<Status>>,
}

impl Entry {
    fn finish_if_done(&mut self) {
        if !self.waiting.is_empty() || self.status.is_done() {
            return;
        }
        self.status.state = "done".to_string();
        self.status.completed = Some(epoch_secs(SystemTime::now()));
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(self.status.clone());
        }
    }
}

/// The purges in progress and the recent ones, kept by one process.
#[derive(Default)]
pub struct Ledger {
    next: u64,
    entries: VecDeque<Entry>,
}

impl Ledger {
    /// Starts a purge that `participants` must each finish; its id.
    pub fn begin(&mut self, matcher: &Matcher, participants: impl IntoIterator<Item = u32>) -> u64 {
        self.next += 1;
        let waiting: HashSet<u32> = participants.into_iter().collect();
        let (kind, value) = parts(matcher);
        let mut entry = Entry {
            status: Status {
                id: self.next,
                kind: kind.to_string(),
                value: value.to_string(),
                state: "pending".to_string(),
                purged: 0,
                finished: 0,
                participants: waiting.len(),
                requested: epoch_secs(SystemTime::now()),
                completed: None,
            },
            waiting,
            waiters: Vec::new(),
        };
        entry.finish_if_done();
        if self.entries.len() == KEPT {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        self.next
    }

    fn entry(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.status.id == id)
    }

    /// `participant` finished purge `id`, removing `purged` stored responses.
    pub fn finished(&mut self, id: u64, participant: u32, purged: u64) {
        if let Some(entry) = self.entry(id)
            && entry.waiting.remove(&participant)
        {
            entry.status.purged += purged;
            entry.status.finished += 1;
            entry.finish_if_done();
        }
    }

    /// `participant` is gone (a worker exited): no purge waits for it any more.
    pub fn gone(&mut self, participant: u32) {
        for entry in &mut self.entries {
            if entry.waiting.remove(&participant) {
                entry.status.participants -= 1;
                entry.finish_if_done();
            }
        }
    }

    pub fn status(&self, id: u64) -> Option<Status> {
        self.entries
            .iter()
            .find(|e| e.status.id == id)
            .map(|e| e.status.clone())
    }

    /// The remembered purges, newest first.
    pub fn recent(&self) -> Vec<Status> {
        self.entries
            .iter()
            .rev()
            .map(|e| e.status.clone())
            .collect()
    }

    /// `reply` gets the status of purge `id` once it is done (at once if it is, or if it is
    /// unknown: then nothing is sent and the sender is dropped).
    pub fn when_done(&mut self, id: u64, reply: oneshot::Sender<Status>) {
        if let Some(entry) = self.entry(id) {
            if entry.status.is_done() {
                let _ = reply.send(entry.status.clone());
            } else {
                entry.waiters.push(reply);
            }
        }
    }
}

/// A request to the ledger's keeper.
pub enum Call {
    /// Start a purge; the reply comes when it is done or after `wait`, whichever is first.
    Purge {
        matcher: Matcher,
        wait: Duration,
        reply: oneshot::Sender<Status>,
    },
    /// The status of one purge.
    Status {
        id: u64,
        reply: oneshot::Sender<Option<Status>>,
    },
    /// The remembered purges, newest first.
    List { reply: oneshot::Sender<Vec<Status>> },
}

/// How a worker (or the admin API) reaches the ledger's keeper.
#[derive(Clone)]
pub struct Client {
    send: Arc<dyn Fn(Call) -> bool + Send + Sync>,
}

/// Beyond the wait it asked for, how long a caller waits for the keeper's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

impl Client {
    pub fn new(calls: mpsc::UnboundedSender<Call>) -> Client {
        Client::from_fn(move |call| calls.send(call).is_ok())
    }

    /// A client whose calls go to `send` (false: the keeper is gone).
    pub fn from_fn(send: impl Fn(Call) -> bool + Send + Sync + 'static) -> Client {
        Client {
            send: Arc::new(send),
        }
    }

    /// Passes a call on as it is.
    pub fn forward(&self, call: Call) {
        (self.send)(call);
    }

    /// Starts a purge and waits for it up to `wait`; its status then (`None` if the keeper
    /// did not answer).
    pub async fn purge(&self, matcher: Matcher, wait: Duration) -> Option<Status> {
        let (reply, answer) = oneshot::channel();
        if !(self.send)(Call::Purge {
            matcher,
            wait,
            reply,
        }) {
            return None;
        }
        tokio::time::timeout(wait + ANSWER_TIMEOUT, answer)
            .await
            .ok()?
            .ok()
    }

    /// The status of purge `id`: `Ok(None)` when unknown, `Err` when the keeper did not answer.
    pub async fn status(&self, id: u64) -> Result<Option<Status>, ()> {
        let (reply, answer) = oneshot::channel();
        if !(self.send)(Call::Status { id, reply }) {
            return Err(());
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(status)) => Ok(status),
            _ => Err(()),
        }
    }

    /// The remembered purges, newest first.
    pub async fn list(&self) -> Option<Vec<Status>> {
        let (reply, answer) = oneshot::channel();
        if !(self.send)(Call::List { reply }) {
            return None;
        }
        tokio::time::timeout(ANSWER_TIMEOUT, answer)
            .await
            .ok()?
            .ok()
    }
}

/// The ledger as its keeper's tasks share it. The lock is held for a few field updates,
/// never across an `.await`.
#[derive(Clone, Default)]
pub struct Keeper {
    ledger: Arc<Mutex<Ledger>>,
}

impl Keeper {
    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut ledger)
    }

    pub fn begin(&self, matcher: &Matcher, participants: impl IntoIterator<Item = u32>) -> u64 {
        self.with(|l| l.begin(matcher, participants))
    }

    pub fn finished(&self, id: u64, participant: u32, purged: u64) {
        self.with(|l| l.finished(id, participant, purged));
    }

    pub fn gone(&self, participant: u32) {
        self.with(|l| l.gone(participant));
    }

    pub fn status(&self, id: u64) -> Option<Status> {
        self.with(|l| l.status(id))
    }

    pub fn recent(&self) -> Vec<Status> {
        self.with(|l| l.recent())
    }

    /// Sends `reply` the status of purge `id` once it is done, or as it is after `wait`.
    pub fn reply_when_done(&self, id: u64, wait: Duration, reply: oneshot::Sender<Status>) {
        let (done_tx, done) = oneshot::channel();
        self.with(|l| l.when_done(id, done_tx));
        let keeper = self.clone();
        tokio::spawn(async move {
            let status = match tokio::time::timeout(wait, done).await {
                Ok(Ok(status)) => Some(status),
                _ => keeper.status(id),
            };
            if let Some(status) = status {
                let _ = reply.send(status);
            }
        });
    }

    /// Answers the calls that need no participant: `Status` and `List`. A `Purge` comes back
    /// for its caller to start.
    pub fn answer(&self, call: Call) -> Option<(Matcher, Duration, oneshot::Sender<Status>)> {
        match call {
            Call::Purge {
                matcher,
                wait,
                reply,
            } => Some((matcher, wait, reply)),
            Call::Status { id, reply } => {
                let _ = reply.send(self.status(id));
                None
            }
            Call::List { reply } => {
                let _ = reply.send(self.recent());
                None
            }
        }
    }
}

/// The keeper of a process that is its own whole family (`--single-process`): purges its
/// memory tier at once and walks the disk tier in the background.
pub fn serve_local(cache: Arc<super::store::Cache>) -> Client {
    let (calls_tx, mut calls) = mpsc::unbounded_channel();
    let keeper = Keeper::default();
    tokio::spawn(async move {
        let me = std::process::id();
        while let Some(call) = calls.recv().await {
            let Some((matcher, wait, reply)) = keeper.answer(call) else {
                continue;
            };
            let disk = cache.disk.is_some();
            let participants = std::iter::once(me).chain(disk.then_some(DISK));
            let id = keeper.begin(&matcher, participants);
            let purged = cache.memory.purge(matcher.clone());
            keeper.finished(id, me, purged as u64);
            if disk {
                let (cache, keeper) = (cache.clone(), keeper.clone());
                tokio::task::spawn_blocking(move || {
                    let purged = cache.purge_disk(&matcher);
                    keeper.finished(id, DISK, purged as u64);
                });
            }
            keeper.reply_when_done(id, wait, reply);
        }
    });
    Client::new(calls_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_travel_as_one_line() {
        for matcher in [
            Matcher::Exact("http://a.test/x?y=1".into()),
            Matcher::Prefix("http://a.test/img/".into()),
            Matcher::Tag("product-7".into()),
        ] {
            assert_eq!(decode(&encode(&matcher).unwrap()), Some(matcher));
        }
        assert_eq!(encode(&Matcher::Tag("a b".into())), None);
        assert_eq!(encode(&Matcher::Tag("a\nb".into())), None);
        assert_eq!(encode(&Matcher::Tag(String::new())), None);
        assert_eq!(decode("everything x"), None);
        assert_eq!(decode("tag"), None);
    }

    #[test]
    fn a_purge_is_done_when_every_participant_finished_or_left() {
        let mut ledger = Ledger::default();
        let id = ledger.begin(&Matcher::Tag("t".into()), [DISK, 11, 12]);
        let (tx, mut rx) = oneshot::channel();
        ledger.when_done(id, tx);
        ledger.finished(id, 11, 3);
        ledger.finished(id, 11, 3); // twice counts once
        ledger.finished(id, DISK, 2);
        let status = ledger.status(id).unwrap();
        assert_eq!((status.state.as_str(), status.purged), ("pending", 5));
        assert_eq!((status.finished, status.participants), (2, 3));
        assert!(rx.try_recv().is_err());
        ledger.gone(12);
        let status = rx.try_recv().unwrap();
        assert!(status.is_done());
        assert_eq!((status.finished, status.participants), (2, 2));
        assert!(status.completed.is_some());
        // Nobody to wait for: done at once.
        let empty = ledger.begin(&Matcher::Exact("k".into()), []);
        assert!(ledger.status(empty).unwrap().is_done());
        assert_eq!(ledger.recent()[0].id, empty);
    }

    #[test]
    fn the_ledger_forgets_the_oldest() {
        let mut ledger = Ledger::default();
        for _ in 0..KEPT + 5 {
            ledger.begin(&Matcher::Tag("t".into()), []);
        }
        assert!(ledger.status(1).is_none());
        assert!(ledger.status((KEPT + 5) as u64).is_some());
        assert_eq!(ledger.recent().len(), KEPT);
        let json = ledger.status(6).unwrap().to_json();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, 6);
    }
}
