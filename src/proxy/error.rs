//! Why forwarding a request failed, which side is to blame, whether another member may be
//! tried, and the status the client gets — decided here, once, by variant.

use http::StatusCode;
use http::uri::Authority;

/// A failure while forwarding one request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every member is out (failed health checks, ejected) or was already tried.
    #[error("no member of the upstream is available")]
    NoMember,
    /// The connection to the member was refused or failed; nothing was sent.
    #[error("cannot connect to {member}: {reason}")]
    Connect { member: Authority, reason: String },
    /// The connection to the member was not made within `connect_timeout`; nothing was sent.
    #[error("connecting to {member} took longer than connect_timeout")]
    ConnectTimeout { member: Authority },
    /// No response head within `first_byte_timeout` after the request, or the member stopped
    /// taking the request body for `idle_timeout`.
    #[error("{member} did not answer in time")]
    Timeout { member: Authority },
    /// The member's answer was not a valid HTTP response, or the connection broke before its
    /// head: the request may have been acted on.
    #[error("broken response from {member}: {reason}")]
    BadResponse { member: Authority, reason: String },
    /// The client's body broke a limit or stopped; the client is answered, the member blamed
    /// for nothing.
    #[error("the request body: {0}")]
    ClientBody(BodyFault),
    /// A CONNECT or absolute-form target that is not `host:port`.
    #[error("malformed proxy target")]
    BadTarget,
    /// A CONNECT or absolute-form target the allow-list does not name.
    #[error("the target is not allowed")]
    Forbidden,
}

/// What went wrong with a client's request body while it was streamed to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyFault {
    /// Larger than `client_max_body_size`.
    #[error("larger than client_max_body_size")]
    TooLarge,
    /// No bytes for `client_body_timeout`.
    #[error("no bytes within client_body_timeout")]
    Timeout,
    /// The client's connection broke, or its framing was invalid.
    #[error("the client's body broke off")]
    Broken,
}

/// Which side of the proxy a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Origin,
    Portico,
}

impl Error {
    /// The status the client is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NoMember => StatusCode::SERVICE_UNAVAILABLE,
            Error::Connect { .. } | Error::BadResponse { .. } => StatusCode::BAD_GATEWAY,
            Error::ConnectTimeout { .. } | Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::ClientBody(BodyFault::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::ClientBody(BodyFault::Timeout) => StatusCode::REQUEST_TIMEOUT,
            Error::ClientBody(BodyFault::Broken) | Error::BadTarget => StatusCode::BAD_REQUEST,
            Error::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    pub fn side(&self) -> Side {
        match self {
            Error::NoMember => Side::Portico,
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::Timeout { .. }
            | Error::BadResponse { .. } => Side::Origin,
            Error::ClientBody(_) | Error::BadTarget | Error::Forbidden => Side::Client,
        }
    }

    /// Whether the request may be sent to another member: always when it never left portico
    /// (connect failures), else only when repeating it is harmless (an idempotent method,
    /// RFC 9110 §9.2.2). The caller also needs the body to be unread.
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectTimeout { .. } => true,
            Error::Timeout { .. } | Error::BadResponse { .. } => idempotent,
            Error::NoMember | Error::ClientBody(_) | Error::BadTarget | Error::Forbidden => false,
        }
    }

    /// Whether the failure counts against the member for passive health checks.
    pub fn blames_member(&self) -> bool {
        self.side() == Side::Origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_retries_follow_the_side() {
        let member: Authority = "10.0.0.1:80".parse().unwrap();
        let refused = Error::Connect {
            member: member.clone(),
            reason: "refused".into(),
        };
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        assert!(refused.is_retryable(false));
        let broken = Error::BadResponse {
            member: member.clone(),
            reason: "closed".into(),
        };
        assert!(broken.is_retryable(true));
        assert!(!broken.is_retryable(false));
        let slow = Error::Timeout { member };
        assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(slow.blames_member());
        let big = Error::ClientBody(BodyFault::TooLarge);
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!big.blames_member());
        assert!(!big.is_retryable(true));
        assert_eq!(Error::NoMember.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
