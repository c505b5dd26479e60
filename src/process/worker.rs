//! What serves traffic: a worker process started by the master, or the single process of
//! `--single-process`. Both run the same thing — the edge on the listening sockets they were
//! given, in an async runtime with one task per connection — and differ only in where their
//! commands come from: a worker obeys its master over its socket pair (`stop polite`,
//! `stop fast`, `reopen`; end of file = the master is gone, stop politely), a single process
//! obeys signals (TERM/INT fast stop, QUIT polite stop, USR1 reopen).
//!
//! A single process also keeps the disk cache under its bound (`cache::disk::keep_bound`),
//! which is the master's work in a multi-process server: workers never trim.
//!
//! A worker also answers signals sent to it directly: TERM/INT stop it (fast), QUIT stops it
//! politely, USR1 reopens its logs; HUP and USR2 are the master's business and ignored here (a
//! terminal hang-up reaches the whole process group).

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::signals::{self, Request};
use super::{memory, runtime};
use crate::config::Config;
use crate::edge::Server;
use crate::edge::server::StopMode;
use crate::process::exit;
use crate::telemetry::access_log;
use crate::telemetry::counters::Counters;

/// What a serving process is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Stop(StopMode),
    Reopen,
}

/// The control channel of a worker: its end of the socket pair with the master.
pub type Control = std::os::unix::net::UnixStream;

/// How the serving process reports and takes commands.
pub enum Role {
    /// `--single-process`: prints the listening and ready lines, obeys signals.
    Single,
    /// A worker: says `ready` to its master and obeys it.
    Worker(Control),
}

/// Runs the edge on `listeners` (in the order of `config.edge.listeners`) until told to stop.
pub fn run(
    config: Config,
    listeners: Vec<TcpListener>,
    counters: Option<Counters>,
    role: Role,
) -> ExitCode {
    let runtime = match runtime::build(config.process.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    runtime.block_on(serve(config, listeners, counters, role))
}

async fn serve(
    config: Config,
    listeners: Vec<TcpListener>,
    counters: Option<Counters>,
    role: Role,
) -> ExitCode {
    // Each site's ACME certificate from the store, or a placeholder until one is issued. Only
    // a serving process does this: the master never presents a certificate.
    if let Some(acme) = &config.acme
        && let Some(store) = &acme.store
    {
        acme.install(store);
    }
    let access_log = match config
        .telemetry
        .access_log
        .as_ref()
        .map(access_log::Writer::start)
        .transpose()
    {
        Ok(writer) => writer,
        Err(e) => {
            eprintln!("error: cannot open the access log: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    // Bound addresses (port 0 resolved), one per listener so indexes match `edge.tls`.
    let addrs: Vec<_> = listeners
        .iter()
        .zip(&config.edge.listeners)
        .map(|(l, configured)| l.local_addr().unwrap_or(*configured))
        .collect();
    let server = Server::new(&config.edge, access_log, counters);
    if let Err(e) = server.start(listeners) {
        eprintln!("error: cannot start listening: {e}");
        return exit::code(exit::FAILURE);
    }
    let mut signals = match signals::Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    let (commands_tx, mut commands) = mpsc::channel(8);
    let single = matches!(role, Role::Single);
    match role {
        Role::Single => {
            // The process is its own family: it keeps the purge ledger and answers the admin
            // API itself.
            let purges = server
                .shared()
                .cache
                .as_ref()
                .map(|cache| crate::cache::purge::serve_local(cache.clone()));
            if let (Some(purges), Some(cache)) = (&purges, &server.shared().cache) {
                let _ = cache.family.set(purges.clone());
            }
            for (index, addr) in addrs.iter().enumerate() {
                let kind = match config.edge.tls.get(index) {
                    Some(Some(_)) => "https",
                    _ => "http",
                };
                println!("listening kind={kind} addr={addr}");
            }
            if let Some(admin) = &config.admin {
                let (listener, addr) = match crate::admin::bind(admin) {
                    Ok(bound) => bound,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return exit::code(exit::FAILURE);
                    }
                };
                println!("listening kind=admin addr={addr}");
                let counters = server.shared().counters.clone();
                crate::admin::serve(
                    listener,
                    admin.allow.clone(),
                    single_admin(purges, counters),
                );
            }
            println!("ready pid={}", std::process::id());
        }
        Role::Worker(control) => {
            let cache = server.shared().cache.clone();
            match listen_to_master(control, commands_tx.clone(), cache).await {
                Ok(purges) => {
                    if let Some(cache) = &server.shared().cache {
                        let _ = cache.family.set(purges);
                    }
                }
                Err(e) => {
                    eprintln!("error: cannot talk to the master: {e}");
                    return exit::code(exit::FAILURE);
                }
            }
        }
    }
    tracing::info!("ready");
    // A single process runs the ACME loop itself and swaps each new certificate in place;
    // workers leave it to their master, which reloads them.
    let acme = match &config.acme {
        Some(acme) if single => {
            let store = acme.store.clone();
            acme.spawn(Box::new(move |managed| {
                if let Some(store) = &store {
                    managed.install(store);
                }
            }))
        }
        _ => None,
    };
    let disk_trim = match &config.edge.cache {
        Some(cache) if single => cache.keep_disk_bound(),
        _ => None,
    };
    let server = Arc::new(server);
    let reclaim = tokio::spawn(reclaim_memory(server.clone()));
    let mode = loop {
        let command = tokio::select! {
            request = signals.next() => match request {
                Request::Stop(mode) => Command::Stop(mode),
                Request::Reopen => Command::Reopen,
                Request::Reload | Request::Upgrade => {
                    tracing::info!("reload and upgrade are the master's (run without --single-process)");
                    continue;
                }
            },
            Some(command) = commands.recv() => command,
        };
        match command {
            Command::Stop(mode) => break mode,
            Command::Reopen => {
                if let Some(writer) = &server.shared().access_log {
                    writer.reopen();
                }
            }
        }
    };
    tracing::info!(?mode, "stopping: finishing requests in flight");
    reclaim.abort();
    if let Some(acme) = acme {
        acme.abort();
    }
    if let Some(trim) = disk_trim {
        trim.abort();
    }
    if server.stop(config.edge.limits.shutdown_timeout, mode).await {
        tracing::info!("stopped");
        exit::code(exit::SUCCESS)
    } else {
        tracing::warn!("shutdown_timeout passed with requests still in flight");
        exit::code(exit::STOP_TIMED_OUT)
    }
}

/// Says `ready` to the master, then turns its lines into commands, and carries purges both
/// ways (see `cache::purge`): the master's `purge ID MATCHER` is done on this worker's memory
/// tier and answered `purged ID COUNT`; this worker's purge calls go up as `ask RID …` lines
/// and come back as `answer RID JSON`. Returns the purge client that uses this link.
async fn listen_to_master(
    control: Control,
    commands: mpsc::Sender<Command>,
    cache: Option<Arc<crate::cache::store::Cache>>,
) -> std::io::Result<crate::cache::purge::Client> {
    control.set_nonblocking(true)?;
    let control = tokio::net::UnixStream::from_std(control)?;
    let (read, mut write) = control.into_split();
    write.write_all(b"ready\n").await?;
    // One writer owns the socket's write half; everything else sends it whole lines.
    let (outbox, mut lines_out) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(line) = lines_out.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let asks = Asks::default();
    let purges = asks.clone().client(outbox.clone());
    tokio::spawn(async move {
        let mut lines = BufReader::new(read).lines();
        loop {
            let command = match lines.next_line().await {
                Ok(Some(line)) => match line.trim() {
                    "stop polite" => Command::Stop(StopMode::Polite),
                    "stop fast" => Command::Stop(StopMode::Fast),
                    "reopen" => Command::Reopen,
                    other => {
                        if let Some(rest) = other.strip_prefix("purge ") {
                            purge_here(rest, cache.as_deref(), &outbox);
                        } else if let Some(rest) = other.strip_prefix("answer ") {
                            asks.answered(rest);
                        } else {
                            tracing::warn!(command = other, "unknown command from the master");
                        }
                        continue;
                    }
                },
                // The master is gone: stop politely.
                Ok(None) | Err(_) => Command::Stop(StopMode::Polite),
            };
            let fast = command == Command::Stop(StopMode::Fast);
            if commands.send(command).await.is_err() || fast {
                return;
            }
        }
    });
    Ok(purges)
}

/// `ID MATCHER` from the master: purge this worker's memory tier and say how many went.
fn purge_here(
    rest: &str,
    cache: Option<&crate::cache::store::Cache>,
    outbox: &mpsc::UnboundedSender<String>,
) {
    let Some((id, matcher)) = rest.split_once(' ') else {
        return;
    };
    let matcher = crate::cache::purge::decode(matcher);
    let purged = match (cache, matcher) {
        (Some(cache), Some(matcher)) => cache.memory.purge(matcher),
        _ => 0,
    };
    let _ = outbox.send(format!("purged {id} {purged}\n"));
}

/// A worker's questions to its master that wait for an answer, by request id.
#[derive(Clone, Default)]
struct Asks {
    next: Arc<std::sync::atomic::AtomicU64>,
    waiting: Arc<std::sync::Mutex<std::collections::HashMap<u64, oneshot::Sender<String>>>>,
}

impl Asks {
    /// Sends `ask RID question`; the answer's text, unless the master never answers.
    fn ask(
        &self,
        outbox: &mpsc::UnboundedSender<String>,
        question: &str,
    ) -> oneshot::Receiver<String> {
        let rid = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.lock().insert(rid, reply);
        if outbox.send(format!("ask {rid} {question}\n")).is_err() {
            self.lock().remove(&rid);
        }
        answer
    }

    /// `RID TEXT` from the master.
    fn answered(&self, rest: &str) {
        let (rid, text) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Ok(rid) = rid.parse::<u64>()
            && let Some(reply) = self.lock().remove(&rid)
        {
            let _ = reply.send(text.to_string());
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, oneshot::Sender<String>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A purge client whose calls become questions to the master.
    fn client(self, outbox: mpsc::UnboundedSender<String>) -> crate::cache::purge::Client {
        use crate::cache::purge::{Call, encode};
        crate::cache::purge::Client::from_fn(move |call| {
            match call {
                Call::Purge {
                    matcher,
                    wait,
                    reply,
                } => {
                    // A matcher the wire cannot carry drops `reply`: the caller hears nothing.
                    if let Some(line) = encode(&matcher) {
                        let question = format!("purge {} {line}", wait.as_millis());
                        relay(self.ask(&outbox, &question), reply);
                    }
                }
                Call::Status { id, reply } => {
                    relay(self.ask(&outbox, &format!("status {id}")), reply)
                }
                Call::List { reply } => relay(self.ask(&outbox, "list"), reply),
            }
            true
        })
    }
}

/// Sends `reply` the master's JSON `answer`, read as a `T`, when it comes (nothing if it
/// does not, or does not read).
fn relay<T: serde::de::DeserializeOwned + Send + 'static>(
    answer: oneshot::Receiver<String>,
    reply: oneshot::Sender<T>,
) {
    tokio::spawn(async move {
        if let Ok(Ok(value)) = answer.await.map(|text| serde_json::from_str(&text)) {
            let _ = reply.send(value);
        }
    });
}

/// The admin API's calls in a single process: purges go to its own ledger, the status is its
/// counters.
fn single_admin(
    purges: Option<crate::cache::purge::Client>,
    counters: Option<Counters>,
) -> crate::admin::Send {
    Arc::new(move |call| {
        match call {
            crate::admin::Call::Purge(call) => match &purges {
                Some(purges) => purges.forward(call),
                None => drop(call),
            },
            crate::admin::Call::Status(reply) => {
                let mut text = format!("ok\nsingle process: pid {}\n", std::process::id());
                if let Some(counters) = &counters {
                    text.push_str(&counters.totals().to_string());
                }
                let _ = reply.send(text);
            }
        }
        true
    })
}

/// Returns memory to the OS after waves of connections went idle (`process::memory`).
async fn reclaim_memory(server: Arc<Server>) {
    let mut reclaimer = memory::Reclaimer::default();
    let mut tick = tokio::time::interval(memory::PERIOD);
    loop {
        tick.tick().await;
        if reclaimer.should_trim(server.parks()) {
            let _ = tokio::task::spawn_blocking(memory::trim).await;
        }
    }
}
