//! Resolution (stub; being written).
use std::path::Path;

use super::{Config, Diagnostics, schema};

pub fn resolve(_raw: &schema::Config, _source: &str, path: &Path) -> Result<Config, Diagnostics> {
    Err(Diagnostics::single(super::Diagnostic::file_error(
        path,
        &std::io::Error::other("configuration files are not supported yet"),
    )))
}
