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
use tokio::sync::mpsc;

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
            for (index, addr) in addrs.iter().enumerate() {
                let kind = match config.edge.tls.get(index) {
                    Some(Some(_)) => "https",
                    _ => "http",
                };
                println!("listening kind={kind} addr={addr}");
            }
            println!("ready pid={}", std::process::id());
        }
        Role::Worker(control) => {
            if let Err(e) = listen_to_master(control, commands_tx.clone()).await {
                eprintln!("error: cannot talk to the master: {e}");
                return exit::code(exit::FAILURE);
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

/// Says `ready` to the master, then turns its lines into commands.
async fn listen_to_master(
    control: Control,
    commands: mpsc::Sender<Command>,
) -> std::io::Result<()> {
    control.set_nonblocking(true)?;
    let control = tokio::net::UnixStream::from_std(control)?;
    let (read, mut write) = control.into_split();
    write.write_all(b"ready\n").await?;
    tokio::spawn(async move {
        let _write = write;
        let mut lines = BufReader::new(read).lines();
        loop {
            let command = match lines.next_line().await {
                Ok(Some(line)) => match line.trim() {
                    "stop polite" => Command::Stop(StopMode::Polite),
                    "stop fast" => Command::Stop(StopMode::Fast),
                    "reopen" => Command::Reopen,
                    other => {
                        tracing::warn!(command = other, "unknown command from the master");
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
    Ok(())
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
