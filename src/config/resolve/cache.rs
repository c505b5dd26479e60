//! Resolves `[cache]` into `cache::Settings`, present when the table is or a `proxy` route
//! sets `cache = true`.

use toml::Spanned;

use super::Context;
use crate::cache;
use crate::config::schema;

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
    Some(settings)
}
