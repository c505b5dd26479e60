//! A certificate chain and its private key from PEM files, checked before anything serves:
//! each file readable and holding what it should, the key matching the certificate, the
//! certificate within its validity period. Every error names the file it is about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("the key in {} cannot be used: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} cannot be parsed: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("the certificate in {} expired on {not_after}", path.display())]
    Expired { path: PathBuf, not_after: String },
    #[error("the certificate in {} is not valid before {not_before}", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
}

/// Loads `cert` (the chain, leaf first) and `key`, and checks them.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate {
            path: cert.to_path_buf(),
        });
    };
    check_validity(cert, leaf)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| CertError::NoKey {
        path: key.to_path_buf(),
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&private).map_err(|e| {
        CertError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let pair = CertifiedKey::new(chain, signing);
    match pair.keys_match() {
        Ok(()) => Ok(Arc::new(pair)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(pair))
        }
        Err(_) => Err(CertError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The leaf's `notBefore`/`notAfter` against the clock.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<(), CertError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| CertError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(CertError::Expired {
            path: path.to_path_buf(),
            not_after: validity.not_after.to_string(),
        });
    }
    if now < validity.not_before {
        return Err(CertError::NotYetValid {
            path: path.to_path_buf(),
            not_before: validity.not_before.to_string(),
        });
    }
    Ok(())
}

/// The DNS names a certificate is for (subject alternative names), for tests and diagnostics.
pub fn names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    #[test]
    fn a_good_pair_loads_and_names_its_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "a", &["a.test", "www.a.test"], false);
        let pair = load_pair(&cert, &key).unwrap();
        assert_eq!(
            names(pair.end_entity_cert().unwrap()),
            ["a.test", "www.a.test"]
        );
    }

    #[test]
    fn every_bad_pair_is_named_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = write_pair(dir.path(), "a", &["a.test"], false);
        let (_, key_b) = write_pair(dir.path(), "b", &["b.test"], false);
        let (old, old_key) = write_pair(dir.path(), "old", &["old.test"], true);
        let missing = dir.path().join("missing.pem");
        let text = |r: Result<Arc<CertifiedKey>, CertError>| r.err().unwrap().to_string();

        let e = text(load_pair(&cert_a, &key_b));
        assert!(
            e.contains("does not match") && e.contains("b-key.pem"),
            "{e}"
        );
        let e = text(load_pair(&missing, &key_a));
        assert!(
            e.contains("cannot read") && e.contains("missing.pem"),
            "{e}"
        );
        let e = text(load_pair(&key_a, &key_a));
        assert!(
            e.contains("no PEM certificate") && e.contains("a-key.pem"),
            "{e}"
        );
        let e = text(load_pair(&cert_a, &cert_a));
        assert!(
            e.contains("no PEM private key") && e.contains("a.pem"),
            "{e}"
        );
        let e = text(load_pair(&old, &old_key));
        assert!(e.contains("expired") && e.contains("old.pem"), "{e}");
    }
}
