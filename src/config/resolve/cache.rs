//! Resolves `[cache]` into `cache::Settings`, present when the table is or a `proxy` route
//! sets `cache = true`. `disk = 0` (or no `disk`) means no disk tier; without `disk_path`
//! the disk tier's folder is left for `Config::attach` to place in the data directory.

use toml::Spanned;

use super::Context;
use crate::cache;
use crate::config::schema;
use crate::config::units::{self, Quantity};

pub(super) fn cache(
    cx: &mut Context<'_>,
    raw: Option<&Spanned<schema::CacheTable>>,
    used: bool,
) -> Option<cache::Settings> {
    let mut settings = cache::Settings::default();
    let Some(raw) = raw else {
        return used.then_some(settings);
    };
    let table = raw.get_ref();
    if let Some(bytes) = super::limits::size::<usize>(cx, "memory", &table.memory) {
        settings.memory_bytes = bytes;
    }
    if let Some(timeout) = super::limits::duration(cx, "lock_timeout", &table.lock_timeout) {
        settings.lock_timeout = timeout;
    }
    if let Some(grace) = super::limits::duration(cx, "grace", &table.grace) {
        settings.grace = grace;
    }
    if let Some(allow) = &table.purge_allow {
        settings.purge_allow = super::upstream::networks(cx, allow);
    }
    let path = disk_path(cx, table.disk_path.as_ref());
    settings.disk =
        disk_bytes(cx, table.disk.as_ref()).map(|max_bytes| cache::Disk { max_bytes, path });
    Some(settings)
}

/// `disk`: a size; `None` when absent, zero or reported.
fn disk_bytes(cx: &mut Context<'_>, value: Option<&Spanned<Quantity>>) -> Option<u64> {
    let value = value?;
    match value.get_ref().bytes() {
        Ok(0) => None,
        Ok(bytes) => Some(bytes),
        Err(error) => {
            cx.error_with_hint(
                value.span(),
                format!("invalid `disk`: {error}"),
                format!("{}; \"0\" = no disk tier", units::SIZE_HINT),
            );
            None
        }
    }
}

/// `disk_path`, absolute; it may not exist yet (the workers create it), but if it exists it
/// must be a folder.
fn disk_path(
    cx: &mut Context<'_>,
    value: Option<&Spanned<std::path::PathBuf>>,
) -> Option<std::path::PathBuf> {
    let value = value?;
    if value.get_ref().as_os_str().is_empty() {
        cx.error_with_hint(
            value.span(),
            "`disk_path` is empty",
            "name a folder for the disk cache, or omit the key for DATA_DIR/cache",
        );
        return None;
    }
    let path = super::absolute(&cx.folder().join(value.get_ref()));
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_dir() => {
            cx.error_with_hint(
                value.span(),
                format!("`disk_path` {} is not a folder", path.display()),
                format!("relative paths start at {}", cx.folder_in_words()),
            );
            None
        }
        _ => Some(path),
    }
}
