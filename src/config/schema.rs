//! Raw TOML schema (stub; being written).
use std::path::Path;

use super::Diagnostics;

/// The raw configuration as written.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Config {}

pub fn parse(_source: &str, _path: &Path) -> Result<Config, Diagnostics> {
    Ok(Config {})
}
