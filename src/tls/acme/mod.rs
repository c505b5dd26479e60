//! ACME (RFC 8555): certificates obtained and renewed automatically from a CA such as Let's
//! Encrypt, for sites with `[site.tls] acme = true`.
//!
//! Three parts, each in its own file:
//! - [`store`]: what lives on disk under `DATA_DIR/acme` — the account's credentials, each
//!   certificate and key, and the pending http-01 challenge answers. Every write is a
//!   temporary file renamed into place, keys are mode 0600.
//! - [`manager`]: the order state machine (account → order → http-01 challenges → CSR →
//!   certificate) and the loop that renews each certificate when its renewal time comes
//!   ([`renew_at`]). It runs once per server: in the master (which then reloads the workers,
//!   as HUP does) or in the single process (which swaps the certificate in place).
//! - [`Slot`]: the certificate a site presents, swappable at run time. Until a certificate is
//!   stored, a site presents a self-signed placeholder for its names, so the HTTPS listener
//!   starts at once and the http-01 challenge can be answered on the plain one.
//!
//! Challenges are answered by every serving process from the files in `DATA_DIR/acme/
//! challenges` (`edge::pipeline`, before routing and before any HTTP→HTTPS redirect), so the
//! master, which runs the order, needs no channel to the workers. Only http-01 is used: it
//! needs nothing but the plain listener a site already has, and it cannot issue wildcard
//! names, which configuration refuses for ACME sites.

pub mod manager;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use store::Store;

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The path prefix of http-01 challenges (RFC 8555 §8.3).
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// `[acme]` and the sites that use it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The CA's directory URL.
    pub directory: String,
    /// `mailto:` contacts for the account.
    pub contact: Vec<String>,
    /// An extra CA the ACME server's own HTTPS certificate chains to (a test CA).
    pub ca_root: Option<PathBuf>,
    /// Renew this long before expiry; `None` = when a third of the lifetime is left.
    pub renew_before: Option<Duration>,
    /// One certificate per ACME site.
    pub certificates: Vec<Managed>,
    /// Where certificates and challenges are kept: `DATA_DIR/acme`, set by
    /// `Config::attach`.
    pub store: Option<Store>,
}

/// One site's managed certificate.
#[derive(Debug, Clone)]
pub struct Managed {
    /// The site's name, for logs.
    pub site: String,
    /// The names on the certificate, the first naming its folder in the store.
    pub names: Vec<String>,
    /// What the site presents now.
    pub slot: Arc<Slot>,
}

impl Settings {
    /// Fills every site's slot from `store`: the stored certificate when it is valid and
    /// covers the site's names, else a self-signed placeholder.
    pub fn install(&self, store: &Store) {
        for managed in &self.certificates {
            managed.install(store);
        }
    }

    /// Starts the ACME loop ([`manager::run`]) on the current runtime; `on_issued` is called
    /// with each certificate stored. `None` before `Config::attach`.
    pub fn spawn(&self, on_issued: manager::OnIssued) -> Option<tokio::task::JoinHandle<()>> {
        let store = self.store.clone()?;
        Some(tokio::spawn(manager::run(self.clone(), store, on_issued)))
    }
}

impl Managed {
    /// Fills the slot from `store` (or with a placeholder); true when a stored certificate
    /// was installed.
    pub fn install(&self, store: &Store) -> bool {
        match store.load_certificate(&self.names) {
            Some(stored) => {
                self.slot.set(stored.key);
                true
            }
            None => {
                if self.slot.is_empty() {
                    match placeholder(&self.names) {
                        Ok(key) => self.slot.set(key),
                        Err(e) => {
                            tracing::error!(site = %self.site, error = %e, "cannot make a placeholder certificate");
                        }
                    }
                }
                false
            }
        }
    }
}

/// The certificate a site presents, replaced when a new one is issued. Read on every
/// handshake: a read lock on an uncontended `RwLock` is a few nanoseconds next to the
/// handshake's signature.
#[derive(Debug, Default)]
pub struct Slot(RwLock<Option<Arc<CertifiedKey>>>);

impl Slot {
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    pub fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn is_empty(&self) -> bool {
        self.get().is_none()
    }
}

impl ResolvesServerCert for Slot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// When a certificate valid from `not_before` to `not_after` should be renewed:
/// `renew_before` ahead of expiry, but never earlier than half-way through its lifetime (a
/// `renew_before` longer than the CA's lifetimes would otherwise renew without end); without
/// `renew_before`, when a third of the lifetime is left (60 of Let's Encrypt's 90 days).
pub fn renew_at(
    not_before: SystemTime,
    not_after: SystemTime,
    renew_before: Option<Duration>,
) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let window = match renew_before {
        Some(before) => before.min(lifetime / 2),
        None => lifetime / 3,
    };
    not_after.checked_sub(window).unwrap_or(not_before)
}

/// A self-signed certificate for `names`, presented until the CA's arrives.
fn placeholder(names: &[String]) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "portico placeholder (waiting for the ACME certificate)",
    );
    let cert = params.self_signed(&key)?;
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn renewal_comes_a_third_before_expiry_by_default() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let end = start + 90 * DAY;
        assert_eq!(renew_at(start, end, None), start + 60 * DAY);
    }

    #[test]
    fn renew_before_is_honoured_but_never_before_half_the_lifetime() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let end = start + 90 * DAY;
        assert_eq!(renew_at(start, end, Some(10 * DAY)), start + 80 * DAY);
        assert_eq!(renew_at(start, end, Some(365 * DAY)), start + 45 * DAY);
        // Dates the wrong way round make a certificate due at its (past) expiry.
        assert_eq!(renew_at(end, start, None), start);
    }

    #[test]
    fn a_slot_starts_empty_and_takes_a_placeholder_for_the_names() {
        let slot = Slot::default();
        assert!(slot.is_empty());
        slot.set(placeholder(&["a.test".into(), "www.a.test".into()]).unwrap());
        let key = slot.get().unwrap();
        assert_eq!(
            crate::tls::certs::names(key.end_entity_cert().unwrap()),
            ["a.test", "www.a.test"]
        );
    }
}
