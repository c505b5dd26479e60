//! Invariant: for any UTF-8 text, `portico::config::parse` returns either a configuration or
//! diagnostics, never panics, and every diagnostic prints with a 1-based line when it has one.
//!
//! Relative paths in the input resolve against a folder that does not exist, so resolution only
//! reads file metadata and never finds a relative static root.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run config -- -max_total_time=60` (seeds in
//! `fuzz/corpus/config/`).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/nonexistent/portico-fuzz/portico.toml");
    if let Err(diagnostics) = portico::config::parse(text, path) {
        assert!(!diagnostics.0.is_empty(), "an error without a diagnostic");
        for diagnostic in &diagnostics.0 {
            assert!(diagnostic.line.is_none_or(|line| line >= 1));
            assert!(diagnostic.column.is_none_or(|column| column >= 1));
        }
        let _ = diagnostics.to_string();
    }
});
