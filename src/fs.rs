//! File writes a reader never sees half done: the bytes go to a temporary file in the same
//! folder, which is renamed over the target (atomic within a file system). Each write has its
//! own temporary name (process id and a sequence number), so two writers of one file never
//! mix their bytes; a failed write removes its temporary file. Used for keys, certificates,
//! ACME state and the cache's disk tier.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a write waits for the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `fsync` before the rename: the file survives a power loss whole (keys, certificates).
    Durable,
    /// No `fsync`: a power loss may leave a torn file, which the reader must detect (the
    /// cache's records carry a checksum); much cheaper per write.
    Unsynced,
}

/// Writes `bytes` to `path` (created with `mode`) as the module documentation says; the folder
/// is created when needed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, sync: Sync) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if sync == Sync::Durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_appears_whole_with_its_mode_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key.pem");
        write_atomic(&path, b"one", 0o600, Sync::Durable).unwrap();
        write_atomic(&path, b"two", 0o600, Sync::Unsynced).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key.pem"]);
    }
}
