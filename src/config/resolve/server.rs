//! Resolves `[server]` into `process::Settings` and `[server]` `log_level` with `[access_log]`
//! into `telemetry::Settings`.

use std::path::Path;

use toml::Spanned;
use tracing_subscriber::EnvFilter;

use super::{Context, absolute};
use crate::config::schema;
use crate::process;
use crate::telemetry::{self, LogFormat, LogTarget};

/// `threads` must be at least 1; absent = one per CPU.
pub(super) fn process(cx: &mut Context<'_>, raw: &schema::Server) -> process::Settings {
    let threads = raw.threads.as_ref().and_then(|threads| {
        let n = *threads.get_ref();
        match usize::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                cx.error_with_hint(
                    threads.span(),
                    format!("`threads` must be at least 1, not {n}"),
                    "omit `threads` to run one per CPU",
                );
                None
            }
        }
    });
    let workers = raw.workers.as_ref().and_then(|workers| {
        let bad = |cx: &mut Context<'_>, what: String| {
            cx.error_with_hint(
                workers.span(),
                format!("`workers` must be \"auto\" or at least 1, not {what}"),
                "write workers = \"auto\" (one per CPU) or a number such as 2",
            );
            None
        };
        match workers.get_ref() {
            schema::Workers::Name(name) if name == "auto" => None,
            schema::Workers::Name(name) => bad(cx, format!("{name:?}")),
            schema::Workers::Count(n) => match usize::try_from(*n) {
                Ok(n) if n >= 1 => Some(n),
                _ => bad(cx, n.to_string()),
            },
        }
    });
    process::Settings {
        threads,
        workers,
        single_process: raw.single_process.unwrap_or(false),
    }
}

pub(super) fn telemetry(
    cx: &mut Context<'_>,
    server: &schema::Server,
    access_log: Option<&schema::AccessLog>,
) -> telemetry::Settings {
    telemetry::Settings {
        log_level: server
            .log_level
            .as_ref()
            .and_then(|level| log_level(cx, level)),
        access_log: access_log.and_then(|raw| self::access_log(cx, raw)),
    }
}

/// A non-empty filter that `tracing_subscriber` accepts.
fn log_level(cx: &mut Context<'_>, level: &Spanned<String>) -> Option<String> {
    let text = level.get_ref().trim();
    if text.is_empty() {
        cx.error_with_hint(
            level.span(),
            "`log_level` is empty",
            "write a level such as \"info\" or \"portico=debug,info\", or omit the key",
        );
        return None;
    }
    if let Err(error) = EnvFilter::builder().parse(text) {
        cx.error_with_hint(
            level.span(),
            format!("`log_level` is not a valid filter: {error}"),
            "levels are error, warn, info, debug, trace; per target: \"portico=debug,info\"",
        );
        return None;
    }
    Some(text.to_string())
}

/// `path` `"-"`/`"stdout"`, `"stderr"` or a file in an existing folder; `format` combined or
/// json.
fn access_log(cx: &mut Context<'_>, raw: &schema::AccessLog) -> Option<telemetry::AccessLog> {
    let target = match &raw.path {
        None => Some(LogTarget::Stdout),
        Some(path) => log_target(cx, path),
    };
    let format = match raw.format.as_ref() {
        None => Some(LogFormat::Combined),
        Some(format) => match format.get_ref().as_str() {
            "combined" => Some(LogFormat::Combined),
            "json" => Some(LogFormat::Json),
            other => {
                cx.error_with_hint(
                    format.span(),
                    format!("unknown access log format `{other}`"),
                    "use \"combined\" or \"json\"",
                );
                None
            }
        },
    };
    Some(telemetry::AccessLog {
        target: target?,
        format: format?,
    })
}

fn log_target(cx: &mut Context<'_>, path: &Spanned<String>) -> Option<LogTarget> {
    match path.get_ref().as_str() {
        "-" | "stdout" => return Some(LogTarget::Stdout),
        "stderr" => return Some(LogTarget::Stderr),
        "" => {
            cx.error_with_hint(
                path.span(),
                "the access log `path` is empty",
                "use \"-\" for standard output, \"stderr\", or a file path",
            );
            return None;
        }
        _ => {}
    }
    let file = absolute(&cx.folder().join(path.get_ref()));
    if file.is_dir() {
        cx.error_with_hint(
            path.span(),
            format!("the access log `{}` is a folder", file.display()),
            "name a file in that folder, such as \"access.log\"",
        );
        return None;
    }
    let folder = file.parent().unwrap_or(Path::new("/"));
    if !folder.is_dir() {
        let hint = format!(
            "a relative path starts at {}; create the folder or fix the path",
            cx.folder_in_words()
        );
        cx.error_with_hint(
            path.span(),
            format!(
                "the access log's folder `{}` does not exist",
                folder.display()
            ),
            hint,
        );
        return None;
    }
    Some(LogTarget::File(file))
}
