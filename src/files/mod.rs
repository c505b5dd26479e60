//! A site's root folder: the only code that maps a URL path to a file ([`path`]), static file
//! responses with validators, ranges and content coding ([`serve`](mod@serve)), directory
//! listings ([`listing`]), and why a request could not be served ([`Error`], which decides the
//! status).
//!
//! Called by the edge's `produce` phase for routes with a `static` handler. Invariant: no byte
//! of a file outside the root is ever read, whatever the request path (see `path.rs`, fuzzed by
//! `fuzz/fuzz_targets/path.rs`), unless the site sets `follow_symlinks_outside` and a symlink
//! the operator placed under the root leads out.

pub mod cache;
pub mod error;
pub mod listing;
pub mod path;
pub mod serve;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Error, PathProblem};
pub use serve::{serve, serve_from_memory};

/// Settings of one `static` handler.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The root folder, absolute and canonical (symlinks resolved at start-up).
    pub root: PathBuf,
    /// File names tried, in order, when the path names a folder. Default `["index.html"]`.
    pub index: Vec<String>,
    /// Show a listing for a folder without an index file. Default false (403, as nginx).
    pub listing: bool,
    /// Follow symlinks that lead outside the root. Default false (403).
    pub follow_symlinks_outside: bool,
    /// Serve `name.br`, `name.zst`, `name.gz` siblings when the client accepts them.
    /// Default true.
    pub precompressed: bool,
    /// Compress text types on the fly when no sibling exists. Default true.
    pub compress: bool,
    /// Map the path after the route's prefix (nginx `alias`) instead of the whole path
    /// (nginx `root`). Default false.
    pub strip_prefix: bool,
    /// Small files kept in memory (see `cache.rs`); shared by the clones of these settings,
    /// new for each configuration.
    pub cache: Arc<cache::Cache>,
}

impl Settings {
    /// Settings with defaults for a root folder (already canonical).
    pub fn new(root: PathBuf) -> Self {
        Settings {
            root,
            index: vec!["index.html".to_string()],
            listing: false,
            follow_symlinks_outside: false,
            precompressed: true,
            compress: true,
            strip_prefix: false,
            cache: Arc::default(),
        }
    }
}
