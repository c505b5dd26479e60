//! What a process hands to the process it starts: the master to each worker, and an old master
//! to its successor on a binary upgrade (USR2).
//!
//! A child is the same binary re-executed (fork-then-exec through `std::process::Command`,
//! never a fork that keeps running without exec: the master is multi-threaded, and a forked
//! copy of a multi-threaded process may only call async-signal-safe functions). It gets the
//! same command line as its parent, so it builds the same configuration, plus environment
//! variables naming its role and the descriptors it inherits:
//!
//! | variable | value |
//! |---|---|
//! | `PORTICO_ROLE` | `worker`, or `successor` for a new master after USR2 |
//! | `PORTICO_LISTEN_FDS` | `ADDR=FD,ADDR=FD…`: the bound listening sockets |
//! | `PORTICO_CONTROL_FD` | a worker's end of its socket pair with the master |
//! | `PORTICO_COUNTERS_FD` | the shared counter region (`telemetry::shm`) |
//! | `PORTICO_SLOT` | the worker's slot in that region |
//! | `PORTICO_READY_FD` | a successor's pipe to tell the old master it is ready |
//!
//! Descriptors keep their numbers across `exec`: every descriptor is opened close-on-exec, and
//! only the listed ones are made inheritable, in the child between fork and exec.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

pub const ROLE: &str = "PORTICO_ROLE";
pub const LISTEN_FDS: &str = "PORTICO_LISTEN_FDS";
pub const CONTROL_FD: &str = "PORTICO_CONTROL_FD";
pub const COUNTERS_FD: &str = "PORTICO_COUNTERS_FD";
pub const SLOT: &str = "PORTICO_SLOT";
pub const READY_FD: &str = "PORTICO_READY_FD";

/// What this process was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started by a user: a master (or a single process).
    Master,
    /// A worker of a master.
    Worker,
    /// A new master started by an old one on USR2.
    Successor,
}

/// The role named by the environment.
pub fn role() -> Role {
    match std::env::var(ROLE).as_deref() {
        Ok("worker") => Role::Worker,
        Ok("successor") => Role::Successor,
        _ => Role::Master,
    }
}

/// Starts `exe` with `args`, the environment variables `vars`, and the descriptors `keep`
/// inherited under their own numbers.
#[allow(unsafe_code)]
pub fn spawn(
    exe: &Path,
    args: &[OsString],
    vars: &[(&str, String)],
    keep: &[RawFd],
) -> io::Result<tokio::process::Child> {
    let mut command = std::process::Command::new(exe);
    command.args(args).stdin(std::process::Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    let keep = keep.to_vec();
    // SAFETY: the closure runs in the child between fork and exec. It only calls `fcntl`,
    // which is async-signal-safe, on descriptor numbers copied before the fork, and allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    tokio::process::Command::from(command).spawn()
}

/// `ADDR=FD,…` for the environment.
pub fn listen_fds_value(listeners: &[(SocketAddr, RawFd)]) -> String {
    listeners
        .iter()
        .map(|(addr, fd)| format!("{addr}={fd}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Takes a descriptor this process inherited under `var`, and marks it close-on-exec again.
pub fn take_fd(var: &str) -> io::Result<Option<OwnedFd>> {
    let Ok(text) = std::env::var(var) else {
        return Ok(None);
    };
    let fd: RawFd = text
        .parse()
        .map_err(|_| io::Error::other(format!("{var}={text} is not a descriptor")))?;
    Ok(Some(adopt(fd)?))
}

/// The listening sockets inherited under [`LISTEN_FDS`], by address.
pub fn take_listeners() -> io::Result<HashMap<SocketAddr, TcpListener>> {
    let mut listeners = HashMap::new();
    let Ok(text) = std::env::var(LISTEN_FDS) else {
        return Ok(listeners);
    };
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let bad = || io::Error::other(format!("{LISTEN_FDS}: bad entry {item:?}"));
        let (addr, fd) = item.rsplit_once('=').ok_or_else(bad)?;
        let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
        let fd: RawFd = fd.parse().map_err(|_| bad())?;
        let listener = TcpListener::from(adopt(fd)?);
        listener.set_nonblocking(true)?;
        listeners.insert(addr, listener);
    }
    Ok(listeners)
}

/// Owns an inherited descriptor number after checking that it is open.
#[allow(unsafe_code)]
fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fcntl(F_GETFD)` only queries a descriptor number; it touches no memory.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::other(format!(
            "inherited descriptor {fd} is not open"
        )));
    }
    // SAFETY: the descriptor is open (checked above), was handed to this process by its
    // parent for this purpose under an environment variable read once, and nothing else in
    // this process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: as above, a flag change on a descriptor we now own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}
