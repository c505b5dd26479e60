//! `Cache-Control` (RFC 9111 §5.2), request and response directives, parsed from every field
//! line of a header map.
//!
//! Parsing follows §4.2.1 and §1.2.2: directive names are case-insensitive; a value may be a
//! token or a quoted string; when a directive appears twice the first occurrence is used;
//! delta-seconds larger than 2^31 are taken as 2^31, and an invalid one (`max-age=soon`)
//! makes the response stale (`max-age=0`), which is the most restrictive reading. Unknown
//! directives are ignored (§5.2.3).

use http::HeaderMap;
use http::header::{CACHE_CONTROL, HeaderName};

/// delta-seconds are capped here (RFC 9111 §1.2.2).
pub const DELTA_MAX: u64 = 1 << 31;

/// `no-cache` and `private` may name fields (`no-cache="Set-Cookie"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Qualified {
    #[default]
    Absent,
    /// The directive without field names: it applies to the whole response.
    All,
    /// The directive with field names, lower-cased.
    Fields(Vec<HeaderName>),
}

impl Qualified {
    pub fn is_all(&self) -> bool {
        matches!(self, Qualified::All)
    }

    /// The named fields (empty unless qualified).
    pub fn fields(&self) -> &[HeaderName] {
        match self {
            Qualified::Fields(names) => names,
            _ => &[],
        }
    }
}

/// The directives of one message. Each is `None`/`false`/`Absent` when not present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheControl {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// Request `max-stale`: `Some(None)` without a value (any staleness), `Some(Some(n))`.
    pub max_stale: Option<Option<u64>>,
    pub min_fresh: Option<u64>,
    pub no_cache: Qualified,
    pub no_store: bool,
    pub private: Qualified,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    pub no_transform: bool,
    pub only_if_cached: bool,
    pub immutable: bool,
    /// RFC 5861.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861.
    pub stale_if_error: Option<u64>,
}

impl CacheControl {
    /// The directives of every `Cache-Control` line of `headers`.
    pub fn parse(headers: &HeaderMap) -> CacheControl {
        let mut cc = CacheControl::default();
        let mut seen: Vec<String> = Vec::new();
        for line in headers.get_all(CACHE_CONTROL) {
            let Ok(line) = std::str::from_utf8(line.as_bytes()) else {
                continue;
            };
            for (name, value) in directives(line) {
                let name = name.to_ascii_lowercase();
                if seen.contains(&name) {
                    continue;
                }
                cc.apply(&name, value.as_deref());
                seen.push(name);
            }
        }
        cc
    }

    fn apply(&mut self, name: &str, value: Option<&str>) {
        let seconds = || value.map_or(Some(0), delta_seconds).or(Some(0));
        match name {
            "max-age" => self.max_age = seconds(),
            "s-maxage" => self.s_maxage = seconds(),
            "min-fresh" => self.min_fresh = seconds(),
            "max-stale" => {
                // An invalid value is read as none at all: the client accepts no staleness
                // it did not state clearly.
                self.max_stale = Some(value.map(|v| delta_seconds(v).unwrap_or(0)))
            }
            "stale-while-revalidate" => self.stale_while_revalidate = value.and_then(delta_seconds),
            "stale-if-error" => self.stale_if_error = value.and_then(delta_seconds),
            "no-cache" => self.no_cache = qualified(value),
            "private" => self.private = qualified(value),
            "no-store" => self.no_store = true,
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            "must-understand" => self.must_understand = true,
            "no-transform" => self.no_transform = true,
            "only-if-cached" => self.only_if_cached = true,
            "immutable" => self.immutable = true,
            _ => {}
        }
    }
}

/// A field-name list value (`"Set-Cookie, X-Id"`); an empty list means the whole response.
fn qualified(value: Option<&str>) -> Qualified {
    let names: Vec<HeaderName> = value
        .unwrap_or("")
        .split(',')
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    if names.is_empty() {
        Qualified::All
    } else {
        Qualified::Fields(names)
    }
}

/// delta-seconds (§1.2.2): digits only, capped at [`DELTA_MAX`]; `None` if invalid.
pub fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().map_or(DELTA_MAX, |n| n.min(DELTA_MAX)))
}

/// The `name[=value]` pairs of one field line; quoted values are unescaped.
fn directives(line: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = line[start..i].trim().to_string();
        let mut value = None;
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    v.push(bytes[i] as char);
                    i += 1;
                }
                i += 1;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                value = Some(v);
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                value = Some(line[start..i].trim().to_string());
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(CACHE_CONTROL, line.parse().unwrap());
        }
        CacheControl::parse(&headers)
    }

    #[test]
    fn directives_are_read_from_every_line_without_case() {
        let c = cc(&["Public, MAX-AGE=60", "s-maxage=\"120\", must-revalidate"]);
        assert!(c.public && c.must_revalidate);
        assert_eq!((c.max_age, c.s_maxage), (Some(60), Some(120)));
        assert_eq!(cc(&[]), CacheControl::default());
    }

    #[test]
    fn the_first_occurrence_wins_and_invalid_ages_mean_stale() {
        assert_eq!(cc(&["max-age=10, max-age=99"]).max_age, Some(10));
        assert_eq!(cc(&["max-age=10", "max-age=99"]).max_age, Some(10));
        assert_eq!(cc(&["max-age=soon"]).max_age, Some(0));
        assert_eq!(cc(&["max-age=-5"]).max_age, Some(0));
        assert_eq!(cc(&["max-age"]).max_age, Some(0));
        assert_eq!(
            cc(&["max-age=99999999999999999999"]).max_age,
            Some(DELTA_MAX)
        );
    }

    #[test]
    fn no_cache_and_private_may_name_fields() {
        let c = cc(&["no-cache=\"Set-Cookie, X-Id\", private"]);
        assert_eq!(
            c.no_cache,
            Qualified::Fields(vec![
                HeaderName::from_static("set-cookie"),
                HeaderName::from_static("x-id")
            ])
        );
        assert!(c.private.is_all());
        assert!(cc(&["no-cache"]).no_cache.is_all());
        assert_eq!(cc(&["max-age=1"]).no_cache, Qualified::Absent);
    }

    #[test]
    fn request_directives_and_rfc_5861() {
        let c = cc(&["max-stale, min-fresh=5, only-if-cached, no-store"]);
        assert_eq!(c.max_stale, Some(None));
        assert_eq!(c.min_fresh, Some(5));
        assert!(c.only_if_cached && c.no_store);
        assert_eq!(cc(&["max-stale=30"]).max_stale, Some(Some(30)));
        let c = cc(&["max-age=1, stale-while-revalidate=30, stale-if-error=600"]);
        assert_eq!(
            (c.stale_while_revalidate, c.stale_if_error),
            (Some(30), Some(600))
        );
        // Unknown directives and stray commas are ignored.
        let c = cc(&[",, foo=\"a,b\", bar, max-age=3,"]);
        assert_eq!(c.max_age, Some(3));
    }
}
