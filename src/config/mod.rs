//! The configuration file: TOML schema ([`schema`]), diagnostics with file and line
//! ([`diagnostic`]), resolution into each module's `Settings` ([`resolve`]), units
//! ([`units`]) and the built-in demo ([`demo`]).
//!
//! Read by `cli` only. Parse, don't validate: what [`load`] returns cannot be invalid.

pub mod demo;
pub mod diagnostic;
pub mod resolve;
pub mod schema;
pub mod units;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics, Origin};

use crate::{edge, process, telemetry, tls};

/// A whole resolved configuration: one immutable snapshot of what to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub edge: edge::Settings,
    pub telemetry: telemetry::Settings,
    pub process: process::Settings,
    /// Certificates managed by ACME, when a site has `acme = true`.
    pub acme: Option<tls::acme::Settings>,
    /// The admin API, when `[admin]` is set.
    pub admin: Option<crate::admin::Settings>,
}

impl Config {
    /// Binds the parts kept in the data directory: ACME certificates and challenges live in
    /// `DATA_DIR/acme` (the serving process installs the certificates: `process::worker`);
    /// the disk cache without `disk_path` goes to `DATA_DIR/cache`.
    pub fn attach(&mut self, data_dir: &Path) {
        if let Some(cache) = &mut self.edge.cache {
            cache.attach(data_dir);
        }
        if let Some(acme) = &mut self.acme {
            let store = tls::acme::Store::new(data_dir);
            self.edge.acme_challenges = Some(store.challenges());
            acme.store = Some(store);
        }
    }
}

/// Reads, parses and resolves a configuration file; every problem comes back as a
/// diagnostic with the file, line and column.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| Diagnostics::single(Diagnostic::file_error(path, &e)))?;
    parse(&source, path)
}

/// Parses and resolves configuration text; `path` names it in diagnostics and relative
/// paths in it are taken from its folder.
pub fn parse(source: &str, path: &Path) -> Result<Config, Diagnostics> {
    let raw = schema::parse(source, path)?;
    resolve::resolve(&raw, Origin::File { path, source })
}
