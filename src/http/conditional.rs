//! Conditional requests (RFC 9110 §13): entity tags, their comparison, and the evaluation of
//! `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and `If-Range`.
//!
//! Called by `files::serve` and the cache (`cache::rules::not_modified`, ranges of stored
//! responses) once the selected representation's
//! validators are known, before any body is read. Pure functions over a `HeaderMap` and
//! [`Validators`]; they never build a response body. Dates are compared at one-second
//! resolution, the resolution of an HTTP-date (RFC 9110 §5.6.7).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName};
use http::{HeaderValue, Method};

/// An entity tag (RFC 9110 §8.8.3): an opaque string, strong or weak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` prefix: the tag is only a weak validator.
    pub weak: bool,
    /// The characters between the quotes.
    pub opaque: String,
}

impl EntityTag {
    /// A strong tag. `opaque` must hold only `etagc` characters (no `"`, no controls).
    pub fn strong(opaque: impl Into<String>) -> Self {
        EntityTag {
            weak: false,
            opaque: opaque.into(),
        }
    }

    /// A weak tag. `opaque` must hold only `etagc` characters (no `"`, no controls).
    pub fn weak(opaque: impl Into<String>) -> Self {
        EntityTag {
            weak: true,
            opaque: opaque.into(),
        }
    }

    /// Parses one entity tag, `"xyz"` or `W/"xyz"`; `None` if malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let mut tags = TagList::new(text);
        let tag = tags.next()?;
        match (tag, tags.rest.trim()) {
            (Some(tag), "") => Some(tag),
            _ => None,
        }
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong and the same characters.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the same characters, weak or not.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// The header value; `None` only if the opaque part holds characters a tag may not.
    pub fn to_header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.to_string()).ok()
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

/// The validators of the selected representation.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// Its entity tag, if it has one.
    pub etag: Option<EntityTag>,
    /// Its modification time, if it has one (already no later than now).
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// The validators a stored response's fields carry: `ETag` and `Last-Modified`.
    pub fn of(fields: &HeaderMap) -> Validators {
        Validators {
            etag: fields
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .and_then(EntityTag::parse),
            last_modified: fields
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v.trim()).ok()),
        }
    }
}

/// What the preconditions of a request say to do (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No precondition stops the request: go on (and consider `Range`).
    Proceed,
    /// 304 Not Modified: the client's copy is current (GET and HEAD only).
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// Evaluates the preconditions of a request in the order of RFC 9110 §13.2.2, steps 1 to 4.
/// `If-Range` (step 5) belongs to range handling: see [`if_range_allows`].
///
/// The selected representation is taken to exist, so `If-Match: *` passes and
/// `If-None-Match: *` matches.
pub fn evaluate(method: &Method, headers: &HeaderMap, validators: &Validators) -> Outcome {
    let get_or_head = method == Method::GET || method == Method::HEAD;

    // Step 1: If-Match, strong comparison (§13.1.1).
    if let Some(list) = tag_list(headers, header::IF_MATCH) {
        let matched = match list {
            Condition::Any => true,
            Condition::Tags(tags) => validators
                .etag
                .as_ref()
                .is_some_and(|etag| tags.iter().any(|t| t.strong_eq(etag))),
        };
        if !matched {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(since) = date(headers, header::IF_UNMODIFIED_SINCE) {
        // Step 2: If-Unmodified-Since, only without If-Match (§13.1.4).
        if let Some(modified) = validators.last_modified
            && seconds(modified) > seconds(since)
        {
            return Outcome::PreconditionFailed;
        }
    }

    // Steps 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only).
    match none_match(headers, validators) {
        Some(true) if get_or_head => Outcome::NotModified,
        Some(true) => Outcome::PreconditionFailed,
        Some(false) => Outcome::Proceed,
        None if get_or_head && modified_since_not_after(headers, validators) => {
            Outcome::NotModified
        }
        None => Outcome::Proceed,
    }
}

/// Steps 3 and 4 of RFC 9110 §13.2.2 for a GET or HEAD: whether `If-None-Match` (weak
/// comparison) or, without it, `If-Modified-Since` says the client's copy is current. What a
/// cache evaluates for a stored response (RFC 9111 §4.3.2), leaving `If-Match` and
/// `If-Unmodified-Since` to the origin.
pub fn not_modified(headers: &HeaderMap, validators: &Validators) -> bool {
    match none_match(headers, validators) {
        Some(matched) => matched,
        None => modified_since_not_after(headers, validators),
    }
}

/// Step 3: `None` without `If-None-Match`, else whether it matches (§13.1.2).
fn none_match(headers: &HeaderMap, validators: &Validators) -> Option<bool> {
    Some(match tag_list(headers, header::IF_NONE_MATCH)? {
        Condition::Any => true,
        Condition::Tags(tags) => validators
            .etag
            .as_ref()
            .is_some_and(|etag| tags.iter().any(|t| t.weak_eq(etag))),
    })
}

/// Step 4's condition: `If-Modified-Since` is valid and not before the last modification
/// (§13.1.3).
fn modified_since_not_after(headers: &HeaderMap, validators: &Validators) -> bool {
    match (
        date(headers, header::IF_MODIFIED_SINCE),
        validators.last_modified,
    ) {
        (Some(since), Some(modified)) => seconds(modified) <= seconds(since),
        _ => false,
    }
}

/// Whether `If-Range` lets the `Range` header apply (RFC 9110 §13.1.5): true without
/// `If-Range`; with an entity tag, true only on a strong match (a weak tag never matches); with
/// a date, true only if it equals `Last-Modified` exactly. A malformed value is false, so the
/// whole representation is sent, which is always safe.
pub fn if_range_allows(headers: &HeaderMap, validators: &Validators) -> bool {
    let mut values = headers.get_all(header::IF_RANGE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return true,
        (Some(value), None) => value,
        (Some(_), Some(_)) => return false,
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        return match (EntityTag::parse(text), &validators.etag) {
            (Some(tag), Some(etag)) => tag.strong_eq(etag),
            _ => false,
        };
    }
    match (httpdate::parse_http_date(text), validators.last_modified) {
        (Ok(date), Some(modified)) => seconds(date) == seconds(modified),
        _ => false,
    }
}

/// Headers a 304 response carries over from the 200 it stands for (RFC 9110 §15.4.5).
pub const NOT_MODIFIED_HEADERS: [HeaderName; 6] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
];

/// The 304 headers out of a full response's headers, plus `Last-Modified` (which RFC 9110
/// §15.4.5 allows and browsers use for the next `If-Modified-Since`).
pub fn not_modified_headers(full: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in NOT_MODIFIED_HEADERS.iter().chain([&header::LAST_MODIFIED]) {
        for value in full.get_all(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// Formats a time as an HTTP-date (RFC 9110 §5.6.7); `None` before 1970 or after 9999, which
/// `httpdate` cannot represent (it would panic).
pub fn http_date(time: SystemTime) -> Option<HeaderValue> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if secs >= MAX_HTTP_DATE_SECS {
        return None;
    }
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()
}

/// Either `*` or a list of entity tags.
enum Condition {
    Any,
    Tags(Vec<EntityTag>),
}

/// All field lines of an `If-Match` / `If-None-Match` header as one list (RFC 9110 §5.3).
/// `None` if absent. Malformed members are skipped: they can match nothing.
fn tag_list(headers: &HeaderMap, name: HeaderName) -> Option<Condition> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut tags = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        if text.trim() == "*" {
            return Some(Condition::Any);
        }
        tags.extend(TagList::new(text).flatten());
    }
    Some(Condition::Tags(tags))
}

/// A header date, if there is exactly one field line and it is a valid HTTP-date; otherwise the
/// header is ignored (RFC 9110 §13.1.3, §13.1.4).
fn date(headers: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Scans `#entity-tag` (RFC 9110 §8.8.3, §5.6.1): yields `Some(tag)` per well-formed member and
/// `None` per malformed one, then stops at the first member it cannot skip.
struct TagList<'a> {
    rest: &'a str,
}

impl<'a> TagList<'a> {
    fn new(text: &'a str) -> Self {
        TagList { rest: text }
    }
}

impl Iterator for TagList<'_> {
    type Item = Option<EntityTag>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.rest.trim_start_matches([' ', '\t', ',']);
        if text.is_empty() {
            self.rest = text;
            return None;
        }
        let (weak, quoted) = match text.strip_prefix("W/") {
            Some(quoted) => (true, quoted),
            None => (false, text),
        };
        let Some(body) = quoted.strip_prefix('"') else {
            // Not a tag: skip to the next comma.
            let skip = text.find(',').unwrap_or(text.len());
            self.rest = &text[skip..];
            return Some(None);
        };
        let Some(end) = body.find('"') else {
            self.rest = "";
            return Some(None);
        };
        let opaque = &body[..end];
        self.rest = &body[end + 1..];
        // etagc = %x21 / %x23-7E / obs-text
        let valid = opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
        let after = self.rest.trim_start_matches([' ', '\t']);
        if !valid || !(after.is_empty() || after.starts_with(',')) {
            let skip = after.find(',').unwrap_or(after.len());
            self.rest = &after[skip..];
            return Some(None);
        }
        Some(Some(EntityTag {
            weak,
            opaque: opaque.to_string(),
        }))
    }
}

/// 9999-12-31T23:59:59Z + 1 s: the first second `httpdate` refuses.
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_800;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date_text(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    fn validators() -> Validators {
        Validators {
            etag: Some(EntityTag::strong("abc")),
            // Sub-second part must not matter.
            last_modified: Some(at(1_000_000) + Duration::from_millis(700)),
        }
    }

    fn eval(pairs: &[(&str, &str)]) -> Outcome {
        evaluate(&Method::GET, &headers(pairs), &validators())
    }

    #[test]
    fn parse_strong_and_weak_tags() {
        assert_eq!(
            EntityTag::parse("\"xyzzy\""),
            Some(EntityTag::strong("xyzzy"))
        );
        assert_eq!(
            EntityTag::parse("W/\"xyzzy\""),
            Some(EntityTag::weak("xyzzy"))
        );
        assert_eq!(EntityTag::parse("\"\""), Some(EntityTag::strong("")));
        assert_eq!(EntityTag::parse("xyzzy"), None);
        assert_eq!(EntityTag::parse("\"open"), None);
        assert_eq!(EntityTag::parse("\"a\" \"b\""), None);
        assert_eq!(EntityTag::parse("w/\"lower\""), None);
    }

    #[test]
    fn comparison_table_of_rfc_9110() {
        // RFC 9110 §8.8.3.2, the table of four examples.
        let (w1, w1b, w2, s1) = (
            EntityTag::weak("1"),
            EntityTag::weak("1"),
            EntityTag::weak("2"),
            EntityTag::strong("1"),
        );
        assert!(!w1.strong_eq(&w1b) && w1.weak_eq(&w1b));
        assert!(!w1.strong_eq(&w2) && !w1.weak_eq(&w2));
        assert!(!w1.strong_eq(&s1) && w1.weak_eq(&s1));
        assert!(s1.strong_eq(&s1.clone()) && s1.weak_eq(&s1.clone()));
    }

    #[test]
    fn tag_with_comma_inside_quotes_is_one_tag() {
        let tags: Vec<_> = TagList::new("\"a,b\", W/\"c\"").flatten().collect();
        assert_eq!(tags, vec![EntityTag::strong("a,b"), EntityTag::weak("c")]);
    }

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(eval(&[]), Outcome::Proceed);
    }

    #[test]
    fn if_match_strong_match_proceeds() {
        assert_eq!(eval(&[("if-match", "\"x\", \"abc\"")]), Outcome::Proceed);
        assert_eq!(eval(&[("if-match", "*")]), Outcome::Proceed);
    }

    #[test]
    fn if_match_mismatch_is_412() {
        assert_eq!(eval(&[("if-match", "\"x\"")]), Outcome::PreconditionFailed);
    }

    #[test]
    fn if_match_weak_tag_never_matches() {
        assert_eq!(
            eval(&[("if-match", "W/\"abc\"")]),
            Outcome::PreconditionFailed
        );
    }

    #[test]
    fn if_match_against_weak_etag_fails() {
        let v = Validators {
            etag: Some(EntityTag::weak("abc")),
            last_modified: None,
        };
        let h = headers(&[("if-match", "\"abc\"")]);
        assert_eq!(evaluate(&Method::GET, &h, &v), Outcome::PreconditionFailed);
    }

    #[test]
    fn if_match_lines_are_combined() {
        let h = [("if-match", "\"x\""), ("if-match", "\"abc\"")];
        assert_eq!(eval(&h), Outcome::Proceed);
    }

    #[test]
    fn if_unmodified_since_older_date_is_412() {
        let old = date_text(999_999);
        assert_eq!(
            eval(&[("if-unmodified-since", &old)]),
            Outcome::PreconditionFailed
        );
    }

    #[test]
    fn if_unmodified_since_same_second_proceeds() {
        let same = date_text(1_000_000);
        assert_eq!(eval(&[("if-unmodified-since", &same)]), Outcome::Proceed);
    }

    #[test]
    fn if_unmodified_since_is_ignored_with_if_match() {
        let old = date_text(1);
        let h = [
            ("if-match", "\"abc\""),
            ("if-unmodified-since", old.as_str()),
        ];
        assert_eq!(eval(&h), Outcome::Proceed);
    }

    #[test]
    fn if_unmodified_since_invalid_date_is_ignored() {
        assert_eq!(
            eval(&[("if-unmodified-since", "yesterday")]),
            Outcome::Proceed
        );
    }

    #[test]
    fn if_none_match_weak_match_is_304() {
        assert_eq!(
            eval(&[("if-none-match", "W/\"abc\"")]),
            Outcome::NotModified
        );
        assert_eq!(eval(&[("if-none-match", "\"abc\"")]), Outcome::NotModified);
        assert_eq!(eval(&[("if-none-match", "*")]), Outcome::NotModified);
    }

    #[test]
    fn if_none_match_mismatch_proceeds() {
        assert_eq!(eval(&[("if-none-match", "\"other\"")]), Outcome::Proceed);
    }

    #[test]
    fn if_none_match_on_other_methods_is_412() {
        let h = headers(&[("if-none-match", "\"abc\"")]);
        assert_eq!(
            evaluate(&Method::PUT, &h, &validators()),
            Outcome::PreconditionFailed
        );
    }

    #[test]
    fn if_modified_since_same_or_later_is_304() {
        for secs in [1_000_000, 2_000_000] {
            let date = date_text(secs);
            assert_eq!(
                eval(&[("if-modified-since", &date)]),
                Outcome::NotModified,
                "{secs}"
            );
        }
    }

    #[test]
    fn if_modified_since_older_proceeds() {
        let old = date_text(999_999);
        assert_eq!(eval(&[("if-modified-since", &old)]), Outcome::Proceed);
    }

    #[test]
    fn if_modified_since_is_ignored_with_if_none_match() {
        let later = date_text(2_000_000);
        let h = [
            ("if-none-match", "\"other\""),
            ("if-modified-since", later.as_str()),
        ];
        assert_eq!(eval(&h), Outcome::Proceed);
    }

    #[test]
    fn if_modified_since_is_ignored_for_post_and_when_repeated() {
        let later = date_text(2_000_000);
        let h = headers(&[("if-modified-since", later.as_str())]);
        assert_eq!(evaluate(&Method::POST, &h, &validators()), Outcome::Proceed);
        let twice = [
            ("if-modified-since", later.as_str()),
            ("if-modified-since", later.as_str()),
        ];
        assert_eq!(eval(&twice), Outcome::Proceed);
    }

    #[test]
    fn if_match_failure_wins_over_if_none_match() {
        let h = [("if-match", "\"x\""), ("if-none-match", "\"abc\"")];
        assert_eq!(eval(&h), Outcome::PreconditionFailed);
    }

    #[test]
    fn if_range_with_strong_match_allows() {
        let h = headers(&[("if-range", "\"abc\"")]);
        assert!(if_range_allows(&h, &validators()));
        assert!(if_range_allows(&HeaderMap::new(), &validators()));
    }

    #[test]
    fn if_range_with_weak_or_other_tag_refuses() {
        for value in ["W/\"abc\"", "\"zzz\"", "garbage", "\"abc"] {
            let h = headers(&[("if-range", value)]);
            assert!(!if_range_allows(&h, &validators()), "{value}");
        }
    }

    #[test]
    fn if_range_date_must_equal_last_modified() {
        let (same, later) = (date_text(1_000_000), date_text(1_000_001));
        let same = headers(&[("if-range", &same)]);
        assert!(if_range_allows(&same, &validators()));
        let later = headers(&[("if-range", &later)]);
        assert!(!if_range_allows(&later, &validators()));
    }

    #[test]
    fn not_modified_keeps_validators_and_vary_only() {
        let full = headers(&[
            ("etag", "\"abc\""),
            ("vary", "Accept-Encoding"),
            ("cache-control", "max-age=60"),
            ("last-modified", &date_text(5)),
            ("content-length", "10"),
            ("content-type", "text/plain"),
        ]);
        let kept = not_modified_headers(&full);
        assert_eq!(kept.len(), 4);
        assert!(kept.get("content-length").is_none());
        assert!(kept.get("content-type").is_none());
    }

    #[test]
    fn http_date_refuses_times_httpdate_cannot_print() {
        assert!(http_date(UNIX_EPOCH - Duration::from_secs(1)).is_none());
        assert!(http_date(at(MAX_HTTP_DATE_SECS)).is_none());
        assert!(http_date(at(MAX_HTTP_DATE_SECS - 1)).is_some());
        assert_eq!(
            http_date(at(784_111_777)).unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
