//! Byte range requests (RFC 9110 §14): parsing `Range`, deciding which ranges are satisfiable,
//! and formatting `Content-Range`.
//!
//! Called by `files::serve` after the preconditions (`http::conditional`) passed and `If-Range`
//! allowed the range. Pure functions: they never read a body.
//!
//! Decisions a successor might undo:
//! - More than one satisfiable range gives [`Ranges::Multiple`]; `files::serve` answers it with
//!   `multipart/byteranges` (206) when there are at most 16, none overlapping, of 16 MiB in
//!   all, and with the whole representation (200) otherwise, which RFC 9110 §14.2 allows ("a
//!   server MAY ignore the Range header field"); that bounds the many-small-overlapping-ranges
//!   amplification RFC 9110 §14.2 warns about.
//! - An empty representation ignores `Range` (200 with an empty body): no byte range of it can
//!   be written in `Content-Range`, and a 416 for `bytes=0-` on an empty file helps nobody.
//! - Numbers too large for `u64` saturate: a huge `first-pos` is unsatisfiable, a huge
//!   `last-pos` or suffix length reaches the end of the representation, as the RFC's
//!   arithmetic says for any number past the length.

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};

/// One satisfiable byte range, both ends inclusive as in HTTP (`start <= end < length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset of the last byte.
    pub end: u64,
}

impl ByteRange {
    /// The number of bytes in the range (never zero).
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a satisfiable range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `Content-Range: bytes start-end/length` (RFC 9110 §14.4).
    pub fn content_range(&self, length: u64) -> HeaderValue {
        ascii_value(format!("bytes {}-{}/{length}", self.start, self.end))
    }
}

/// What a request's `Range` asks of a representation of a known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Send the whole representation (200): no `Range`, a method other than GET, another
    /// unit, a syntax error, or an empty representation.
    Ignore,
    /// Send this one range (206).
    Single(ByteRange),
    /// More than one satisfiable range, in the order asked.
    Multiple(Vec<ByteRange>),
    /// A valid `Range` of which no range is satisfiable (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Reads the request's `Range` header for a representation of `length` bytes. Only GET has
/// range semantics (RFC 9110 §14.2: a server MUST ignore `Range` for other methods, HEAD
/// included); several `Range` field lines are invalid and ignored.
pub fn from_headers(method: &Method, headers: &HeaderMap, length: u64) -> Ranges {
    if method != Method::GET {
        return Ranges::Ignore;
    }
    let mut values = headers.get_all(header::RANGE).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => match value.to_str() {
            Ok(text) => parse(text, length),
            Err(_) => Ranges::Ignore,
        },
        _ => Ranges::Ignore,
    }
}

/// Parses a `Range` value (RFC 9110 §14.1.1) against a representation of `length` bytes.
///
/// ```text
/// ranges-specifier = range-unit "=" range-set
/// range-set        = 1#range-spec
/// range-spec       = int-range / suffix-range / other-range
/// int-range        = first-pos "-" [ last-pos ]
/// suffix-range     = "-" suffix-length
/// ```
pub fn parse(value: &str, length: u64) -> Ranges {
    let Some((unit, set)) = value.trim_matches(OWS).split_once('=') else {
        return Ranges::Ignore;
    };
    // Range units are case-insensitive (RFC 9110 §14.1); any other unit is ignored (§14.2).
    if !unit.eq_ignore_ascii_case("bytes") || length == 0 {
        return Ranges::Ignore;
    }
    let mut satisfiable = Vec::new();
    let mut any = false;
    // A list allows empty members and OWS around commas (RFC 9110 §5.6.1).
    for spec in set
        .split(',')
        .map(|s| s.trim_matches(OWS))
        .filter(|s| !s.is_empty())
    {
        any = true;
        match parse_spec(spec) {
            Some(spec) => satisfiable.extend(spec.resolve(length)),
            // One invalid range-spec makes the whole field invalid: ignore it.
            None => return Ranges::Ignore,
        }
    }
    match satisfiable.len() {
        _ if !any => Ranges::Ignore,
        0 => Ranges::Unsatisfiable,
        1 => Ranges::Single(satisfiable[0]),
        _ => Ranges::Multiple(satisfiable),
    }
}

/// `Content-Range: bytes */length`, sent with 416 (RFC 9110 §14.4, §15.5.17).
pub fn unsatisfied_content_range(length: u64) -> HeaderValue {
    ascii_value(format!("bytes */{length}"))
}

/// A range-spec before the length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

impl Spec {
    /// The satisfiable range this spec selects, if any (RFC 9110 §14.1.1). `length` > 0.
    fn resolve(self, length: u64) -> Option<ByteRange> {
        match self {
            Spec::From { first, last } => (first < length).then(|| ByteRange {
                start: first,
                end: last.map_or(length - 1, |last| last.min(length - 1)),
            }),
            Spec::Suffix(0) => None,
            Spec::Suffix(suffix) => Some(ByteRange {
                start: length.saturating_sub(suffix),
                end: length - 1,
            }),
        }
    }
}

/// One range-spec; `None` if it is not valid syntax (including `last-pos < first-pos`).
fn parse_spec(spec: &str) -> Option<Spec> {
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    match last {
        Some(last) if last < first => None,
        _ => Some(Spec::From { first, last }),
    }
}

/// `1*DIGIT`, saturating at `u64::MAX`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// A `Content-Range` value built here from `bytes`, digits, spaces, `-`, `/` and `*`.
fn ascii_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("letters, digits, spaces and `-/*` are valid header bytes")
}

/// Optional white space (RFC 9110 §5.6.3).
const OWS: [char; 2] = [' ', '\t'];

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64) -> Ranges {
        Ranges::Single(ByteRange { start, end })
    }

    #[test]
    fn first_byte_only() {
        assert_eq!(parse("bytes=0-0", 100), range(0, 0));
    }

    #[test]
    fn closed_range() {
        assert_eq!(parse("bytes=10-19", 100), range(10, 19));
    }

    #[test]
    fn open_range_runs_to_the_end() {
        assert_eq!(parse("bytes=90-", 100), range(90, 99));
    }

    #[test]
    fn last_pos_past_the_end_is_clamped() {
        assert_eq!(parse("bytes=90-1000", 100), range(90, 99));
    }

    #[test]
    fn suffix_range_takes_the_last_bytes() {
        assert_eq!(parse("bytes=-10", 100), range(90, 99));
    }

    #[test]
    fn suffix_longer_than_representation_takes_all() {
        assert_eq!(parse("bytes=-1000", 100), range(0, 99));
    }

    #[test]
    fn zero_suffix_is_unsatisfiable() {
        assert_eq!(parse("bytes=-0", 100), Ranges::Unsatisfiable);
    }

    #[test]
    fn first_pos_at_length_is_unsatisfiable() {
        assert_eq!(parse("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), Ranges::Unsatisfiable);
    }

    #[test]
    fn reversed_range_is_invalid_and_ignored() {
        assert_eq!(parse("bytes=5-2", 100), Ranges::Ignore);
    }

    #[test]
    fn one_invalid_spec_invalidates_the_field() {
        assert_eq!(parse("bytes=0-1, 5-2", 100), Ranges::Ignore);
        assert_eq!(parse("bytes=0-1, x", 100), Ranges::Ignore);
    }

    #[test]
    fn overflowing_first_pos_is_unsatisfiable() {
        assert_eq!(
            parse("bytes=99999999999999999999999-", 100),
            Ranges::Unsatisfiable
        );
    }

    #[test]
    fn overflowing_last_pos_is_clamped() {
        assert_eq!(parse("bytes=0-99999999999999999999999", 100), range(0, 99));
    }

    #[test]
    fn overflowing_suffix_takes_all() {
        assert_eq!(parse("bytes=-99999999999999999999999", 100), range(0, 99));
    }

    #[test]
    fn max_u64_positions_do_not_overflow() {
        let max = u64::MAX;
        assert_eq!(
            parse(&format!("bytes={}-", max - 1), max),
            range(max - 1, max - 1)
        );
        assert_eq!(parse("bytes=-1", max), range(max - 1, max - 1));
    }

    #[test]
    fn whitespace_around_list_members_is_allowed() {
        assert_eq!(parse("bytes= 0-1 ,\t", 100), range(0, 1));
        assert_eq!(parse("  bytes=0-1  ", 100), range(0, 1));
    }

    #[test]
    fn whitespace_inside_a_spec_is_invalid() {
        assert_eq!(parse("bytes=0 -1", 100), Ranges::Ignore);
        assert_eq!(parse("bytes=0- 1", 100), Ranges::Ignore);
        assert_eq!(parse("bytes =0-1", 100), Ranges::Ignore);
    }

    #[test]
    fn unit_is_case_insensitive() {
        assert_eq!(parse("BYTES=0-1", 100), range(0, 1));
    }

    #[test]
    fn other_units_are_ignored() {
        assert_eq!(parse("items=0-1", 100), Ranges::Ignore);
        assert_eq!(parse("0-1", 100), Ranges::Ignore);
    }

    #[test]
    fn malformed_specs_are_ignored() {
        for value in [
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1",
            "bytes=--1",
        ] {
            assert_eq!(parse(value, 100), Ranges::Ignore, "{value}");
        }
    }

    #[test]
    fn multiple_ranges_are_kept_in_order() {
        assert_eq!(
            parse("bytes=50-59, 0-9, -5", 100),
            Ranges::Multiple(vec![
                ByteRange { start: 50, end: 59 },
                ByteRange { start: 0, end: 9 },
                ByteRange { start: 95, end: 99 },
            ])
        );
    }

    #[test]
    fn unsatisfiable_members_are_dropped() {
        assert_eq!(parse("bytes=500-600, 0-1", 100), range(0, 1));
        assert_eq!(parse("bytes=500-600, -0", 100), Ranges::Unsatisfiable);
    }

    #[test]
    fn empty_representation_ignores_range() {
        assert_eq!(parse("bytes=0-", 0), Ranges::Ignore);
        assert_eq!(parse("bytes=-5", 0), Ranges::Ignore);
    }

    #[test]
    fn only_get_has_ranges() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert_eq!(from_headers(&Method::GET, &headers, 10), range(0, 1));
        assert_eq!(from_headers(&Method::HEAD, &headers, 10), Ranges::Ignore);
    }

    #[test]
    fn repeated_range_lines_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        headers.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(from_headers(&Method::GET, &headers, 10), Ranges::Ignore);
    }

    #[test]
    fn content_range_values() {
        let r = ByteRange { start: 0, end: 0 };
        assert_eq!(r.content_range(10), "bytes 0-0/10");
        assert_eq!(r.len(), 1);
        assert_eq!(unsatisfied_content_range(10), "bytes */10");
    }
}
