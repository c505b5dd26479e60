//! The master process: binds the listening sockets, starts the workers and keeps them running,
//! and turns signals and `portico ctl` commands into actions. It never serves traffic.
//!
//! - Workers are the same binary re-executed (`process::inherit`), each handed the listening
//!   sockets, its end of a socket pair for commands, and the shared counter region
//!   (`telemetry::shm`) with its slot. A worker says `ready` when it serves.
//! - Supervision: a worker that exits without being asked (panic that escaped, abort, SIGKILL)
//!   is started again at once, or after a back-off doubling from 200 ms to 10 s when it keeps
//!   dying (several exits within 30 s). Its slot's totals are kept (folded into slot 0).
//! - HUP reloads: the configuration is read and resolved again; when it is invalid the old
//!   workers keep serving and the reason is logged (and returned to `ctl reload`). Otherwise a
//!   new generation of workers starts on the new listeners (sockets for unchanged addresses are
//!   kept, so no connection attempt is refused); once all of them are ready the old ones drain
//!   politely (`edge::server::StopMode::Polite`).
//! - QUIT stops politely, TERM/INT fast, USR1 makes every worker reopen its access log, USR2
//!   starts a successor master from the binary on disk with the listening sockets and steps
//!   down once it is ready (zero-downtime upgrade).
//! - The pid file (`DATA_DIR/portico.pid`) and the control socket (`DATA_DIR/portico.sock`,
//!   mode 0600) are the master's; see `process::ctl` for the protocol.
//! - The disk cache's byte bound is the master's too: it trims the folder the workers share
//!   (`cache::disk::keep_bound`, at once and every 10 s, on the blocking pool), so workers
//!   never coordinate over it.
//!
//! Every wait is bounded: a worker has 10 s to become ready, and a stopping worker is killed
//! `shutdown_timeout` + 5 s after it was asked to stop.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use super::ctl;
use super::inherit::{self, Role};
use super::signals::{Request, Signals};
use crate::cache::purge;
use crate::config::{Config, Diagnostics};
use crate::edge::server::StopMode;
use crate::net::tcp_info;
use crate::process::exit;
use crate::telemetry::counters::{self, Totals};
use crate::telemetry::shm::{Region, SLOTS};

/// How long a new worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Exits within this window count towards the restart back-off.
const CRASH_WINDOW: Duration = Duration::from_secs(30);

/// Reads the configuration again (for a reload), as the command line said.
pub type Loader = Box<dyn Fn() -> Result<Config, Diagnostics> + Send + Sync>;

/// What the master needs besides its first configuration.
pub struct Launch {
    pub load: Loader,
    pub data_dir: PathBuf,
}

/// Runs the master until it stops; its exit code.
pub fn run(config: Config, launch: Launch) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    runtime.block_on(async move {
        match Master::start(config, launch).await {
            Ok(master) => master.run().await,
            Err(code) => exit::code(code),
        }
    })
}

/// One worker process.
struct Worker {
    pid: u32,
    slot: usize,
    generation: u64,
    index: usize,
    started: Instant,
    restarts: u32,
    ready: bool,
    /// Asked to stop (drain) at this time.
    stopping: Option<Instant>,
    control: OwnedWriteHalf,
}

/// Something the master reacts to.
enum Event {
    Ready(u32),
    Exited(u32, std::process::ExitStatus),
    Restart {
        generation: u64,
        index: usize,
        restarts: u32,
    },
    Ctl(ctl::Request),
    Successor(Result<(), String>),
    /// The ACME loop stored a new certificate: the workers must load it.
    Certificate(String),
    /// A worker's question (`ask RID QUESTION`), answered with `answer RID TEXT`.
    Ask {
        pid: u32,
        rid: u64,
        question: String,
    },
    /// A line for a worker (an answer that was waited for).
    Tell {
        pid: u32,
        line: String,
    },
    /// A call of the admin API.
    Admin(crate::admin::Call),
}

/// A generation of workers being started (the first one, or a reload).
struct Pending {
    generation: u64,
    config: Config,
    listeners: Vec<(SocketAddr, Arc<TcpListener>)>,
    deadline: Instant,
    reply: Option<oneshot::Sender<String>>,
}

struct Master {
    launch: Launch,
    exe: PathBuf,
    args: Vec<OsString>,
    started: Instant,
    config: Config,
    listeners: Vec<(SocketAddr, Arc<TcpListener>)>,
    region: Arc<Region>,
    free_slots: VecDeque<usize>,
    generation: u64,
    workers: Vec<Worker>,
    pending: Option<Pending>,
    crashes: HashMap<usize, Vec<Instant>>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    signals: Signals,
    stopping: Option<(StopMode, Instant)>,
    /// A successor master took over: leave the pid file and control socket to it.
    handed_over: bool,
    /// The successor being started (USR2).
    upgrading: bool,
    worst_exit: u8,
    ctl_path: Option<PathBuf>,
    /// A successor's pipe to its predecessor, taken at start so that workers do not inherit it.
    ready_pipe: Option<std::fs::File>,
    /// The ACME loop of the running configuration, when a site uses ACME.
    acme: Option<tokio::task::JoinHandle<()>>,
    /// A new certificate waits for the reload in progress to end before its own.
    certificate_reload: bool,
    /// The purge ledger (`cache::purge`).
    purges: purge::Keeper,
    /// The disk tier of the cache, walked once per purge for the whole family.
    disk: Option<Arc<crate::cache::disk::DiskStore>>,
    /// The admin API's address, when it listens.
    admin: Option<SocketAddr>,
    /// The disk cache's trim of the running configuration, when it has a disk tier.
    disk_trim: Option<tokio::task::JoinHandle<()>>,
}

impl Master {
    async fn start(config: Config, launch: Launch) -> Result<Master, u8> {
        let role = inherit::role();
        let signals = Signals::install().map_err(|e| {
            eprintln!("error: cannot install signal handlers: {e}");
            exit::FAILURE
        })?;
        if let Err(e) = std::fs::create_dir_all(&launch.data_dir) {
            tracing::warn!(dir = %launch.data_dir.display(), error = %e, "cannot create the data directory");
        }
        let ready_pipe = match role {
            Role::Successor => inherit::take_fd(inherit::READY_FD)
                .ok()
                .flatten()
                .map(std::fs::File::from),
            _ => None,
        };
        let mut inherited = inherit::take_listeners().map_err(|e| {
            eprintln!("error: {e}");
            exit::FAILURE
        })?;
        let listeners = bind_all(&config, &[], &mut inherited).map_err(|e| {
            eprintln!("error: {e}");
            exit::FAILURE
        })?;
        let region = Region::create().map_err(|e| {
            eprintln!("error: cannot create the shared counters: {e}");
            exit::FAILURE
        })?;
        let exe = std::env::current_exe().map_err(|e| {
            eprintln!("error: cannot find the portico binary: {e}");
            exit::FAILURE
        })?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut master = Master {
            exe,
            args: std::env::args_os().skip(1).collect(),
            started: Instant::now(),
            config: config.clone(),
            listeners: Vec::new(),
            region: Arc::new(region),
            free_slots: (1..SLOTS).collect(),
            generation: 0,
            workers: Vec::new(),
            pending: None,
            crashes: HashMap::new(),
            events_tx,
            events,
            signals,
            stopping: None,
            handed_over: false,
            upgrading: false,
            worst_exit: exit::SUCCESS,
            ctl_path: None,
            ready_pipe,
            acme: None,
            certificate_reload: false,
            purges: purge::Keeper::default(),
            disk: None,
            admin: None,
            disk_trim: None,
            launch,
        };
        // Opened again with each configuration (`restart_disk_trim`); here too, so that a purge
        // before the first generation is ready reaches the disk.
        master.disk = master.open_disk();
        if let Some(admin) = &config.admin {
            let (listener, addr) = crate::admin::bind(admin).map_err(|e| {
                eprintln!("error: {e}");
                exit::FAILURE
            })?;
            master.admin = Some(addr);
            let events = master.events_tx.clone();
            crate::admin::serve(
                listener,
                admin.allow.clone(),
                Arc::new(move |call| events.send(Event::Admin(call)).is_ok()),
            );
        }
        master.ctl_path = ctl::serve(
            &master.launch.data_dir,
            role == Role::Successor,
            master.events_tx.clone(),
            Event::Ctl,
        );
        master.begin_generation(config, listeners, None);
        if master.pending.is_none() {
            return Err(exit::FAILURE);
        }
        Ok(master)
    }

    async fn run(mut self) -> ExitCode {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                request = self.signals.next() => self.on_signal(request).await,
                Some(event) = self.events.recv() => {
                    if let Some(code) = self.on_event(event).await {
                        return code;
                    }
                }
                _ = tick.tick() => {
                    if let Some(code) = self.on_tick().await {
                        return code;
                    }
                }
            }
            if self.stopping.is_some() && self.workers.is_empty() && self.pending.is_none() {
                return self.finish();
            }
        }
    }

    async fn on_signal(&mut self, request: Request) {
        match request {
            Request::Stop(mode) => self.stop(mode).await,
            Request::Reload => {
                tracing::info!("reload requested (HUP)");
                self.reload(None);
            }
            Request::Reopen => {
                tracing::info!("reopening log files (USR1)");
                self.broadcast("reopen").await;
            }
            Request::Upgrade => self.upgrade(),
        }
    }

    /// Handles an event; `Some(code)` when the master is done.
    async fn on_event(&mut self, event: Event) -> Option<ExitCode> {
        match event {
            Event::Ready(pid) => {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == pid) {
                    worker.ready = true;
                    tracing::debug!(pid, generation = worker.generation, "worker ready");
                }
                self.try_commit().await;
            }
            Event::Exited(pid, status) => return self.on_exit(pid, status),
            Event::Restart {
                generation,
                index,
                restarts,
            } => {
                if self.stopping.is_none() && generation == self.generation {
                    let listeners = self.listeners.clone();
                    if let Err(e) = self.spawn_worker(generation, index, restarts, &listeners) {
                        tracing::error!(error = %e, index, "cannot restart a worker; trying again");
                        self.schedule_restart(generation, index, restarts + 1);
                    }
                }
            }
            Event::Ctl(request) => self.on_ctl(request).await,
            Event::Ask { pid, rid, question } => self.on_ask(pid, rid, &question).await,
            Event::Tell { pid, line } => {
                if let Some(worker) = self.workers.iter_mut().find(|w| w.pid == pid) {
                    let _ = worker.control.write_all(line.as_bytes()).await;
                }
            }
            Event::Admin(crate::admin::Call::Purge(call)) => self.on_purge(call).await,
            Event::Admin(crate::admin::Call::Status(reply)) => {
                let _ = reply.send(self.status());
            }
            Event::Certificate(site) => {
                tracing::info!(%site, "new ACME certificate: reloading the workers");
                self.certificate_reload = true;
            }
            Event::Successor(result) => {
                self.upgrading = false;
                match result {
                    Ok(()) => {
                        tracing::info!("the new master is ready; stepping down");
                        self.handed_over = true;
                        self.stop(StopMode::Polite).await;
                    }
                    Err(why) => tracing::error!(%why, "binary upgrade failed; still serving"),
                }
            }
        }
        None
    }

    async fn on_tick(&mut self) -> Option<ExitCode> {
        let now = Instant::now();
        if self.certificate_reload && self.pending.is_none() && self.stopping.is_none() {
            self.certificate_reload = false;
            self.reload(None);
        }
        if let Some(pending) = &self.pending
            && now >= pending.deadline
        {
            let generation = pending.generation;
            self.abandon_generation(generation, "workers did not become ready within 10 s");
            if self.generation == 0 {
                eprintln!("error: workers did not start");
                return Some(exit::code(exit::FAILURE));
            }
        }
        let limit = self.config.edge.limits.shutdown_timeout + Duration::from_secs(5);
        for worker in &self.workers {
            if worker
                .stopping
                .is_some_and(|at| now.duration_since(at) > limit)
            {
                tracing::warn!(pid = worker.pid, "worker did not stop in time; killing it");
                kill(worker.pid, libc::SIGKILL);
            }
        }
        None
    }

    /// Starts `config`'s workers as a new generation; the old one keeps serving until they
    /// are all ready (then [`Master::try_commit`]).
    fn begin_generation(
        &mut self,
        config: Config,
        listeners: Vec<(SocketAddr, Arc<TcpListener>)>,
        reply: Option<oneshot::Sender<String>>,
    ) {
        let generation = self.generation + 1;
        let count = config.process.workers.unwrap_or_else(default_workers);
        for index in 0..count {
            if let Err(e) = self.spawn_worker(generation, index, 0, &listeners) {
                let why = format!("cannot start a worker: {e}");
                tracing::error!(%why);
                self.kill_generation(generation);
                if let Some(reply) = reply {
                    let _ = reply.send(format!("error: {why}\n"));
                }
                return;
            }
        }
        self.pending = Some(Pending {
            generation,
            config,
            listeners,
            deadline: Instant::now() + READY_TIMEOUT,
            reply,
        });
    }

    /// Once every worker of the pending generation is ready: it becomes current, and the
    /// previous one drains.
    async fn try_commit(&mut self) {
        let Some(pending) = &self.pending else {
            return;
        };
        let generation = pending.generation;
        let all_ready = self
            .workers
            .iter()
            .filter(|w| w.generation == generation)
            .all(|w| w.ready);
        if !all_ready {
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        let first = self.generation == 0;
        self.generation = generation;
        if pending.config.admin != self.config.admin {
            tracing::warn!("[admin] changed: the admin API keeps its listener until a restart");
        }
        self.config = pending.config;
        self.listeners = pending.listeners;
        for worker in &mut self.workers {
            if worker.generation < generation && worker.stopping.is_none() {
                worker.stopping = Some(Instant::now());
                let _ = worker.control.write_all(b"stop polite\n").await;
            }
        }
        if first {
            self.announce();
        } else {
            tracing::info!(generation, "configuration reloaded");
        }
        self.restart_acme();
        self.restart_disk_trim();
        if let Some(reply) = pending.reply {
            let _ = reply.send(format!(
                "ok: configuration reloaded (generation {generation})\n"
            ));
        }
    }

    /// Runs the ACME loop of the running configuration (the previous one's stops): a new
    /// certificate reloads the workers, which load it from the store.
    fn restart_acme(&mut self) {
        if let Some(old) = self.acme.take() {
            old.abort();
        }
        if let Some(acme) = &self.config.acme {
            let events = self.events_tx.clone();
            self.acme = acme.spawn(Box::new(move |managed| {
                let _ = events.send(Event::Certificate(managed.site.clone()));
            }));
        }
    }

    /// Keeps the running configuration's disk cache under its bound (the previous one's trim
    /// stops: the folder or the bound may have changed).
    fn restart_disk_trim(&mut self) {
        if let Some(old) = self.disk_trim.take() {
            old.abort();
        }
        self.disk = self.open_disk();
        self.disk_trim = self
            .config
            .edge
            .cache
            .as_ref()
            .and_then(|cache| cache.keep_disk_bound());
    }

    /// The start-up lines (an interface: scripts and tests read them), the pid file, and a
    /// successor's word to its predecessor.
    fn announce(&mut self) {
        // The pid file first: a script that sees the ready line may read it at once.
        if let Err(e) = write_pid_file(&self.launch.data_dir) {
            tracing::warn!(error = %e, "cannot write the pid file");
        }
        for (index, (addr, listener)) in self.listeners.iter().enumerate() {
            let bound = listener.local_addr().unwrap_or(*addr);
            let kind = match self.config.edge.tls.get(index) {
                Some(Some(_)) => "https",
                _ => "http",
            };
            println!("listening kind={kind} addr={bound}");
        }
        if let Some(admin) = self.admin {
            println!("listening kind=admin addr={admin}");
        }
        println!("ready pid={}", std::process::id());
        let _ = std::io::stdout().flush();
        tracing::info!(workers = self.workers.len(), "ready");
        if let Some(mut pipe) = self.ready_pipe.take() {
            let _ = pipe.write_all(b"ready\n");
        }
    }

    fn abandon_generation(&mut self, generation: u64, why: &str) {
        tracing::error!(
            generation,
            why,
            "new workers failed; the running ones keep serving"
        );
        self.kill_generation(generation);
        if let Some(pending) = self.pending.take()
            && let Some(reply) = pending.reply
        {
            let _ = reply.send(format!("error: {why}\n"));
        }
    }

    fn kill_generation(&mut self, generation: u64) {
        for worker in self
            .workers
            .iter_mut()
            .filter(|w| w.generation == generation)
        {
            worker.stopping = Some(Instant::now());
            kill(worker.pid, libc::SIGKILL);
        }
    }

    fn on_exit(&mut self, pid: u32, status: std::process::ExitStatus) -> Option<ExitCode> {
        let position = self.workers.iter().position(|w| w.pid == pid)?;
        let worker = self.workers.remove(position);
        // Its memory tier went with it: purges no longer wait for it.
        self.purges.gone(pid);
        counters::retire(&self.region, worker.slot);
        self.free_slots.push_back(worker.slot);
        let code = status.code();
        // The exit code of the master's own stop (a drained generation of a reload does not
        // count: its idle connections may have outlived `shutdown_timeout` harmlessly).
        if let Some(code) = code
            && worker.stopping.is_some()
            && self.stopping.is_some()
        {
            self.worst_exit = self
                .worst_exit
                .max(u8::try_from(code).unwrap_or(exit::FAILURE));
        }
        if worker.stopping.is_some() {
            tracing::debug!(pid, ?status, "worker stopped");
            return None;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.generation == worker.generation)
        {
            let why = match code {
                Some(code) => format!("a new worker exited with code {code} before it was ready"),
                None => "a new worker was killed before it was ready".to_string(),
            };
            let first = self.generation == 0;
            self.abandon_generation(worker.generation, &why);
            if first {
                eprintln!("error: {why}");
                return Some(exit::code(code.map_or(exit::FAILURE, |c| {
                    u8::try_from(c).unwrap_or(exit::FAILURE)
                })));
            }
            return None;
        }
        tracing::error!(
            pid,
            ?status,
            index = worker.index,
            "worker died; starting it again"
        );
        self.schedule_restart(worker.generation, worker.index, worker.restarts + 1);
        None
    }

    /// Starts worker `index` again, at once or after the back-off.
    fn schedule_restart(&mut self, generation: u64, index: usize, restarts: u32) {
        let now = Instant::now();
        let recent = self.crashes.entry(index).or_default();
        recent.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
        recent.push(now);
        let delay = restart_delay(recent.len());
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(Event::Restart {
                generation,
                index,
                restarts,
            });
        });
    }

    fn spawn_worker(
        &mut self,
        generation: u64,
        index: usize,
        restarts: u32,
        listeners: &[(SocketAddr, Arc<TcpListener>)],
    ) -> std::io::Result<()> {
        let slot = self
            .free_slots
            .pop_front()
            .ok_or_else(|| std::io::Error::other("no free counter slot"))?;
        let spawned = self.spawn_worker_in(generation, index, restarts, listeners, slot);
        if spawned.is_err() {
            self.free_slots.push_front(slot);
        }
        spawned
    }

    fn spawn_worker_in(
        &mut self,
        generation: u64,
        index: usize,
        restarts: u32,
        listeners: &[(SocketAddr, Arc<TcpListener>)],
        slot: usize,
    ) -> std::io::Result<()> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let fds: Vec<(SocketAddr, RawFd)> = listeners
            .iter()
            .map(|(addr, l)| (*addr, l.as_raw_fd()))
            .collect();
        let mut keep: Vec<RawFd> = fds.iter().map(|(_, fd)| *fd).collect();
        keep.push(theirs.as_raw_fd());
        keep.push(self.region.fd().as_raw_fd());
        let vars = [
            (inherit::ROLE, "worker".to_string()),
            (inherit::LISTEN_FDS, inherit::listen_fds_value(&fds)),
            (inherit::CONTROL_FD, theirs.as_raw_fd().to_string()),
            (
                inherit::COUNTERS_FD,
                self.region.fd().as_raw_fd().to_string(),
            ),
            (inherit::SLOT, slot.to_string()),
        ];
        let mut child = inherit::spawn(&self.exe, &self.args, &vars, &keep)?;
        drop(theirs);
        let pid = child.id().unwrap_or(0);
        ours.set_nonblocking(true)?;
        let (read, control) = tokio::net::UnixStream::from_std(ours)?.into_split();
        let events = self.events_tx.clone();
        let purges = self.purges.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if line == "ready" {
                    let _ = events.send(Event::Ready(pid));
                } else if let Some(rest) = line.strip_prefix("purged ") {
                    let mut fields = rest.split(' ').map(str::parse::<u64>);
                    if let (Some(Ok(id)), Some(Ok(purged))) = (fields.next(), fields.next()) {
                        purges.finished(id, pid, purged);
                    }
                } else if let Some((rid, question)) = line
                    .strip_prefix("ask ")
                    .and_then(|rest| rest.split_once(' '))
                    && let Ok(rid) = rid.parse()
                {
                    let question = question.to_string();
                    let _ = events.send(Event::Ask { pid, rid, question });
                }
            }
        });
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = events.send(Event::Exited(pid, status));
            }
        });
        tracing::info!(pid, generation, index, slot, "worker started");
        self.workers.push(Worker {
            pid,
            slot,
            generation,
            index,
            started: Instant::now(),
            restarts,
            ready: false,
            stopping: None,
            control,
        });
        Ok(())
    }

    /// HUP or `ctl reload`.
    fn reload(&mut self, reply: Option<oneshot::Sender<String>>) {
        let refuse = |reply: Option<oneshot::Sender<String>>, why: String| {
            if let Some(reply) = reply {
                let _ = reply.send(why);
            }
        };
        if self.stopping.is_some() {
            return refuse(reply, "error: the master is stopping\n".into());
        }
        if self.pending.is_some() {
            return refuse(reply, "error: a reload is already in progress\n".into());
        }
        let config = match (self.launch.load)() {
            Ok(config) => config,
            Err(diagnostics) => {
                let text = diagnostics.to_string();
                tracing::error!("reload refused, the running configuration stays:\n{text}");
                return refuse(
                    reply,
                    format!(
                        "error: the new configuration is invalid; the running one stays\n{text}"
                    ),
                );
            }
        };
        let mut none = HashMap::new();
        let listeners = match bind_all(&config, &self.listeners, &mut none) {
            Ok(listeners) => listeners,
            Err(e) => {
                tracing::error!(error = %e, "reload refused");
                return refuse(reply, format!("error: {e}\n"));
            }
        };
        self.begin_generation(config, listeners, reply);
    }

    /// USR2: starts a successor master from the binary on disk.
    fn upgrade(&mut self) {
        if self.upgrading || self.stopping.is_some() {
            return;
        }
        tracing::info!(exe = %self.exe.display(), "starting a new master (USR2)");
        let started = (|| -> std::io::Result<()> {
            let (read, write) = std::os::unix::net::UnixStream::pair()?;
            let fds: Vec<(SocketAddr, RawFd)> = self
                .listeners
                .iter()
                .map(|(addr, l)| (*addr, l.as_raw_fd()))
                .collect();
            let mut keep: Vec<RawFd> = fds.iter().map(|(_, fd)| *fd).collect();
            keep.push(write.as_raw_fd());
            let vars = [
                (inherit::ROLE, "successor".to_string()),
                (inherit::LISTEN_FDS, inherit::listen_fds_value(&fds)),
                (inherit::READY_FD, write.as_raw_fd().to_string()),
            ];
            let mut child = inherit::spawn(&self.exe, &self.args, &vars, &keep)?;
            drop(write);
            read.set_nonblocking(true)?;
            let read = tokio::net::UnixStream::from_std(read)?;
            let events = self.events_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(read).lines();
                let outcome = tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) if line.trim() == "ready" => Ok(()),
                        _ => Err("the new master exited before it was ready".to_string()),
                    },
                    _ = tokio::time::sleep(READY_TIMEOUT * 2) => Err("the new master was not ready in time".to_string()),
                };
                if outcome.is_err() {
                    let _ = child.start_kill();
                }
                let _ = events.send(Event::Successor(outcome));
                // The successor is on its own now; it is reaped by whoever adopts it.
                drop(child);
            });
            Ok(())
        })();
        match started {
            Ok(()) => self.upgrading = true,
            Err(e) => tracing::error!(error = %e, "cannot start a new master"),
        }
    }

    async fn stop(&mut self, mode: StopMode) {
        if self.stopping.is_some() {
            // A second TERM turns a polite stop fast.
            if mode == StopMode::Fast {
                self.broadcast("stop fast").await;
            }
            return;
        }
        tracing::info!(?mode, "stopping");
        self.stopping = Some((mode, Instant::now()));
        if let Some(acme) = self.acme.take() {
            acme.abort();
        }
        if let Some(trim) = self.disk_trim.take() {
            trim.abort();
        }
        if let Some(pending) = self.pending.take() {
            self.kill_generation(pending.generation);
        }
        // Close our copies of the listening sockets: once the workers close theirs, new
        // connections are refused instead of waiting in a backlog nobody accepts from. (After
        // a hand-over the successor holds its own copies.)
        self.listeners.clear();
        let line = match mode {
            StopMode::Polite => "stop polite",
            StopMode::Fast => "stop fast",
        };
        self.broadcast(line).await;
        let now = Instant::now();
        for worker in &mut self.workers {
            worker.stopping.get_or_insert(now);
        }
    }

    async fn broadcast(&mut self, line: &str) {
        let line = format!("{line}\n");
        for worker in &mut self.workers {
            let _ = worker.control.write_all(line.as_bytes()).await;
        }
    }

    /// A purge call: answered from the ledger, or a purge started on every worker's memory
    /// tier and on the disk tier.
    async fn on_purge(&mut self, call: purge::Call) {
        let Some((matcher, wait, reply)) = self.purges.answer(call) else {
            return;
        };
        let Some(line) = purge::encode(&matcher) else {
            return;
        };
        let pids = self.workers.iter().map(|w| w.pid);
        let disk = self.disk.clone();
        let id = self
            .purges
            .begin(&matcher, pids.chain(disk.is_some().then_some(purge::DISK)));
        tracing::info!(id, purge = %line, "purge");
        let line = format!("purge {id} {line}\n");
        for worker in &mut self.workers {
            if worker.control.write_all(line.as_bytes()).await.is_err() {
                self.purges.gone(worker.pid);
            }
        }
        if let Some(disk) = disk {
            let purges = self.purges.clone();
            tokio::task::spawn_blocking(move || {
                let purged = crate::cache::store::purge_disk(&disk, &matcher);
                purges.finished(id, purge::DISK, purged as u64);
            });
        }
        self.purges.reply_when_done(id, wait, reply);
    }

    /// `ask RID QUESTION` from worker `pid`: `purge WAIT_MS MATCHER`, `status ID` or `list`;
    /// the answer (JSON, `null` when unknown) goes back as `answer RID TEXT`.
    async fn on_ask(&mut self, pid: u32, rid: u64, question: &str) {
        let events = self.events_tx.clone();
        let tell = move |text: String| {
            let line = format!("answer {rid} {text}\n");
            let _ = events.send(Event::Tell { pid, line });
        };
        let (verb, rest) = question.split_once(' ').unwrap_or((question, ""));
        match verb {
            "purge" => {
                let Some((wait, matcher)) = rest.split_once(' ') else {
                    return;
                };
                let (Ok(wait), Some(matcher)) = (wait.parse::<u64>(), purge::decode(matcher))
                else {
                    return;
                };
                let (reply, answer) = oneshot::channel();
                let wait = Duration::from_millis(wait.min(60_000));
                self.on_purge(purge::Call::Purge {
                    matcher,
                    wait,
                    reply,
                })
                .await;
                tokio::spawn(async move {
                    if let Ok(status) = answer.await {
                        tell(status.to_json());
                    }
                });
            }
            "status" => {
                let status = rest.parse().ok().and_then(|id| self.purges.status(id));
                tell(serde_json::to_string(&status).unwrap_or_default());
            }
            "list" => tell(serde_json::to_string(&self.purges.recent()).unwrap_or_default()),
            _ => tracing::warn!(pid, question, "unknown question from a worker"),
        }
    }

    async fn on_ctl(&mut self, request: ctl::Request) {
        if let Some(query) = request.command.strip_prefix("purge ") {
            let matcher = match crate::admin::matcher(query) {
                Ok(matcher) => matcher,
                Err(why) => {
                    let _ = request.reply.send(format!("error: {why}\n"));
                    return;
                }
            };
            let (reply, answer) = oneshot::channel();
            self.on_purge(purge::Call::Purge {
                matcher,
                wait: Duration::from_secs(10),
                reply,
            })
            .await;
            let ctl_reply = request.reply;
            tokio::spawn(async move {
                let text = match answer.await {
                    Ok(status) if status.is_done() => format!(
                        "ok: purge {} done, {} stored responses removed\n",
                        status.id, status.purged
                    ),
                    Ok(status) => format!(
                        "ok: purge {} still running ({} of {} participants finished)\n",
                        status.id, status.finished, status.participants
                    ),
                    Err(_) => "error: no answer\n".to_string(),
                };
                let _ = ctl_reply.send(text);
            });
            return;
        }
        match request.command.as_str() {
            "status" => {
                let _ = request.reply.send(self.status());
            }
            "reload" => self.reload(Some(request.reply)),
            "stop" => {
                let _ = request.reply.send("ok: stopping\n".to_string());
                self.stop(StopMode::Polite).await;
            }
            "reopen" => {
                self.broadcast("reopen").await;
                let _ = request.reply.send("ok: log files reopened\n".to_string());
            }
            other => {
                let _ = request.reply.send(format!(
                    "error: unknown command {other:?} (status, reload, stop, reopen)\n"
                ));
            }
        }
    }

    /// The cache's disk tier, when the configuration has one.
    fn open_disk(&self) -> Option<Arc<crate::cache::disk::DiskStore>> {
        let path = self
            .config
            .edge
            .cache
            .as_ref()?
            .disk
            .as_ref()?
            .path
            .clone()?;
        crate::cache::disk::DiskStore::open(&path)
            .inspect_err(|e| tracing::warn!(folder = %path.display(), error = %e, "purges cannot reach the disk cache"))
            .ok()
            .map(Arc::new)
    }

    /// What `portico ctl status` prints.
    fn status(&self) -> String {
        let mut text = String::from("ok\n");
        let now = Instant::now();
        let _ = writeln!(
            text,
            "master: pid {}, uptime {}s, generation {}",
            std::process::id(),
            now.duration_since(self.started).as_secs(),
            self.generation
        );
        let _ = writeln!(text, "workers: {}", self.workers.len());
        for w in &self.workers {
            let state = if w.stopping.is_some() {
                "stopping"
            } else if w.ready {
                "serving"
            } else {
                "starting"
            };
            let _ = writeln!(
                text,
                "  worker pid {} slot {} generation {} uptime {}s restarts {} {}",
                w.pid,
                w.slot,
                w.generation,
                now.duration_since(w.started).as_secs(),
                w.restarts,
                state
            );
        }
        let totals = Totals::read(&self.region, self.workers.iter().map(|w| w.slot));
        text.push_str(&totals.to_string());
        let ports: Vec<u16> = self
            .listeners
            .iter()
            .filter_map(|(_, l)| l.local_addr().ok().map(|a| a.port()))
            .collect();
        let states = tcp_info::states_by_port(&ports);
        let states: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(text, "tcp states: {}", states.join(", "));
        text
    }

    fn finish(&mut self) -> ExitCode {
        if !self.handed_over {
            remove_pid_file(&self.launch.data_dir);
            if let Some(path) = &self.ctl_path {
                let _ = std::fs::remove_file(path);
            }
        }
        tracing::info!("stopped");
        exit::code(self.worst_exit)
    }
}

/// The listening sockets for `config`, keyed by the address as configured (so `:0` keeps the
/// port the kernel chose across reloads): kept from `current` for addresses already bound,
/// taken from `inherited` (a predecessor's), or bound now.
fn bind_all(
    config: &Config,
    current: &[(SocketAddr, Arc<TcpListener>)],
    inherited: &mut HashMap<SocketAddr, TcpListener>,
) -> Result<Vec<(SocketAddr, Arc<TcpListener>)>, String> {
    let mut listeners = Vec::new();
    for addr in &config.edge.listeners {
        if let Some((_, l)) = current.iter().find(|(a, _)| a == addr) {
            listeners.push((*addr, l.clone()));
        } else if let Some(l) = inherited.remove(addr) {
            listeners.push((*addr, Arc::new(l)));
        } else {
            let l = crate::net::listener::bind_tcp(*addr)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            listeners.push((*addr, Arc::new(l)));
        }
    }
    Ok(listeners)
}

/// The back-off before restarting a worker that exited `crashes` times within the window.
fn restart_delay(crashes: usize) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(crashes - 2).unwrap_or(u32::MAX).min(6);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(Duration::from_secs(10))
}

/// One worker per CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn kill(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::try_from(signal).ok(),
        );
    }
}

fn pid_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("portico.pid")
}

/// Writes the pid file whole (a temporary name, then rename).
fn write_pid_file(data_dir: &std::path::Path) -> std::io::Result<()> {
    let pid = format!("{}\n", std::process::id());
    crate::fs::write_atomic(
        &pid_path(data_dir),
        pid.as_bytes(),
        0o644,
        crate::fs::Sync::Unsynced,
    )
}

/// Removes the pid file if it still names this process.
fn remove_pid_file(data_dir: &std::path::Path) {
    let path = pid_path(data_dir);
    if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == std::process::id().to_string()) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_when_a_worker_keeps_dying() {
        assert_eq!(restart_delay(1), Duration::ZERO);
        assert_eq!(restart_delay(2), Duration::from_millis(200));
        assert_eq!(restart_delay(3), Duration::from_millis(400));
        assert_eq!(restart_delay(5), Duration::from_millis(1600));
        assert_eq!(restart_delay(50), Duration::from_secs(10));
    }
}
