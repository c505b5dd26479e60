//! Active health checks: every `interval`, a `GET` of the check path on a new connection to
//! each member, within `timeout`; the expected status (or any 2xx/3xx) passes. `rise` passes
//! in a row bring a member back, `fall` failures in a row take it out (HAProxy's terms).
//!
//! One task per member per worker (see the parent module for why per worker), started by the
//! proxy when the worker starts and stopped by its drain token. A check never shares a
//! connection with requests: a member that accepts connections but answers nothing must fail.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::lb::Pool;
use crate::lb::settings::ActiveHealth;

/// Starts one check task per member of `pool`, if it has active checks; they end when `stop`
/// is cancelled.
pub fn start(pool: &Arc<Pool>, stop: &CancellationToken) {
    let Some(settings) = pool.active().cloned() else {
        return;
    };
    for index in 0..pool.members().len() {
        let pool = pool.clone();
        let stop = stop.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = check_member(&pool, index, &settings) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// Checks member `index` forever, recording each result.
async fn check_member(pool: &Pool, index: usize, settings: &ActiveHealth) {
    let authority = pool.members()[index].settings.authority.clone();
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = probe(&authority, &settings.path, settings.timeout).await;
        let passed = match result {
            Ok(status) => is_expected(status, settings.status),
            Err(_) => false,
        };
        if let Some(up) = pool.record_check(index, passed) {
            if up {
                tracing::info!(upstream = pool.name(), member = %authority, "member healthy again");
            } else {
                tracing::warn!(
                    upstream = pool.name(),
                    member = %authority,
                    result = ?result,
                    "member failed its health checks; taken out"
                );
            }
        }
    }
}

/// Whether a check's status passes: the configured one, else any 2xx or 3xx.
pub fn is_expected(status: StatusCode, expected: Option<StatusCode>) -> bool {
    match expected {
        Some(expected) => status == expected,
        None => status.is_success() || status.is_redirection(),
    }
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer within the check's timeout.
    #[error("no response within the timeout")]
    Timeout,
    /// The connection could not be made.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The member's answer was not a valid HTTP response, or the connection broke.
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    /// The check path cannot be sent as a request target.
    #[error("the check path is not a valid request target")]
    InvalidPath,
    /// The connection ended before a response head.
    #[error("the connection closed before a response")]
    Closed,
}

/// One check: the status of `GET path` on a new connection to `authority`.
pub async fn probe(
    authority: &Authority,
    path: &str,
    timeout: Duration,
) -> Result<StatusCode, ProbeError> {
    let exchange = async {
        let stream = TcpStream::connect(authority.as_str())
            .await
            .map_err(ProbeError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ProbeError::Http)?;
        let request = Request::get(path)
            .header(header::HOST, authority.as_str())
            .header(header::USER_AGENT, "portico-health-check")
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|_| ProbeError::InvalidPath)?;
        let send = sender.send_request(request);
        tokio::pin!(conn, send);
        // The connection is driven until the answer comes; with `Connection: close` it may
        // end first, and the answer is then ready.
        tokio::select! {
            biased;
            response = &mut send => response.map(|r| r.status()).map_err(ProbeError::Http),
            ended = &mut conn => match ended {
                Err(e) => Err(ProbeError::Http(e)),
                Ok(()) => send.await.map(|r| r.status()).map_err(|_| ProbeError::Closed),
            },
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(ProbeError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_2xx_or_3xx_passes_unless_a_status_is_set() {
        assert!(is_expected(StatusCode::OK, None));
        assert!(is_expected(StatusCode::NO_CONTENT, None));
        assert!(is_expected(StatusCode::FOUND, None));
        assert!(!is_expected(StatusCode::NOT_FOUND, None));
        assert!(!is_expected(StatusCode::SERVICE_UNAVAILABLE, None));
        assert!(is_expected(
            StatusCode::IM_A_TEAPOT,
            Some(StatusCode::IM_A_TEAPOT)
        ));
        assert!(!is_expected(StatusCode::OK, Some(StatusCode::NO_CONTENT)));
    }

    /// A member that answers and closes at once (`Connection: close`): the answer counts
    /// even when the connection's end is seen first.
    #[tokio::test]
    async fn an_answer_followed_by_a_close_passes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let member = tokio::spawn(async move {
            for _ in 0..20 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
        for _ in 0..20 {
            let status = probe(&authority, "/health", Duration::from_secs(5)).await;
            assert_eq!(status.unwrap(), StatusCode::NO_CONTENT);
        }
        member.await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_fails_the_check() {
        // Bind then drop: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let authority: Authority = format!("127.0.0.1:{port}").parse().unwrap();
        let result = probe(&authority, "/", Duration::from_secs(2)).await;
        assert!(matches!(result, Err(ProbeError::Connect(_))), "{result:?}");
    }
}
