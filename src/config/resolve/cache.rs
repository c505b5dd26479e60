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
        settings.purge_allow = networks(cx, allow);
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

/// A list of addresses and CIDR ranges, each mistake reported at its place.
pub(super) fn networks(cx: &mut Context<'_>, list: &[Spanned<String>]) -> Vec<ipnet::IpNet> {
    let mut nets = Vec::new();
    for entry in list {
        match super::upstream::network(entry.get_ref()) {
            Some(net) => nets.push(net),
            None => cx.error_with_hint(
                entry.span(),
                format!("`{}` is not an address or CIDR range", entry.get_ref()),
                "write \"127.0.0.1\", \"10.0.0.0/8\" or \"::1\"",
            ),
        }
    }
    nets
}

/// Resolves `[admin]`.
pub(super) fn admin(
    cx: &mut Context<'_>,
    raw: Option<&Spanned<schema::Admin>>,
) -> Option<crate::admin::Settings> {
    let table = raw?.get_ref();
    let listen = match table.listen.get_ref().trim().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            cx.error_with_hint(
                table.listen.span(),
                format!("`{}` is not an address and port", table.listen.get_ref()),
                "write listen = \"127.0.0.1:9901\"",
            );
            None
        }
    };
    let allow = match &table.allow {
        Some(list) => networks(cx, list),
        None => crate::admin::loopback(),
    };
    Some(crate::admin::Settings {
        listen: listen?,
        allow,
    })
}
