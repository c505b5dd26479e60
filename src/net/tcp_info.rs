//! What the kernel knows about TCP connections: one connection's round-trip time and
//! retransmissions (`getsockopt(TCP_INFO)`), and how many of the server's connections are in
//! each TCP state (`/proc/net/tcp` and `tcp6`, as `ss` reads them).

use std::collections::BTreeMap;
use std::os::fd::RawFd;

/// One connection's kernel view, sampled when it is logged or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSample {
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// Segments retransmitted over the connection's life.
    pub retransmits: u32,
}

/// The kernel's TCP_INFO for the socket `fd`; `None` when it is not a TCP socket (or closed).
///
/// `fd` is a number, not a borrow: callers pass the descriptor of a connection they serve, and
/// at worst (the connection closed meanwhile and the number was reused) read another socket's
/// figures; nothing else can happen.
#[allow(unsafe_code)]
pub fn sample(fd: RawFd) -> Option<TcpSample> {
    if fd < 0 {
        return None;
    }
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes for the kernel to fill; `len` is
    // updated to what it wrote. The descriptor is only read by the kernel.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised and then (partly) written by the kernel; every field of
    // `tcp_info` is an integer, valid for any bit pattern.
    let info = unsafe { info.assume_init() };
    Some(TcpSample {
        rtt_us: info.tcpi_rtt,
        retransmits: info.tcpi_total_retrans,
    })
}

/// TCP states as `/proc/net/tcp` numbers them (include/net/tcp_states.h).
pub fn state_name(code: u8) -> &'static str {
    match code {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// How many sockets with a local port among `ports` are in each state (listening sockets
/// included), from `/proc/net/tcp` and `/proc/net/tcp6`.
pub fn states_by_port(ports: &[u16]) -> BTreeMap<&'static str, usize> {
    let mut states = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for (port, state) in parse_table(&text) {
                if ports.contains(&port) {
                    *states.entry(state_name(state)).or_insert(0) += 1;
                }
            }
        }
    }
    states
}

/// (local port, state) of each line of a `/proc/net/tcp` table.
fn parse_table(text: &str) -> impl Iterator<Item = (u16, u8)> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        let port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
        let state = u8::from_str_radix(state, 16).ok()?;
        Some((port, state))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_socket_has_tcp_info_and_a_file_does_not() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let sample = sample(client.as_raw_fd()).expect("TCP_INFO of a TCP socket");
        assert_eq!(sample.retransmits, 0);
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(super::sample(file.as_raw_fd()), None);
    }

    #[test]
    fn proc_net_tcp_lines_give_port_and_state() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:D2F0 08 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        let rows: Vec<(u16, u8)> = parse_table(text).collect();
        assert_eq!(rows, vec![(8080, 0x0A), (8080, 0x08)]);
        assert_eq!(state_name(0x08), "CLOSE_WAIT");
    }

    #[test]
    fn states_by_port_sees_a_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let states = states_by_port(&[port]);
        assert_eq!(states.get("LISTEN"), Some(&1), "{states:?}");
    }
}
