//! Resolves `[admin]` into `admin::Settings`.

use toml::Spanned;

use super::Context;
use super::upstream::networks;
use crate::config::schema;

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
