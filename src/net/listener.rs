//! Listening sockets, bound with the options a server wants (socket2): `SO_REUSEADDR` so a
//! restart does not wait for TIME_WAIT, a large backlog, non-blocking for tokio.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of pending connections (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Binds a TCP listening socket on `addr` (port 0 = any free port).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
