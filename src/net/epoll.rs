//! An epoll set of our own that tokio can wait on: the parking lot (`edge/park.rs`) keeps
//! idle sockets here, outside tokio's registrations, and learns from one readiness of this set
//! which of them turned readable.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tokio::io::unix::AsyncFd;

/// Events taken per wait.
const BATCH: usize = 256;

/// An epoll set registered with the tokio reactor.
pub struct EpollSet {
    fd: AsyncFd<EpollFd>,
}

/// The epoll set's descriptor, owned.
struct EpollFd(Epoll);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.0.as_raw_fd()
    }
}

impl EpollSet {
    /// Creates the set. Must be called inside the tokio runtime.
    pub fn new() -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?;
        // SAFETY: `EpollFd` owns the descriptor (an `OwnedFd` inside `Epoll`), so it stays open
        // and names the same epoll instance until the `AsyncFd` and its inner value are dropped
        // together, and `as_raw_fd` always returns that same descriptor.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(EpollFd(epoll)) }.map_err(|e| e.into_parts().1)?;
        Ok(EpollSet { fd })
    }

    /// Watches `socket` for input (or its peer closing); its events carry `key`.
    pub fn add(&self, socket: impl AsFd, key: u64) -> io::Result<()> {
        let interest = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        self.fd
            .get_ref()
            .0
            .add(socket, EpollEvent::new(interest, key))
            .map_err(io::Error::from)
    }

    /// Stops watching `socket`.
    pub fn delete(&self, socket: impl AsFd) -> io::Result<()> {
        self.fd.get_ref().0.delete(socket).map_err(io::Error::from)
    }

    /// Waits until some watched sockets are ready and puts their keys in `keys` (cleared
    /// first). Cancel-safe: events are taken only in the poll that returns them.
    pub async fn wait(&self, keys: &mut Vec<u64>) -> io::Result<()> {
        let mut events = [EpollEvent::empty(); BATCH];
        loop {
            let mut guard = self.fd.readable().await?;
            let waited =
                guard.try_io(
                    |fd| match fd.get_ref().0.wait(&mut events, EpollTimeout::ZERO) {
                        Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                        Ok(n) => Ok(n),
                        Err(nix::errno::Errno::EINTR) => Err(io::ErrorKind::WouldBlock.into()),
                        Err(e) => Err(io::Error::from(e)),
                    },
                );
            match waited {
                Ok(Ok(n)) => {
                    keys.clear();
                    keys.extend(events[..n].iter().map(EpollEvent::data));
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn reports_the_key_of_a_socket_with_input() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let set = EpollSet::new().unwrap();
        set.add(&server, 42).unwrap();
        client.write_all(b"x").unwrap();
        let mut keys = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), set.wait(&mut keys))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(keys, vec![42]);
        set.delete(&server).unwrap();
    }
}
