//! HTTPS: certificates from PEM files checked at load ([`certs`]), the certificate for each
//! connection chosen by SNI ([`sni`]), and the rustls server configuration of an HTTPS
//! listener: TLS 1.2 and 1.3 only (rustls supports nothing older), its default modern cipher
//! suites (AEAD only, forward secrecy, X25519MLKEM768 first), ALPN `h2` then `http/1.1`, and
//! session resumption by tickets whose key rotates (every 6 hours) plus a session cache.
//!
//! Called by `config` (loading and checking, so `portico check` reports a bad pair with its
//! file) and by `edge` (the handshake on an HTTPS listener).

pub mod certs;
pub mod local_ca;
pub mod sni;

use std::sync::Arc;

use rustls::ServerConfig;

pub use certs::{CertError, load_pair};
pub use sni::SniResolver;

/// The server configuration of one HTTPS listener.
pub fn server_config(resolver: SniResolver) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    Ok(Arc::new(config))
}
