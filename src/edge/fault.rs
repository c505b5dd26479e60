//! Fault injection for tests of supervision: `PORTICO_FAULT=panic:/PATH` makes a request for
//! exactly `/PATH` panic inside its handler (caught, answered 500, the worker carries on);
//! `PORTICO_FAULT=abort:/PATH` aborts the whole worker process (the master starts it again).
//! Read once at start; unset (always, outside tests) it costs one load per request.

use std::sync::OnceLock;

/// What to do for which path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    Panic(String),
    Abort(String),
}

fn configured() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| parse(&std::env::var("PORTICO_FAULT").ok()?))
        .as_ref()
}

fn parse(text: &str) -> Option<Fault> {
    match text.split_once(':')? {
        ("panic", path) if path.starts_with('/') => Some(Fault::Panic(path.to_string())),
        ("abort", path) if path.starts_with('/') => Some(Fault::Abort(path.to_string())),
        _ => None,
    }
}

/// Injects the configured fault if `path` is its path.
pub fn inject(path: &str) {
    match configured() {
        Some(Fault::Panic(p)) if p == path => panic!("fault injected for {path} (PORTICO_FAULT)"),
        Some(Fault::Abort(p)) if p == path => {
            tracing::error!(path, "aborting the worker (PORTICO_FAULT)");
            std::process::abort();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_name_a_kind_and_an_absolute_path() {
        assert_eq!(parse("panic:/boom"), Some(Fault::Panic("/boom".into())));
        assert_eq!(parse("abort:/x/y"), Some(Fault::Abort("/x/y".into())));
        assert_eq!(parse("panic:boom"), None);
        assert_eq!(parse("explode:/boom"), None);
        assert_eq!(parse(""), None);
    }
}
