//! Sockets and the TCP connection life cycle shared by every listener: binding listening
//! sockets ([`listener`]), a write timeout for slow readers ([`timeout`]) and the lingering
//! close ([`linger`]), zero-copy file sending ([`sendfile`]) and the kernel's view of
//! connections ([`tcp_info`]); and whether an address is in a list of networks
//! ([`in_networks`]), for allow-lists.

pub mod epoll;
pub mod linger;
pub mod listener;
pub mod sendfile;
pub mod tcp_info;
pub mod timeout;

/// Whether `ip` is in one of `nets`; an IPv4-mapped IPv6 address (a dual-stack listener's
/// view of an IPv4 client) counts as its IPv4 address.
pub fn in_networks(nets: &[ipnet::IpNet], ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    #[test]
    fn mapped_addresses_count_as_ipv4() {
        let nets = ["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(super::in_networks(&nets, "127.0.0.2".parse().unwrap()));
        assert!(super::in_networks(&nets, "::1".parse().unwrap()));
        assert!(super::in_networks(
            &nets,
            "::ffff:127.0.0.1".parse().unwrap()
        ));
        assert!(!super::in_networks(&nets, "192.0.2.1".parse().unwrap()));
    }
}
