//! The open-file cache: small files kept in memory with their response headers, so a
//! repeated GET is answered without a system call (nginx's `open_file_cache`, with the
//! content as well).
//!
//! An entry is keyed by the request path and the client's accepted codings (they decide which
//! file — the original or a precompressed sibling — was chosen). It is trusted for
//! [`VALID`] after the last check; then the next request `stat`s the file again and drops the
//! entry if its device, inode, size or modification time changed. Every entry is dropped after
//! [`MAX_AGE`] whatever the checks said, so a new sibling or index file is seen within that
//! time. Only what `locate` chose under the root's rules is ever stored, so the cache can never
//! serve what the path rules refuse; at worst it serves a file's old content for `VALID`.
//!
//! Memory is bounded by [`MAX_FILE_BYTES`] per file and [`MAX_TOTAL_BYTES`] in all; past the
//! total, arbitrary entries are dropped (the hash order). Lock: one `std::sync::Mutex`, held
//! only for a map lookup or update, never across `.await` or I/O.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::serve::Representation;
use crate::http::compress::Coding;

/// How long an entry is trusted without looking at the file again.
pub const VALID: Duration = Duration::from_secs(1);
/// How long an entry lives at most.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Larger files are streamed from disk instead.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Entries at least this large keep the file open, so their bodies can be sent with
/// `sendfile(2)` (`net/sendfile.rs`); below it one copy costs less than a second system
/// call. At most `MAX_TOTAL_BYTES / SENDFILE_MIN_BYTES` (256) descriptors per handler.
pub const SENDFILE_MIN_BYTES: u64 = 256 * 1024;
/// Memory for all entries of one `static` handler.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// One `static` handler's cache.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Request path → the variants stored for it, by accepted codings.
    entries: HashMap<String, Vec<(u8, Arc<Entry>)>>,
    bytes: usize,
}

/// A file's representation and content, as sent.
pub struct Entry {
    pub rep: Representation,
    pub content: Bytes,
    /// The open file the content was read from, for files of `SENDFILE_MIN_BYTES` or more.
    pub file: Option<Arc<File>>,
    path: PathBuf,
    identity: Identity,
    /// When the entry is dropped whatever the checks say (`MAX_AGE` after it was made).
    expires: Instant,
    /// When the file is to be checked again (`VALID` after the last check).
    recheck: Mutex<Instant>,
    /// The status line and fields of the full 200 response, encoded for the express lane on
    /// first use.
    head: OnceLock<Bytes>,
}

/// What tells that a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Identity {
    fn of(meta: &Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("files::Cache")
    }
}

impl Entry {
    /// An entry for a file just read from `path`, described by `meta` (from `fstat` on the
    /// open file); `file` is kept open for `sendfile(2)` when given.
    pub fn new(
        rep: Representation,
        content: Bytes,
        file: Option<Arc<File>>,
        path: &Path,
        meta: &Metadata,
    ) -> Self {
        let now = Instant::now();
        Entry {
            rep,
            content,
            file,
            path: path.to_path_buf(),
            identity: Identity::of(meta),
            expires: now + MAX_AGE,
            recheck: Mutex::new(now + VALID),
            head: OnceLock::new(),
        }
    }

    /// The head of the full 200 response as HTTP/1.1 bytes: the status line and every field
    /// with its CR LF, in the order hyper would write them, without `Date` and the final
    /// blank line (the caller adds those, see `http::date`).
    pub fn plain_head(&self) -> &[u8] {
        self.head.get_or_init(|| {
            let headers = self.rep.plain_headers();
            let mut head = Vec::with_capacity(256);
            head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            for (name, value) in headers {
                head.extend_from_slice(name.as_str().as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value.as_bytes());
                head.extend_from_slice(b"\r\n");
            }
            Bytes::from(head)
        })
    }
}

impl Cache {
    /// True when a file of `length` bytes may be stored.
    pub fn admits(&self, length: u64) -> bool {
        length <= MAX_FILE_BYTES
    }

    /// The stored entry for a path and accepted codings, checked against the file when it has
    /// not been for [`VALID`]. `None` when absent, too old, or the file changed.
    pub fn lookup(&self, path: &str, codings: &[Coding]) -> Option<Arc<Entry>> {
        let key = codings_key(codings);
        let entry = {
            let inner = self.inner.lock().ok()?;
            let variants = inner.entries.get(path)?;
            variants.iter().find(|(k, _)| *k == key)?.1.clone()
        };
        let now = Instant::now();
        if now >= entry.expires {
            self.remove(path, key);
            return None;
        }
        let due = entry
            .recheck
            .lock()
            .map(|recheck| now >= *recheck)
            .unwrap_or(true);
        if due {
            // A `stat` of a path whose inode is cached by the kernel: about a microsecond,
            // done inline once a second per entry, as nginx does.
            match std::fs::metadata(&entry.path) {
                Ok(meta) if Identity::of(&meta) == entry.identity => {
                    if let Ok(mut recheck) = entry.recheck.lock() {
                        *recheck = now + VALID;
                    }
                }
                _ => {
                    self.remove(path, key);
                    return None;
                }
            }
        }
        Some(entry)
    }

    /// Stores a file just read and returns its entry.
    pub fn insert(&self, path: &str, codings: &[Coding], entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        let key = codings_key(codings);
        let size = entry.content.len() + path.len();
        if let Ok(mut inner) = self.inner.lock() {
            inner.make_room(size);
            let variants = inner.entries.entry(path.to_string()).or_default();
            let old = variants
                .iter()
                .position(|(k, _)| *k == key)
                .map(|i| variants.swap_remove(i).1.content.len() + path.len());
            variants.push((key, entry.clone()));
            inner.bytes = inner.bytes + size - old.unwrap_or(0);
        }
        entry
    }

    fn remove(&self, path: &str, key: u8) {
        if let Ok(mut inner) = self.inner.lock() {
            let mut freed = 0;
            let mut now_empty = false;
            if let Some(variants) = inner.entries.get_mut(path) {
                if let Some(i) = variants.iter().position(|(k, _)| *k == key) {
                    freed = variants.swap_remove(i).1.content.len() + path.len();
                }
                now_empty = variants.is_empty();
            }
            if now_empty {
                inner.entries.remove(path);
            }
            inner.bytes -= freed;
        }
    }

    /// Bytes held, for tests and metrics.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

impl Inner {
    /// Drops entries until `size` more bytes fit.
    fn make_room(&mut self, size: usize) {
        while self.bytes + size > MAX_TOTAL_BYTES {
            let Some(path) = self.entries.keys().next().cloned() else {
                return;
            };
            if let Some(variants) = self.entries.remove(&path) {
                for (_, entry) in variants {
                    self.bytes -= entry.content.len() + path.len();
                }
            }
        }
    }
}

/// The accepted codings in the client's order, packed into a byte (two bits each).
fn codings_key(codings: &[Coding]) -> u8 {
    codings.iter().take(3).fold(0u8, |key, coding| {
        let bits = match coding {
            Coding::Brotli => 1,
            Coding::Zstd => 2,
            Coding::Gzip => 3,
        };
        key << 2 | bits
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings_order_is_part_of_the_key() {
        assert_ne!(
            codings_key(&[Coding::Gzip, Coding::Brotli]),
            codings_key(&[Coding::Brotli, Coding::Gzip])
        );
        assert_eq!(codings_key(&[]), 0);
    }
}
