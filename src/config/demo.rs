//! Configurations built in code: the built-in demo (`portico serve` without `-c`) and the
//! `portico file-server` and `portico reverse-proxy` quick starts.
//!
//! All return the raw schema a file would give, so they go through the same resolution
//! (`resolve::resolve` with `Origin::Demo` or `Origin::CommandLine`) and a bad flag gets the
//! same diagnostic a bad file would, named `(command line)` instead of a line.

use std::net::SocketAddr;
use std::path::Path;

use super::schema::{self, unspanned};

/// The demo's HTTPS: its certificate and key, and the folder holding the local CA's
/// revocation list (`local-ca.crl`), served at `tls::local_ca::CRL_PATH`.
#[derive(Debug, Clone, Copy)]
pub struct DemoTls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub crl_root: &'a Path,
}

/// The welcome site on [`DEMO_LISTEN`], default for any host: files from `site_root` (no
/// listing), `GET /healthz` answering `ok`, `/docs` redirecting to `/`, and `/origin/`
/// proxied (prefix stripped) to the built-in test origin, which a second site serves on
/// [`DEMO_ORIGIN_LISTEN`] (two ports, so the round robin between them shows).
///
/// `site_root` should be absolute (the demo's files unpacked by `cli`); a relative one is taken
/// from the current folder.
pub fn demo(site_root: &Path, tls: Option<DemoTls<'_>>) -> schema::Config {
    let files = schema::Route {
        prefix: Some(unspanned("/".to_string())),
        r#static: Some(unspanned(schema::Static {
            root: Some(unspanned(site_root.to_path_buf())),
            listing: Some(false),
            ..Default::default()
        })),
        ..Default::default()
    };
    let health = schema::Route {
        exact: Some(unspanned("/healthz".to_string())),
        respond: Some(unspanned(schema::Respond {
            status: Some(unspanned(200)),
            body: Some("ok\n".to_string()),
            headers: Some(
                [(
                    unspanned("Content-Type".to_string()),
                    unspanned("text/plain".to_string()),
                )]
                .into(),
            ),
        })),
        ..Default::default()
    };
    let docs = schema::Route {
        exact: Some(unspanned("/docs".to_string())),
        redirect: Some(unspanned(schema::Redirect {
            to: Some(unspanned("/".to_string())),
            status: Some(unspanned(302)),
        })),
        ..Default::default()
    };
    let origin = schema::Route {
        prefix: Some(unspanned("/origin/".to_string())),
        proxy: Some(unspanned(schema::Proxy {
            upstream: Some(unspanned(DEMO_UPSTREAM.to_string())),
            strip_prefix: Some(true),
            // The test origin's /cache/N and /uuid show what the cache keeps and what not.
            cache: Some(true),
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut route = vec![
        unspanned(files),
        unspanned(health),
        unspanned(docs),
        unspanned(origin),
    ];
    if let Some(tls) = &tls {
        // The local CA's revocation list, which the demo certificate names.
        route.push(unspanned(schema::Route {
            prefix: Some(unspanned(crate::tls::local_ca::CRL_PREFIX.to_string())),
            r#static: Some(unspanned(schema::Static {
                root: Some(unspanned(tls.crl_root.to_path_buf())),
                listing: Some(false),
                strip_prefix: Some(true),
                ..Default::default()
            })),
            ..Default::default()
        }));
    }
    let site = schema::Site {
        name: Some(unspanned("welcome".to_string())),
        listen: Some(unspanned(vec![unspanned(DEMO_LISTEN.to_string())])),
        listen_tls: tls
            .as_ref()
            .map(|_| unspanned(vec![unspanned(DEMO_LISTEN_TLS.to_string())])),
        tls: tls.map(|t| site_tls((t.cert, t.key))),
        default: Some(unspanned(true)),
        route,
        ..Default::default()
    };
    let origin_site = schema::Site {
        name: Some(unspanned("origin".to_string())),
        listen: Some(unspanned(
            DEMO_ORIGIN_LISTEN
                .iter()
                .map(|addr| unspanned(addr.to_string()))
                .collect(),
        )),
        route: vec![unspanned(schema::Route {
            httpbin: Some(unspanned(schema::Httpbin {})),
            ..Default::default()
        })],
        ..Default::default()
    };
    let upstream = schema::Upstream {
        name: Some(unspanned(DEMO_UPSTREAM.to_string())),
        servers: Some(unspanned(
            DEMO_ORIGIN_LISTEN
                .iter()
                .map(|addr| unspanned(schema::UpstreamServer::Addr(addr.to_string())))
                .collect(),
        )),
        health: Some(unspanned(schema::Health {
            path: Some(unspanned("/status/200".to_string())),
            ..Default::default()
        })),
        ..Default::default()
    };
    schema::Config {
        site: vec![unspanned(site), unspanned(origin_site)],
        upstream: vec![unspanned(upstream)],
        // A disk tier in the data directory: what /origin/ stored is still there after a
        // restart.
        cache: Some(unspanned(schema::CacheTable {
            disk: Some(unspanned(super::units::Quantity::Text("256m".to_string()))),
            ..Default::default()
        })),
        admin: Some(unspanned(schema::Admin {
            listen: unspanned(DEMO_ADMIN_LISTEN.to_string()),
            allow: None,
        })),
        ..Default::default()
    }
}

/// `portico reverse-proxy --to URL[,URL…] [--listen ADDR] …`: one upstream over `to`, and one
/// site, any host, forwarding every path to it.
pub fn reverse_proxy(to: &[String], options: &ReverseProxy) -> schema::Config {
    let upstream = schema::Upstream {
        name: Some(unspanned(QUICK_UPSTREAM.to_string())),
        servers: Some(unspanned(
            to.iter()
                .map(|url| unspanned(schema::UpstreamServer::Addr(url.clone())))
                .collect(),
        )),
        policy: options.policy.clone().map(unspanned),
        health: options.health_path.clone().map(|path| {
            unspanned(schema::Health {
                path: Some(unspanned(path)),
                ..Default::default()
            })
        }),
        ..Default::default()
    };
    let route = schema::Route {
        proxy: Some(unspanned(schema::Proxy {
            upstream: Some(unspanned(QUICK_UPSTREAM.to_string())),
            host: options
                .change_host_header
                .then(|| unspanned("upstream".to_string())),
            cache: options.cache.then_some(true),
            ..Default::default()
        })),
        ..Default::default()
    };
    let site = schema::Site {
        name: Some(unspanned("proxy".to_string())),
        listen: Some(unspanned(vec![unspanned(options.listen.to_string())])),
        default: Some(unspanned(true)),
        route: vec![unspanned(route)],
        ..Default::default()
    };
    schema::Config {
        server: schema::Server {
            threads: options
                .threads
                .map(|n| unspanned(i64::try_from(n).unwrap_or(i64::MAX))),
            ..Default::default()
        },
        site: vec![unspanned(site)],
        upstream: vec![unspanned(upstream)],
        ..Default::default()
    }
}

/// The flags of `portico reverse-proxy` besides `--to`.
#[derive(Debug, Clone)]
pub struct ReverseProxy {
    pub listen: SocketAddr,
    pub threads: Option<usize>,
    /// `policy` of the upstream (`round_robin` when `None`).
    pub policy: Option<String>,
    /// Active health checks on this path.
    pub health_path: Option<String>,
    /// Send the member's address as `Host` instead of the client's.
    pub change_host_header: bool,
    /// `cache = true` on the route (`--cache`).
    pub cache: bool,
}

/// `portico file-server --root DIR [--listen ADDR] [--threads N] [--listing]`: one site, any
/// host, serving `root` (relative to the current folder) on `listen`.
pub fn file_server(
    root: &Path,
    listen: SocketAddr,
    threads: Option<usize>,
    listing: bool,
    tls: Option<(&Path, &Path)>,
) -> schema::Config {
    let files = schema::Route {
        r#static: Some(unspanned(schema::Static {
            root: Some(unspanned(root.to_path_buf())),
            listing: Some(listing),
            ..Default::default()
        })),
        ..Default::default()
    };
    let listen = Some(unspanned(vec![unspanned(listen.to_string())]));
    let site = schema::Site {
        name: Some(unspanned("files".to_string())),
        listen: if tls.is_some() { None } else { listen.clone() },
        listen_tls: if tls.is_some() { listen } else { None },
        tls: tls.map(site_tls),
        default: Some(unspanned(true)),
        route: vec![unspanned(files)],
        ..Default::default()
    };
    // The schema holds TOML integers (i64); no machine has more threads than that.
    let threads = threads.map(|n| unspanned(i64::try_from(n).unwrap_or(i64::MAX)));
    schema::Config {
        server: schema::Server {
            threads,
            ..Default::default()
        },
        site: vec![unspanned(site)],
        ..Default::default()
    }
}

/// Where the built-in demo listens (and `file-server` by default).
pub const DEMO_LISTEN: &str = "127.0.0.1:8080";

/// Where the built-in demo listens with HTTPS (a local-CA certificate for localhost).
pub const DEMO_LISTEN_TLS: &str = "127.0.0.1:8443";

/// Where the demo's built-in test origin listens (two members of one upstream).
pub const DEMO_ORIGIN_LISTEN: [&str; 2] = ["127.0.0.1:8081", "127.0.0.1:8082"];

/// The demo's admin API (purges, status), loopback only.
pub const DEMO_ADMIN_LISTEN: &str = "127.0.0.1:9901";

/// The demo's upstream over its test origin.
const DEMO_UPSTREAM: &str = "demo-origin";

/// The `reverse-proxy` quick start's upstream.
const QUICK_UPSTREAM: &str = "backend";

/// `[site.tls]` for a certificate and key.
fn site_tls((cert, key): (&Path, &Path)) -> toml::Spanned<schema::SiteTls> {
    unspanned(schema::SiteTls {
        cert: Some(unspanned(cert.to_path_buf())),
        key: Some(unspanned(key.to_path_buf())),
        ..Default::default()
    })
}
