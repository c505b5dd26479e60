//! The forward proxy of a site (`[site.forward_proxy]`):
//!
//! - CONNECT (RFC 9110 §9.3.6): a TCP tunnel to `host:port`, opened only when the allow-list
//!   names the target. A malformed target gets 400, a target not allowed 403, a target that
//!   cannot be reached 502 (504 after `connect_timeout`); otherwise `200` and the tunnel,
//!   closed after `idle_timeout` without traffic.
//! - Absolute-form requests (`GET http://host:port/path`, RFC 9112 §3.2.2) for a host the
//!   site does not name: forwarded like a reverse-proxied request to a one-member upstream
//!   (the same header rules, streaming and timeouts), when the allow-list names the target;
//!   `http://` only (`https://` would need portico to speak TLS to the target: 400).
//!
//! A name is matched by name, before it is resolved: an allow-list entry for a name allows
//! whatever that name resolves to. Address ranges match targets written as addresses.

use std::time::Duration;

use http::uri::Authority;
use http::{Response, StatusCode, Uri};
use tokio::net::TcpStream;

use super::backend::Backend;
use super::error::Error;
use super::forward::{Downstream, Outcome, error_response, forward};
use super::settings::{ForwardProxy, HostHeader, Settings, TrustedProxies, Upstream};
use super::tunnel::Tunnel;
use crate::http::Body;
use crate::lb;

/// Where a CONNECT wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Lower-case name, or an address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    authority: Authority,
}

/// Answers a CONNECT for `uri` on a site with `proxy`: a `200` and the tunnel, or the error.
pub async fn connect(proxy: &ForwardProxy, uri: &Uri) -> Outcome {
    let opened = async {
        let target = parse_target(uri)?;
        check(proxy, &target)?;
        let stream = open(&target, proxy.connect_timeout).await?;
        Ok::<_, Error>(stream)
    };
    match opened.await {
        Ok(stream) => Outcome {
            response: Response::builder()
                .status(StatusCode::OK)
                .body(Body::Empty)
                .unwrap_or_default(),
            tunnel: Some(Tunnel::new(stream, proxy.idle_timeout)),
        },
        Err(error) => {
            tracing::debug!(target = %uri, %error, "CONNECT refused");
            Outcome {
                response: error_response(&error),
                tunnel: None,
            }
        }
    }
}

/// Forwards an absolute-form request (`GET http://host/…`) whose target the allow-list names.
pub async fn absolute(
    proxy: &ForwardProxy,
    backends: &super::Backends,
    client: &Downstream<'_>,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Outcome {
    let checked = (|| {
        if parts.uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(Error::BadTarget);
        }
        let authority = parts.uri.authority().ok_or(Error::BadTarget)?;
        let with_port = if authority.port_u16().is_some() {
            authority.clone()
        } else {
            format!("{authority}:80")
                .parse()
                .map_err(|_| Error::BadTarget)?
        };
        let target = parse_target(
            &Uri::from_parts({
                let mut uri = http::uri::Parts::default();
                uri.authority = Some(with_port.clone());
                uri
            })
            .map_err(|_| Error::BadTarget)?,
        )?;
        check(proxy, &target)?;
        Ok(with_port)
    })();
    let member = match checked {
        Ok(member) => member,
        Err(error) => {
            return Outcome {
                response: error_response(&error),
                tunnel: None,
            };
        }
    };
    let mut upstream = Upstream::new(lb::Settings::new("forward-proxy", vec![member]));
    upstream.retries = 0;
    upstream.timeouts.connect = proxy.connect_timeout;
    upstream.pool.passive.max_fails = 0;
    let backend = Backend::with_client(&upstream, backends.forward_client(proxy.connect_timeout));
    let route = Settings {
        upstream: 0,
        host: HostHeader::Upstream,
        strip_prefix: false,
        trusted_proxies: TrustedProxies::default(),
        cache: false,
    };
    forward(&backend, &route, client, parts, Some(body)).await
}

/// A CONNECT target in authority form, `host:port`, with a port above 0 (RFC 9112 §3.2.3).
pub fn parse_target(uri: &Uri) -> Result<Target, Error> {
    if uri.scheme().is_some() || uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(Error::BadTarget);
    }
    let authority = uri.authority().ok_or(Error::BadTarget)?;
    if authority.as_str().contains('@') {
        return Err(Error::BadTarget);
    }
    let port = authority
        .port_u16()
        .filter(|&p| p != 0)
        .ok_or(Error::BadTarget)?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(Error::BadTarget);
    }
    Ok(Target {
        host,
        port,
        authority: authority.clone(),
    })
}

/// Whether the allow-list names the target.
pub fn check(proxy: &ForwardProxy, target: &Target) -> Result<(), Error> {
    if proxy
        .allow
        .iter()
        .any(|rule| rule.allows(&target.host, target.port))
    {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// A connection to the target within `timeout`.
pub async fn open(target: &Target, timeout: Duration) -> Result<TcpStream, Error> {
    match tokio::time::timeout(
        timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(Error::Connect {
            member: target.authority.clone(),
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::ConnectTimeout {
            member: target.authority.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::{AllowHost, AllowRule};

    fn target(text: &str) -> Result<Target, Error> {
        parse_target(&text.parse::<Uri>().unwrap())
    }

    #[test]
    fn targets_need_a_host_and_a_port() {
        let t = target("Example.COM:443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        let t = target("[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 22));
        assert!(target("example.com").is_err());
        assert!(target("example.com:0").is_err());
        assert!(target("http://example.com:80/").is_err());
        assert!(target("/path").is_err());
        assert!(target("user@example.com:443").is_err());
    }

    #[test]
    fn only_allowed_targets_pass() {
        let proxy = ForwardProxy {
            allow: vec![AllowRule {
                host: AllowHost::Suffix(".example.com".into()),
                port: Some(443),
            }],
            idle_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        };
        assert!(check(&proxy, &target("www.example.com:443").unwrap()).is_ok());
        assert!(matches!(
            check(&proxy, &target("www.example.com:80").unwrap()),
            Err(Error::Forbidden)
        ));
        assert!(check(&proxy, &target("example.org:443").unwrap()).is_err());
    }
}
