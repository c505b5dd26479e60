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
    if let Some(allow) = &table.purge_allow {
        settings.purge_allow = networks(cx, allow);
    }
    Some(settings)
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
