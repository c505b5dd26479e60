//! A temporary folder for one test: the config file, site roots, fixtures and logs live here
//! and disappear when the test ends.

use std::fs;
use std::path::{Path, PathBuf};

/// A temporary folder with helpers to lay out files relative to it.
pub struct WorkDir {
    dir: tempfile::TempDir,
}

impl WorkDir {
    pub fn new() -> WorkDir {
        let dir = tempfile::Builder::new()
            .prefix("portico-it-")
            .tempdir()
            .expect("create a temporary folder");
        WorkDir { dir }
    }

    /// The folder itself (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parent folders) and returns its absolute path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent folders");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Creates a folder (and its parents).
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Creates a symlink at `link` (inside the folder) pointing at `target` as written
    /// (relative to the link's folder, or absolute).
    pub fn symlink(&self, target: &str, link: &str) -> PathBuf {
        let path = self.join(link);
        std::os::unix::fs::symlink(target, &path)
            .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", path.display()));
        path
    }

    /// Reads a file inside the folder as text; `None` when it does not exist yet.
    pub fn read_to_string(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.join(rel)).ok()
    }
}
