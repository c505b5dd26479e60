//! Invariant: for any request path, `portico::files::path::resolve` never panics and never
//! returns a path outside the root: with `follow_symlinks_outside` off the returned path (and
//! its canonical form) starts with the root; with it on the path is still lexically under the
//! root and holds no `..`. `normalize` only ever yields plain, non-empty segments.
//!
//! The root is a real folder (created once per process under the temp dir) holding files, a
//! literal `%2e%2e` file, symlinks inside and symlinks to a sibling `outside/` folder.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run path -- -max_total_time=60` (seeds in
//! `fuzz/corpus/path/`).

#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portico::files::path::{normalize, resolve};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    if !text.starts_with('/') {
        check(&format!("/{text}"));
    }
});

fn check(raw: &str) {
    let root = root();
    if let Ok(normalized) = normalize(raw) {
        for segment in normalized.segments() {
            assert!(
                !segment.is_empty() && segment != "." && segment != "..",
                "{raw:?}"
            );
            assert!(
                !segment.contains(['/', '\\', '\0']) && !segment.chars().any(char::is_control),
                "{raw:?} gave segment {segment:?}"
            );
            let mut components = Path::new(segment).components();
            assert!(
                matches!(components.next(), Some(Component::Normal(_))),
                "{raw:?}"
            );
            assert!(components.next().is_none(), "{raw:?}");
        }
    }
    if let Ok(resolved) = resolve(root, raw, false) {
        assert!(
            resolved.path.starts_with(root),
            "{raw:?} -> {:?}",
            resolved.path
        );
        let canonical = fs::canonicalize(&resolved.path).expect("resolved path exists");
        assert!(canonical.starts_with(root), "{raw:?} -> {canonical:?}");
    }
    if let Ok(resolved) = resolve(root, raw, true) {
        assert!(
            resolved.path.starts_with(root),
            "{raw:?} -> {:?}",
            resolved.path
        );
        assert!(
            resolved
                .path
                .components()
                .all(|c| c != Component::ParentDir),
            "{raw:?} -> {:?}",
            resolved.path
        );
    }
}

/// The canonical root of the test tree, built on first use.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("portico-fuzz-path-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("sub")).expect("create root");
        fs::create_dir_all(&outside).expect("create outside");
        fs::write(root.join("index.html"), "index").expect("write file");
        fs::write(root.join("sub/b.txt"), "b").expect("write file");
        fs::write(root.join("%2e%2e"), "literal").expect("write file");
        fs::write(outside.join("secret"), "secret").expect("write file");
        let links = [
            (root.join("index.html"), "link_in"),
            (root.join("sub"), "dir_in"),
            (outside.join("secret"), "link_out"),
            (outside.clone(), "dir_out"),
            (PathBuf::from("../outside/secret"), "relative_out"),
        ];
        for (target, name) in links {
            let _ = symlink(target, root.join(name));
        }
        fs::canonicalize(&root).expect("canonical root")
    })
}
