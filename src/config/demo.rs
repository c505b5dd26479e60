//! Configurations built in code: the built-in demo (`portico serve` without `-c`) and the
//! `portico file-server` quick start.
//!
//! Both return the raw schema a file would give, so they go through the same resolution
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
/// listing), `GET /healthz` answering `ok`, and `/docs` redirecting to `/`.
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
    let mut route = vec![unspanned(files), unspanned(health), unspanned(docs)];
    if let Some(tls) = &tls {
        // The local CA's revocation list, which the demo certificate names.
        route.push(unspanned(schema::Route {
            prefix: Some(unspanned("/.well-known/portico/".to_string())),
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
    schema::Config {
        site: vec![unspanned(site)],
        ..Default::default()
    }
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

/// `[site.tls]` for a certificate and key.
fn site_tls((cert, key): (&Path, &Path)) -> toml::Spanned<schema::SiteTls> {
    unspanned(schema::SiteTls {
        cert: Some(unspanned(cert.to_path_buf())),
        key: Some(unspanned(key.to_path_buf())),
        ..Default::default()
    })
}
