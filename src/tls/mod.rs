//! HTTPS: certificates from PEM files checked at load ([`certs`]) or obtained by ACME
//! ([`acme`]), each site's configuration chosen by SNI ([`sni`]), the local development CA
//! ([`local_ca`]), and the rustls server
//! configuration of a site: TLS 1.2 and 1.3 only (rustls supports nothing older), its default
//! modern cipher suites in the server's order (AEAD only, forward secrecy, X25519MLKEM768
//! first), ALPN `h2` then `http/1.1`, and session resumption by tickets whose key rotates
//! (every 6 hours) plus a session cache.
//!
//! Called by `config` (loading and checking, so `portico check` reports a bad pair with its
//! file) and by `edge` (the handshake on an HTTPS listener).

pub mod acme;
pub mod certs;
pub mod local_ca;
pub mod sni;

use std::sync::Arc;

use rustls::ServerConfig;

pub use certs::{CertError, load_pair};
pub use sni::SniMap;

/// One HTTPS listener: each site's TLS configuration, chosen by the name in the client's
/// hello (SNI) before the handshake goes on, so that sites may differ in more than their
/// certificate (client certificates).
#[derive(Debug)]
pub struct ListenerTls {
    pub sites: SniMap<Arc<ServerConfig>>,
}

impl ListenerTls {
    /// The configuration for a client that asked for `name`.
    pub fn config_for(&self, name: Option<&str>) -> Option<Arc<ServerConfig>> {
        self.sites.pick(name)
    }
}

/// The server configuration of one site: its certificate (a fixed one, or an ACME slot),
/// and when `client_roots` is given, a required client certificate issued by one of them
/// (mTLS).
pub fn site_config(
    cert: Arc<dyn rustls::server::ResolvesServerCert>,
    client_roots: Option<Arc<rustls::RootCertStore>>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    finish(builder.with_cert_resolver(cert))
}

/// Writes a key, certificate or ACME file durably (`fs::write_atomic`).
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    crate::fs::write_atomic(path, bytes, mode, crate::fs::Sync::Durable)
}

/// ALPN, tickets and the session cache, common to every configuration.
fn finish(mut config: ServerConfig) -> Result<Arc<ServerConfig>, rustls::Error> {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The server's cipher suite order (AES-GCM and ChaCha20 AEADs, strongest first) wins over
    // the client's: testssl rates a client-chosen order as a finding.
    config.ignore_client_order = true;
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    Ok(Arc::new(config))
}
