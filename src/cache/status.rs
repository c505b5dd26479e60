//! The `Cache-Status` response field (RFC 9211): how the cache handled a request, in the
//! structured-field form `portico; hit; ttl=42` or `portico; fwd=uri-miss; fwd-status=200;
//! stored`.

use http::HeaderValue;

/// The cache's name in `Cache-Status`.
pub const NAME: &str = "portico";

/// Why the request went forward to the origin (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// The cache was configured not to handle this request.
    Bypass,
    /// The method is not cacheable.
    Method,
    /// Nothing stored for the URI.
    UriMiss,
    /// Stored, but no variant matched the request's `Vary` fields.
    VaryMiss,
    /// The request's directives (`no-cache`, `max-age`, …) ruled the stored response out.
    Request,
    /// The stored response was stale and had to be validated.
    Stale,
}

impl Fwd {
    fn token(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }
}

/// One request's `Cache-Status` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the cache; `ttl` is the freshness left in seconds (negative when a stale
    /// response was served), `collapsed` when it waited for another request's fill.
    Hit { ttl: i64, collapsed: bool },
    /// Went to the origin.
    Fwd {
        why: Fwd,
        /// The origin's status.
        status: Option<u16>,
        /// The response was stored.
        stored: bool,
        /// Why it was not stored, or other detail.
        detail: Option<&'static str>,
    },
}

impl CacheStatus {
    /// The field value.
    pub fn header_value(&self) -> HeaderValue {
        let mut text = String::from(NAME);
        match self {
            CacheStatus::Hit { ttl, collapsed } => {
                text.push_str(&format!("; hit; ttl={ttl}"));
                if *collapsed {
                    text.push_str("; collapsed");
                }
            }
            CacheStatus::Fwd {
                why,
                status,
                stored,
                detail,
            } => {
                text.push_str("; fwd=");
                text.push_str(why.token());
                if let Some(status) = status {
                    text.push_str(&format!("; fwd-status={status}"));
                }
                if *stored {
                    text.push_str("; stored");
                }
                if let Some(detail) = detail {
                    text.push_str("; detail=");
                    text.push_str(detail);
                }
            }
        }
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_structured_fields() {
        let hit = CacheStatus::Hit {
            ttl: 42,
            collapsed: false,
        };
        assert_eq!(hit.header_value(), "portico; hit; ttl=42");
        let stale = CacheStatus::Hit {
            ttl: -3,
            collapsed: true,
        };
        assert_eq!(stale.header_value(), "portico; hit; ttl=-3; collapsed");
        let miss = CacheStatus::Fwd {
            why: Fwd::UriMiss,
            status: Some(200),
            stored: true,
            detail: None,
        };
        assert_eq!(
            miss.header_value(),
            "portico; fwd=uri-miss; fwd-status=200; stored"
        );
        let private = CacheStatus::Fwd {
            why: Fwd::Request,
            status: Some(200),
            stored: false,
            detail: Some("private"),
        };
        assert_eq!(
            private.header_value(),
            "portico; fwd=request; fwd-status=200; detail=private"
        );
        let bypass = CacheStatus::Fwd {
            why: Fwd::Bypass,
            status: None,
            stored: false,
            detail: None,
        };
        assert_eq!(bypass.header_value(), "portico; fwd=bypass");
    }
}
