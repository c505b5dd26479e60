//! Resolution: the raw schema in, each module's typed `Settings` out, or every problem found.
//!
//! One small function per section, each reporting into a shared `Context` and carrying on,
//! so one run lists every problem, not only the first: `server` (`[server]`,
//! `[access_log]`), `limits` (`[limits]`), `upstream` (`[[upstream]]`, resolved before the
//! sites so routes can name them), `site` (`[[site]]`: listeners, hosts, and the checks
//! across sites), `route` (`[[site.route]]` and its handler table) and `acme` (`[acme]`, for
//! the sites whose certificate it manages). A section with
//! problems still returns its best-effort value so later sections can be checked; that value
//! is never seen, because [`resolve`] fails when any diagnostic was reported.
//!
//! Called by `config::parse` for files, and by `cli` for the quick starts and the demo, which
//! build the same raw schema in code. The only I/O is reading metadata of the paths named
//! (static roots, the access log's folder), so a root that does not exist is a diagnostic
//! here rather than a failure at the first request.

mod acme;
mod admin;
mod cache;
mod limits;
mod route;
mod server;
mod site;
mod upstream;

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Config, Diagnostic, Diagnostics, Origin, schema};
use crate::edge;

/// Resolves a raw configuration; `origin` names it in diagnostics and gives the folder
/// relative paths start from.
pub fn resolve(raw: &schema::Config, origin: Origin<'_>) -> Result<Config, Diagnostics> {
    let mut cx = Context {
        origin,
        diagnostics: Vec::new(),
        upstreams: Vec::new(),
    };
    let process = server::process(&mut cx, &raw.server);
    let telemetry = server::telemetry(&mut cx, &raw.server, raw.access_log.as_ref());
    let limits = limits::limits(&mut cx, &raw.limits);
    let upstreams = upstream::upstreams(&mut cx, &raw.upstream);
    let (listeners, sites, managed) = site::sites(&mut cx, &raw.site);
    let acme = acme::acme(&mut cx, raw.acme.as_ref(), managed);
    let uses_cache = sites
        .iter()
        .flat_map(|s| &s.routes)
        .any(|r| matches!(&r.handler, edge::Handler::Proxy(p) if p.cache));
    let cache = cache::cache(&mut cx, raw.cache.as_ref(), uses_cache);
    let admin = admin::admin(&mut cx, raw.admin.as_ref());
    let config = Config {
        edge: edge::Settings {
            listeners: listeners.addrs,
            tls: listeners.tls,
            sites,
            limits,
            acme_challenges: None,
            upstreams,
            cache,
        },
        telemetry,
        process,
        acme,
        admin,
    };
    if cx.diagnostics.is_empty() {
        Ok(config)
    } else {
        Err(Diagnostics(cx.diagnostics))
    }
}

/// What every section function reports into.
struct Context<'a> {
    origin: Origin<'a>,
    diagnostics: Vec<Diagnostic>,
    /// The names of the `[[upstream]]`s, in order (a route's `proxy` names one).
    upstreams: Vec<String>,
}

/// A problem found by a check that knows nothing of spans; the caller places it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    message: String,
    hint: Option<String>,
}

impl Context<'_> {
    /// Reports a problem with the value at `span`.
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.report(Some(span), Problem::new(message));
    }

    /// Reports a problem with the value at `span`, with a hint on how to fix it.
    fn error_with_hint(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Some(span), Problem::new(message).with_hint(hint));
    }

    /// Reports a problem at `span`, or with the whole configuration when `None`.
    fn report(&mut self, span: Option<Range<usize>>, problem: Problem) {
        let diagnostic = self.origin.diagnostic(span, problem.message, problem.hint);
        self.diagnostics.push(diagnostic);
    }

    /// The folder relative paths start from (empty = the current folder).
    fn folder(&self) -> &Path {
        self.origin.folder()
    }

    /// The folder relative paths start from, as a hint says it.
    fn folder_in_words(&self) -> String {
        match self.origin {
            Origin::File { .. } => format!(
                "the configuration file's folder ({})",
                absolute(self.folder()).display()
            ),
            Origin::CommandLine | Origin::Demo => "the current folder".to_string(),
        }
    }
}

impl Problem {
    fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The path made absolute against the current folder, so a later change of folder cannot move
/// it; unchanged if the current folder cannot be read.
fn absolute(path: &Path) -> PathBuf {
    let absolute = if path.as_os_str().is_empty() {
        std::env::current_dir()
    } else {
        std::path::absolute(path)
    };
    absolute.unwrap_or_else(|_| path.to_path_buf())
}
