//! Every configuration under `examples/` and `tests/data/` parses and resolves (STYLE §4), so
//! an example a user copies, or a sample a test relies on, cannot drift from the schema.
//!
//! Configurations that are wrong on purpose live in a folder named `invalid` (at any depth)
//! and are skipped here; the tests that use them check their diagnostics.

use std::path::{Path, PathBuf};

/// The folders searched, relative to the crate.
const FOLDERS: [&str; 2] = ["examples", "tests/data"];

/// Folders with this name hold configurations that must be refused.
const INVALID: &str = "invalid";

/// The `*.toml` files under `dir`, at any depth, outside `invalid` folders; sorted.
fn configs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != INVALID) {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_config_under_examples_and_tests_data_loads() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = String::new();
    for folder in FOLDERS {
        let found = configs(&crate_dir.join(folder));
        assert!(!found.is_empty(), "no *.toml under {folder}/");
        for path in found {
            if let Err(diagnostics) = portico::config::load(&path) {
                failures.push_str(&format!("{}:\n{diagnostics}\n", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "these configurations are refused (a file that is wrong on purpose belongs in a folder \
         named `{INVALID}`):\n\n{failures}"
    );
}

#[test]
fn the_examples_are_found() {
    let examples = configs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"));
    for name in [
        "static-site",
        "redirects",
        "maintenance",
        "reverse-proxy",
        "forward-proxy",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name)
            .join("portico.toml");
        assert!(
            examples.contains(&path),
            "{} not found in {examples:#?}",
            path.display()
        );
    }
}
