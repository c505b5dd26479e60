//! The process family: a master that supervises worker processes (a worker that dies is started
//! again), reloads on HUP, hands over to a successor on USR2, stops politely on QUIT and has
//! its workers reopen the access log on USR1; `portico ctl`, the pid file and the control
//! socket; the request totals the workers add up in shared memory; `--single-process`.
//!
//! Traffic across a crash, a reload or an upgrade comes from an in-test [`Load`]: keep-alive
//! clients doing sequential GETs on raw HTTP/1 connections, reconnecting after a response with
//! `Connection: close` (not a failure) or after an error (a failure, counted).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::harness::raw::find;
use crate::harness::{CliOutput, IO_TIMEOUT, RawConn, Server, WorkDir, get, portico};

/// One `respond` route for every path, answering `body`, served by `workers` workers.
fn config(workers: usize, body: &str) -> String {
    format!(
        r#"
[server]
workers = {workers}

[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
respond = {{ body = "{body}" }}
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Processes, signals, `portico ctl`.

/// Sends `signal` to `pid` (a worker, or a successor master the harness does not know).
fn kill(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a portico process of this
    // test, read from /proc or from its pid file while it runs.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// True when `pid` no longer runs (no such process, or a zombie nobody reaped yet).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `PID (comm) STATE …`: the state follows the last parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| state == 'Z' || state == 'X'),
    }
}

/// The children of every thread of `pid` (`Server::worker_pids` reads the main thread's only).
fn all_children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn worker_set(server: &Server) -> BTreeSet<u32> {
    server.worker_pids().into_iter().collect()
}

/// Polls (every 10 ms, for at most `within`) until the master has a child that is not in
/// `old`; that child's pid and how long it took.
async fn wait_for_new_worker(
    server: &Server,
    old: &BTreeSet<u32>,
    since: Instant,
    within: Duration,
) -> (u32, Duration) {
    loop {
        let now = worker_set(server);
        if let Some(&pid) = now.difference(old).next() {
            return (pid, since.elapsed());
        }
        assert!(
            since.elapsed() < within,
            "no new worker {within:?} after the old one died; workers now: {now:?}, before: {old:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `portico --data-dir <work>/state ctl <command>`, run off the async runtime so that a
/// [`Load`] running meanwhile is not held up.
async fn ctl(server: &Server, command: &str) -> CliOutput {
    let cwd = server.work().path().to_path_buf();
    let data = server.work().join("state");
    let command = command.to_string();
    tokio::task::spawn_blocking(move || {
        portico(
            &cwd,
            &[
                OsStr::new("--data-dir"),
                data.as_os_str(),
                OsStr::new("ctl"),
                OsStr::new(&command),
            ],
        )
    })
    .await
    .expect("the ctl thread")
}

/// `ctl status`, which must succeed, parsed.
async fn status(server: &Server) -> Status {
    let out = ctl(server, "status").await;
    out.assert_code(0);
    Status::parse(&out.stdout)
}

/// What `portico ctl status` says.
#[derive(Debug)]
struct Status {
    text: String,
    master_pid: u32,
    generation: u64,
    workers: Vec<WorkerLine>,
    /// The `workers: N` line.
    worker_count: usize,
    requests_total: u64,
    requests_2xx: u64,
}

/// `  worker pid 13658 slot 1 generation 1 uptime 2s restarts 0 serving`
#[derive(Debug, Clone)]
struct WorkerLine {
    pid: u32,
    generation: u64,
    restarts: u32,
    state: String,
}

impl Status {
    fn parse(text: &str) -> Status {
        let bad = |what: &str| -> ! { panic!("ctl status: cannot read {what} in:\n{text}") };
        assert!(text.starts_with("ok"), "ctl status is not ok:\n{text}");
        // `master: pid 13656, uptime 2s, generation 1`
        let master = text
            .lines()
            .find_map(|l| l.strip_prefix("master: "))
            .unwrap_or_else(|| bad("the master line"));
        let master_pid = after_word(master, "pid").unwrap_or_else(|| bad("the master pid"));
        let generation =
            after_word(master, "generation").unwrap_or_else(|| bad("the master generation"));
        let worker_count = text
            .lines()
            .find_map(|l| l.strip_prefix("workers: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| bad("the workers line"));
        let workers = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("worker "))
            .map(|w| WorkerLine {
                pid: after_word(w, "pid").unwrap_or_else(|| bad("a worker pid")),
                generation: after_word(w, "generation")
                    .unwrap_or_else(|| bad("a worker generation")),
                restarts: after_word(w, "restarts").unwrap_or_else(|| bad("a worker's restarts")),
                state: w.split_whitespace().last().unwrap_or("").to_string(),
            })
            .collect();
        // `requests: total 21 (1xx 0, 2xx 21, 3xx 0, 4xx 0, 5xx 0), in flight 0`
        let requests = text
            .lines()
            .find_map(|l| l.strip_prefix("requests: "))
            .unwrap_or_else(|| bad("the requests line"));
        Status {
            text: text.to_string(),
            master_pid,
            generation,
            workers,
            worker_count,
            requests_total: after_word(requests, "total").unwrap_or_else(|| bad("total")),
            requests_2xx: after_word(requests, "2xx").unwrap_or_else(|| bad("2xx")),
        }
    }
}

/// The number after `word` among whitespace-separated words (trailing `,`/`)` ignored).
fn after_word<T: std::str::FromStr>(text: &str, word: &str) -> Option<T> {
    let mut words = text.split_whitespace();
    words.find(|w| w.trim_start_matches('(') == word)?;
    words.next()?.trim_end_matches([',', ')']).parse().ok()
}

/// The pid in `<work>/state/portico.pid`, if the file exists and holds one.
fn pid_file(work: &WorkDir) -> Option<u32> {
    work.read_to_string("state/portico.pid")?
        .trim()
        .parse()
        .ok()
}

/// Polls (bounded: 2 s) until the pid file names `pid`. (The master writes it just after
/// printing its ready line, so it may be missing for a moment after `Server::start`.)
async fn wait_for_pid_file(work: &WorkDir, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while pid_file(work) != Some(pid) {
        assert!(
            Instant::now() < deadline,
            "the pid file holds {:?}, expected {pid}",
            work.read_to_string("state/portico.pid")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls (bounded: 5 s) until a new connection to `addr` is refused, or accepted by the
/// kernel but closed without an answer: the server has begun to stop.
async fn wait_until_refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match RawConn::try_connect(addr).await {
            Err(_) => return,
            Ok(mut fresh) => {
                let _ = fresh.try_send("GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
                if let Ok(bytes) = fresh.wait_closed(Duration::from_millis(500)).await
                    && bytes.is_empty()
                {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "new connections still answered 5 s after the stop signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets as the kernel lists them.

/// One line of `/proc/net/tcp{,6}`.
struct TcpEntry {
    local_port: u16,
    remote_port: u16,
    state: u8,
    inode: u64,
}

fn tcp_table() -> Vec<TcpEntry> {
    let port = |addr: &str| u16::from_str_radix(addr.rsplit_once(':')?.1, 16).ok();
    let mut entries = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            let entry = (|| {
                Some(TcpEntry {
                    local_port: port(fields[1])?,
                    remote_port: port(fields[2])?,
                    state: u8::from_str_radix(fields[3], 16).ok()?,
                    inode: fields[9].parse().ok()?,
                })
            })();
            entries.extend(entry);
        }
    }
    entries
}

/// Which of `pids` holds the server side (local port `server_port`) of the connection from
/// each client port: client port → pid.
fn socket_owners(server_port: u16, pids: &BTreeSet<u32>) -> HashMap<u16, u32> {
    let by_inode: HashMap<u64, u16> = tcp_table()
        .into_iter()
        .filter(|e| e.local_port == server_port && e.inode != 0)
        .map(|e| (e.inode, e.remote_port))
        .collect();
    let mut owners = HashMap::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(client_port) = inode.and_then(|i| by_inode.get(&i)) {
                owners.insert(*client_port, pid);
            }
        }
    }
    owners
}

/// `/proc/net/tcp` state 08.
const CLOSE_WAIT: u8 = 0x08;

// ---------------------------------------------------------------------------------------------
// The load: keep-alive clients that count what they saw.

/// How long one request of the load may take before it counts as failed.
const LOAD_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A load stops by itself after this, whatever the test does.
const LOAD_MAX: Duration = Duration::from_secs(60);

/// What one client of a [`Load`] saw.
#[derive(Debug, Default)]
struct ClientLog {
    /// Successful responses (200): when each ended, and its body.
    ok: Vec<(Instant, String)>,
    /// Failed requests (connect error, error or close before a whole response, timeout,
    /// another status): when, and what happened.
    failures: Vec<(Instant, String)>,
    /// Responses that said `Connection: close` (the client then reconnected).
    closes: usize,
}

/// What a running client shows the test.
#[derive(Default)]
struct ClientNow {
    /// The local port of its current connection; 0 while it has none.
    port: AtomicU16,
    /// Successful responses so far.
    ok: AtomicU64,
    /// The body of the last successful response.
    last_body: Mutex<String>,
}

/// Keep-alive clients on raw HTTP/1 connections, each doing sequential `GET`s.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<Arc<ClientNow>>,
    tasks: Vec<JoinHandle<ClientLog>>,
}

impl Load {
    /// Starts `count` clients on `addr`; the first `paced` of them pause 250–400 ms between
    /// requests (long enough for their connection to be parked as idle), the others send the
    /// next request as soon as a response is in.
    fn start(addr: SocketAddr, path: &str, count: usize, paced: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..count {
            let now = Arc::new(ClientNow::default());
            let pause = (i < paced).then(|| Duration::from_millis(250 + 50 * (i as u64 % 4)));
            tasks.push(tokio::spawn(run_client(
                addr,
                format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n"),
                pause,
                now.clone(),
                stop.clone(),
            )));
            clients.push(now);
        }
        Load {
            stop,
            clients,
            tasks,
        }
    }

    /// Waits (bounded: 10 s) until every client has had a response.
    async fn warm_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok: Vec<u64> = self
                .clients
                .iter()
                .map(|c| c.ok.load(Ordering::Relaxed))
                .collect();
            if ok.iter().all(|&n| n > 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "load clients without a response after 10 s; responses per client: {ok:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The local port of each client's connection (0: none at the moment).
    fn ports(&self) -> Vec<u16> {
        self.clients
            .iter()
            .map(|c| c.port.load(Ordering::Relaxed))
            .collect()
    }

    fn last_bodies(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|c| c.last_body.lock().unwrap().clone())
            .collect()
    }

    /// Stops the clients (each finishes its request) and returns what they saw.
    async fn finish(self) -> Vec<ClientLog> {
        self.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for task in self.tasks {
            let log = tokio::time::timeout(LOAD_REQUEST_TIMEOUT * 3, task)
                .await
                .expect("a load client did not stop")
                .expect("a load client panicked");
            logs.push(log);
        }
        logs
    }
}

/// A readable account of the load for failure messages.
fn summary(logs: &[ClientLog], origin: Instant) -> String {
    let mut text = String::new();
    for (i, log) in logs.iter().enumerate() {
        text.push_str(&format!(
            "client {i}: {} ok, {} closes, {} failures",
            log.ok.len(),
            log.closes,
            log.failures.len()
        ));
        for (at, what) in log.failures.iter().take(5) {
            text.push_str(&format!(
                "\n    at {:?}: {what}",
                at.saturating_duration_since(origin)
            ));
        }
        text.push('\n');
    }
    text
}

/// One line: responses, closes and failures of all clients.
fn totals(logs: &[ClientLog]) -> String {
    let sum = |f: fn(&ClientLog) -> usize| logs.iter().map(f).sum::<usize>();
    format!(
        "{} clients, {} responses, {} `Connection: close`, {} failures",
        logs.len(),
        sum(|l| l.ok.len()),
        sum(|l| l.closes),
        sum(|l| l.failures.len())
    )
}

async fn run_client(
    addr: SocketAddr,
    request: String,
    pause: Option<Duration>,
    now: Arc<ClientNow>,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let deadline = Instant::now() + LOAD_MAX;
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (stream, buf) = match &mut conn {
            Some(conn) => conn,
            None => {
                match tokio::time::timeout(LOAD_REQUEST_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let port = stream.local_addr().map_or(0, |a| a.port());
                        now.port.store(port, Ordering::Relaxed);
                        conn.insert((stream, Vec::new()))
                    }
                    Ok(Err(e)) => {
                        log.failures.push((Instant::now(), format!("connect: {e}")));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(_) => {
                        log.failures
                            .push((Instant::now(), "connect timed out".to_string()));
                        continue;
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(LOAD_REQUEST_TIMEOUT, exchange(stream, buf, &request))
            .await
            .unwrap_or_else(|_| Err(format!("no response within {LOAD_REQUEST_TIMEOUT:?}")));
        let at = Instant::now();
        match outcome {
            Ok(reply) if reply.status == 200 => {
                now.ok.fetch_add(1, Ordering::Relaxed);
                *now.last_body.lock().unwrap() = reply.body.clone();
                log.ok.push((at, reply.body));
                if reply.close {
                    log.closes += 1;
                    conn = None;
                }
            }
            Ok(reply) => {
                log.failures
                    .push((at, format!("status {}: {}", reply.status, reply.body)));
                conn = None;
            }
            Err(why) => {
                log.failures.push((at, why));
                conn = None;
            }
        }
        if conn.is_none() {
            now.port.store(0, Ordering::Relaxed);
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    log
}

/// One response of the load.
struct Reply {
    status: u16,
    /// It said `Connection: close`.
    close: bool,
    body: String,
}

/// Sends `request` on a keep-alive connection and reads its response (framed by
/// `Content-Length`, which every `respond` answer has).
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: &str,
) -> Result<Reply, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let head_end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buf).await?;
    };
    let (status, close, length) = {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        parsed
            .parse(&buf[..head_end])
            .map_err(|e| format!("unparsable head ({e}): {:?}", String::from_utf8_lossy(buf)))?;
        let value = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
        };
        let close = value("connection").is_some_and(|v| v.contains("close"));
        let length = value("content-length").and_then(|v| v.trim().parse::<usize>().ok());
        (parsed.code.unwrap_or(0), close, length)
    };
    let length = length.ok_or_else(|| {
        format!(
            "response without Content-Length: {:?}",
            String::from_utf8_lossy(&buf[..head_end])
        )
    })?;
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    buf.drain(..head_end + length);
    Ok(Reply {
        status,
        close,
        body,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) => Err(format!(
            "closed by the server after {} bytes of a response",
            buf.len()
        )),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(format!("read after {} bytes of a response: {e}", buf.len())),
    }
}

// ---------------------------------------------------------------------------------------------
// Supervision.

#[tokio::test]
async fn a_killed_worker_is_replaced_at_once_and_only_its_requests_in_flight_fail() {
    const CLIENTS: usize = 8;
    let server = Server::start(WorkDir::new(), &config(2, "hello"));
    let before = worker_set(&server);
    assert_eq!(before.len(), 2, "workers: {before:?}");

    let load = Load::start(server.addr(), "/", CLIENTS, 0);
    load.warm_up().await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Which worker serves each client's connection; the victim is the busier one.
    let ports = load.ports();
    let owners = socket_owners(server.addr().port(), &before);
    assert!(
        ports.iter().all(|p| owners.contains_key(p)),
        "cannot tell which worker holds every connection: client ports {ports:?}, owners {owners:?}"
    );
    let victim = *before
        .iter()
        .max_by_key(|&&pid| owners.values().filter(|&&o| o == pid).count())
        .unwrap();
    let on_victim: Vec<bool> = ports.iter().map(|p| owners[p] == victim).collect();
    let victims_conns = on_victim.iter().filter(|&&v| v).count();
    assert!(victims_conns >= CLIENTS / 2, "{owners:?}");

    let killed_at = Instant::now();
    kill(victim, libc::SIGKILL);
    let (replacement, took) =
        wait_for_new_worker(&server, &before, killed_at, Duration::from_secs(1)).await;
    let replaced_at = Instant::now();
    let now = worker_set(&server);
    assert!(
        !now.contains(&victim) && now.len() == 2,
        "workers after the restart: {now:?} (killed {victim}, new {replacement})"
    );

    // The load goes on against the surviving and the new worker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logs = load.finish().await;
    let report = summary(&logs, killed_at);
    let failed: usize = logs.iter().map(|l| l.failures.len()).sum();
    assert!(
        failed <= victims_conns,
        "{failed} failed requests, but only {victims_conns} connections were on the killed worker:\n{report}"
    );
    for (i, log) in logs.iter().enumerate() {
        let allowed = usize::from(on_victim[i]);
        assert!(
            log.failures.len() <= allowed,
            "client {i} (on the killed worker: {}) failed {} times:\n{report}",
            on_victim[i],
            log.failures.len()
        );
        assert!(
            log.failures.iter().all(|(at, _)| *at >= killed_at),
            "client {i} failed before the kill:\n{report}"
        );
        let after = log.ok.iter().filter(|(at, _)| *at > replaced_at).count();
        assert!(
            after > 0,
            "client {i} had no successful request after the restart:\n{report}"
        );
    }
    eprintln!(
        "killed worker {victim} holding {victims_conns} of {CLIENTS} connections; replaced by {replacement} after {took:?}; {failed} failed requests"
    );
}

#[tokio::test]
async fn a_panic_in_a_handler_is_answered_500_and_the_worker_lives_on() {
    let server = Server::start_with_vars(
        WorkDir::new(),
        &config(1, "fine"),
        &[("PORTICO_FAULT", "panic:/boom")],
    );
    let addr = server.addr();
    let before = worker_set(&server);
    assert_eq!(before.len(), 1, "workers: {before:?}");

    let r = get(addr, "/boom").await;
    r.assert_status(500);
    let r = get(addr, "/other").await;
    r.assert_status(200);
    assert_eq!(r.text(), "fine", "{r}");
    // Another panic, and still the same process answers.
    get(addr, "/boom").await.assert_status(500);
    get(addr, "/").await.assert_status(200);

    assert_eq!(worker_set(&server), before, "the worker was replaced");
    let status = status(&server).await;
    assert_eq!(status.workers.len(), 1, "{}", status.text);
    let worker = &status.workers[0];
    assert!(
        before.contains(&worker.pid) && worker.restarts == 0,
        "{}",
        status.text
    );
    assert!(
        server.stderr().contains("fault injected for /boom"),
        "the panic was not logged"
    );
}

#[tokio::test]
async fn an_aborting_worker_is_restarted_and_counted() {
    let server = Server::start_with_vars(
        WorkDir::new(),
        &config(1, "fine"),
        &[("PORTICO_FAULT", "abort:/die")],
    );
    let addr = server.addr();
    let before = worker_set(&server);
    assert_eq!(before.len(), 1, "workers: {before:?}");

    let mut conn = RawConn::connect(addr).await;
    conn.send("GET /die HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let received = conn.wait_closed(IO_TIMEOUT).await.unwrap_or_else(|bytes| {
        panic!(
            "the connection of GET /die stayed open; received {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    let closed_at = Instant::now();
    assert!(
        received.is_empty(),
        "GET /die was answered: {:?}",
        String::from_utf8_lossy(&received)
    );

    let (replacement, _) =
        wait_for_new_worker(&server, &before, closed_at, Duration::from_secs(1)).await;
    let r = get(addr, "/after").await;
    r.assert_status(200);
    assert_eq!(r.text(), "fine", "{r}");

    let status = status(&server).await;
    assert_eq!(status.workers.len(), 1, "{}", status.text);
    let worker = &status.workers[0];
    assert_eq!(worker.pid, replacement, "{}", status.text);
    assert_eq!(worker.restarts, 1, "{}", status.text);
    assert_eq!(worker.state, "serving", "{}", status.text);
    assert_eq!(status.generation, 1, "{}", status.text);
}

// ---------------------------------------------------------------------------------------------
// Reload and upgrade.

#[tokio::test]
async fn hup_under_keep_alive_load_changes_the_config_without_a_failed_request() {
    const CLIENTS: usize = 8;
    let server = Server::start(WorkDir::new(), &config(2, "v1"));
    let load = Load::start(server.addr(), "/", CLIENTS, CLIENTS / 2);
    load.warm_up().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.work().write("portico.toml", config(2, "v2"));
    let hup_at = Instant::now();
    server.signal(libc::SIGHUP);

    // Every client moves to the new configuration.
    let deadline = hup_at + Duration::from_secs(10);
    while !load.last_bodies().iter().all(|b| b == "v2") {
        assert!(
            Instant::now() < deadline,
            "clients still answered from the old config 10 s after HUP: {:?}",
            load.last_bodies()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The old generation drains and exits; only generation 2 is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = status(&server).await;
        if status.workers.len() == 2 && status.workers.iter().all(|w| w.generation == 2) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "old workers still there 10 s after the reload:\n{}",
            status.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.generation, 2, "{}", status.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = load.finish().await;

    let report = summary(&logs, hup_at);
    let failed: usize = logs.iter().map(|l| l.failures.len()).sum();
    assert_eq!(failed, 0, "failed requests across the reload:\n{report}");
    eprintln!("HUP under load: {}", totals(&logs));
    for (i, log) in logs.iter().enumerate() {
        let first_v2 = log
            .ok
            .iter()
            .position(|(_, body)| body == "v2")
            .unwrap_or_else(|| panic!("client {i} never saw v2:\n{report}"));
        let took = log.ok[first_v2].0.saturating_duration_since(hup_at);
        assert!(
            took <= Duration::from_secs(5),
            "client {i} first saw v2 {took:?} after HUP:\n{report}"
        );
        assert!(
            log.ok[first_v2..].iter().all(|(_, body)| body == "v2"),
            "client {i} saw v1 again after v2"
        );
        assert!(
            log.ok[..first_v2].iter().all(|(_, body)| body == "v1"),
            "client {i}: unexpected body before v2"
        );
        // Its old connection ended with a response that said so.
        assert!(
            log.closes >= 1,
            "client {i} moved to v2 without a `Connection: close`:\n{report}"
        );
    }
}

#[tokio::test]
async fn an_invalid_config_on_reload_is_refused_and_the_old_one_keeps_serving() {
    let server = Server::start(WorkDir::new(), &config(2, "v1"));
    let before = worker_set(&server);
    let broken = format!("{}bogus = true\n", config(2, "v2"));
    let bogus_line = broken.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
    let path = server.work().write("portico.toml", &broken);

    let out = ctl(&server, "reload").await;
    out.assert_code(1);
    assert!(
        out.stdout
            .starts_with("error: the new configuration is invalid; the running one stays"),
        "{out}"
    );
    let diagnostic = format!("error: {}:{bogus_line}:", path.display());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&diagnostic) && l.contains("bogus")),
        "no `{diagnostic}…bogus…` line:\n{out}"
    );

    let r = get(server.addr(), "/").await;
    r.assert_status(200);
    assert_eq!(r.text(), "v1", "{r}");
    let status = status(&server).await;
    assert_eq!(status.generation, 1, "{}", status.text);
    assert_eq!(status.worker_count, 2, "{}", status.text);
    assert!(
        status.workers.iter().all(|w| w.generation == 1),
        "{}",
        status.text
    );
    assert_eq!(worker_set(&server), before, "the workers were replaced");
}

/// Stops a successor master (which the harness does not know) if the test ends early.
struct Successor(Option<u32>);

impl Drop for Successor {
    fn drop(&mut self) {
        if let Some(pid) = self.0
            && !is_gone(pid)
        {
            // Its workers stop by themselves once their master is gone.
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is the successor
            // this test started, seen running just now.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

#[tokio::test]
async fn usr2_hands_over_to_a_new_master_without_a_failed_request() {
    const CLIENTS: usize = 8;
    let mut server = Server::start(WorkDir::new(), &config(2, "hello"));
    let old = server.pid();
    wait_for_pid_file(server.work(), old).await;
    let load = Load::start(server.addr(), "/", CLIENTS, CLIENTS / 2);
    load.warm_up().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut successor = Successor(None);
    let usr2_at = Instant::now();
    server.signal(libc::SIGUSR2);
    // The pid file names the new master once it is ready; then the old one steps down.
    let deadline = usr2_at + Duration::from_secs(15);
    let new = loop {
        if let Some(pid) = pid_file(server.work())
            && pid != old
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the pid file still names {old} 15 s after USR2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    successor.0 = Some(new);
    let exit = server.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0), "the old master's exit: {exit:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = load.finish().await;

    let report = summary(&logs, usr2_at);
    let failed: usize = logs.iter().map(|l| l.failures.len()).sum();
    assert_eq!(failed, 0, "failed requests across the upgrade:\n{report}");
    eprintln!("USR2 under load: {}", totals(&logs));
    for (i, log) in logs.iter().enumerate() {
        assert!(
            log.closes >= 1,
            "client {i} was never moved off the old master's workers:\n{report}"
        );
    }

    // The new master answers, on the control socket and on the listener.
    assert!(!is_gone(new), "the new master {new} is not running");
    let status = status(&server).await;
    assert_eq!(status.master_pid, new, "{}", status.text);
    assert_eq!(status.worker_count, 2, "{}", status.text);
    let new_workers: BTreeSet<u32> = status.workers.iter().map(|w| w.pid).collect();
    let r = get(server.addr(), "/").await;
    r.assert_status(200);
    assert_eq!(r.text(), "hello", "{r}");

    // Stop it: the master and its workers go, and it removes its pid file.
    kill(new, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(is_gone(new) && new_workers.iter().all(|&w| is_gone(w))) {
        assert!(
            Instant::now() < deadline,
            "the new master {new} or its workers {new_workers:?} still run 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    successor.0 = None;
    assert_eq!(
        pid_file(server.work()),
        None,
        "the pid file outlived the new master"
    );
}

// ---------------------------------------------------------------------------------------------
// Other signals.

#[tokio::test]
async fn usr1_reopens_a_moved_access_log() {
    let config = format!(
        "[access_log]\npath = \"access.log\"\n{}",
        config(1, "logged")
    );
    let server = Server::start(WorkDir::new(), &config);
    let addr = server.addr();
    let work = server.work();
    let log_has = |file: &str, what: &str| {
        work.read_to_string(file)
            .is_some_and(|text| text.contains(what))
    };
    let wait_for = |file: &'static str, what: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log_has(file, what) {
            assert!(
                Instant::now() < deadline,
                "{file} has no {what:?} after 5 s: {:?}",
                work.read_to_string(file)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    get(addr, "/first").await.assert_status(200);
    wait_for("access.log", "/first").await;
    std::fs::rename(work.join("access.log"), work.join("access.log.1")).unwrap();

    server.signal(libc::SIGUSR1);
    // The worker creates the file again when it reopens it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !work.join("access.log").exists() {
        assert!(
            Instant::now() < deadline,
            "access.log not created again 5 s after USR1"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    get(addr, "/second").await.assert_status(200);
    wait_for("access.log", "/second").await;

    let new = work.read_to_string("access.log").unwrap();
    let old = work.read_to_string("access.log.1").unwrap();
    assert!(!new.contains("/first"), "access.log:\n{new}");
    assert!(
        old.contains("/first") && !old.contains("/second"),
        "access.log.1:\n{old}"
    );
}

#[tokio::test]
async fn quit_lets_an_upload_in_flight_finish_and_idle_connections_ask_once_more() {
    let config = r#"
[server]
workers = 2

[limits]
shutdown_timeout = "20s"

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
exact = "/upload"
respond = { status = 201, body = "stored\n" }
"#;
    let mut server = Server::start(WorkDir::new(), config);
    let addr = server.addr();
    // An idle keep-alive connection: a polite stop keeps it for its next request.
    let mut idle = RawConn::connect(addr).await;
    idle.send("GET /upload HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = idle.read_response().await;
    r.assert_status(201);
    assert_eq!(r.header("connection"), None, "{r}");

    let mut conn = RawConn::connect(addr).await;
    conn.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    // `100 Continue` means the handler is reading the body: the request is in flight.
    conn.read_response().await.assert_status(100);
    conn.send("hello").await;

    server.signal(libc::SIGQUIT);
    wait_until_refused(addr).await;
    assert!(
        server.try_exit().is_none(),
        "the server exited with an upload in flight"
    );

    // The idle connection is still open; its next request is answered, and it is the last.
    idle.send("GET /upload HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let r = idle.read_response().await;
    r.assert_status(201);
    assert_eq!(r.header("connection"), Some("close"), "{r}");
    assert!(
        idle.wait_closed(IO_TIMEOUT).await.is_ok(),
        "the idle connection stayed open after `Connection: close`"
    );
    drop(idle);

    conn.send("world").await;
    let r = conn.read_response().await;
    r.assert_status(201);
    assert_eq!(r.text(), "stored\n", "{r}");
    assert_eq!(r.header("connection"), Some("close"), "{r}");
    let rest = conn.read_to_end().await;
    assert!(rest.is_empty(), "bytes after the response");
    drop(conn);

    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGQUIT: {status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Shared totals, sockets, ctl, pid file.

#[tokio::test]
async fn ctl_status_adds_up_the_requests_of_every_worker() {
    const TASKS: usize = 10;
    const PER_TASK: usize = 30;
    const TOTAL: u64 = (TASKS * PER_TASK) as u64;
    let server = Server::start(WorkDir::new(), &config(2, "counted"));
    let addr = server.addr();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    // A fresh connection per request, so that both workers take some.
                    get(addr, "/").await.assert_status(200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client task panicked");
    }

    let wait_for_total = async |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = status(&server).await;
            if status.requests_total == TOTAL {
                assert_eq!(status.requests_2xx, TOTAL, "{}", status.text);
                return status;
            }
            assert!(
                status.requests_total < TOTAL && Instant::now() < deadline,
                "{what}: expected requests: total {TOTAL}\n{}",
                status.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_for_total("after the requests").await;

    // A worker's totals outlive it.
    let before = worker_set(&server);
    let victim = *before.iter().next().unwrap();
    let killed_at = Instant::now();
    kill(victim, libc::SIGKILL);
    wait_for_new_worker(&server, &before, killed_at, Duration::from_secs(5)).await;
    let status = wait_for_total("after a worker died").await;
    assert!(
        !status.workers.iter().any(|w| w.pid == victim),
        "{}",
        status.text
    );
}

#[tokio::test]
async fn misbehaving_clients_leave_no_close_wait_sockets() {
    const EACH: usize = 10;
    let config = r#"
[server]
workers = 2

[limits]
keepalive_timeout = "60s"
client_header_timeout = "60s"
lingering_timeout = "2s"

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
prefix = "/"
respond = { body = "ok\n" }
"#;
    let server = Server::start(WorkDir::new(), config);
    let addr = server.addr();
    let request = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    // Client port → what the client did, for the failure message.
    let mut kinds: HashMap<u16, &str> = HashMap::new();
    // Half-closed clients keep their end open (unread) until the test ends.
    let mut half_closed = Vec::new();
    let connect = || async {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let port = stream.local_addr().unwrap().port();
        (stream, port)
    };
    for _ in 0..EACH {
        // A whole request, then the write side shut, never reading.
        let (mut s, port) = connect().await;
        s.write_all(request.as_bytes()).await.unwrap();
        s.shutdown().await.unwrap();
        half_closed.push(s);
        kinds.insert(port, "request then write side shut, never read");

        // Half a request head, then gone.
        let (mut s, port) = connect().await;
        s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        drop(s);
        kinds.insert(port, "half a head then dropped");

        // Connected and gone at once.
        let (s, port) = connect().await;
        drop(s);
        kinds.insert(port, "connected then dropped");

        // A request, gone before the response.
        let (mut s, port) = connect().await;
        s.write_all(request.as_bytes()).await.unwrap();
        drop(s);
        kinds.insert(port, "request then dropped before the response");

        // A response read, then gone while the connection is idle.
        let mut conn = RawConn::connect(addr).await;
        conn.send(request).await;
        conn.read_response().await.assert_status(200);
        drop(conn);
    }
    // Idle long enough to be parked, then gone.
    let mut parked = Vec::new();
    for _ in 0..EACH {
        let mut conn = RawConn::connect(addr).await;
        conn.send(request).await;
        conn.read_response().await.assert_status(200);
        parked.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(parked);

    let port = addr.port();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut clean_polls = 0;
    while clean_polls < 2 {
        let waiting: Vec<String> = tcp_table()
            .into_iter()
            .filter(|e| e.local_port == port && e.state == CLOSE_WAIT)
            .map(|e| {
                format!(
                    "client port {} ({})",
                    e.remote_port,
                    kinds
                        .get(&e.remote_port)
                        .unwrap_or(&"a response read, then dropped")
                )
            })
            .collect();
        if waiting.is_empty() {
            clean_polls += 1;
        } else {
            clean_polls = 0;
            assert!(
                Instant::now() < deadline,
                "server sockets still in CLOSE_WAIT 15 s after their clients left:\n{}",
                waiting.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let r = get(addr, "/").await;
    r.assert_status(200);
    assert_eq!(r.text(), "ok\n", "{r}");
    drop(half_closed);
}

#[tokio::test]
async fn ctl_status_pid_file_and_control_socket() {
    let mut server = Server::start(WorkDir::new(), &config(2, "hello"));
    let work_state = server.work().join("state");
    let status = status(&server).await;
    assert_eq!(status.master_pid, server.pid(), "{}", status.text);
    assert_eq!(status.worker_count, 2, "{}", status.text);
    let listed: BTreeSet<u32> = status.workers.iter().map(|w| w.pid).collect();
    assert_eq!(listed, worker_set(&server), "{}", status.text);
    assert!(
        status
            .workers
            .iter()
            .all(|w| w.generation == 1 && w.restarts == 0 && w.state == "serving"),
        "{}",
        status.text
    );

    let socket = work_state.join("portico.sock");
    let meta = std::fs::metadata(&socket).expect("the control socket exists");
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        socket.display()
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        socket.display()
    );
    wait_for_pid_file(server.work(), server.pid()).await;

    server.signal(libc::SIGTERM);
    let exit = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit.code(), Some(0), "exit status after SIGTERM: {exit:?}");
    assert!(
        !work_state.join("portico.pid").exists(),
        "the pid file outlived the master"
    );
    assert!(!socket.exists(), "the control socket outlived the master");
    let out = ctl(&server, "status").await;
    out.assert_code(1);
}

#[tokio::test]
async fn single_process_serves_without_workers() {
    let work = WorkDir::new();
    let path = work.write("portico.toml", config(2, "alone"));
    let data = work.join("state");
    let args = [
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("serve"),
        OsStr::new("-c"),
        path.as_os_str(),
        OsStr::new("--single-process"),
    ];
    let server = Server::start_with_args(work, &args);
    let r = get(server.addr(), "/").await;
    r.assert_status(200);
    assert_eq!(r.text(), "alone", "{r}");
    let children = all_children(server.pid());
    assert!(
        children.is_empty(),
        "a single process has child processes: {children:?}"
    );
}
