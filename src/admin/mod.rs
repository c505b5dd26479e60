//! The admin API: HTTP/1.1 on its own listener (`[admin] listen`), answered by the master
//! process, which holds the family-wide view (the purge ledger, the workers, the counters of
//! every worker). With `--single-process` the one process answers it. Clients outside
//! `[admin] allow` (default loopback) get 403.
//!
//! | request | answer |
//! |---|---|
//! | `POST /cache/purge?url=URL` | purges one URL (every variant): 200 with the purge's status when done within 2 s, else 202 as below |
//! | `POST /cache/purge?prefix=URL` | a ban on every URL starting so: always 202 Accepted (the status in the body may already say done), `Location: /cache/purges/ID` |
//! | `POST /cache/purge?tag=TAG` | a ban on every response tagged so (`Surrogate-Key`, `Cache-Tag`): 202 as above |
//! | `GET /cache/purges/ID` | the purge's status (JSON: `state` is `pending` or `done`) |
//! | `GET /cache/purges` | the recent purges, newest first |
//! | `GET /status` | what `portico ctl status` prints |
//!
//! The listener is bound when the master starts and kept across reloads: a changed `[admin]`
//! takes a restart.
//!
//! A URL is the client-facing one (`http://www.example.com/a?b`); the cache keys by scheme,
//! host as the client wrote it, and target (`cache::key::primary`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::sync::oneshot;

use crate::cache::memory::Matcher;
use crate::cache::purge::{self, Status};

/// The resolved `[admin]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Clients allowed.
    pub allow: Vec<IpNet>,
}

/// `127.0.0.0/8` and `::1`: the default of every allow-list of operator endpoints.
pub fn loopback() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("a valid network"),
        "::1/128".parse().expect("a valid network"),
    ]
}

/// How long an exact purge is waited for before the answer becomes 202.
pub const EXACT_WAIT: Duration = Duration::from_secs(2);

/// A request the admin API passes to the process that answers it.
pub enum Call {
    Purge(purge::Call),
    /// The `ctl status` text.
    Status(oneshot::Sender<String>),
}

/// How the admin API reaches the process that answers it: false when that is gone.
pub type Send = Arc<dyn Fn(Call) -> bool + std::marker::Send + Sync>;

/// Binds the admin API's listener: it and its address, or the error line to print.
pub fn bind(settings: &Settings) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind(settings.listen).map_err(|e| {
        format!(
            "cannot listen on {} for the admin API: {e}",
            settings.listen
        )
    })?;
    let addr = listener.local_addr().unwrap_or(settings.listen);
    Ok((listener, addr))
}

/// Serves the admin API on `listener` until the process ends; `send` passes each call on.
pub fn serve(listener: std::net::TcpListener, allow: Vec<IpNet>, send: Send) {
    tokio::spawn(async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "admin API: cannot listen");
                return;
            }
        };
        let allow = Arc::new(allow);
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (allow, send) = (allow.clone(), send.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (allow, send) = (allow.clone(), send.clone());
                    async move {
                        let response = if crate::net::in_networks(&allow, peer.ip()) {
                            answer(req, &send).await
                        } else {
                            text(StatusCode::FORBIDDEN, "forbidden\n")
                        };
                        Ok::<_, Infallible>(response.map(Full::new))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// An answer before it becomes a body of one frame (the edge wraps it in its own body).
pub type Answer = Response<Bytes>;

async fn answer(req: Request<Incoming>, send: &Send) -> Answer {
    let path = req.uri().path();
    let method = req.method();
    let get = method == Method::GET || method == Method::HEAD;
    let to = send.clone();
    let client = purge::Client::from_fn(move |call| to(Call::Purge(call)));
    match path {
        "/cache/purge" if method == Method::POST => {
            let query = req.uri().query().unwrap_or("");
            match matcher(query) {
                Ok(matcher) => purge_answer(&client, matcher, "/cache/purges/").await,
                Err(why) => text(StatusCode::BAD_REQUEST, &format!("{why}\n")),
            }
        }
        "/cache/purges" if get => match client.list().await {
            Some(list) => json(
                StatusCode::OK,
                serde_json::to_string(&list).unwrap_or_default(),
            ),
            None => unavailable(),
        },
        "/status" if get => {
            let (reply, status) = oneshot::channel();
            if !send(Call::Status(reply)) {
                return unavailable();
            }
            match tokio::time::timeout(Duration::from_secs(5), status).await {
                Ok(Ok(status)) => text(StatusCode::OK, &status),
                _ => unavailable(),
            }
        }
        _ if path.starts_with("/cache/purges/") && get => {
            status_answer(&client, &path["/cache/purges/".len()..]).await
        }
        "/cache/purge" | "/cache/purges" | "/status" => {
            let allow = if path == "/cache/purge" {
                "POST"
            } else {
                "GET, HEAD"
            };
            let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            res
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Starts a purge and answers as the table in the module documentation says; `base` is where
/// statuses are read (`Location` is `base` + id).
pub async fn purge_answer(client: &purge::Client, matcher: Matcher, base: &str) -> Answer {
    let ban = !matches!(matcher, Matcher::Exact(_));
    let wait = if ban { Duration::ZERO } else { EXACT_WAIT };
    match client.purge(matcher, wait).await {
        Some(status) => status_response(&status, base, ban),
        None => unavailable(),
    }
}

/// 200 with the status when the purge is done, else (and always for a `ban`, which is
/// asynchronous by contract) 202 Accepted; both say where to look.
pub fn status_response(status: &Status, base: &str, ban: bool) -> Answer {
    let mut res = json(
        if status.is_done() && !ban {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        },
        status.to_json(),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("{base}{}", status.id)) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    res
}

/// `GET …/purges/ID`.
pub async fn status_answer(client: &purge::Client, id: &str) -> Answer {
    let Ok(id) = id.parse::<u64>() else {
        return text(StatusCode::NOT_FOUND, "no such purge\n");
    };
    match client.status(id).await {
        Ok(Some(status)) => json(StatusCode::OK, status.to_json()),
        Ok(None) => text(StatusCode::NOT_FOUND, "no such purge\n"),
        Err(()) => unavailable(),
    }
}

/// The purge a query asks for: exactly one of `url=`, `prefix=` (a URL; a trailing `*` is
/// allowed) or `tag=`.
pub fn matcher(query: &str) -> Result<Matcher, String> {
    let mut found = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8()
            .map_err(|_| format!("`{name}` is not UTF-8"))?
            .into_owned();
        found.push((name.to_string(), value));
    }
    let [(name, value)] = found.as_slice() else {
        return Err("give exactly one of url=, prefix= or tag=".to_string());
    };
    match name.as_str() {
        "url" => key_of(value).map(Matcher::Exact),
        "prefix" => key_of(value.strip_suffix('*').unwrap_or(value)).map(Matcher::Prefix),
        "tag" if !value.trim().is_empty() && !value.contains(char::is_whitespace) => {
            Ok(Matcher::Tag(value.clone()))
        }
        "tag" => Err("a tag is one word".to_string()),
        other => Err(format!(
            "unknown parameter `{other}`: give url=, prefix= or tag="
        )),
    }
}

/// The cache key of an absolute http(s) URL.
fn key_of(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
    };
    let host = uri
        .authority()
        .ok_or_else(|| format!("`{url}` has no host"))?
        .as_str();
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Ok(crate::cache::key::primary(scheme, host, target))
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut res = Response::new(Bytes::copy_from_slice(body.as_bytes()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn json(status: StatusCode, body: String) -> Answer {
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn unavailable() -> Answer {
    let mut res = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the process keeping the purges did not answer\n",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_one_purge() {
        assert_eq!(
            matcher("url=http%3A%2F%2Fc.test%3A8080%2Fa%3Fb%3D1"),
            Ok(Matcher::Exact("http://c.test:8080/a?b=1".into()))
        );
        assert_eq!(
            matcher("url=http://C.test:80/a"),
            Ok(Matcher::Exact("http://c.test/a".into()))
        );
        assert_eq!(
            matcher("prefix=https://c.test/img/*"),
            Ok(Matcher::Prefix("https://c.test/img/".into()))
        );
        assert_eq!(
            matcher("tag=product-7"),
            Ok(Matcher::Tag("product-7".into()))
        );
        assert!(matcher("").is_err());
        assert!(matcher("tag=a&tag=b").is_err());
        assert!(matcher("tag=a+b").is_err());
        assert!(matcher("url=/relative").is_err());
        assert!(matcher("url=ftp://c.test/").is_err());
        assert!(matcher("everything=1").is_err());
    }

    #[test]
    fn done_is_200_and_pending_is_202_with_a_location() {
        let mut status = Status {
            id: 7,
            kind: "tag".into(),
            value: "t".into(),
            state: "pending".into(),
            purged: 0,
            finished: 0,
            participants: 2,
            requested: 0,
            completed: None,
        };
        let res = status_response(&status, "/cache/purges/", false);
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        assert_eq!(res.headers()[header::LOCATION], "/cache/purges/7");
        status.state = "done".into();
        assert_eq!(
            status_response(&status, "/x/", false).status(),
            StatusCode::OK
        );
        assert_eq!(
            status_response(&status, "/x/", true).status(),
            StatusCode::ACCEPTED
        );
    }
}
