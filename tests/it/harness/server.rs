//! A running `portico` process for one test.
//!
//! The child runs in its own process group so that stopping it also stops anything it
//! started. Its stdout and stderr are drained by background threads (so the server never
//! blocks on a full pipe) into buffers that are printed when the test panicked, together with
//! the config it ran with.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{START_TIMEOUT, WorkDir};

/// How long the server gets between SIGTERM and SIGKILL when a test ends.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A `portico` child process that printed its ready line.
pub struct Server {
    child: Child,
    work: WorkDir,
    listeners: Vec<Listener>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

/// One `listening kind=… addr=…` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub kind: String,
    pub addr: SocketAddr,
}

impl Server {
    /// Writes `config` to `<work>/portico.toml` and runs
    /// `portico --data-dir <work>/state serve -c <work>/portico.toml`.
    pub fn start(work: WorkDir, config: &str) -> Server {
        Server::start_logging(work, config, None)
    }

    /// [`Server::start`] with `RUST_LOG` set to `filter` (else the default filter).
    pub fn start_logging(work: WorkDir, config: &str, filter: Option<&str>) -> Server {
        let args = Server::serve_args(&work, config);
        Server::start_with_env(work, &args, filter, &[])
    }

    /// [`Server::start`] with extra environment variables for the server process (which its
    /// workers inherit), e.g. `PORTICO_FAULT`.
    pub fn start_with_vars(work: WorkDir, config: &str, vars: &[(&str, &str)]) -> Server {
        let args = Server::serve_args(&work, config);
        Server::start_with_env(work, &args, None, vars)
    }

    /// Runs `portico <args>` in `work` and waits for the ready line.
    pub fn start_with_args<S: AsRef<OsStr>>(work: WorkDir, args: &[S]) -> Server {
        Server::start_with_env(work, args, None, &[])
    }

    /// Writes `config` to `<work>/portico.toml`; the arguments of `serve` on it.
    fn serve_args(work: &WorkDir, config: &str) -> Vec<OsString> {
        let config_path = work.write("portico.toml", config);
        let data_dir = work.join("state");
        vec![
            "--data-dir".into(),
            data_dir.into(),
            "serve".into(),
            "-c".into(),
            config_path.into(),
        ]
    }

    fn start_with_env<S: AsRef<OsStr>>(
        work: WorkDir,
        args: &[S],
        log: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
        command
            .args(args)
            .envs(vars.iter().copied())
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(filter) = log {
            command.env("RUST_LOG", filter);
        } else if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "portico=debug,info");
        }
        let mut child = command.spawn().expect("spawn the portico binary");

        let stdout_pipe = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();

        let out_buf = Arc::clone(&stdout);
        let out_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout_pipe);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                out_buf.lock().unwrap().push_str(&line);
                let _ = lines_tx.send(line.trim_end().to_string());
                line.clear();
            }
        });
        let err_buf = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut chunk = [0u8; 8192];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                err_buf
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });

        let mut server = Server {
            child,
            work,
            listeners: Vec::new(),
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            exit: None,
        };
        server.wait_ready(&lines_rx);
        server
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].addr
    }

    /// Every bound address, in the order the server printed them.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// The first listener of `kind` (`http`, `https`, `admin`).
    pub fn addr_of(&self, kind: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.addr)
            .unwrap_or_else(|| panic!("no {kind} listener; listeners: {:?}", self.listeners))
    }

    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The bound address on the given IP (for configs with several loopback addresses).
    pub fn addr_on(&self, ip: &str) -> SocketAddr {
        self.listeners
            .iter()
            .map(|l| l.addr)
            .find(|a| a.ip().to_string() == ip)
            .unwrap_or_else(|| panic!("no listener on {ip}; listeners: {:?}", self.listeners))
    }

    /// The pids of the master's worker processes (its children), in no particular order.
    pub fn worker_pids(&self) -> Vec<u32> {
        let pid = self.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Stops the server and hands back its work folder (and data directory), to start another
    /// server on it.
    pub fn into_work(mut self) -> WorkDir {
        self.stop();
        std::mem::replace(&mut self.work, WorkDir::new())
    }

    pub fn work(&self) -> &WorkDir {
        &self.work
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the server process (not the group).
    pub fn signal(&self, signal: libc::c_int) {
        assert!(
            self.exit.is_none(),
            "signal to a server that already exited"
        );
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, which
        // has not been reaped while `self.exit` is None.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(
            rc,
            0,
            "kill({}, {signal}): {}",
            self.child.id(),
            std::io::Error::last_os_error()
        );
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait on the server");
        }
        self.exit
    }

    /// Waits (polling) for the process to exit; panics if it is still running after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running {within:?} after the wait began"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the server printed to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything the server printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_ready(&mut self, lines: &mpsc::Receiver<String>) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening ") {
                        self.listeners.push(parse_listening(rest));
                    } else if let Some(rest) = line.strip_prefix("ready ") {
                        let pid = field(rest, "pid")
                            .unwrap_or_else(|| panic!("ready line without pid: {line:?}"));
                        assert_eq!(
                            pid,
                            self.child.id().to_string(),
                            "ready line names another pid: {line:?}"
                        );
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no `ready` line on stdout within {START_TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The pipe closed: the process exited (or closed stdout) before being ready.
                    let exit = self.child.wait().ok();
                    self.exit = exit;
                    panic!("server stdout closed before the `ready` line; exit status {exit:?}")
                }
            }
        }
        assert!(
            !self.listeners.is_empty(),
            "`ready` without any `listening` line"
        );
    }

    fn stop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) has no memory-safety preconditions; the group is our child's own
        // (process_group(0)) and the child has not been reaped yet.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.try_exit().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        self.exit = self.child.wait().ok();
    }

    fn print_logs(&mut self) {
        // The readers end at EOF once the process is gone; wait a bounded time for the tail.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let config = self.work.read_to_string("portico.toml").unwrap_or_default();
        eprintln!(
            "==== portico (pid {}) exit: {:?}\n---- config ----\n{config}\n---- stdout ----\n{}\n---- stderr ----\n{}\n==== end of portico output",
            self.child.id(),
            self.exit,
            self.stdout(),
            self.stderr(),
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() || std::env::var_os("PORTICO_IT_SHOW_LOGS").is_some() {
            self.print_logs();
        }
    }
}

/// Parses `kind=http addr=127.0.0.1:40123`.
fn parse_listening(rest: &str) -> Listener {
    let kind =
        field(rest, "kind").unwrap_or_else(|| panic!("listening line without kind: {rest:?}"));
    let addr =
        field(rest, "addr").unwrap_or_else(|| panic!("listening line without addr: {rest:?}"));
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("listening addr {addr:?}: {e}"));
    assert_ne!(addr.port(), 0, "listening line shows port 0: {rest:?}");
    Listener { kind, addr }
}

/// The value of `key=value` among whitespace-separated fields.
fn field(fields: &str, key: &str) -> Option<String> {
    fields
        .split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .map(str::to_string)
}
