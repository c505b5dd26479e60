//! Resolves `[[site.route]]`: the path match, the methods, and the one handler table
//! (`static`, `redirect`, `respond`, `proxy` or `httpbin`) into an `edge::Route`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use toml::Spanned;

use super::{Context, Problem, absolute};
use crate::config::schema;
use crate::edge::{self, Handler, PathMatch};
use crate::files;

/// The route, or `None` when it has a problem (reported).
pub(super) fn route(cx: &mut Context<'_>, raw: &Spanned<schema::Route>) -> Option<edge::Route> {
    let route = raw.get_ref();
    let path = path_match(cx, route);
    let methods = route.methods.as_ref().map(|list| methods(cx, raw, list));
    let handler = handler(cx, raw);
    Some(edge::Route {
        path: path?,
        methods: methods.flatten(),
        trace: route.trace.unwrap_or(false),
        handler: handler?,
    })
}

/// `exact`, `prefix`, or neither (prefix `/`); not both.
fn path_match(cx: &mut Context<'_>, route: &schema::Route) -> Option<PathMatch> {
    match (&route.exact, &route.prefix) {
        (Some(exact), Some(prefix)) => {
            let later = if exact.span().start > prefix.span().start {
                exact
            } else {
                prefix
            };
            cx.error_with_hint(
                later.span(),
                "a route has both `exact` and `prefix`",
                "keep one of them, or split the route in two",
            );
            None
        }
        (Some(exact), None) => route_path(cx, "exact", exact).map(PathMatch::Exact),
        (None, Some(prefix)) => route_path(cx, "prefix", prefix).map(PathMatch::Prefix),
        (None, None) => Some(PathMatch::Prefix("/".to_string())),
    }
}

fn route_path(cx: &mut Context<'_>, key: &str, raw: &Spanned<String>) -> Option<String> {
    match check_route_path(raw.get_ref()) {
        Ok(()) => Some(raw.get_ref().clone()),
        Err(problem) => {
            let message = format!("`{key}` {}", problem.message);
            cx.report(Some(raw.span()), Problem { message, ..problem });
            None
        }
    }
}

/// A path as it appears in a request line (matched before percent-decoding): starts with `/`,
/// visible ASCII, no query or fragment.
fn check_route_path(path: &str) -> Result<(), Problem> {
    if !path.starts_with('/') {
        return Err(Problem::new(format!("`{path}` does not start with `/`"))
            .with_hint(format!("write \"/{}\"", path.trim_start_matches('/'))));
    }
    if path.contains(['?', '#']) {
        return Err(Problem::new(format!("`{path}` has a query or fragment"))
            .with_hint("a route matches the path only"));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(format!(
            "`{path}` has a space, control or non-ASCII character"
        ))
        .with_hint("percent-encode it as a request would: \"/caf%C3%A9\""));
    }
    Ok(())
}

/// Upper-cased, valid tokens, each once; an empty list is refused (it would allow nothing).
fn methods(
    cx: &mut Context<'_>,
    route: &Spanned<schema::Route>,
    raw: &[Spanned<String>],
) -> Option<Vec<Method>> {
    if raw.is_empty() {
        cx.error_with_hint(
            route.span(),
            "`methods` is empty, so the route would refuse every request",
            "list the methods, or omit `methods` for the handler's default set",
        );
        return None;
    }
    let mut methods = Vec::new();
    for text in raw {
        match Method::from_bytes(text.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(method) if !methods.contains(&method) => methods.push(method),
            Ok(_) => {}
            Err(_) => cx.error_with_hint(
                text.span(),
                format!("`{}` is not a valid method", text.get_ref()),
                "a method is a token such as \"GET\", \"POST\" or \"PURGE\"",
            ),
        }
    }
    Some(methods)
}

/// Exactly one of `static`, `redirect`, `respond`, `proxy`, `httpbin`.
fn handler(cx: &mut Context<'_>, raw: &Spanned<schema::Route>) -> Option<Handler> {
    let route = raw.get_ref();
    let present: Vec<&str> = [
        route.r#static.as_ref().map(|_| "static"),
        route.redirect.as_ref().map(|_| "redirect"),
        route.respond.as_ref().map(|_| "respond"),
        route.proxy.as_ref().map(|_| "proxy"),
        route.httpbin.as_ref().map(|_| "httpbin"),
    ]
    .into_iter()
    .flatten()
    .collect();
    match present.as_slice() {
        [] => {
            cx.error_with_hint(
                raw.span(),
                "the route has no handler",
                "add one table: `static`, `redirect`, `respond`, `proxy` or `httpbin`",
            );
            return None;
        }
        [_] => {}
        several => {
            cx.error_with_hint(
                raw.span(),
                format!(
                    "the route has {} handlers (`{}`)",
                    several.len(),
                    several.join("`, `")
                ),
                "a route has exactly one handler; split it into several routes",
            );
            return None;
        }
    }
    if let Some(raw) = &route.r#static {
        static_files(cx, raw).map(Handler::Static)
    } else if let Some(raw) = &route.redirect {
        redirect(cx, raw).map(Handler::Redirect)
    } else if let Some(raw) = &route.proxy {
        super::upstream::proxy(cx, raw).map(Handler::Proxy)
    } else if route.httpbin.is_some() {
        Some(Handler::Httpbin)
    } else {
        route
            .respond
            .as_ref()
            .and_then(|raw| respond(cx, raw))
            .map(Handler::Respond)
    }
}

fn static_files(cx: &mut Context<'_>, raw: &Spanned<schema::Static>) -> Option<files::Settings> {
    let table = raw.get_ref();
    let root = match &table.root {
        Some(root) => root_folder(cx, root),
        None => {
            let hint = format!(
                "add root = \"public\"; it is relative to {}",
                cx.folder_in_words()
            );
            cx.error_with_hint(raw.span(), "`static` has no `root`", hint);
            None
        }
    };
    let index = table.index.as_ref().map(|names| index_names(cx, names));
    let mut settings = files::Settings::new(root?);
    if let Some(index) = index {
        settings.index = index;
    }
    let flags = [
        (&mut settings.listing, table.listing),
        (
            &mut settings.follow_symlinks_outside,
            table.follow_symlinks_outside,
        ),
        (&mut settings.precompressed, table.precompressed),
        (&mut settings.compress, table.compress),
        (&mut settings.strip_prefix, table.strip_prefix),
    ];
    for (field, value) in flags {
        if let Some(value) = value {
            *field = value;
        }
    }
    Some(settings)
}

/// An existing folder, relative to the configuration's folder; absolute and canonical.
fn root_folder(cx: &mut Context<'_>, raw: &Spanned<PathBuf>) -> Option<PathBuf> {
    if raw.get_ref().as_os_str().is_empty() {
        let hint = format!("use \".\" for {}", cx.folder_in_words());
        cx.error_with_hint(raw.span(), "the static `root` is empty", hint);
        return None;
    }
    let root = absolute(&cx.folder().join(raw.get_ref()));
    let shown = root.display();
    let problem = match std::fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => match root.canonicalize() {
            Ok(canonical) => return Some(canonical),
            Err(error) => Problem::new(format!("cannot resolve static root `{shown}`: {error}")),
        },
        Ok(_) => Problem::new(format!("static root `{shown}` is not a folder"))
            .with_hint("`root` names the folder that holds the files"),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Problem::new(format!("static root `{shown}` does not exist")).with_hint(format!(
                "`root` is relative to {}; create the folder or fix the path",
                cx.folder_in_words()
            ))
        }
        Err(error) => Problem::new(format!("cannot read static root `{shown}`: {error}")),
    };
    cx.report(Some(raw.span()), problem);
    None
}

/// Plain file names: an index name must not lead out of the folder it is tried in.
fn index_names(cx: &mut Context<'_>, raw: &[Spanned<String>]) -> Vec<String> {
    let mut names = Vec::new();
    for name in raw {
        let text = name.get_ref();
        let plain = Path::new(text)
            .file_name()
            .is_some_and(|file| file == text.as_str())
            && !text.contains(['/', '\\', '\0']);
        if plain {
            names.push(text.clone());
        } else {
            cx.error_with_hint(
                name.span(),
                format!("index `{text}` is not a plain file name"),
                "an index is a name such as \"index.html\", without `/`",
            );
        }
    }
    names
}

fn redirect(cx: &mut Context<'_>, raw: &Spanned<schema::Redirect>) -> Option<edge::Redirect> {
    let table = raw.get_ref();
    let to = match &table.to {
        None => {
            cx.error_with_hint(
                raw.span(),
                "`redirect` has no `to`",
                "add to = \"https://{host}{uri}\" (a URL or a path)",
            );
            None
        }
        Some(to) => match check_target(to.get_ref()) {
            Ok(()) => Some(to.get_ref().clone()),
            Err(problem) => {
                cx.report(Some(to.span()), problem);
                None
            }
        },
    };
    let status = match &table.status {
        None => Some(StatusCode::FOUND),
        Some(status) => match *status.get_ref() {
            code @ (301 | 302 | 303 | 307 | 308) => u16::try_from(code)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok()),
            code => {
                cx.error_with_hint(
                    status.span(),
                    format!("{code} is not a redirect status"),
                    "use 301 or 308 (permanent), 302, 303 or 307 (temporary)",
                );
                None
            }
        },
    };
    Some(edge::Redirect {
        status: status?,
        to: to?,
    })
}

/// A non-empty target of visible ASCII whose `{...}` are known placeholders.
fn check_target(to: &str) -> Result<(), Problem> {
    if to.trim().is_empty() {
        return Err(Problem::new("the redirect `to` is empty")
            .with_hint("write a URL or a path, such as \"https://{host}{uri}\""));
    }
    if HeaderValue::from_str(to).is_err() || !to.is_ascii() {
        return Err(
            Problem::new(format!("`{to}` has a control or non-ASCII character"))
                .with_hint("percent-encode it as in a URL: \"/caf%C3%A9\""),
        );
    }
    let mut rest = to;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(Problem::new(format!("`{to}` has a `{{` without its `}}`")));
        };
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Err(
                Problem::new(format!("unknown placeholder `{{{name}}}` in `{to}`")).with_hint(
                    format!("known placeholders: {{{}}}", PLACEHOLDERS.join("}, {")),
                ),
            );
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

fn respond(cx: &mut Context<'_>, raw: &Spanned<schema::Respond>) -> Option<edge::Respond> {
    let table = raw.get_ref();
    let body = Bytes::from(table.body.clone().unwrap_or_default());
    let status = match &table.status {
        None => Some(StatusCode::OK),
        Some(status) => {
            let code = *status.get_ref();
            let valid = u16::try_from(code)
                .ok()
                .filter(|code| (100..=599).contains(code))
                .and_then(|code| StatusCode::from_u16(code).ok());
            match valid {
                None => cx.error_with_hint(
                    status.span(),
                    format!("{code} is not an HTTP status"),
                    "a status is between 100 and 599",
                ),
                Some(valid) if !body.is_empty() && !may_have_body(valid) => cx.error_with_hint(
                    status.span(),
                    format!("a {code} response cannot have a body"),
                    "remove `body`, or use another status",
                ),
                Some(_) => {}
            }
            valid
        }
    };
    let headers = headers(cx, table.headers.as_ref());
    Some(edge::Respond {
        status: status?,
        headers: headers?,
        body,
    })
}

/// RFC 9110 §15.2, §15.3.5, §15.4.5: 1xx, 204 and 304 responses have no content.
fn may_have_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

fn headers(
    cx: &mut Context<'_>,
    raw: Option<&BTreeMap<Spanned<String>, Spanned<String>>>,
) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    let mut valid = true;
    for (name, value) in raw.into_iter().flatten() {
        let parsed_name = HeaderName::from_bytes(name.get_ref().as_bytes());
        let parsed_value = HeaderValue::from_str(value.get_ref());
        match &parsed_name {
            Err(_) => cx.error(
                name.span(),
                format!("`{}` is not a valid header name", name.get_ref()),
            ),
            Ok(header) if is_framing(header) => cx.error_with_hint(
                name.span(),
                format!("`{}` cannot be set in `respond`", name.get_ref()),
                "portico sets it from the body",
            ),
            Ok(_) => {}
        }
        if parsed_value.is_err() {
            cx.error_with_hint(
                value.span(),
                format!("the value of header `{}` is not valid", name.get_ref()),
                "a header value is visible ASCII and spaces, without line breaks",
            );
        }
        match (parsed_name, parsed_value) {
            (Ok(name), Ok(value)) if !is_framing(&name) => {
                headers.append(name, value);
            }
            _ => valid = false,
        }
    }
    valid.then_some(headers)
}

/// Whether a header describes the body's framing, which the server decides.
fn is_framing(name: &HeaderName) -> bool {
    name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING
}

/// The placeholders a redirect target may use (see `edge::Redirect`).
const PLACEHOLDERS: [&str; 6] = ["scheme", "host", "path", "query", "uri", "suffix"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths_start_with_a_slash_and_are_plain_ascii() {
        assert_eq!(check_route_path("/"), Ok(()));
        assert_eq!(check_route_path("/static/"), Ok(()));
        assert_eq!(check_route_path("/caf%C3%A9"), Ok(()));
        let missing = check_route_path("static").unwrap_err();
        assert_eq!(missing.hint.as_deref(), Some("write \"/static\""));
        assert!(check_route_path("").is_err());
        assert!(check_route_path("/a?b").is_err());
        assert!(check_route_path("/a#b").is_err());
        assert!(check_route_path("/a b").is_err());
        assert!(check_route_path("/café").is_err());
    }

    #[test]
    fn redirect_targets_use_known_placeholders_only() {
        assert_eq!(check_target("https://{host}/new{query}"), Ok(()));
        assert_eq!(check_target("{scheme}://example.com{uri}"), Ok(()));
        assert_eq!(check_target("/docs/{suffix}"), Ok(()));
        let unknown = check_target("https://{hots}/").unwrap_err();
        assert_eq!(
            unknown.message,
            "unknown placeholder `{hots}` in `https://{hots}/`"
        );
        assert!(check_target("https://{host").is_err());
        assert!(check_target("").is_err());
        assert!(check_target("  ").is_err());
        assert!(check_target("/a\nb").is_err());
        assert!(check_target("/é").is_err());
    }

    #[test]
    fn bodies_are_refused_only_where_http_forbids_them() {
        assert!(may_have_body(StatusCode::OK));
        assert!(may_have_body(StatusCode::NOT_FOUND));
        assert!(!may_have_body(StatusCode::CONTINUE));
        assert!(!may_have_body(StatusCode::NO_CONTENT));
        assert!(!may_have_body(StatusCode::NOT_MODIFIED));
    }
}
