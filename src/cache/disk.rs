//! The disk tier: stored responses that survive a restart, shared by every worker process
//! through the file system, checked on every read ([`super::record`]).
//!
//! ```text
//! ROOT/ab/<sha256 of the primary key>/vary          the Vary names (absent: no Vary)
//! ROOT/ab/<sha256 of the primary key>/<sha256 of the variant>.obj
//! ```
//!
//! A variant's file name is computable from the request alone (the `Vary` fields' normalized
//! values, `Accept-Encoding` by its group: `key::encoding_group`), so a lookup is one or two
//! reads and needs no index: a worker finds what another worker stored. Files are written to
//! a temporary name and renamed; a damaged file or one holding another key is deleted and
//! counts as a miss. The byte bound is kept by [`DiskStore::trim`], which removes the oldest
//! files first (run by one process, periodically: the master in a multi-process server), so
//! workers never coordinate on the hot path. The memory tier in front (TinyUFO) keeps the hot
//! set; the disk tier holds the long tail in order of arrival.
//!
//! All calls block on the file system: call them from `spawn_blocking` ([`keep_bound`] does so
//! itself).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest::{SHA256, digest};
use http::HeaderMap;
use http::header::{self, HeaderName};

use super::key::{encoding_group, normalized};
use super::memory::Object;
use super::record;

/// How often [`keep_bound`] trims: the folder may outgrow its bound by what the workers store
/// in this time.
pub const TRIM_PERIOD: Duration = Duration::from_secs(10);

/// Temporary files older than this are a crashed writer's and are removed by `trim`.
const STALE_TEMP: Duration = Duration::from_secs(60);

/// The disk tier under one folder.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    /// Damaged files found (and removed) by this process.
    pub corrupt: AtomicU64,
}

/// What a trim did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub files: usize,
    pub bytes: u64,
    /// Bytes left after the trim.
    pub kept: u64,
}

impl DiskStore {
    /// The store in `root`, created when absent.
    pub fn open(root: &Path) -> io::Result<DiskStore> {
        fs::create_dir_all(root)?;
        Ok(DiskStore {
            root: root.to_path_buf(),
            corrupt: AtomicU64::new(0),
        })
    }

    fn dir(&self, key: &str) -> PathBuf {
        let hash = hex(key.as_bytes());
        self.root.join(&hash[..2]).join(hash)
    }

    /// The stored variant of `key` for a request with headers `req`.
    pub fn lookup(&self, key: &str, req: &HeaderMap) -> Option<Object> {
        let dir = self.dir(key);
        let names = match fs::read_to_string(dir.join("vary")) {
            Ok(text) => text
                .lines()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        let fields: Vec<(HeaderName, Option<String>)> = names
            .into_iter()
            .map(|name| {
                let value = if name == header::ACCEPT_ENCODING {
                    Some(encoding_group(req).to_string())
                } else {
                    normalized(req, &name)
                };
                (name, value)
            })
            .collect();
        let path = dir.join(variant_file(&fields));
        let bytes = fs::read(&path).ok()?;
        match record::decode(&bytes, key) {
            Ok(object) => object.variant.matches(req).then_some(object),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "damaged cache file removed");
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `object` (replacing the same variant).
    pub fn insert(&self, object: &Object) -> io::Result<()> {
        let dir = self.dir(&object.key);
        let names: Vec<&str> = object
            .variant
            .fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        if names.is_empty() {
            let _ = fs::remove_file(dir.join("vary"));
        } else {
            let manifest = names.join("\n");
            if fs::read_to_string(dir.join("vary")).ok().as_deref() != Some(manifest.as_str()) {
                write_whole(&dir.join("vary"), manifest.as_bytes())?;
            }
        }
        let path = dir.join(variant_file(&object.variant.fields));
        write_whole(&path, &record::encode(object))
    }

    /// Removes every variant of `key`.
    pub fn remove(&self, key: &str) -> bool {
        fs::remove_dir_all(self.dir(key)).is_ok()
    }

    /// Removes the objects `select` picks (it sees each one's key and tags); returns how many.
    /// Reads every file: for purges by prefix or tag, run in the background.
    pub fn purge(&self, mut select: impl FnMut(&str, &[String]) -> bool) -> usize {
        let mut removed = 0;
        for path in self.files() {
            if path.extension().is_none_or(|e| e != "obj") {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else { continue };
            let key = record::peek_key(&bytes);
            let object = key.and_then(|k| record::decode(&bytes, &k).ok());
            match object {
                Some(o) if select(&o.key, &o.tags) => {
                    if fs::remove_file(&path).is_ok() {
                        removed += 1;
                        if let Some(dir) = path.parent() {
                            remove_if_no_variant(dir);
                        }
                    }
                }
                Some(_) => {}
                None => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    let _ = fs::remove_file(&path);
                }
            }
        }
        removed
    }

    /// Removes the oldest objects until at most `max_bytes` are left, and temporary files a
    /// crashed writer left behind.
    pub fn trim(&self, max_bytes: u64) -> Trimmed {
        let now = SystemTime::now();
        let mut objects: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for path in self.files() {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let modified = meta.modified().unwrap_or(now);
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            if name.ends_with(".obj") {
                objects.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = objects.iter().map(|(_, size, _)| size).sum();
        let mut trimmed = Trimmed::default();
        if total > max_bytes {
            objects.sort_by_key(|(modified, _, _)| *modified);
            for (_, size, path) in objects {
                if total <= max_bytes {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    total -= size;
                    trimmed.files += 1;
                    trimmed.bytes += size;
                    if let Some(dir) = path.parent() {
                        remove_if_no_variant(dir);
                    }
                }
            }
        }
        trimmed.kept = total;
        trimmed
    }

    /// Every file under the root, two folder levels down.
    fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(fans) = fs::read_dir(&self.root) else {
            return out;
        };
        for fan in fans.flatten() {
            let Ok(keys) = fs::read_dir(fan.path()) else {
                continue;
            };
            for key in keys.flatten() {
                let Ok(files) = fs::read_dir(key.path()) else {
                    continue;
                };
                out.extend(files.flatten().map(|f| f.path()));
            }
        }
        out
    }
}

/// Keeps the folder `root` under `max_bytes`: a trim at once, then one every [`TRIM_PERIOD`],
/// each on the blocking pool; runs until aborted. One process per server runs it (the master,
/// or the single process), so workers never coordinate.
pub async fn keep_bound(root: PathBuf, max_bytes: u64) {
    let mut tick = tokio::time::interval(TRIM_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A folder that cannot be trimmed is reported once, not every period.
    let mut reported = false;
    loop {
        tick.tick().await;
        let folder = root.clone();
        let trimmed = tokio::task::spawn_blocking(move || {
            DiskStore::open(&folder).map(|s| s.trim(max_bytes))
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        match trimmed {
            Ok(t) => {
                reported = false;
                if t.files > 0 {
                    tracing::debug!(
                        files = t.files,
                        bytes = t.bytes,
                        kept = t.kept,
                        max_bytes,
                        "disk cache trimmed"
                    );
                }
            }
            Err(e) if !reported => {
                reported = true;
                tracing::warn!(folder = %root.display(), error = %e, "cannot trim the disk cache");
            }
            Err(_) => {}
        }
    }
}

/// Writes a file readers (in any worker) see whole or not at all. Not synced: a file a power
/// loss tore fails its checksum and is a miss, which is cheaper than a sync per response.
fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::fs::write_atomic(path, bytes, 0o644, crate::fs::Sync::Unsynced)
}

/// Removes a key's folder (and its `vary` manifest) once no variant file is left in it.
fn remove_if_no_variant(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let variants_left = entries
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "obj"));
    if !variants_left {
        let _ = fs::remove_file(dir.join("vary"));
        let _ = fs::remove_dir(dir);
    }
}

/// The file of the variant selected by `fields` (names and normalized values).
fn variant_file(fields: &[(HeaderName, Option<String>)]) -> String {
    let mut desc = String::new();
    for (name, value) in fields {
        desc.push_str(name.as_str());
        match value {
            Some(value) => {
                desc.push('=');
                desc.push_str(value);
            }
            None => desc.push('\u{0}'),
        }
        desc.push('\n');
    }
    format!("{}.obj", hex(desc.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::Variant;
    use crate::cache::rules::Received;
    use crate::cache::test_headers as headers;
    use bytes::Bytes;
    use http::StatusCode;

    fn object(key: &str, body: &str, req: &HeaderMap, res: &HeaderMap, tags: &[&str]) -> Object {
        Object {
            key: key.to_string(),
            variant: Variant::of(req, res),
            status: StatusCode::OK,
            headers: res.clone(),
            body: Bytes::from(body.to_string()),
            received: Received {
                request_time: SystemTime::UNIX_EPOCH,
                response_time: SystemTime::UNIX_EPOCH,
            },
            tags: tags.iter().map(|t| t.to_string()).collect(),
            seq: 0,
        }
    }

    #[test]
    fn objects_survive_a_new_store_on_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let none = HeaderMap::new();
        {
            let store = DiskStore::open(dir.path()).unwrap();
            store
                .insert(&object("http://a/1", "one", &none, &none, &[]))
                .unwrap();
        }
        let store = DiskStore::open(dir.path()).unwrap();
        let found = store.lookup("http://a/1", &none).unwrap();
        assert_eq!(&found.body[..], b"one");
        assert!(store.lookup("http://a/2", &none).is_none());
        assert!(store.remove("http://a/1"));
        assert!(store.lookup("http://a/1", &none).is_none());
    }

    #[test]
    fn variants_are_found_from_the_request_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let res = headers(&[("vary", "accept-encoding, accept-language")]);
        let gz = headers(&[
            ("vary", "accept-encoding, accept-language"),
            ("content-encoding", "gzip"),
        ]);
        let req_gz = headers(&[("accept-encoding", "gzip"), ("accept-language", "en")]);
        let req_plain = headers(&[("accept-language", "en")]);
        store
            .insert(&object("http://a/", "zipped", &req_gz, &gz, &[]))
            .unwrap();
        store
            .insert(&object("http://a/", "plain", &req_plain, &res, &[]))
            .unwrap();
        let ask = |pairs: &[(&str, &str)]| {
            store
                .lookup("http://a/", &headers(pairs))
                .map(|o| String::from_utf8(o.body.to_vec()).unwrap())
        };
        assert_eq!(
            ask(&[
                ("accept-encoding", "deflate, gzip"),
                ("accept-language", "en")
            ])
            .as_deref(),
            Some("zipped")
        );
        assert_eq!(ask(&[("accept-language", "en")]).as_deref(), Some("plain"));
        assert_eq!(ask(&[("accept-language", "fr")]), None);
        assert_eq!(
            ask(&[("accept-encoding", "br"), ("accept-language", "en")]),
            None
        );
    }

    #[test]
    fn a_damaged_file_is_never_served_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let none = HeaderMap::new();
        store
            .insert(&object("http://a/x", "precious", &none, &none, &[]))
            .unwrap();
        let path = store.dir("http://a/x").join(variant_file(&[]));
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - 40;
        bytes[at] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(store.lookup("http://a/x", &none).is_none());
        assert!(!path.exists());
        assert_eq!(store.corrupt.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn purge_selects_by_key_and_tag_and_trim_removes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let none = HeaderMap::new();
        let body = "z".repeat(1000);
        for i in 0..10 {
            let tags: &[&str] = if i % 2 == 0 { &["even"] } else { &[] };
            store
                .insert(&object(&format!("http://a/{i}"), &body, &none, &none, tags))
                .unwrap();
            // Distinct modification times, oldest first.
            let path = store.dir(&format!("http://a/{i}")).join(variant_file(&[]));
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i);
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
        assert_eq!(store.purge(|_, tags| tags.iter().any(|t| t == "even")), 5);
        assert!(store.lookup("http://a/0", &none).is_none());
        assert!(store.lookup("http://a/1", &none).is_some());
        let size = fs::metadata(store.dir("http://a/1").join(variant_file(&[])))
            .unwrap()
            .len();
        let trimmed = store.trim(2 * size);
        assert_eq!(trimmed.files, 3);
        assert_eq!(trimmed.kept, 2 * size);
        // The newest two are left.
        for i in [1, 3, 5] {
            assert!(
                store.lookup(&format!("http://a/{i}"), &none).is_none(),
                "{i}"
            );
        }
        for i in [7, 9] {
            assert!(
                store.lookup(&format!("http://a/{i}"), &none).is_some(),
                "{i}"
            );
        }
    }
}
