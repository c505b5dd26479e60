//! Tests of the whole configuration path: text → schema → resolved settings, and the
//! diagnostics (with their line numbers) for each kind of mistake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Method, StatusCode};
use tempfile::TempDir;

use super::{Config, Diagnostic, Origin, demo, parse, resolve::resolve, units};
use crate::edge::{Handler, HostPattern, PathMatch};
use crate::telemetry::{AccessLog, LogFormat, LogTarget};

/// A folder holding `public/` (a root folder) and `file.txt`; configs are "written" there.
struct Folder {
    dir: TempDir,
}

impl Folder {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("public")).unwrap();
        std::fs::write(dir.path().join("file.txt"), "x").unwrap();
        Folder { dir }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("portico.toml")
    }

    fn parse(&self, text: &str) -> Config {
        match parse(text, &self.config_path()) {
            Ok(config) => config,
            Err(diagnostics) => panic!("the configuration was refused:\n{diagnostics}"),
        }
    }

    fn errors(&self, text: &str) -> Vec<Diagnostic> {
        match parse(text, &self.config_path()) {
            Ok(config) => panic!("the configuration was accepted: {config:#?}"),
            Err(diagnostics) => diagnostics.0,
        }
    }

    /// The one diagnostic for `text`, checked to be on `line`.
    fn error_on_line(&self, text: &str, line: usize) -> Diagnostic {
        let errors = self.errors(text);
        assert_eq!(errors.len(), 1, "expected one diagnostic: {errors:#?}");
        let error = errors.into_iter().next().unwrap();
        assert_eq!(error.line, Some(line), "wrong line: {error}");
        assert_eq!(error.path, self.config_path(), "{error}");
        error
    }

    fn canonical(&self, name: &str) -> PathBuf {
        self.dir.path().join(name).canonicalize().unwrap()
    }
}

/// A minimal valid site, to which a test appends what it checks.
const SITE: &str = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
[site.route.static]
root = "public"
"#;

/// A full example of the schema (every section, the handlers, units and placeholders).
const DRAFT_EXAMPLE: &str = r#"
[server]
workers = 2                  # worker processes; default "auto" (one per CPU)
threads = 4                  # runtime threads; default: one per CPU
single_process = false       # default false
log_level = "info"           # tracing filter; RUST_LOG wins when set

[access_log]                 # absent = no access log
path = "-"                   # "-" = stdout, "stderr", or a file path (relative to the config's folder)
format = "combined"          # "combined" (default) or "json"

[limits]                     # every key optional; defaults shown
max_header_size = "32k"      # request head bytes; more -> 431
max_headers = 100            # header fields; more -> 431
max_uri_length = "8k"        # request target bytes; longer -> 414
client_max_body_size = "1m"  # body bytes; larger -> 413 (before reading it / before 100 Continue)
client_header_timeout = "10s"
client_body_timeout = "60s"
keepalive_timeout = "75s"
send_timeout = "60s"
lingering_timeout = "5s"
max_connections = 16384      # more -> 503 + Retry-After, then close
max_requests_in_flight = 4096 # more -> 503 + Retry-After
shutdown_timeout = "10s"

[[site]]
name = "main"                         # default "site-N"
listen = ["127.0.0.1:8080"]           # required, at least one
hosts = ["example.com", "*.example.com"]  # default: any host
default = false                       # the site chosen when no host matches on a listener
maintenance = false                   # true: every request -> 503 + Retry-After

[[site.route]]
prefix = "/static/"          # or: exact = "/robots.txt" (one of them; neither = prefix "/")
methods = ["GET", "HEAD"]    # optional; default depends on the handler
trace = false                # true: TRACE echoes the request as message/http
[site.route.static]          # exactly one handler table per route: static, redirect or respond
root = "public"              # relative to the config file's folder; must exist and be a folder
index = ["index.html"]
listing = false
follow_symlinks_outside = false
precompressed = true
compress = true
strip_prefix = false         # true: map the path after `prefix` (nginx alias), else the whole path (nginx root)

[[site.route]]
exact = "/old"
redirect = { to = "https://{host}/new?{query}", status = 301 }   # 301 302 303 307 308; default 302

[[site.route]]
exact = "/health"
respond = { status = 200, body = "ok\n", headers = { "Content-Type" = "text/plain" } }  # status default 200
"#;

#[test]
fn draft_example_parses_and_resolves() {
    let folder = Folder::new();
    let config = folder.parse(DRAFT_EXAMPLE);

    assert_eq!(config.process.threads, Some(4));
    assert_eq!(config.process.workers, Some(2));
    assert!(!config.process.single_process);
    assert_eq!(config.telemetry.log_level.as_deref(), Some("info"));
    assert_eq!(
        config.telemetry.access_log,
        Some(AccessLog {
            target: LogTarget::Stdout,
            format: LogFormat::Combined
        })
    );
    let limits = &config.edge.limits;
    assert_eq!(limits.max_header_bytes, 32 * 1024);
    assert_eq!(limits.max_headers, 100);
    assert_eq!(limits.max_uri_bytes, 8 * 1024);
    assert_eq!(limits.max_body_bytes, 1024 * 1024);
    assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(limits.body_read_timeout, Duration::from_secs(60));
    assert_eq!(limits.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(limits.send_timeout, Duration::from_secs(60));
    assert_eq!(limits.linger_timeout, Duration::from_secs(5));
    assert_eq!(limits.max_connections, 16384);
    assert_eq!(limits.max_requests_in_flight, 4096);
    assert_eq!(limits.shutdown_timeout, Duration::from_secs(10));

    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(config.edge.listeners, vec![addr]);
    let [site] = config.edge.sites.as_slice() else {
        panic!("{:#?}", config.edge.sites)
    };
    assert_eq!(site.name, "main");
    assert_eq!(site.listen, vec![addr]);
    assert_eq!(
        site.hosts,
        vec![
            HostPattern::Exact("example.com".into()),
            HostPattern::Suffix(".example.com".into())
        ]
    );
    assert!(!site.default);
    assert!(!site.maintenance);

    let [files, old, health] = site.routes.as_slice() else {
        panic!("{:#?}", site.routes)
    };
    assert_eq!(files.path, PathMatch::Prefix("/static/".into()));
    assert_eq!(files.methods, Some(vec![Method::GET, Method::HEAD]));
    assert!(!files.trace);
    let Handler::Static(settings) = &files.handler else {
        panic!("{files:#?}")
    };
    assert_eq!(settings.root, folder.canonical("public"));
    assert_eq!(settings.index, vec!["index.html".to_string()]);
    assert!(!settings.listing && !settings.follow_symlinks_outside && !settings.strip_prefix);
    assert!(settings.precompressed && settings.compress);

    assert_eq!(old.path, PathMatch::Exact("/old".into()));
    assert_eq!(old.methods, None);
    let Handler::Redirect(redirect) = &old.handler else {
        panic!("{old:#?}")
    };
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.to, "https://{host}/new?{query}");

    assert_eq!(health.path, PathMatch::Exact("/health".into()));
    let Handler::Respond(respond) = &health.handler else {
        panic!("{health:#?}")
    };
    assert_eq!(respond.status, StatusCode::OK);
    assert_eq!(respond.body, "ok\n");
    assert_eq!(respond.headers["content-type"], "text/plain");
}

#[test]
fn defaults_apply_when_keys_are_omitted() {
    let folder = Folder::new();
    let config = folder.parse(SITE);
    assert_eq!(config.process.threads, None);
    assert_eq!(config.telemetry.log_level, None);
    assert_eq!(config.telemetry.access_log, None);
    let defaults = crate::edge::Limits::default();
    assert_eq!(config.edge.limits.max_body_bytes, defaults.max_body_bytes);
    assert_eq!(
        config.edge.limits.keepalive_timeout,
        defaults.keepalive_timeout
    );
    let site = &config.edge.sites[0];
    assert_eq!(site.name, "site-1");
    assert!(site.hosts.is_empty());
    let route = &site.routes[0];
    assert_eq!(route.path, PathMatch::Prefix("/".into()));
    assert_eq!(route.methods, None);
    let Handler::Static(settings) = &route.handler else {
        panic!("{route:#?}")
    };
    let expected = crate::files::Settings::new(folder.canonical("public"));
    assert_eq!(settings.index, expected.index);
    assert_eq!(settings.precompressed, expected.precompressed);

    let redirect = folder.parse(&format!(
        "{SITE}[[site.route]]\nexact = \"/a\"\nredirect = {{ to = \"/b\" }}\n"
    ));
    let Handler::Redirect(redirect) = &redirect.edge.sites[0].routes[1].handler else {
        panic!()
    };
    assert_eq!(redirect.status, StatusCode::FOUND);
    let respond = folder.parse(&format!(
        "{SITE}[[site.route]]\nexact = \"/a\"\nrespond = {{}}\n"
    ));
    let Handler::Respond(respond) = &respond.edge.sites[0].routes[1].handler else {
        panic!()
    };
    assert_eq!(respond.status, StatusCode::OK);
    assert!(respond.body.is_empty() && respond.headers.is_empty());
}

#[test]
fn unknown_key_gives_its_line_and_the_expected_keys() {
    let folder = Folder::new();
    let text = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
[site.route.static]
rooot = "public"
"#;
    let error = folder.error_on_line(text, 5);
    assert_eq!(error.column, Some(1));
    assert!(
        error
            .message
            .starts_with("unknown field `rooot`, expected one of `root`, `index`, "),
        "{error}"
    );
    assert_eq!(error.hint.as_deref(), Some("did you mean `root`?"));
    let shown = error.to_string();
    let expected_start = format!(
        "error: {}:5:1: unknown field `rooot`",
        folder.config_path().display()
    );
    assert!(shown.starts_with(&expected_start), "{shown}");
    assert!(shown.ends_with("\n  hint: did you mean `root`?"), "{shown}");
}

#[test]
fn unknown_top_level_table_is_refused() {
    let folder = Folder::new();
    let error = folder.error_on_line(&format!("{SITE}[sever]\nthreads = 2\n"), 6);
    assert!(error.message.contains("unknown field `sever`"), "{error}");
    assert_eq!(error.hint.as_deref(), Some("did you mean `server`?"));
}

#[test]
fn toml_syntax_and_type_errors_have_line_and_column() {
    let folder = Folder::new();
    let error = folder.error_on_line("[server]\nthreads = \n", 2);
    assert_eq!(error.column, Some(11));
    let error = folder.error_on_line("[server]\nthreads = \"four\"\n", 2);
    assert!(error.message.contains("invalid type"), "{error}");
    let error = folder.error_on_line(&format!("{SITE}[limits]\nmax_header_size = 1.5\n"), 7);
    assert!(error.message.contains("an integer or a string"), "{error}");
    let error = folder.error_on_line("[server]\nthreads = 2\nthreads = 3\n", 3);
    assert!(error.message.contains("duplicate key"), "{error}");
}

#[test]
fn listen_must_be_ip_and_port_and_present() {
    let folder = Folder::new();
    let error = folder.error_on_line(&SITE.replace("127.0.0.1:8080", "localhost:8080"), 2);
    assert_eq!(
        error.message,
        "`localhost:8080` is not an IP address and port"
    );
    assert!(error.hint.is_some());

    let error = folder.error_on_line(&SITE.replace(r#"["127.0.0.1:8080"]"#, "[]"), 2);
    assert!(error.message.contains("empty `listen`"), "{error}");

    let text = "\n[[site]]\nname = \"blog\"\n[[site.route]]\nrespond = {}\n";
    let error = folder.error_on_line(text, 2);
    assert_eq!(error.message, "site `blog` has no `listen`");
}

#[test]
fn hosts_are_checked_and_normalised() {
    let folder = Folder::new();
    let text = SITE.replace(
        "listen =",
        "hosts = [\"WWW.Example.com\", \"*.Example.org\"]\nlisten =",
    );
    let config = folder.parse(&text);
    assert_eq!(
        config.edge.sites[0].hosts,
        vec![
            HostPattern::Exact("www.example.com".into()),
            HostPattern::Suffix(".example.org".into())
        ]
    );

    let text = r#"[[site]]
listen = ["127.0.0.1:8080"]
hosts = [
  "good.example",
  "bad host",
  "",
  "good.example",
]
"#;
    let errors = folder.errors(&format!("{text}[[site.route]]\nrespond = {{}}\n"));
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(5), Some(6), Some(7)], "{errors:#?}");
    assert!(errors[2].message.contains("listed twice"), "{}", errors[2]);
}

#[test]
fn route_may_not_have_both_exact_and_prefix() {
    let folder = Folder::new();
    let text = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
exact = "/a"
prefix = "/b"
respond = {}
"#;
    let error = folder.error_on_line(text, 5);
    assert_eq!(error.message, "a route has both `exact` and `prefix`");
}

#[test]
fn route_paths_must_start_with_a_slash() {
    let folder = Folder::new();
    let text = SITE.replace("[[site.route]]\n", "[[site.route]]\nprefix = \"static/\"\n");
    let error = folder.error_on_line(&text, 4);
    assert!(
        error
            .message
            .starts_with("`prefix` `static/` does not start with `/`"),
        "{error}"
    );
    assert_eq!(error.hint.as_deref(), Some("write \"/static/\""));
}

#[test]
fn route_needs_exactly_one_handler_and_the_error_names_its_line() {
    let folder = Folder::new();
    let none = r#"[[site]]
listen = ["127.0.0.1:8080"]

[[site.route]]
exact = "/nothing"
"#;
    let error = folder.error_on_line(none, 4);
    assert_eq!(error.message, "the route has no handler");

    let two = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
exact = "/two"
respond = { status = 204 }
redirect = { to = "/" }
"#;
    let error = folder.error_on_line(two, 3);
    assert_eq!(
        error.message,
        "the route has 2 handlers (`redirect`, `respond`)"
    );
}

#[test]
fn static_root_must_exist_and_be_a_folder() {
    let folder = Folder::new();
    let error = folder.error_on_line(&SITE.replace("\"public\"", "\"missing\""), 5);
    let missing = folder.dir.path().join("missing");
    assert_eq!(
        error.message,
        format!("static root `{}` does not exist", missing.display())
    );
    let hint = error.hint.unwrap();
    assert!(
        hint.contains("relative to the configuration file's folder"),
        "{hint}"
    );

    let error = folder.error_on_line(&SITE.replace("\"public\"", "\"file.txt\""), 5);
    assert!(error.message.ends_with("is not a folder"), "{error}");

    let error = folder.error_on_line(&SITE.replace("root = \"public\"\n", "listing = true\n"), 4);
    assert_eq!(error.message, "`static` has no `root`");

    let absolute = folder.dir.path().join("public");
    let text = SITE.replace(
        "\"public\"",
        &format!("{:?}", absolute.display().to_string()),
    );
    let config = folder.parse(&text);
    let Handler::Static(settings) = &config.edge.sites[0].routes[0].handler else {
        panic!()
    };
    assert_eq!(settings.root, folder.canonical("public"));
}

#[test]
fn index_names_cannot_leave_the_folder() {
    let folder = Folder::new();
    let text = format!("{SITE}index = [\"index.html\", \"../secret\", \"..\", \"\"]\n");
    let errors = folder.errors(&text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors.iter().all(|e| e.line == Some(6)), "{errors:#?}");
}

#[test]
fn redirect_status_and_target_are_checked() {
    let folder = Folder::new();
    let text = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
exact = "/a"
redirect = { to = "/b", status = 305 }
[[site.route]]
exact = "/c"
redirect = { to = "" }
[[site.route]]
exact = "/d"
redirect = { status = 301 }
[[site.route]]
exact = "/e"
redirect = { to = "https://{hots}/" }
"#;
    let errors = folder.errors(text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![Some(5), Some(8), Some(11), Some(14)],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "305 is not a redirect status");
    assert_eq!(errors[1].message, "the redirect `to` is empty");
    assert_eq!(errors[2].message, "`redirect` has no `to`");
    assert!(
        errors[3]
            .message
            .starts_with("unknown placeholder `{hots}`"),
        "{}",
        errors[3]
    );
}

#[test]
fn respond_status_and_headers_are_checked() {
    let folder = Folder::new();
    let text = r#"[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
exact = "/a"
respond = { status = 600 }
[[site.route]]
exact = "/b"
[site.route.respond]
status = 200
body = "x"
headers = { "Bad Name" = "v", "X-Ok" = "line\nbreak", "Content-Length" = "1" }
[[site.route]]
exact = "/c"
respond = { status = 204, body = "not allowed" }
"#;
    let errors = folder.errors(text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![Some(5), Some(11), Some(11), Some(11), Some(14)],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "600 is not an HTTP status");
    assert_eq!(errors[4].message, "a 204 response cannot have a body");
    let messages: Vec<_> = errors[1..4].iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"`Bad Name` is not a valid header name"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"`Content-Length` cannot be set in `respond`"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"the value of header `X-Ok` is not valid"),
        "{messages:?}"
    );
}

#[test]
fn methods_are_upper_cased_tokens() {
    let folder = Folder::new();
    let text = SITE.replace(
        "[[site.route]]\n",
        "[[site.route]]\nmethods = [\"get\", \"PURGE\", \"GET\"]\n",
    );
    let config = folder.parse(&text);
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert_eq!(
        config.edge.sites[0].routes[0].methods,
        Some(vec![Method::GET, purge])
    );

    let text = SITE.replace(
        "[[site.route]]\n",
        "[[site.route]]\nmethods = [\"GET\", \"GE T\"]\n",
    );
    let error = folder.error_on_line(&text, 4);
    assert_eq!(error.message, "`GE T` is not a valid method");

    let text = SITE.replace("[[site.route]]\n", "[[site.route]]\nmethods = []\n");
    let error = folder.error_on_line(&text, 3);
    assert!(error.message.starts_with("`methods` is empty"), "{error}");
}

#[test]
fn two_default_sites_on_one_listener_are_refused() {
    let folder = Folder::new();
    let text = r#"[[site]]
name = "a"
listen = ["127.0.0.1:8080"]
default = true
[[site.route]]
respond = {}

[[site]]
name = "b"
listen = ["127.0.0.1:9090", "127.0.0.1:8080"]
hosts = ["b.example"]
default = true
[[site.route]]
respond = {}

[[site]]
name = "c"
listen = ["127.0.0.1:7070"]
default = true
[[site.route]]
respond = {}
"#;
    let error = folder.error_on_line(text, 12);
    assert_eq!(
        error.message,
        "sites `a` and `b` are both default on 127.0.0.1:8080"
    );
}

#[test]
fn the_same_host_twice_on_one_listener_is_refused() {
    let folder = Folder::new();
    let text = r#"[[site]]
name = "a"
listen = ["127.0.0.1:8080"]
hosts = ["example.com", "*.example.com"]
[[site.route]]
respond = {}

[[site]]
name = "b"
listen = ["127.0.0.1:9090"]
hosts = ["EXAMPLE.com"]
[[site.route]]
respond = {}

[[site]]
name = "c"
listen = ["127.0.0.1:8080"]
hosts = ["other.example", "*.Example.com"]
[[site.route]]
respond = {}
"#;
    let error = folder.error_on_line(text, 18);
    assert_eq!(
        error.message,
        "host `*.Example.com` is already answered on 127.0.0.1:8080 by site `a`"
    );
    assert_eq!(error.column, Some(27));
}

#[test]
fn two_sites_for_any_host_on_one_listener_are_refused() {
    let folder = Folder::new();
    let text = format!("{SITE}\n{SITE}");
    let error = folder.error_on_line(&text, 7);
    assert_eq!(
        error.message,
        "sites `site-1` and `site-2` both answer any host on 127.0.0.1:8080"
    );
}

#[test]
fn listeners_are_unique_in_order_of_first_appearance() {
    let folder = Folder::new();
    let text = r#"[[site]]
listen = ["127.0.0.1:9000", "[::1]:9001", "127.0.0.1:9000"]
hosts = ["a.example"]
[[site.route]]
respond = {}
[[site]]
listen = ["127.0.0.1:9002", "[::1]:9001"]
hosts = ["b.example"]
[[site.route]]
respond = {}
"#;
    let config = folder.parse(text);
    let expected: Vec<SocketAddr> = ["127.0.0.1:9000", "[::1]:9001", "127.0.0.1:9002"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(config.edge.listeners, expected);
    assert_eq!(config.edge.sites[0].listen, expected[..2]);
}

#[test]
fn limits_must_parse_and_be_above_zero() {
    let folder = Folder::new();
    let text = format!(
        r#"{SITE}[limits]
max_header_size = "16k"
client_max_body_size = "10 MiB"
keepalive_timeout = "500ms"
max_connections = 10
"#
    );
    let limits = folder.parse(&text).edge.limits;
    assert_eq!(limits.max_header_bytes, 16 * 1024);
    assert_eq!(limits.max_body_bytes, 10 << 20);
    assert_eq!(limits.keepalive_timeout, Duration::from_millis(500));
    assert_eq!(limits.max_connections, 10);
    assert_eq!(
        limits.send_timeout,
        crate::edge::Limits::default().send_timeout
    );

    let text = format!(
        r#"{SITE}[limits]
max_header_size = "16q"
max_headers = 0
client_max_body_size = -1
client_body_timeout = "0s"
send_timeout = "10sec"
max_connections = -5
"#
    );
    let errors = folder.errors(&text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![Some(7), Some(8), Some(9), Some(10), Some(11), Some(12)],
        "{errors:#?}"
    );
    assert_eq!(
        errors[0].message,
        "invalid `max_header_size`: unknown unit `q`"
    );
    assert_eq!(errors[0].hint.as_deref(), Some(units::SIZE_HINT));
    assert_eq!(errors[1].message, "`max_headers` must be above zero");
    assert_eq!(
        errors[2].message,
        "invalid `client_max_body_size`: `-1` is negative"
    );
    assert_eq!(
        errors[3].message,
        "`client_body_timeout` must be above zero"
    );
    assert_eq!(errors[4].hint.as_deref(), Some(units::DURATION_HINT));
    assert_eq!(errors[5].message, "`max_connections` must be above zero");
}

#[test]
fn server_section_is_checked() {
    let folder = Folder::new();
    let error = folder.error_on_line(&format!("[server]\nthreads = 0\n{SITE}"), 2);
    assert_eq!(error.message, "`threads` must be at least 1, not 0");
    let error = folder.error_on_line(&format!("[server]\nlog_level = \" \"\n{SITE}"), 2);
    assert_eq!(error.message, "`log_level` is empty");
    let error = folder.error_on_line(
        &format!("[server]\nlog_level = \"portico=loud\"\n{SITE}"),
        2,
    );
    assert!(
        error
            .message
            .starts_with("`log_level` is not a valid filter"),
        "{error}"
    );
    let config = folder.parse(&format!(
        "[server]\nlog_level = \"portico=debug,info\"\n{SITE}"
    ));
    assert_eq!(
        config.telemetry.log_level.as_deref(),
        Some("portico=debug,info")
    );
}

#[test]
fn access_log_paths_are_relative_to_the_config_folder() {
    let folder = Folder::new();
    let config = folder.parse(&format!(
        "[access_log]\npath = \"access.log\"\nformat = \"json\"\n{SITE}"
    ));
    let expected = folder.dir.path().join("access.log");
    assert_eq!(
        config.telemetry.access_log,
        Some(AccessLog {
            target: LogTarget::File(expected),
            format: LogFormat::Json
        })
    );
    let config = folder.parse(&format!("[access_log]\npath = \"stderr\"\n{SITE}"));
    assert_eq!(
        config.telemetry.access_log.unwrap().target,
        LogTarget::Stderr
    );
    let config = folder.parse(&format!("[access_log]\n{SITE}"));
    assert_eq!(
        config.telemetry.access_log.unwrap().target,
        LogTarget::Stdout
    );

    let text = format!("[access_log]\npath = \"nowhere/access.log\"\nformat = \"xml\"\n{SITE}");
    let errors = folder.errors(&text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![Some(2), Some(3)], "{errors:#?}");
    assert!(
        errors[0].message.contains("does not exist"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1].message, "unknown access log format `xml`");
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let folder = Folder::new();
    let text = r#"[server]
threads = 0

[limits]
keepalive_timeout = "forever"

[[site]]
listen = ["nowhere"]
hosts = ["a b"]

[[site.route]]
prefix = "static"
[site.route.static]
root = "missing"

[[site.route]]
exact = "/x"
"#;
    let errors = folder.errors(text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![
            Some(2),
            Some(5),
            Some(8),
            Some(9),
            Some(12),
            Some(14),
            Some(16)
        ]
    );
    let shown = super::Diagnostics(errors).to_string();
    assert_eq!(shown.matches("error: ").count(), 7, "{shown}");
    assert!(
        shown
            .lines()
            .all(|l| l.starts_with("error: ") || l.starts_with("  hint: ")),
        "{shown}"
    );
}

#[test]
fn a_configuration_without_sites_is_refused_without_a_line() {
    let folder = Folder::new();
    let errors = folder.errors("[server]\nthreads = 2\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, None);
    let expected = format!(
        "error: {}: there is no [[site]]",
        folder.config_path().display()
    );
    assert!(
        errors[0].to_string().starts_with(&expected),
        "{}",
        errors[0]
    );
}

#[test]
fn relative_roots_start_at_the_config_folder_not_the_current_one() {
    let folder = Folder::new();
    std::fs::create_dir_all(folder.dir.path().join("etc/site")).unwrap();
    let path = folder.dir.path().join("etc/portico.toml");
    let config = parse(&SITE.replace("\"public\"", "\"site\""), &path).unwrap();
    let Handler::Static(settings) = &config.edge.sites[0].routes[0].handler else {
        panic!()
    };
    assert_eq!(settings.root, folder.canonical("etc/site"));
    let config = parse(&SITE.replace("\"public\"", "\"../public\""), &path).unwrap();
    let Handler::Static(settings) = &config.edge.sites[0].routes[0].handler else {
        panic!()
    };
    assert_eq!(settings.root, folder.canonical("public"));
}

#[test]
fn load_reports_an_unreadable_file() {
    let folder = Folder::new();
    let diagnostics = super::load(&folder.config_path()).unwrap_err();
    assert_eq!(diagnostics.0[0].line, None);
    assert!(
        diagnostics
            .to_string()
            .contains("cannot read the configuration"),
        "{diagnostics}"
    );
}

#[test]
fn demo_resolves_with_its_routes_and_its_test_origin() {
    let folder = Folder::new();
    let config = resolve(
        &demo::demo(&folder.dir.path().join("public"), None),
        Origin::Demo,
    )
    .unwrap();
    let mut listeners = vec![demo::DEMO_LISTEN.parse::<SocketAddr>().unwrap()];
    listeners.extend(demo::DEMO_ORIGIN_LISTEN.map(|a| a.parse::<SocketAddr>().unwrap()));
    assert_eq!(config.edge.listeners, listeners);
    let site = &config.edge.sites[0];
    assert_eq!(site.name, "welcome");
    assert!(site.default);
    let [files, health, docs, origin] = site.routes.as_slice() else {
        panic!("{site:#?}")
    };
    assert_eq!(origin.path, PathMatch::Prefix("/origin/".into()));
    let Handler::Proxy(proxy) = &origin.handler else {
        panic!()
    };
    assert!(proxy.strip_prefix);
    let upstream = &config.edge.upstreams[proxy.upstream];
    assert_eq!(upstream.pool.members.len(), 2);
    assert!(upstream.pool.active.is_some());
    let test_origin = &config.edge.sites[1];
    assert!(matches!(test_origin.routes[0].handler, Handler::Httpbin));
    let cache = config.edge.cache.as_ref().unwrap();
    assert_eq!(cache.disk.as_ref().unwrap().max_bytes, 256 << 20);
    assert_eq!(
        config.admin.as_ref().unwrap().listen,
        demo::DEMO_ADMIN_LISTEN.parse::<SocketAddr>().unwrap()
    );
    assert_eq!(files.path, PathMatch::Prefix("/".into()));
    let Handler::Static(settings) = &files.handler else {
        panic!()
    };
    assert!(!settings.listing);
    assert_eq!(health.path, PathMatch::Exact("/healthz".into()));
    let Handler::Respond(respond) = &health.handler else {
        panic!()
    };
    assert_eq!(
        (respond.status, respond.body.as_ref()),
        (StatusCode::OK, &b"ok\n"[..])
    );
    assert_eq!(respond.headers["content-type"], "text/plain");
    assert_eq!(docs.path, PathMatch::Exact("/docs".into()));
    let Handler::Redirect(redirect) = &docs.handler else {
        panic!()
    };
    assert_eq!(
        (redirect.status, redirect.to.as_str()),
        (StatusCode::FOUND, "/")
    );
}

#[test]
fn the_demo_over_https_publishes_the_local_ca_revocation_list() {
    let folder = Folder::new();
    let ca = crate::tls::local_ca::LocalCa::open_or_create(folder.dir.path()).unwrap();
    let leaf = ca
        .issue(&["localhost".to_string()], folder.dir.path(), None)
        .unwrap();
    let crl_root = folder.dir.path().join("crl");
    std::fs::create_dir(&crl_root).unwrap();
    let tls = demo::DemoTls {
        cert: &leaf.cert_path,
        key: &leaf.key_path,
        crl_root: &crl_root,
    };
    let config = resolve(
        &demo::demo(&folder.dir.path().join("public"), Some(tls)),
        Origin::Demo,
    )
    .unwrap();
    let site = &config.edge.sites[0];
    let crl = site
        .routes
        .iter()
        .find(|r| r.path == PathMatch::Prefix("/.well-known/portico/".into()))
        .expect("a route for the revocation list");
    let Handler::Static(settings) = &crl.handler else {
        panic!("{crl:#?}")
    };
    assert!(settings.strip_prefix && !settings.listing);
    assert_eq!(settings.root, crl_root.canonicalize().unwrap());
    assert_eq!(
        crate::tls::local_ca::CRL_PATH,
        "/.well-known/portico/local-ca.crl"
    );
}

#[test]
fn reverse_proxy_resolves_and_reports_a_bad_origin_as_the_command_line() {
    let options = demo::ReverseProxy {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: None,
        policy: Some("least_conn".into()),
        health_path: Some("/healthz".into()),
        change_host_header: true,
        cache: false,
    };
    let to = ["http://127.0.0.1:3000".to_string(), "127.0.0.1:3001".into()];
    let config = resolve(&demo::reverse_proxy(&to, &options), Origin::CommandLine).unwrap();
    let upstream = &config.edge.upstreams[0];
    assert_eq!(upstream.pool.members.len(), 2);
    assert_eq!(upstream.pool.policy, crate::lb::Policy::LeastConn);
    assert_eq!(upstream.pool.active.as_ref().unwrap().path, "/healthz");
    let Handler::Proxy(proxy) = &config.edge.sites[0].routes[0].handler else {
        panic!()
    };
    assert_eq!(proxy.host, crate::proxy::HostHeader::Upstream);

    let diagnostics = resolve(
        &demo::reverse_proxy(&["localhost".to_string()], &options),
        Origin::CommandLine,
    )
    .unwrap_err();
    assert_eq!(
        diagnostics.to_string(),
        "error: (command line): `localhost` has no port\n  \
         hint: write \"localhost:80\" or \"http://localhost\"\n"
    );
}

#[test]
fn file_server_resolves_and_reports_flags_as_the_command_line() {
    let folder = Folder::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let raw = demo::file_server(
        &folder.dir.path().join("public"),
        listen,
        Some(2),
        true,
        None,
    );
    let config = resolve(&raw, Origin::CommandLine).unwrap();
    assert_eq!(config.process.threads, Some(2));
    assert_eq!(config.edge.listeners, vec![listen]);
    let Handler::Static(settings) = &config.edge.sites[0].routes[0].handler else {
        panic!()
    };
    assert!(settings.listing);
    assert_eq!(settings.root, folder.canonical("public"));

    let raw = demo::file_server(
        Path::new("/no/such/portico/root"),
        listen,
        Some(0),
        false,
        None,
    );
    let diagnostics = resolve(&raw, Origin::CommandLine).unwrap_err();
    assert_eq!(
        diagnostics.to_string(),
        "error: (command line): `threads` must be at least 1, not 0\n  \
         hint: omit `threads` to run one per CPU\n\
         error: (command line): static root `/no/such/portico/root` does not exist\n  \
         hint: `root` is relative to the current folder; create the folder or fix the path\n"
    );
}

/// A quick, deterministic taste of the fuzz target's invariant (`fuzz/fuzz_targets/config.rs`):
/// every seed, and every prefix of it, gives a configuration or diagnostics, never a panic.
#[test]
fn fuzz_seeds_and_their_prefixes_never_panic() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
    let path = Path::new("/nonexistent/portico-test/portico.toml");
    let mut count = 0;
    for entry in std::fs::read_dir(seeds).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for end in (0..=text.len()).filter(|&end| text.is_char_boundary(end)) {
            if let Err(diagnostics) = parse(&text[..end], path) {
                assert!(!diagnostics.0.is_empty());
                assert!(
                    diagnostics
                        .0
                        .iter()
                        .all(|d| d.line.is_none_or(|line| line >= 1))
                );
            }
        }
        count += 1;
    }
    assert!(count >= 5, "expected at least 5 seeds, found {count}");
}

#[test]
fn acme_sites_are_resolved_with_their_names_and_the_ca() {
    let folder = Folder::new();
    let config = folder.parse(
        r#"
[acme]
directory = "https://acme.example/dir"
email = "ops@example.com"
renew_before = "240h"
[[site]]
hosts = ["a.example", "www.a.example"]
listen = ["127.0.0.1:80"]
listen_tls = ["127.0.0.1:443"]
[site.tls]
acme = true
[[site.route]]
static = { root = "public" }
"#,
    );
    let acme = config.acme.expect("ACME settings");
    assert_eq!(acme.directory, "https://acme.example/dir");
    assert_eq!(acme.contact, ["mailto:ops@example.com"]);
    assert_eq!(acme.renew_before, Some(Duration::from_secs(240 * 3600)));
    assert_eq!(acme.certificates.len(), 1);
    assert_eq!(acme.certificates[0].names, ["a.example", "www.a.example"]);
    // Let's Encrypt by default, and nothing managed without an ACME site.
    let config = folder.parse(
        r#"
[[site]]
hosts = ["a.example"]
listen = ["127.0.0.1:80"]
listen_tls = ["127.0.0.1:443"]
[site.tls]
acme = true
[[site.route]]
static = { root = "public" }
"#,
    );
    assert_eq!(
        config.acme.unwrap().directory,
        crate::tls::acme::LETS_ENCRYPT
    );
    let config = folder.parse(
        "[acme]\nemail = \"a@b.example\"\n[[site]]\nlisten = [\"127.0.0.1:80\"]\n[[site.route]]\nstatic = { root = \"public\" }\n",
    );
    assert!(config.acme.is_none());
}

#[test]
fn acme_mistakes_are_reported_at_their_line() {
    let folder = Folder::new();
    let site = |hosts: &str, tls: &str, listen: &str| {
        format!(
            "[[site]]\nhosts = [{hosts}]\n{listen}listen_tls = [\"127.0.0.1:443\"]\n[site.tls]\n{tls}\n[[site.route]]\nstatic = {{ root = \"public\" }}\n"
        )
    };
    let plain = "listen = [\"127.0.0.1:80\"]\n";
    let e = folder.error_on_line(&site("\"*.a.example\"", "acme = true", plain), 6);
    assert!(e.message.contains("wildcard"), "{e}");
    let e = folder.error_on_line(&site("\"127.0.0.9\"", "acme = true", plain), 6);
    assert!(e.message.contains("address"), "{e}");
    let e = folder.error_on_line(&site("", "acme = true", plain), 6);
    assert!(e.message.contains("no `hosts`"), "{e}");
    let e = folder.error_on_line(
        &site("\"a.example\"", "acme = true\ncert = \"file.txt\"", plain),
        7,
    );
    assert!(
        e.message.contains("both `acme = true` and a certificate"),
        "{e}"
    );
    let e = folder.error_on_line(&site("\"a.example\"", "acme = true", ""), 1);
    assert!(e.message.contains("no site listens on plain HTTP"), "{e}");
    let with_acme = |table: &str| {
        format!(
            "[acme]\n{table}\n{}",
            site("\"a.example\"", "acme = true", plain)
        )
    };
    let e = folder.error_on_line(&with_acme("directory = \"http://acme.example/dir\""), 2);
    assert!(e.message.contains("https:// URL"), "{e}");
    let e = folder.error_on_line(&with_acme("email = \"not an address\""), 2);
    assert!(e.message.contains("`email`"), "{e}");
    let e = folder.error_on_line(&with_acme("ca_root = \"missing.pem\""), 2);
    assert!(e.message.contains("cannot read"), "{e}");
    let e = folder.error_on_line(&with_acme("renew_before = \"soon\""), 2);
    assert!(e.message.contains("renew_before"), "{e}");
}

#[test]
fn upstreams_resolve_with_their_members_policy_and_checks() {
    let folder = Folder::new();
    let text = r#"[[upstream]]
name = "app"
servers = ["127.0.0.1:9001", { addr = "http://app.internal", weight = 3 }]
policy = "hash"
hash_key = "header:X-User"
retries = 2
max_fails = 0
[upstream.health]
path = "/healthz"
interval = "1s"
fall = 1

[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
prefix = "/api/"
proxy = { upstream = "app", host = "upstream", strip_prefix = true, trusted_proxies = ["10.0.0.0/8", "::1"] }
"#;
    let config = folder.parse(text);
    let [upstream] = config.edge.upstreams.as_slice() else {
        panic!("{:#?}", config.edge.upstreams);
    };
    let members: Vec<(String, u32)> = upstream
        .pool
        .members
        .iter()
        .map(|m| (m.authority.to_string(), m.weight))
        .collect();
    assert_eq!(
        members,
        vec![("127.0.0.1:9001".into(), 1), ("app.internal:80".into(), 3)]
    );
    assert_eq!(
        upstream.pool.policy,
        crate::lb::Policy::Hash(crate::lb::HashKey::Header(http::HeaderName::from_static(
            "x-user"
        )))
    );
    assert_eq!(upstream.retries, 2);
    assert_eq!(upstream.pool.passive.max_fails, 0);
    let active = upstream.pool.active.as_ref().unwrap();
    assert_eq!(
        (
            active.path.as_str(),
            active.interval,
            active.rise,
            active.fall
        ),
        ("/healthz", Duration::from_secs(1), 2, 1)
    );
    let Handler::Proxy(proxy) = &config.edge.sites[0].routes[0].handler else {
        panic!("not a proxy route");
    };
    assert_eq!(proxy.upstream, 0);
    assert_eq!(proxy.host, crate::proxy::HostHeader::Upstream);
    assert!(proxy.strip_prefix);
    assert!(proxy.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    assert!(proxy.trusted_proxies.contains("::1".parse().unwrap()));
    assert!(!proxy.trusted_proxies.contains("192.0.2.1".parse().unwrap()));
}

#[test]
fn upstream_mistakes_are_reported_at_their_lines() {
    let folder = Folder::new();
    let text = r#"[[upstream]]
name = "app"
servers = ["127.0.0.1", { addr = "127.0.0.1:1", weight = 0 }]
policy = "fastest"
[[upstream]]
name = "app"
servers = []
[[upstream]]
name = "other"
servers = ["127.0.0.1:2"]
hash_key = "uri"
[upstream.health]
status = 700

[[site]]
listen = ["127.0.0.1:8080"]
[[site.route]]
proxy = { upstream = "missing", host = "a\u0001b", trusted_proxies = ["10.0.0.0/33"] }
"#;
    let errors = folder.errors(text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![
            Some(3),
            Some(3),
            Some(4),
            Some(6),
            Some(7),
            Some(11),
            Some(13),
            Some(18),
            Some(18),
            Some(18)
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "`127.0.0.1` has no port");
    assert_eq!(errors[1].message, "a server's `weight` is 1 to 100");
    assert_eq!(errors[2].message, "unknown policy `fastest`");
    assert_eq!(errors[3].message, "upstream `app` is defined twice");
    assert_eq!(errors[4].message, "`servers` is empty");
    assert_eq!(
        errors[5].message,
        "`hash_key` is only used with policy = \"hash\""
    );
    assert_eq!(errors[6].message, "700 is not an HTTP status");
    assert_eq!(errors[7].message, "no upstream is named `missing`");
    assert_eq!(
        errors[7].hint.as_deref(),
        Some("known upstreams: app, other")
    );
}

#[test]
fn an_unknown_key_in_a_server_table_is_named() {
    let folder = Folder::new();
    let text = "[[upstream]]\nname = \"a\"\nservers = [{ adr = \"127.0.0.1:1\" }]\n";
    let error = folder.error_on_line(text, 3);
    assert!(error.message.starts_with("unknown field `adr`"), "{error}");
    assert_eq!(error.hint.as_deref(), Some("did you mean `addr`?"));
}

#[test]
fn forward_proxy_allow_lists_are_checked() {
    let folder = Folder::new();
    let text = format!(
        "{SITE}[[site]]\nlisten = [\"127.0.0.1:3128\"]\n[site.forward_proxy]\nallow = [\"example.com:443\", \"example.com\", \"[::1]:*\"]\nidle_timeout = \"0s\"\n"
    );
    let errors = folder.errors(&text);
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "`example.com` needs a host and a port",
            "`idle_timeout` must be above zero"
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[0].line, Some(9));
}

#[test]
fn the_cache_is_resolved_when_a_proxy_route_uses_it() {
    let folder = Folder::new();
    let text = |cache_table: &str, cache: bool| {
        format!(
            "{cache_table}[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9000\"]\n[[site]]\nlisten = [\"127.0.0.1:80\"]\n[[site.route]]\nproxy = {{ upstream = \"app\", cache = {cache} }}\n"
        )
    };
    assert!(folder.parse(&text("", false)).edge.cache.is_none());
    let defaults = folder.parse(&text("", true)).edge.cache.unwrap();
    assert_eq!(defaults, crate::cache::Settings::default());
    let table = "[cache]\nmemory = \"8m\"\nlock_timeout = \"2s\"\ngrace = \"1h\"\n";
    let set = folder.parse(&text(table, true)).edge.cache.unwrap();
    assert_eq!(set.memory_bytes, 8 << 20);
    assert_eq!(set.lock_timeout, Duration::from_secs(2));
    assert_eq!(set.grace, Duration::from_secs(3600));
    let e = folder.error_on_line(&text("[cache]\nmemory = 0\n", true), 2);
    assert!(e.message.contains("memory"), "{e}");
}

#[test]
fn the_disk_cache_has_a_size_and_a_folder() {
    let folder = Folder::new();
    let text = |cache_table: &str| {
        format!(
            "[cache]\n{cache_table}[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9000\"]\n[[site]]\nlisten = [\"127.0.0.1:80\"]\n[[site.route]]\nproxy = {{ upstream = \"app\", cache = true }}\n"
        )
    };
    let cache = |table: &str| folder.parse(&text(table)).edge.cache.unwrap();
    assert_eq!(cache("").disk, None);
    assert_eq!(cache("disk = \"0\"\n").disk, None);
    assert_eq!(cache("disk = 0\ndisk_path = \"c\"\n").disk, None);
    // Without `disk_path`, the data directory's `cache` folder, once attached.
    let mut config = folder.parse(&text("disk = \"1g\"\n"));
    let disk = config.edge.cache.as_ref().unwrap().disk.clone().unwrap();
    assert_eq!(disk.max_bytes, 1 << 30);
    assert_eq!(disk.path, None);
    config.attach(Path::new("/var/lib/portico"));
    let attached = config.edge.cache.unwrap().disk.unwrap();
    assert_eq!(
        attached.path.as_deref(),
        Some(Path::new("/var/lib/portico/cache"))
    );
    // Relative to the configuration's folder, and kept by attach.
    let mut config = folder.parse(&text("disk = 4096\ndisk_path = \"disk-cache\"\n"));
    config.attach(Path::new("/var/lib/portico"));
    let disk = config.edge.cache.unwrap().disk.unwrap();
    assert_eq!(disk.max_bytes, 4096);
    assert_eq!(disk.path, Some(folder.dir.path().join("disk-cache")));
    // Mistakes, at their line.
    let e = folder.error_on_line(&text("memory = \"8m\"\ndisk = \"1z\"\n"), 3);
    assert!(e.message.contains("invalid `disk`"), "{e}");
    assert!(
        e.hint.as_deref().unwrap_or("").contains("no disk tier"),
        "{e}"
    );
    let e = folder.error_on_line(&text("disk = -5\n"), 2);
    assert!(e.message.contains("negative"), "{e}");
    let e = folder.error_on_line(&text("disk = \"1g\"\ndisk_path = \"file.txt\"\n"), 3);
    assert!(e.message.contains("not a folder"), "{e}");
    let e = folder.error_on_line(&text("disk = \"1g\"\ndisk_path = \"\"\n"), 3);
    assert!(e.message.contains("empty"), "{e}");
}
