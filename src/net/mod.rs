//! Sockets and the TCP connection life cycle shared by every listener: binding listening
//! sockets ([`listener`]), a write timeout for slow readers ([`timeout`]) and the lingering
//! close ([`linger`]), zero-copy file sending ([`sendfile`]) and the kernel's view of
//! connections ([`tcp_info`]).

pub mod epoll;
pub mod linger;
pub mod listener;
pub mod sendfile;
pub mod tcp_info;
pub mod timeout;
