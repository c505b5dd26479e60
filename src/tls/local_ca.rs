//! A local certificate authority for development, as mkcert does: created once in the data
//! directory (`DATA_DIR/ca/ca.pem`, and `ca-key.pem` with mode 0600), it signs leaf
//! certificates for the names given (`portico cert`, the demo's HTTPS listener, `--tls-local`).
//! Clients trust it once (see [`trust_hint`]) and then every leaf it signs.
//!
//! Keys are ECDSA P-256. The CA is valid for 10 years, leaves for 825 days from an hour before
//! they are made (the longest lifetime browsers accept for a leaf). A leaf may name where the
//! CA's certificate revocation list is published (the demo's leaf does: its plain listener
//! serves the list at [`CRL_PATH`]); the list is empty — revoking a development CA's leaves is
//! deleting the CA — but it lets a client (or testssl) check revocation instead of finding no
//! way to. Files are written whole (a temporary name, then rename), so a reader never sees
//! half a key.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The CA's files.
pub struct LocalCa {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and key written to disk.
pub struct Leaf {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl LocalCa {
    /// The CA in `data_dir/ca`, created when absent.
    pub fn open_or_create(data_dir: &Path) -> io::Result<LocalCa> {
        let dir = data_dir.join("ca");
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        if !cert_path.exists() || !key_path.exists() {
            create(&dir, &cert_path, &key_path)?;
        }
        let key_pem = std::fs::read_to_string(&key_path)?;
        let cert_pem = std::fs::read_to_string(&cert_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(other)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(other)?;
        Ok(LocalCa {
            cert_path,
            key_path,
            issuer,
        })
    }

    /// Signs a leaf for `names` (DNS names or IP addresses) and writes it to `dir/FILE.pem`
    /// and `dir/FILE-key.pem` (mode 0600), `FILE` being the first name. `crl_url`, when
    /// given, is written in the leaf as its CRL distribution point.
    pub fn issue(&self, names: &[String], dir: &Path, crl_url: Option<&str>) -> io::Result<Leaf> {
        let first = names
            .first()
            .ok_or_else(|| io::Error::other("a certificate needs at least one name"))?;
        let mut params = CertificateParams::default();
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name.clone().try_into().map(SanType::DnsName).map_err(other),
            })
            .collect::<io::Result<_>>()?;
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
        params.distinguished_name.push(
            DnType::OrganizationName,
            "portico local development certificate",
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if let Some(url) = crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.to_string()],
            }];
        }
        let now = time_now();
        params.not_before = now - time::Duration::hours(1);
        // 825 days in all, the not-before margin included.
        params.not_after = params.not_before + time::Duration::days(825);
        let key = KeyPair::generate().map_err(other)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(other)?;
        std::fs::create_dir_all(dir)?;
        let file = first.replace(['*', ':', '/'], "_");
        let leaf = Leaf {
            cert_path: dir.join(format!("{file}.pem")),
            key_path: dir.join(format!("{file}-key.pem")),
        };
        crate::tls::write_atomic(&leaf.cert_path, cert.pem().as_bytes(), 0o644)?;
        crate::tls::write_atomic(&leaf.key_path, key.serialize_pem().as_bytes(), 0o600)?;
        Ok(leaf)
    }

    /// Writes the CA's revocation list to `dir`/[`CRL_FILE`] (DER, as served at
    /// [`CRL_PATH`]): no certificate revoked, valid for [`CRL_DAYS`] days, numbered by the
    /// second it was made. Returns the file's path.
    pub fn publish_crl(&self, dir: &Path) -> io::Result<std::path::PathBuf> {
        let path = dir.join(CRL_FILE);
        let now = time_now();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(CRL_DAYS),
            crl_number: rcgen::SerialNumber::from(now.unix_timestamp().unsigned_abs()),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).map_err(other)?;
        crate::tls::write_atomic(&path, crl.der(), 0o644)?;
        Ok(path)
    }
}

/// The revocation list's file name, in the folder it is published from.
pub const CRL_FILE: &str = "local-ca.crl";

/// The URL path prefix under which a portico listener serves that folder.
pub const CRL_PREFIX: &str = "/.well-known/portico/";

/// Where a portico listener that publishes the local CA's revocation list serves it:
/// [`CRL_PREFIX`] then [`CRL_FILE`].
pub const CRL_PATH: &str = "/.well-known/portico/local-ca.crl";

/// How long a revocation list is valid; each start of the demo writes a new one.
const CRL_DAYS: i64 = 30;

/// How to make clients trust the CA.
pub fn trust_hint(ca: &LocalCa) -> String {
    let path = ca.cert_path.display();
    format!(
        "To trust the local CA:\n  \
         system (Debian/Ubuntu): sudo cp {path} /usr/local/share/ca-certificates/portico-local-ca.crt && sudo update-ca-certificates\n  \
         curl: curl --cacert {path} https://localhost:8443/\n  \
         Firefox/Chromium: import {path} as an authority in the certificate settings\n"
    )
}

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let owner = std::env::var("USER").unwrap_or_else(|_| "portico".to_string());
    params
        .distinguished_name
        .push(DnType::CommonName, format!("portico local CA ({owner})"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "portico local development CA");
    let now = time_now();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate().map_err(other)?;
    let cert = params.self_signed(&key).map_err(other)?;
    crate::tls::write_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    crate::tls::write_atomic(cert_path, cert.pem().as_bytes(), 0o644)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_ca_is_made_once_with_a_private_key_and_signs_leaves_that_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(&ca.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&ca.cert_path).unwrap();
        let again = LocalCa::open_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(&again.cert_path).unwrap(), first, "made once");
        let leaf = again
            .issue(
                &["localhost".to_string(), "127.0.0.1".to_string()],
                &dir.path().join("certs"),
                None,
            )
            .unwrap();
        let pair = super::super::load_pair(&leaf.cert_path, &leaf.key_path).unwrap();
        assert_eq!(
            super::super::certs::names(pair.end_entity_cert().unwrap()),
            ["localhost"]
        );
        let mode = std::fs::metadata(&leaf.key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_leaf_names_the_revocation_list_the_ca_signs() {
        use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_or_create(dir.path()).unwrap();
        let url = "http://127.0.0.1:8080/.well-known/portico/local-ca.crl";
        let leaf = ca
            .issue(&["localhost".to_string()], dir.path(), Some(url))
            .unwrap();
        let pem = std::fs::read(&leaf.cert_path).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let uris: Vec<String> = cert
            .extensions()
            .iter()
            .filter_map(|e| match e.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => Some(points),
                _ => None,
            })
            .flat_map(|points| points.points.iter())
            .filter_map(|p| match &p.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(names),
                _ => None,
            })
            .flatten()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(uris, [url]);

        assert_eq!(CRL_PATH, format!("{CRL_PREFIX}{CRL_FILE}"));
        let path = ca.publish_crl(&dir.path().join("crl")).unwrap();
        assert!(path.ends_with("crl/local-ca.crl"));
        let der = std::fs::read(&path).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        let ca_pem = std::fs::read(&ca.cert_path).unwrap();
        let ca_der = rustls_pki_types::CertificateDer::from_pem_slice(&ca_pem).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(crl.issuer(), ca_cert.subject());
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
        let next = crl.next_update().expect("a next update");
        assert!(next > x509_parser::time::ASN1Time::now());
    }
}
