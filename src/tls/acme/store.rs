//! ACME state on disk, under `DATA_DIR/acme`:
//!
//! ```text
//! accounts/<directory>.json   the account's credentials for one CA (mode 0600)
//! certs/<first name>/cert.pem the chain, leaf first
//! certs/<first name>/key.pem  its private key (mode 0600)
//! challenges/<token>          the key authorization answering an http-01 challenge
//! ```
//!
//! Every file is written to a temporary name in its folder and renamed into place, so a
//! reader (a worker loading the certificate, the CA fetching a challenge) sees the old file
//! or the new one, never half of one. The key is renamed before the chain: a chain is never
//! on disk without its key.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::CertifiedKey;

use crate::tls::write_atomic;

/// The ACME folder of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A stored certificate that can be served.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: Arc<CertifiedKey>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store {
            root: data_dir.join("acme"),
        }
    }

    /// Where challenge answers are written and read.
    pub fn challenges(&self) -> PathBuf {
        self.root.join("challenges")
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        self.root
            .join("accounts")
            .join(format!("{}.json", file_name(directory)))
    }

    fn cert_dir(&self, name: &str) -> PathBuf {
        self.root.join("certs").join(file_name(name))
    }

    /// The certificate and key files of the certificate whose first name is `name`.
    pub fn cert_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.cert_dir(name);
        (dir.join("cert.pem"), dir.join("key.pem"))
    }

    /// The account's credentials (JSON) for the CA at `directory`, if stored.
    pub fn load_account(&self, directory: &str) -> io::Result<Option<String>> {
        match fs::read_to_string(self.account_path(directory)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save_account(&self, directory: &str, credentials: &str) -> io::Result<()> {
        write_atomic(&self.account_path(directory), credentials.as_bytes(), 0o600)
    }

    /// The stored certificate for `names` when it loads, is within its validity period and
    /// names every one of `names`.
    pub fn load_certificate(&self, names: &[String]) -> Option<Stored> {
        let first = names.first()?;
        let (cert, key) = self.cert_paths(first);
        if !cert.exists() {
            return None;
        }
        let key = match super::super::load_pair(&cert, &key) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "the stored ACME certificate cannot be used");
                return None;
            }
        };
        let leaf = key.end_entity_cert().ok()?;
        let covered = super::super::certs::names(leaf);
        if !names.iter().all(|n| covered.iter().any(|c| c == n)) {
            tracing::info!(cert = %cert.display(), "the stored ACME certificate lacks a name the site now has");
            return None;
        }
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).ok()?;
        let validity = parsed.validity();
        let time = |t: &x509_parser::time::ASN1Time| {
            SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
        };
        Some(Stored {
            not_before: time(&validity.not_before),
            not_after: time(&validity.not_after),
            key,
        })
    }

    /// Stores a certificate chain (PEM, leaf first) and its key under the first name.
    pub fn save_certificate(&self, name: &str, chain_pem: &str, key_pem: &str) -> io::Result<()> {
        let (cert, key) = self.cert_paths(name);
        write_atomic(&key, key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert, chain_pem.as_bytes(), 0o644)
    }

    /// Publishes the answer to the http-01 challenge `token`.
    pub fn put_challenge(&self, token: &str, key_authorization: &str) -> io::Result<()> {
        if !is_token(token) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the CA sent a challenge token that is not base64url",
            ));
        }
        write_atomic(
            &self.challenges().join(token),
            key_authorization.as_bytes(),
            0o644,
        )
    }

    pub fn remove_challenge(&self, token: &str) {
        if is_token(token) {
            let _ = fs::remove_file(self.challenges().join(token));
        }
    }
}

/// The answer to the http-01 challenge at `path` (a request path) from the challenge folder
/// `dir`, if one is published. Tokens are base64url (RFC 8555 §8.3), so nothing else can name
/// a file.
pub fn challenge_answer(dir: &Path, path: &str) -> Option<Vec<u8>> {
    let token = path.strip_prefix(super::CHALLENGE_PREFIX)?;
    if !is_token(token) {
        return None;
    }
    fs::read(dir.join(token)).ok()
}

fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `text` as one safe file name: letters, digits, `.` and `-` kept, anything else `_`.
fn file_name(text: &str) -> String {
    let text = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => "_".to_string(),
        trimmed => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pair(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_is_stored_with_a_private_key_and_loaded_for_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let names = ["a.test".to_string(), "www.a.test".to_string()];
        assert!(store.load_certificate(&names).is_none());
        let (cert, key) = pair(&["a.test", "www.a.test"]);
        store.save_certificate("a.test", &cert, &key).unwrap();
        let stored = store.load_certificate(&names).unwrap();
        assert!(stored.not_after > stored.not_before);
        let (_, key_path) = store.cert_paths("a.test");
        let mode = fs::metadata(key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A site that gained a name needs a new certificate.
        let more = [names[0].clone(), names[1].clone(), "b.a.test".to_string()];
        assert!(store.load_certificate(&more).is_none());
        // No temporary file is left behind.
        let left: Vec<_> = fs::read_dir(store.cert_dir("a.test"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn challenges_are_published_and_withdrawn_and_only_tokens_name_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.put_challenge("tok-EN_1", "tok-EN_1.thumb").unwrap();
        let answer = |path: &str| challenge_answer(&store.challenges(), path);
        assert_eq!(
            answer("/.well-known/acme-challenge/tok-EN_1").as_deref(),
            Some(&b"tok-EN_1.thumb"[..])
        );
        assert_eq!(answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(answer("/.well-known/acme-challenge/../../x"), None);
        assert_eq!(answer("/.well-known/acme-challenge/"), None);
        assert_eq!(answer("/tok-EN_1"), None);
        assert!(store.put_challenge("../x", "y").is_err());
        store.remove_challenge("tok-EN_1");
        assert_eq!(answer("/.well-known/acme-challenge/tok-EN_1"), None);
    }

    #[test]
    fn accounts_are_kept_per_directory_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = "https://acme.example/dir";
        assert_eq!(store.load_account(a).unwrap(), None);
        store.save_account(a, "{\"id\":1}").unwrap();
        assert_eq!(
            store.load_account(a).unwrap().as_deref(),
            Some("{\"id\":1}")
        );
        assert_eq!(
            store.load_account("https://other.example/dir").unwrap(),
            None
        );
        let mode = fs::metadata(store.account_path(a))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            file_name("https://127.0.0.1:14000/dir"),
            "127.0.0.1_14000_dir"
        );
        assert_eq!(file_name(".."), "_");
    }
}
