//! Resolves `[limits]` into `edge::Limits`: start from `Limits::default()` and override each
//! key that is set. Every limit must be above zero (a zero limit would refuse every request or
//! close every connection at once).

use std::time::Duration;

use toml::Spanned;

use super::Context;
use crate::config::schema;
use crate::config::units::{self, Quantity};
use crate::edge;

pub(super) fn limits(cx: &mut Context<'_>, raw: &schema::Limits) -> edge::Limits {
    let mut limits = edge::Limits::default();
    override_with(
        &mut limits.max_header_bytes,
        size(cx, "max_header_size", &raw.max_header_size),
    );
    override_with(
        &mut limits.max_headers,
        count(cx, "max_headers", &raw.max_headers),
    );
    override_with(
        &mut limits.max_uri_bytes,
        size(cx, "max_uri_length", &raw.max_uri_length),
    );
    override_with(
        &mut limits.max_body_bytes,
        size(cx, "client_max_body_size", &raw.client_max_body_size),
    );
    override_with(
        &mut limits.header_read_timeout,
        duration(cx, "client_header_timeout", &raw.client_header_timeout),
    );
    override_with(
        &mut limits.body_read_timeout,
        duration(cx, "client_body_timeout", &raw.client_body_timeout),
    );
    override_with(
        &mut limits.keepalive_timeout,
        duration(cx, "keepalive_timeout", &raw.keepalive_timeout),
    );
    override_with(
        &mut limits.send_timeout,
        duration(cx, "send_timeout", &raw.send_timeout),
    );
    override_with(
        &mut limits.linger_timeout,
        duration(cx, "lingering_timeout", &raw.lingering_timeout),
    );
    override_with(
        &mut limits.max_connections,
        count(cx, "max_connections", &raw.max_connections),
    );
    override_with(
        &mut limits.max_requests_in_flight,
        count(cx, "max_requests_in_flight", &raw.max_requests_in_flight),
    );
    override_with(
        &mut limits.shutdown_timeout,
        duration(cx, "shutdown_timeout", &raw.shutdown_timeout),
    );
    limits
}

/// Sets `field` to `value` when there is one.
pub(super) fn override_with<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// A size above zero that fits `T`; `None` when absent or reported.
pub(super) fn size<T: TryFrom<u64>>(
    cx: &mut Context<'_>,
    key: &str,
    value: &Option<Spanned<Quantity>>,
) -> Option<T> {
    let value = value.as_ref()?;
    match value.get_ref().bytes() {
        Ok(0) => above_zero(cx, key, value),
        Ok(bytes) => match T::try_from(bytes) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                cx.error(
                    value.span(),
                    format!("`{key}` is too large for this machine"),
                );
                None
            }
        },
        Err(error) => {
            cx.error_with_hint(
                value.span(),
                format!("invalid `{key}`: {error}"),
                units::SIZE_HINT,
            );
            None
        }
    }
}

/// A duration above zero; `None` when absent or reported.
pub(super) fn duration(
    cx: &mut Context<'_>,
    key: &str,
    value: &Option<Spanned<Quantity>>,
) -> Option<Duration> {
    let value = value.as_ref()?;
    match value.get_ref().duration() {
        Ok(Duration::ZERO) => above_zero(cx, key, value),
        Ok(duration) => Some(duration),
        Err(error) => {
            let message = format!("invalid `{key}`: {error}");
            cx.error_with_hint(value.span(), message, units::DURATION_HINT);
            None
        }
    }
}

/// A count above zero; `None` when absent or reported.
pub(super) fn count(
    cx: &mut Context<'_>,
    key: &str,
    value: &Option<Spanned<i64>>,
) -> Option<usize> {
    let value = value.as_ref()?;
    match usize::try_from(*value.get_ref()) {
        Ok(0) | Err(_) => above_zero(cx, key, value),
        Ok(n) => Some(n),
    }
}

fn above_zero<T, V>(cx: &mut Context<'_>, key: &str, value: &Spanned<V>) -> Option<T> {
    cx.error_with_hint(
        value.span(),
        format!("`{key}` must be above zero"),
        "omit the key to keep the default",
    );
    None
}
