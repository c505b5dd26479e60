//! Resolves `[[site]]`: name, listen addresses, host patterns, flags and routes, then the
//! checks that need every site at once (one default site and distinct hosts per listener) and
//! the list of listeners (unique addresses in order of first appearance).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;

use super::{Context, Problem, route};
use crate::config::schema;
use crate::edge::{self, HostPattern};
use crate::tls;

/// The listeners: unique addresses in order of first appearance, each with its TLS
/// configuration when it is an HTTPS listener.
pub(super) struct Listeners {
    pub addrs: Vec<SocketAddr>,
    pub tls: Vec<Option<Arc<tls::ListenerTls>>>,
}

/// All sites, and the listeners.
pub(super) fn sites(
    cx: &mut Context<'_>,
    raw: &[Spanned<schema::Site>],
) -> (Listeners, Vec<edge::Site>, Vec<tls::acme::Managed>) {
    if raw.is_empty() {
        let problem = Problem::new("there is no [[site]], so there is nothing to serve")
            .with_hint("add a [[site]] with `listen` and at least one [[site.route]]");
        cx.report(None, problem);
    }
    let placed: Vec<Placed> = raw
        .iter()
        .enumerate()
        .map(|(i, site)| self::site(cx, i + 1, site))
        .collect();
    check_defaults(cx, &placed);
    check_hosts(cx, &placed);
    let mut addrs = Vec::new();
    for addr in placed.iter().flat_map(|p| &p.site.listen) {
        if !addrs.contains(addr) {
            addrs.push(*addr);
        }
    }
    let tls: Vec<Option<Arc<tls::ListenerTls>>> = addrs
        .iter()
        .map(|addr| listener_tls(cx, *addr, &placed))
        .collect();
    let acme: Vec<tls::acme::Managed> = placed.iter().filter_map(|p| p.acme.clone()).collect();
    if let Some(first) = placed.iter().find(|p| p.acme.is_some())
        && tls.iter().all(Option::is_some)
    {
        cx.error_with_hint(
            first.span.clone(),
            format!(
                "site `{}` gets its certificate by ACME, but no site listens on plain HTTP",
                first.site.name
            ),
            "the CA checks http-01 challenges on port 80: add `listen = [\"0.0.0.0:80\"]` to a site",
        );
    }
    let listeners = Listeners { addrs, tls };
    (
        listeners,
        placed.into_iter().map(|p| p.site).collect(),
        acme,
    )
}

/// The TLS configuration of listener `addr` if its sites listen on it with TLS: each site's
/// certificate for its hosts, the default site's (else the first site's) for other names.
/// An address plain for one site and HTTPS for another is reported.
fn listener_tls(
    cx: &mut Context<'_>,
    addr: SocketAddr,
    sites: &[Placed],
) -> Option<Arc<tls::ListenerTls>> {
    let on: Vec<&Placed> = sites
        .iter()
        .filter(|p| p.site.listen.contains(&addr))
        .collect();
    let secure: Vec<&&Placed> = on.iter().filter(|p| p.tls_listen.contains(&addr)).collect();
    if secure.is_empty() {
        return None;
    }
    if let Some(plain) = on.iter().find(|p| !p.tls_listen.contains(&addr)) {
        let span = secure[0].tls_span.clone().unwrap_or(secure[0].span.clone());
        cx.error_with_hint(
            span,
            format!(
                "{addr} is HTTPS for site `{}` but plain HTTP for site `{}`",
                secure[0].site.name, plain.site.name
            ),
            "one address is one listener: list it in `listen_tls` of every site on it, or use another port",
        );
        return None;
    }
    let mut sites = tls::SniMap::default();
    let mut configs = Vec::new();
    for placed in &secure {
        let cert = placed.tls_cert.clone()?;
        let config = match tls::site_config(cert, placed.client_roots.clone()) {
            Ok(config) => config,
            Err(e) => {
                cx.report(
                    None,
                    Problem::new(format!("TLS for site `{}`: {e}", placed.site.name)),
                );
                return None;
            }
        };
        for host in &placed.site.hosts {
            match host {
                HostPattern::Exact(name) => sites.add(name, config.clone()),
                HostPattern::Suffix(suffix) => sites.add(&format!("*{suffix}"), config.clone()),
            }
        }
        configs.push((placed, config));
    }
    let default = configs
        .iter()
        .find(|(p, _)| p.site.default)
        .or_else(|| configs.iter().find(|(p, _)| p.site.hosts.is_empty()))
        .or(configs.first())
        .map(|(_, config)| config.clone())?;
    sites.set_default(default);
    Some(Arc::new(tls::ListenerTls { sites }))
}

/// A resolved site with the spans the checks across sites point at.
struct Placed {
    site: edge::Site,
    /// The site's HTTPS listeners (also in `site.listen`).
    tls_listen: Vec<SocketAddr>,
    /// Where its certificate comes from: loaded and checked, or an ACME slot.
    tls_cert: Option<Arc<dyn rustls::server::ResolvesServerCert>>,
    /// Its ACME-managed certificate, when `acme = true`.
    pub(super) acme: Option<tls::acme::Managed>,
    /// The CAs its clients' certificates must come from (mTLS).
    client_roots: Option<Arc<rustls::RootCertStore>>,
    /// The `listen_tls` key.
    tls_span: Option<Range<usize>>,
    /// The `[[site]]` table.
    span: Range<usize>,
    /// The `default` key, when set.
    default_span: Option<Range<usize>>,
    /// One per entry of `site.hosts`, with the host as written.
    hosts: Vec<Spanned<String>>,
}

/// `number` counts sites from 1, for the default name `site-N`.
fn site(cx: &mut Context<'_>, number: usize, raw: &Spanned<schema::Site>) -> Placed {
    let site = raw.get_ref();
    let name = name(cx, number, site.name.as_ref());
    let tls_listen = match &site.listen_tls {
        Some(tls) => addresses(cx, tls),
        None => Vec::new(),
    };
    let mut listen = if site.listen.is_none() && !tls_listen.is_empty() {
        Vec::new()
    } else {
        listen(cx, &name, raw.span(), site.listen.as_ref())
    };
    for addr in &tls_listen {
        if listen.contains(addr) {
            cx.error_with_hint(
                site.listen_tls.as_ref().map_or(raw.span(), Spanned::span),
                format!("{addr} is in both `listen` and `listen_tls` of site `{name}`"),
                "one address is either plain HTTP or HTTPS",
            );
        } else {
            listen.push(*addr);
        }
    }
    let (hosts, written_hosts) = hosts(cx, &name, site.hosts.as_deref().unwrap_or_default());
    let (tls, tls_cert, acme) = self::tls(cx, &name, raw.span(), site, &tls_listen, &hosts);
    let client_roots = site
        .tls
        .as_ref()
        .and_then(|t| t.get_ref().client_ca.as_ref())
        .and_then(|ca| client_roots(cx, ca));
    let routes = site
        .route
        .iter()
        .filter_map(|r| route::route(cx, r))
        .collect();
    Placed {
        site: edge::Site {
            name,
            hosts,
            listen,
            default: site.default.as_ref().is_some_and(|d| *d.get_ref()),
            maintenance: site.maintenance.unwrap_or(false),
            tls,
            forward_proxy: site
                .forward_proxy
                .as_ref()
                .and_then(|raw| super::upstream::forward_proxy(cx, raw)),
            routes,
        },
        tls_listen,
        tls_cert,
        acme,
        client_roots,
        tls_span: site.listen_tls.as_ref().map(Spanned::span),
        span: raw.span(),
        default_span: site.default.as_ref().map(Spanned::span),
        hosts: written_hosts,
    }
}

fn name(cx: &mut Context<'_>, number: usize, raw: Option<&Spanned<String>>) -> String {
    match raw {
        Some(name) if name.get_ref().trim().is_empty() => {
            cx.error_with_hint(
                name.span(),
                "the site `name` is empty",
                "omit it for `site-N`",
            );
            format!("site-{number}")
        }
        Some(name) => name.get_ref().clone(),
        None => format!("site-{number}"),
    }
}

/// At least one `IP:PORT`; a repeated address counts once.
fn listen(
    cx: &mut Context<'_>,
    site: &str,
    site_span: Range<usize>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Vec<SocketAddr> {
    let hint = "add listen = [\"127.0.0.1:8080\"] (an IP address and a port; 0 picks a free port)";
    let Some(raw) = raw else {
        cx.error_with_hint(site_span, format!("site `{site}` has no `listen`"), hint);
        return Vec::new();
    };
    if raw.get_ref().is_empty() {
        cx.error_with_hint(
            raw.span(),
            format!("site `{site}` has an empty `listen`"),
            hint,
        );
    }
    addresses(cx, raw)
}

/// `IP:PORT` strings, each once.
fn addresses(cx: &mut Context<'_>, raw: &Spanned<Vec<Spanned<String>>>) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    for text in raw.get_ref() {
        match text.get_ref().trim().parse::<SocketAddr>() {
            Ok(addr) if !addrs.contains(&addr) => addrs.push(addr),
            Ok(_) => {}
            Err(_) => cx.error_with_hint(
                text.span(),
                format!("`{}` is not an IP address and port", text.get_ref()),
                "write \"127.0.0.1:8080\", \"0.0.0.0:80\" or \"[::]:443\"; names are not resolved",
            ),
        }
    }
    addrs
}

/// `client_ca`: the CA certificates a client's certificate must chain to.
fn client_roots(
    cx: &mut Context<'_>,
    raw: &Spanned<std::path::PathBuf>,
) -> Option<Arc<rustls::RootCertStore>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let path = cx.folder().join(raw.get_ref());
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => {
            cx.error(raw.span(), format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        cx.error_with_hint(
            raw.span(),
            format!("{} holds no usable PEM CA certificate", path.display()),
            "client_ca names the certificate(s) of the CA that issues client certificates",
        );
        return None;
    }
    Some(Arc::new(roots))
}

/// `[site.tls]`: the HTTPS policy and where the certificate comes from (a checked PEM pair,
/// or ACME). A site with `listen_tls` needs it; the certificate's problems are reported at
/// `cert`, naming the file.
fn tls(
    cx: &mut Context<'_>,
    site_name: &str,
    site_span: Range<usize>,
    site: &schema::Site,
    tls_listen: &[SocketAddr],
    hosts: &[HostPattern],
) -> (
    Option<edge::SiteTls>,
    Option<Arc<dyn rustls::server::ResolvesServerCert>>,
    Option<tls::acme::Managed>,
) {
    let Some(raw) = &site.tls else {
        if !tls_listen.is_empty() {
            cx.error_with_hint(
                site.listen_tls.as_ref().map_or(site_span, Spanned::span),
                format!("site `{site_name}` listens with TLS but has no [site.tls]"),
                "add [site.tls] with cert = \"cert.pem\" and key = \"key.pem\" (`portico cert` makes a local pair), or acme = true",
            );
        }
        return (None, None, None);
    };
    let tls = raw.get_ref();
    let mut acme = None;
    let cert: Option<Arc<dyn rustls::server::ResolvesServerCert>> =
        match tls.acme.as_ref().filter(|a| *a.get_ref()) {
            Some(flag) => {
                acme = acme_names(cx, site_name, flag.span(), tls, hosts).map(|names| {
                    tls::acme::Managed {
                        site: site_name.to_string(),
                        names,
                        slot: Arc::default(),
                    }
                });
                acme.as_ref()
                    .map(|m| m.slot.clone() as Arc<dyn rustls::server::ResolvesServerCert>)
            }
            None => pem_pair(cx, site_name, raw, tls).map(|key| {
                Arc::new(rustls::sign::SingleCertAndKey::from(key))
                    as Arc<dyn rustls::server::ResolvesServerCert>
            }),
        };
    let hsts = tls
        .hsts
        .as_ref()
        .and_then(|value| match value.get_ref().duration() {
            Ok(duration) => Some(duration),
            Err(error) => {
                cx.error_with_hint(
                    value.span(),
                    format!("invalid `hsts`: {error}"),
                    crate::config::units::DURATION_HINT,
                );
                None
            }
        });
    let redirect_to = tls
        .redirect_http
        .unwrap_or(false)
        .then(|| tls_listen.first().copied())
        .flatten();
    (Some(edge::SiteTls { hsts, redirect_to }), cert, acme)
}

/// `cert` and `key`: the pair, loaded and checked.
fn pem_pair(
    cx: &mut Context<'_>,
    site_name: &str,
    raw: &Spanned<schema::SiteTls>,
    tls: &schema::SiteTls,
) -> Option<Arc<rustls::sign::CertifiedKey>> {
    let need = |cx: &mut Context<'_>, key: &str| {
        cx.error_with_hint(
            raw.span(),
            format!("[site.tls] of site `{site_name}` has no `{key}`"),
            "add cert = \"cert.pem\" and key = \"key.pem\", relative to the configuration's folder, or acme = true",
        );
    };
    let folder = cx.folder().to_path_buf();
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let (cert_path, key_path) = (folder.join(cert.get_ref()), folder.join(key.get_ref()));
            match tls::load_pair(&cert_path, &key_path) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    let span = match e {
                        tls::CertError::NoKey { .. } | tls::CertError::BadKey { .. } => key.span(),
                        _ => cert.span(),
                    };
                    cx.error_with_hint(
                        span,
                        e.to_string(),
                        "`portico cert NAME…` makes a certificate and key from the local CA",
                    );
                    None
                }
            }
        }
        (None, _) => {
            need(cx, "cert");
            None
        }
        (_, None) => {
            need(cx, "key");
            None
        }
    }
}

/// The names of an ACME site's certificate: its hosts, which must be exact names (http-01
/// cannot prove a wildcard), and no `cert`/`key` beside `acme`.
fn acme_names(
    cx: &mut Context<'_>,
    site_name: &str,
    span: Range<usize>,
    tls: &schema::SiteTls,
    hosts: &[HostPattern],
) -> Option<Vec<String>> {
    if let Some(path) = tls.cert.as_ref().or(tls.key.as_ref()) {
        cx.error_with_hint(
            path.span(),
            format!("site `{site_name}` has both `acme = true` and a certificate file"),
            "remove `cert` and `key`, or `acme`",
        );
        return None;
    }
    let mut names = Vec::new();
    for host in hosts {
        match host {
            HostPattern::Exact(name) if name.parse::<std::net::IpAddr>().is_err() => {
                names.push(name.clone())
            }
            HostPattern::Exact(name) => {
                cx.error_with_hint(
                    span.clone(),
                    format!("ACME site `{site_name}` names the address {name}"),
                    "ACME certificates here are for DNS names; use `cert` and `key` for an address",
                );
                return None;
            }
            HostPattern::Suffix(suffix) => {
                cx.error_with_hint(
                    span.clone(),
                    format!("ACME site `{site_name}` has the wildcard host `*{suffix}`"),
                    "http-01 challenges cannot prove a wildcard: list the names, or use `cert` and `key`",
                );
                return None;
            }
        }
    }
    if names.is_empty() {
        cx.error_with_hint(
            span,
            format!("ACME site `{site_name}` has no `hosts`"),
            "list the DNS names the certificate is for in `hosts`",
        );
        return None;
    }
    Some(names)
}

/// The patterns, with the hosts as written (one per pattern); a host listed twice is reported.
fn hosts(
    cx: &mut Context<'_>,
    site: &str,
    raw: &[Spanned<String>],
) -> (Vec<HostPattern>, Vec<Spanned<String>>) {
    let mut patterns = Vec::new();
    let mut written = Vec::new();
    for text in raw {
        match host_pattern(text.get_ref()) {
            Ok(pattern) if patterns.contains(&pattern) => cx.error(
                text.span(),
                format!("host `{}` is listed twice in site `{site}`", text.get_ref()),
            ),
            Ok(pattern) => {
                patterns.push(pattern);
                written.push(text.clone());
            }
            Err(problem) => cx.report(Some(text.span()), problem),
        }
    }
    (patterns, written)
}

/// Parses a host pattern: a name (`example.com`), a wildcard (`*.example.com`), an IPv4
/// address or a bracketed IPv6 address; lower-cased, without port.
pub(super) fn host_pattern(text: &str) -> Result<HostPattern, Problem> {
    let host = text.to_ascii_lowercase();
    if host.is_empty() {
        return Err(Problem::new("a host is empty").with_hint("remove it, or write a host name"));
    }
    if host == "*" {
        return Err(Problem::new("`*` is not a host pattern")
            .with_hint("omit `hosts` to answer any host, or set `default = true`"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(HostPattern::Exact(host)),
            _ => Err(Problem::new(format!(
                "`{text}` is not a valid IPv6 address"
            ))),
        };
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
        return Err(Problem::new(format!("IPv6 host `{text}` needs brackets"))
            .with_hint(format!("write \"[{host}]\", as the Host header does")));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        check_name(suffix, text)?;
        return Ok(HostPattern::Suffix(format!(".{suffix}")));
    }
    check_name(&host, text)?;
    Ok(HostPattern::Exact(host))
}

/// A DNS name (or IPv4 address): labels of letters, digits, `-` and `_`, 1 to 63 bytes each,
/// 253 in all.
fn check_name(name: &str, text: &str) -> Result<(), Problem> {
    let invalid = || Problem::new(format!("`{text}` is not a valid host name"));
    if name.contains(':') {
        return Err(Problem::new(format!("host `{text}` has a port"))
            .with_hint("hosts are matched without the port; the port belongs in `listen`"));
    }
    if name.contains('*') {
        return Err(
            invalid().with_hint("a wildcard is only allowed as the first label: *.example.com")
        );
    }
    if !name.is_ascii() {
        return Err(invalid().with_hint("write an international name in its xn-- (punycode) form"));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid().with_hint(
            "a host name is dot-separated labels of letters, digits and `-`, without a trailing dot",
        ));
    }
    Ok(())
}

/// At most one default site per listener.
fn check_defaults(cx: &mut Context<'_>, sites: &[Placed]) {
    for (i, later) in sites.iter().enumerate() {
        let Some(span) = &later.default_span else {
            continue;
        };
        if !later.site.default {
            continue;
        }
        let clash = sites[..i]
            .iter()
            .filter(|earlier| earlier.site.default)
            .find_map(|earlier| {
                shared_listener(&earlier.site, &later.site).map(|addr| (earlier, addr))
            });
        if let Some((earlier, addr)) = clash {
            cx.error_with_hint(
                span.clone(),
                format!(
                    "sites `{}` and `{}` are both default on {addr}",
                    earlier.site.name, later.site.name
                ),
                "at most one site per listener may set default = true",
            );
        }
    }
}

/// Distinct hosts per listener: the same pattern in two sites sharing a listener, or two sites
/// answering any host there, would leave one of them unreachable.
fn check_hosts(cx: &mut Context<'_>, sites: &[Placed]) {
    for (i, later) in sites.iter().enumerate() {
        let earlier_sites = &sites[..i];
        if later.site.hosts.is_empty() {
            let clash = earlier_sites
                .iter()
                .filter(|e| e.site.hosts.is_empty())
                .find_map(|e| shared_listener(&e.site, &later.site).map(|addr| (e, addr)));
            if let Some((earlier, addr)) = clash {
                cx.error_with_hint(
                    later.span.clone(),
                    format!(
                        "sites `{}` and `{}` both answer any host on {addr}",
                        earlier.site.name, later.site.name
                    ),
                    "give one of them `hosts`; a site without `hosts` answers every host",
                );
            }
        }
        for (pattern, written) in later.site.hosts.iter().zip(&later.hosts) {
            let clash = earlier_sites
                .iter()
                .filter(|e| e.site.hosts.contains(pattern))
                .find_map(|e| shared_listener(&e.site, &later.site).map(|addr| (e, addr)));
            if let Some((earlier, addr)) = clash {
                cx.error(
                    written.span(),
                    format!(
                        "host `{}` is already answered on {addr} by site `{}`",
                        written.get_ref(),
                        earlier.site.name
                    ),
                );
            }
        }
    }
}

/// The first listen address two sites share.
fn shared_listener(a: &edge::Site, b: &edge::Site) -> Option<SocketAddr> {
    b.listen
        .iter()
        .find(|addr| a.listen.contains(addr))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_are_lower_case_and_wildcards_become_suffixes() {
        assert_eq!(
            host_pattern("Example.COM"),
            Ok(HostPattern::Exact("example.com".into()))
        );
        assert_eq!(
            host_pattern("*.Example.com"),
            Ok(HostPattern::Suffix(".example.com".into()))
        );
        assert_eq!(
            host_pattern("127.0.0.1"),
            Ok(HostPattern::Exact("127.0.0.1".into()))
        );
        assert_eq!(
            host_pattern("[::1]"),
            Ok(HostPattern::Exact("[::1]".into()))
        );
        assert_eq!(
            host_pattern("localhost"),
            Ok(HostPattern::Exact("localhost".into()))
        );
        assert_eq!(
            host_pattern("xn--bcher-kva.example"),
            Ok(HostPattern::Exact("xn--bcher-kva.example".into()))
        );
    }

    #[test]
    fn invalid_hosts_are_refused_with_a_reason() {
        for bad in [
            "",
            "*",
            "a..b",
            "example.com.",
            "-a.com",
            "a b",
            "exa*mple.com",
            "*.*.a",
            "[::1",
            "[zz]",
            "bücher.de",
            "example.com:8080",
            "*.",
            ".example.com",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad:?} was accepted");
        }
        let port = host_pattern("example.com:80").unwrap_err();
        assert!(port.message.contains("has a port"), "{port:?}");
        let v6 = host_pattern("::1").unwrap_err();
        assert_eq!(
            v6.hint.as_deref(),
            Some("write \"[::1]\", as the Host header does")
        );
        assert!(host_pattern(&"a".repeat(64)).is_err());
        // 253 bytes is the most.
        assert!(host_pattern(&["a"; 127].join(".")).is_ok());
        assert!(host_pattern(&format!("{}.bb", ["a"; 126].join("."))).is_err());
    }
}
