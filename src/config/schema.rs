//! The raw configuration schema: serde structs that mirror the TOML file key for key.
//!
//! Every table refuses unknown keys (`deny_unknown_fields`) so a typo is an error with a line,
//! never a silently ignored setting. Values are kept as written: almost every key is optional
//! here and checked in `resolve`, which collects every problem at once, whereas serde stops at
//! the first. Values whose problems must point at a line are [`Spanned`].
//!
//! The field docs are the reference text of each key (units, default, effect).
//!
//! Quick starts and the built-in demo build these structs in code (see `demo`): every struct
//! has `Default`, and [`unspanned`] wraps a value that has no place in a file; resolution then
//! names the [`Origin`] instead of a line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::units::Quantity;
use super::{Diagnostics, Origin};

/// A whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the process.
    #[serde(default)]
    pub server: Server,
    /// `[access_log]`: absent = no access log.
    pub access_log: Option<AccessLog>,
    /// `[limits]`: limits and timeouts that protect the server from clients.
    #[serde(default)]
    pub limits: Limits,
    /// `[cache]`: the shared HTTP cache of `proxy` routes with `cache = true`.
    pub cache: Option<Spanned<CacheTable>>,
    /// `[acme]`: the certificate authority for sites with `[site.tls] acme = true`.
    pub acme: Option<Spanned<Acme>>,
    /// `[admin]`: the admin API (purges, status), served by the master. Absent = none.
    pub admin: Option<Spanned<Admin>>,
    /// `[[site]]`: the sites, in order. At least one.
    #[serde(default)]
    pub site: Vec<Spanned<Site>>,
    /// `[[upstream]]`: pools of origin servers that `proxy` routes forward to.
    #[serde(default)]
    pub upstream: Vec<Spanned<Upstream>>,
}

/// `[cache]`: the shared cache's sizes, folder and waits. Each worker process has its own
/// memory tier of `memory` bytes; the disk tier (`disk`) is one folder every worker reads and
/// writes, so a response one worker stored is found by the others and after a restart.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheTable {
    /// Bytes of responses kept in memory per worker (a size, `"256m"`). Default `"64m"`.
    pub memory: Option<Spanned<Quantity>>,
    /// How long a request waits for another request fetching the same response before it
    /// fetches for itself. Default `"10s"`.
    pub lock_timeout: Option<Spanned<Quantity>>,
    /// How long after it went stale a response may still be served when the origin fails (a
    /// 5xx or no answer), besides what its `stale-if-error` allows. Default none.
    pub grace: Option<Spanned<Quantity>>,
    /// Bytes of responses kept on disk, shared by every worker and kept across restarts (a
    /// size, `"1g"`). The folder may outgrow it by what is stored within 10 s, the period of
    /// the trim that removes the oldest files. Default `"0"`: no disk tier.
    pub disk: Option<Spanned<Quantity>>,
    /// The disk tier's folder, created when absent; relative to the configuration's folder.
    /// Used when `disk` is set. Default: `cache` in the data directory (`--data-dir`).
    pub disk_path: Option<Spanned<PathBuf>>,
    /// Clients allowed to send `PURGE` requests and read purge statuses (addresses or CIDR
    /// ranges). Default loopback only: `["127.0.0.0/8", "::1"]`.
    pub purge_allow: Option<Vec<Spanned<String>>>,
}

/// `[admin]`: the admin API on its own listener, answered by the master process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address and port, `"127.0.0.1:9901"`.
    pub listen: Spanned<String>,
    /// Clients allowed to use it (addresses or CIDR ranges). Default loopback only.
    pub allow: Option<Vec<Spanned<String>>>,
}

/// `[acme]`: where sites with `acme = true` get their certificates (RFC 8555, http-01
/// challenges answered on the plain listeners). Enabling ACME accepts the CA's terms of
/// service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The CA's directory URL, `https://…`. Default Let's Encrypt,
    /// `"https://acme-v02.api.letsencrypt.org/directory"`.
    pub directory: Option<Spanned<String>>,
    /// A contact address for the account (`"ops@example.com"`). Default none.
    pub email: Option<Spanned<String>>,
    /// A PEM CA certificate the CA's own HTTPS certificate chains to, for a private or test
    /// CA; relative to the configuration's folder. Default: the system's trusted roots.
    pub ca_root: Option<Spanned<PathBuf>>,
    /// Renew a certificate this long before it expires (a duration, `"720h"`), but never
    /// before half its lifetime. Default: when a third of its lifetime is left.
    pub renew_before: Option<Spanned<Quantity>>,
}

/// `[server]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Runtime threads per worker process, at least 1. Default: one per CPU.
    pub threads: Option<Spanned<i64>>,
    /// Worker processes: `"auto"` (one per CPU, the default) or a number, at least 1.
    pub workers: Option<Spanned<Workers>>,
    /// Serve in one process, without a master and workers (no reload, no restart): for
    /// debugging. Default false.
    pub single_process: Option<bool>,
    /// A `tracing` filter such as `"info"` or `"portico=debug,info"`; `RUST_LOG` wins when set.
    /// Default `"info"`.
    pub log_level: Option<Spanned<String>>,
}

/// `workers = "auto" | N`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Workers {
    Count(i64),
    Name(String),
}

/// `[access_log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// `"-"` (or `"stdout"`) = standard output, `"stderr"`, or a file path, relative to the
    /// configuration file's folder; the file's folder must exist. Default `"-"`.
    pub path: Option<Spanned<String>>,
    /// `"combined"` (nginx/Apache combined plus the request time) or `"json"` (one object per
    /// line). Default `"combined"`.
    pub format: Option<Spanned<String>>,
}

/// `[limits]`: every key optional; every value must be above zero. Sizes are an integer
/// (bytes) or a string with a binary unit (`"8k"`, `"1m"`); durations an integer (seconds) or a
/// string with a unit (`"500ms"`, `"10s"`, `"2m"`, `"1h"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request head (request line and headers), a size; more gets 431. Default `"32k"`.
    pub max_header_size: Option<Spanned<Quantity>>,
    /// Most header fields in a request; more gets 431. Default 100.
    pub max_headers: Option<Spanned<i64>>,
    /// Longest request target, a size; longer gets 414. Default `"8k"`.
    pub max_uri_length: Option<Spanned<Quantity>>,
    /// Largest request body, a size; larger gets 413, before reading it or sending
    /// `100 Continue`. Default `"1m"`.
    pub client_max_body_size: Option<Spanned<Quantity>>,
    /// Time to receive a whole request head once its first byte arrived; then 408.
    /// Default `"10s"`.
    pub client_header_timeout: Option<Spanned<Quantity>>,
    /// Longest pause between two reads of a request body; then 408. Default `"60s"`.
    pub client_body_timeout: Option<Spanned<Quantity>>,
    /// How long an idle keep-alive connection is kept between requests. Default `"75s"`.
    pub keepalive_timeout: Option<Spanned<Quantity>>,
    /// Longest pause while the client does not accept response bytes. Default `"60s"`.
    pub send_timeout: Option<Spanned<Quantity>>,
    /// After an error response, how long to read and discard what the client still sends
    /// before closing. Default `"5s"`.
    pub lingering_timeout: Option<Spanned<Quantity>>,
    /// Most open client connections; more are answered 503 with `Retry-After` and closed.
    /// Default 16384.
    pub max_connections: Option<Spanned<i64>>,
    /// Most requests being answered at once; more get 503 with `Retry-After`. Default 4096.
    pub max_requests_in_flight: Option<Spanned<i64>>,
    /// How long a graceful stop (SIGTERM, SIGINT) waits for requests in flight.
    /// Default `"10s"`.
    pub shutdown_timeout: Option<Spanned<Quantity>>,
}

/// `[[site]]`: a set of host names on some listeners, with routes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The site's name in logs. Default `"site-N"`, N counting sites from 1.
    pub name: Option<Spanned<String>>,
    /// Required: addresses to listen on, `IP:PORT` (`"127.0.0.1:8080"`, `"[::]:443"`); at
    /// least one. Port 0 picks a free port. Sites naming the same address share its listener.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// Addresses to listen on with HTTPS, written like `listen` (`"0.0.0.0:443"`); the site
    /// then needs `[site.tls]`. An address is either plain or HTTPS for every site on it.
    pub listen_tls: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[site.tls]`: the certificate this site presents on HTTPS listeners, and its HTTPS
    /// policy.
    pub tls: Option<Spanned<SiteTls>>,
    /// Host names this site answers, without port: `"example.com"`, or `"*.example.com"` for
    /// any name ending in `.example.com`. Compared without case. Default: any host.
    pub hosts: Option<Vec<Spanned<String>>>,
    /// Answer requests whose host no site on the listener names. At most one site per
    /// listener. Default false.
    pub default: Option<Spanned<bool>>,
    /// While true, every request is answered 503 with `Retry-After`. Default false.
    pub maintenance: Option<bool>,
    /// `[site.forward_proxy]`: answer CONNECT (and absolute-form requests for other hosts) as
    /// a forward proxy to the targets `allow` names. Default: none (CONNECT gets 405).
    pub forward_proxy: Option<Spanned<ForwardProxy>>,
    /// `[[site.route]]`: the routes. A request takes the route with an equal `exact` path,
    /// else the one with the longest matching `prefix`.
    #[serde(default)]
    pub route: Vec<Spanned<Route>>,
}

/// `[site.tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteTls {
    /// The PEM certificate chain, leaf first, relative to the configuration's folder; required
    /// unless `acme`. Its key must match, and it must be within its validity period.
    pub cert: Option<Spanned<PathBuf>>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1; ECDSA, Ed25519 or RSA); required unless
    /// `acme`.
    pub key: Option<Spanned<PathBuf>>,
    /// Get and renew the certificate from the `[acme]` CA for the site's `hosts` (exact
    /// names, no wildcards), instead of `cert` and `key`. A self-signed placeholder is
    /// presented until the first certificate arrives. Default false.
    pub acme: Option<Spanned<bool>>,
    /// `Strict-Transport-Security: max-age=…` on every HTTPS response (a duration such as
    /// `"8760h"` or seconds). Default: no HSTS header.
    pub hsts: Option<Spanned<Quantity>>,
    /// Answer plain-HTTP requests with a redirect to the site's HTTPS address: 301 for GET and
    /// HEAD, 308 for other methods. Default false.
    pub redirect_http: Option<bool>,
    /// Require a client certificate issued by one of the CAs in this PEM file (mTLS); the
    /// handshake fails without one. Default: no client certificate asked.
    pub client_ca: Option<Spanned<PathBuf>>,
}

/// `[[site.route]]`: a path match, the methods it allows, and exactly one handler table:
/// `static`, `redirect`, `respond`, `proxy` or `httpbin`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Match a path exactly (`"/robots.txt"`). Starts with `/`. At most one of `exact` and
    /// `prefix`; with neither the route matches every path (prefix `"/"`).
    pub exact: Option<Spanned<String>>,
    /// Match paths starting with this (`"/static/"`). Starts with `/`.
    pub prefix: Option<Spanned<String>>,
    /// Methods allowed, upper-cased (`["GET", "HEAD"]`); others get 405. Extension methods are
    /// allowed if they are valid tokens. Default: the handler's set (static: GET, HEAD,
    /// OPTIONS; redirect and respond: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS).
    pub methods: Option<Vec<Spanned<String>>>,
    /// Answer TRACE by echoing the request as `message/http`. Default false (405).
    pub trace: Option<bool>,
    /// `[site.route.static]`: serve files from a folder.
    pub r#static: Option<Spanned<Static>>,
    /// `redirect = { ... }`: answer with a redirect.
    pub redirect: Option<Spanned<Redirect>>,
    /// `respond = { ... }`: answer with a fixed response.
    pub respond: Option<Spanned<Respond>>,
    /// `proxy = { upstream = "name", ... }`: forward to an upstream pool.
    pub proxy: Option<Spanned<Proxy>>,
    /// `httpbin = {}`: the built-in test origin (echo, `/status/CODE`, `/delay/N`,
    /// `/cache/N`, `/uuid`), as the demo uses behind a proxied route.
    pub httpbin: Option<Spanned<Httpbin>>,
}

/// `httpbin = {}`: no keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Httpbin {}

/// `[site.route.static]`: files from a root folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Static {
    /// Required: the folder, relative to the configuration file's folder; it must exist.
    pub root: Option<Spanned<PathBuf>>,
    /// File names tried, in order, for a path naming a folder; plain names, no `/`.
    /// Default `["index.html"]`.
    pub index: Option<Vec<Spanned<String>>>,
    /// List a folder that has no index file. Default false (403, as nginx).
    pub listing: Option<bool>,
    /// Follow symlinks that lead outside the root. Default false (403).
    pub follow_symlinks_outside: Option<bool>,
    /// Serve `name.br`, `name.zst` or `name.gz` next to `name` when the client accepts it.
    /// Default true.
    pub precompressed: Option<bool>,
    /// Compress text types on the fly when no precompressed file exists. Default true.
    pub compress: Option<bool>,
    /// Map the path after the route's `prefix` (nginx `alias`) instead of the whole path
    /// (nginx `root`). Default false.
    pub strip_prefix: Option<bool>,
}

/// `redirect = { to = "...", status = 301 }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Required: the target, a template that may use `{scheme}`, `{host}` (with the port
    /// when the request had one), `{path}`, `{query}` (without `?`), `{uri}` (path and
    /// `?query`) and `{suffix}` (the path after the route's prefix).
    pub to: Option<Spanned<String>>,
    /// 301, 302, 303, 307 or 308. Default 302.
    pub status: Option<Spanned<i64>>,
}

/// `respond = { status = 200, body = "...", headers = { ... } }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// The status, 100 to 599. Default 200.
    pub status: Option<Spanned<i64>>,
    /// The body, sent as written. Default empty.
    pub body: Option<String>,
    /// Response headers (`{ "Content-Type" = "text/plain" }`). `Content-Length` and
    /// `Transfer-Encoding` are set by portico. Default none.
    pub headers: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
}

/// `proxy = { upstream = "app", host = "pass", strip_prefix = false, trusted_proxies = [] }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Required: the `name` of an `[[upstream]]`.
    pub upstream: Option<Spanned<String>>,
    /// The `Host` the origin gets: `"pass"` (the client's, the default), `"upstream"` (the
    /// member's `host:port`) or any other text, sent as written.
    pub host: Option<Spanned<String>>,
    /// Send the path after the route's `prefix` instead of the whole path; redirects back to
    /// the origin get the prefix again. Default false.
    pub strip_prefix: Option<bool>,
    /// Addresses or CIDR ranges (`"10.0.0.0/8"`) of proxies in front of portico whose
    /// `X-Forwarded-*` and `Forwarded` fields are kept and extended; from other clients they
    /// are replaced. Default none.
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
    /// Keep the origin's responses in the shared cache (`[cache]`) and answer from it as RFC
    /// 9111 allows. Default false.
    pub cache: Option<bool>,
}

/// `[[upstream]]`: a pool of origin servers and how requests to it are made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Required, unique: routes name the upstream by it.
    pub name: Option<Spanned<String>>,
    /// Required, at least one: `"host:port"` (or `"http://host:port"`), or
    /// `{ addr = "host:port", weight = 2 }`. A host is an address or a name resolved when
    /// connecting.
    pub servers: Option<Spanned<Vec<Spanned<UpstreamServer>>>>,
    /// `"round_robin"` (weighted, the default), `"least_conn"`, `"hash"` (consistent hashing on
    /// `hash_key`) or `"p2c"` (power of two choices on a moving average of latency).
    pub policy: Option<Spanned<String>>,
    /// With `policy = "hash"`: `"uri"`, `"client_ip"`, `"header:NAME"` or `"cookie:NAME"`.
    /// Default `"uri"`.
    pub hash_key: Option<Spanned<String>>,
    /// Sticky sessions: this cookie pins a client to the member that first answered it.
    /// Default: none.
    pub sticky_cookie: Option<Spanned<String>>,
    /// Time to open a connection to a member. Default `"5s"`.
    pub connect_timeout: Option<Spanned<Quantity>>,
    /// Time from the end of the request to the response head. Default `"60s"`.
    pub first_byte_timeout: Option<Spanned<Quantity>>,
    /// Longest pause while the member sends the response body or takes the request body.
    /// Default `"60s"`.
    pub idle_timeout: Option<Spanned<Quantity>>,
    /// How many other members a failed request may be tried on: any request that never
    /// reached a member, idempotent ones (GET, HEAD, OPTIONS, PUT, DELETE) also after a
    /// timeout or broken response, and never once its body was sent. Default 1.
    pub retries: Option<Spanned<i64>>,
    /// Idle connections kept open per member (per worker); 0 keeps none. Default 256.
    pub keepalive: Option<Spanned<i64>>,
    /// How long a kept connection may stay idle. Default `"60s"`.
    pub keepalive_timeout: Option<Spanned<Quantity>>,
    /// Speak HTTP/2 to the members (cleartext, prior knowledge). Default false (HTTP/1.1).
    pub http2: Option<bool>,
    /// Passive checks: consecutive errors or timeouts that eject a member; 0 turns them off.
    /// Default 3.
    pub max_fails: Option<Spanned<i64>>,
    /// Passive checks: how long the first ejection lasts; it doubles while failures go on (at
    /// most 5 minutes). Default `"10s"`.
    pub fail_timeout: Option<Spanned<Quantity>>,
    /// `[upstream.health]`: active checks. Default: none.
    pub health: Option<Spanned<Health>>,
}

/// One entry of `servers`: `"host:port"` or `{ addr = "host:port", weight = N }`.
#[derive(Debug, Clone)]
pub enum UpstreamServer {
    /// `"host:port"` (or `"http://host:port"`), weight 1.
    Addr(String),
    /// `{ addr = "...", weight = N }`.
    Table(UpstreamServerTable),
}

/// `{ addr = "host:port", weight = N }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamServerTable {
    /// Required: `host:port` or `http://host:port`.
    pub addr: Option<Spanned<String>>,
    /// Relative share of requests, 1 to 100. Default 1.
    pub weight: Option<Spanned<i64>>,
}

/// `[upstream.health]`: a `GET` of `path` on each member every `interval`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The path requested. Default `"/"`.
    pub path: Option<Spanned<String>>,
    /// Time between two checks of a member. Default `"5s"`.
    pub interval: Option<Spanned<Quantity>>,
    /// How long a check may take. Default `"2s"`.
    pub timeout: Option<Spanned<Quantity>>,
    /// The status a healthy member answers. Default: any 2xx or 3xx.
    pub status: Option<Spanned<i64>>,
    /// Consecutive passed checks that bring a member back. Default 2.
    pub rise: Option<Spanned<i64>>,
    /// Consecutive failed checks that take a member out. Default 3.
    pub fall: Option<Spanned<i64>>,
}

/// `[site.forward_proxy]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardProxy {
    /// Required: the targets clients may reach, `"host:port"`: a name, `"*.example.com"`,
    /// `"*"` (anything), an address or CIDR range (`"10.0.0.0/8"`, `"[::1]"`); the port a
    /// number or `"*"`.
    pub allow: Option<Vec<Spanned<String>>>,
    /// A tunnel with no traffic for this long is closed. Default `"5m"`.
    pub idle_timeout: Option<Spanned<Quantity>>,
    /// Time to connect to the target. Default `"10s"`.
    pub connect_timeout: Option<Spanned<Quantity>>,
}

/// `servers` entries are strings or tables. Not `#[serde(untagged)]`: its one message for
/// every mistake ("did not match any variant") would hide an unknown key in the table, which
/// is named here as everywhere else.
impl<'de> Deserialize<'de> for UpstreamServer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ServerVisitor)
    }
}

struct ServerVisitor;

impl<'de> serde::de::Visitor<'de> for ServerVisitor {
    type Value = UpstreamServer;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"host:port\" or a table { addr = \"host:port\", weight = N }")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<UpstreamServer, E> {
        Ok(UpstreamServer::Addr(text.to_string()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<UpstreamServer, A::Error> {
        UpstreamServerTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(UpstreamServer::Table)
    }
}

/// Parses configuration text into the raw schema; a TOML syntax error or a schema mismatch
/// (unknown key, wrong type, duplicate key) becomes one diagnostic at its line.
pub fn parse(source: &str, path: &Path) -> Result<Config, Diagnostics> {
    toml::from_str(source).map_err(|error: toml::de::Error| {
        let origin = Origin::File { path, source };
        let message = error.message().trim_end().to_string();
        let hint = suggestion(&message).map(|key| format!("did you mean `{key}`?"));
        Diagnostics::single(origin.diagnostic(error.span(), message, hint))
    })
}

/// Wraps a value built in code (not read from a file) for a [`Spanned`] field. Its span is
/// empty; diagnostics about it name the [`Origin`] (`(command line)`) instead of a line.
pub fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(EMPTY_SPAN, value)
}

/// For serde's ``unknown field `rooot`, expected one of `root`, `index` `` the expected key
/// closest to the unknown one, if it is close enough to be a typo.
fn suggestion(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|key| (edit_distance(unknown, key), key))
        .filter(|&(distance, key)| distance <= key.len().div_ceil(3).min(3))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, key)| key)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

const EMPTY_SPAN: Range<usize> = 0..0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_finds_a_close_key_only() {
        let message = "unknown field `rooot`, expected one of `root`, `index`, `listing`";
        assert_eq!(suggestion(message), Some("root"));
        let message = "unknown field `colour`, expected one of `root`, `index`";
        assert_eq!(suggestion(message), None);
        let message = "unknown field `lisen`, expected one of `name`, `listen`, `hosts`";
        assert_eq!(suggestion(message), Some("listen"));
        assert_eq!(suggestion("invalid type: integer"), None);
        let message = "unknown field `x`, expected `to` or `status`";
        assert_eq!(suggestion(message), None);
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("root", "root"), 0);
        assert_eq!(edit_distance("rooot", "root"), 1);
        assert_eq!(edit_distance("rot", "root"), 1);
        assert_eq!(edit_distance("roat", "root"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
