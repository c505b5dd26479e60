//! RFC 9111's rules for a shared cache, as pure functions of the stored metadata, the new
//! request and the clock: what may be stored (§3), which fields are kept (§3.1), freshness
//! (§4.2.1, heuristics §4.2.2), age (§4.2.3), whether a stored response may be reused (§4,
//! with RFC 5861's stale-while-revalidate and stale-if-error), validation (§4.3), the header
//! update after a 304 (§3.2, §4.3.4), and invalidation by unsafe methods (§4.4).
//!
//! Written here rather than taken from a crate: the crates at hand implement a browser's
//! private cache first, and the shared-cache details — `s-maxage` implying
//! `proxy-revalidate`, qualified `private`/`no-cache`, `must-understand`, Authorization — are
//! exactly where conformance suites separate caches. Every rule cites its section.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode};

use super::control::{CacheControl, Qualified, delta_seconds};
use crate::http::conditional::{self, Validators};

/// Statuses a cache may store without explicit freshness (RFC 9110 §15.1: heuristically
/// cacheable).
const HEURISTIC_STATUSES: [u16; 12] = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Heuristic freshness is this fraction of the time since `Last-Modified` (§4.2.2)…
const HEURISTIC_FRACTION: u32 = 10;
/// …and at most this long.
const HEURISTIC_MAX: Duration = Duration::from_secs(24 * 3600);

/// Fields a 304 does not update: they describe the stored content itself (§3.2), which the
/// 304 does not carry.
const DESCRIBES_STORED_CONTENT: [&str; 5] = [
    "content-length",
    "content-encoding",
    "content-range",
    "content-md5",
    "content-digest",
];

/// Why a response is not stored (for `Cache-Status: …; detail=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    NoFreshness,
}

impl NotStorable {
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Method => "method",
            NotStorable::Status => "status",
            NotStorable::NoStore => "no-store",
            NotStorable::Private => "private",
            NotStorable::Authorization => "authorization",
            NotStorable::VaryStar => "vary-star",
            NotStorable::NoFreshness => "no-freshness",
        }
    }
}

/// §3: whether a shared cache may store the response `status`/`res` to a request with
/// `method` and headers `req`. Only GET responses are stored: HEAD is answered from a stored
/// GET (§4.3.5 allows it) and other methods' responses are not reused here.
pub fn storable(
    method: &Method,
    req: &HeaderMap,
    status: StatusCode,
    res: &HeaderMap,
) -> Result<(), NotStorable> {
    if method != Method::GET {
        return Err(NotStorable::Method);
    }
    let rcc = CacheControl::parse(res);
    // §3: a final status; 206 and 304 are not stored whole (no range assembly here); a status
    // the cache does not understand only without must-understand (§5.2.2.3), and (below) with
    // explicit freshness, as it is not heuristically cacheable.
    if status.is_informational()
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (rcc.must_understand && !understood_status(status))
    {
        return Err(NotStorable::Status);
    }
    let qcc = CacheControl::parse(req);
    // §5.2.2.3: must-understand with an understood status overrides no-store.
    if qcc.no_store || (rcc.no_store && !rcc.must_understand) {
        return Err(NotStorable::NoStore);
    }
    // §5.2.2.7: unqualified private forbids a shared cache to store.
    if rcc.private.is_all() {
        return Err(NotStorable::Private);
    }
    // §3.5: a request with Authorization only when the response explicitly allows it.
    if req.contains_key(header::AUTHORIZATION)
        && !(rcc.public || rcc.must_revalidate || rcc.s_maxage.is_some())
    {
        return Err(NotStorable::Authorization);
    }
    // §4.1: `Vary: *` never matches a later request.
    if vary_names(res).iter().any(|n| n == "*") {
        return Err(NotStorable::VaryStar);
    }
    let explicit = res.contains_key(header::EXPIRES)
        || rcc.max_age.is_some()
        || rcc.s_maxage.is_some()
        || rcc.public;
    if explicit || HEURISTIC_STATUSES.contains(&status.as_u16()) {
        Ok(())
    } else {
        Err(NotStorable::NoFreshness)
    }
}

/// The statuses whose semantics this cache knows (RFC 9110 §15).
fn understood_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=208 | 226 | 300..=308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451 | 500..=511
    )
}

/// §3.1: the fields kept when storing: hop-by-hop fields, fields named by `Connection`, and
/// fields named by a qualified `private` or `no-cache` (§5.2.2.4, §5.2.2.7: never reused
/// without validation, so never stored) are removed.
pub fn strip_for_storage(res: &mut HeaderMap) {
    let rcc = CacheControl::parse(res);
    crate::proxy::headers::remove_hop_by_hop(res);
    // A proxy's own authentication answer is for the client it answered.
    res.remove("proxy-authentication-info");
    for name in rcc.private.fields().iter().chain(rcc.no_cache.fields()) {
        res.remove(name);
    }
}

/// §4.2.1: how long the response is fresh, for a shared cache. `response_time` stands in for
/// a missing `Date`.
pub fn freshness_lifetime(
    status: StatusCode,
    res: &HeaderMap,
    response_time: SystemTime,
) -> Duration {
    let rcc = CacheControl::parse(res);
    if let Some(s) = rcc.s_maxage {
        return Duration::from_secs(s);
    }
    if let Some(s) = rcc.max_age {
        return Duration::from_secs(s);
    }
    let date = date_of(res).unwrap_or(response_time);
    if let Some(expires) = res.get(header::EXPIRES) {
        // An invalid Expires (such as "0") means already expired (§5.3).
        return expires
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|at| at.duration_since(date).ok())
            .unwrap_or(Duration::ZERO);
    }
    // §4.2.2: a heuristic only for heuristically cacheable statuses or `public`.
    if !(HEURISTIC_STATUSES.contains(&status.as_u16()) || rcc.public) {
        return Duration::ZERO;
    }
    let last_modified = res
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match last_modified.and_then(|lm| date.duration_since(lm).ok()) {
        Some(since) => (since / HEURISTIC_FRACTION).min(HEURISTIC_MAX),
        None => Duration::ZERO,
    }
}

/// True when the freshness lifetime came from a heuristic rather than the origin.
pub fn is_heuristic(res: &HeaderMap) -> bool {
    let rcc = CacheControl::parse(res);
    rcc.s_maxage.is_none() && rcc.max_age.is_none() && !res.contains_key(header::EXPIRES)
}

/// When and how a response was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// When the request that got it was sent.
    pub request_time: SystemTime,
    /// When the response head arrived.
    pub response_time: SystemTime,
}

/// §4.2.3: the current age of a stored response at `now`.
pub fn current_age(res: &HeaderMap, received: Received, now: SystemTime) -> Duration {
    let date = date_of(res).unwrap_or(received.response_time);
    let apparent_age = received
        .response_time
        .duration_since(date)
        .unwrap_or(Duration::ZERO);
    let age_value = Duration::from_secs(age_value(res));
    let response_delay = received
        .response_time
        .duration_since(received.request_time)
        .unwrap_or(Duration::ZERO);
    let corrected_initial_age = apparent_age.max(age_value + response_delay);
    let resident_time = now
        .duration_since(received.response_time)
        .unwrap_or(Duration::ZERO);
    corrected_initial_age + resident_time
}

/// §4.2.3 `age_value`: the `Age` field, 0 when absent. `Age` is one delta-seconds (§5.1); any
/// other value (`-1`, `1.5`, `abc`, `7200;x=1`, a list, a second line) leaves the age unknown,
/// read as the largest delta-seconds, so the response is stale — the most restrictive reading,
/// as for an invalid `max-age` (`control`).
fn age_value(res: &HeaderMap) -> u64 {
    let mut lines = res.get_all(header::AGE).iter();
    match (lines.next(), lines.next()) {
        (None, _) => 0,
        (Some(line), None) => line
            .to_str()
            .ok()
            .and_then(delta_seconds)
            .unwrap_or(super::control::DELTA_MAX),
        (Some(_), Some(_)) => super::control::DELTA_MAX,
    }
}

/// What a shared cache may do with a stored response for a new request (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh enough for the request: serve it.
    Fresh,
    /// Stale, and the request's `max-stale` accepts it: serve it.
    StaleAccepted,
    /// Stale within `stale-while-revalidate`: serve it and refresh it in the background.
    StaleWhileRevalidate,
    /// Must be validated with the origin (or fetched again) first.
    Validate,
}

/// §4, §4.2.4, §5.2.1, §5.2.2, RFC 5861 §3: may the stored response (`status`, `res`,
/// `received`) answer a request with headers `req` at `now`? (The key and `Vary` have
/// already matched.)
pub fn reuse(
    status: StatusCode,
    res: &HeaderMap,
    received: Received,
    req: &HeaderMap,
    now: SystemTime,
) -> Reuse {
    let qcc = CacheControl::parse(req);
    let rcc = CacheControl::parse(res);
    // §5.2.1.4 (and §5.4: `Pragma: no-cache` when the request has no Cache-Control).
    let pragma_no_cache = !req.contains_key(header::CACHE_CONTROL)
        && req.get_all(header::PRAGMA).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("no-cache"))
        });
    if qcc.no_cache != Qualified::Absent || pragma_no_cache || rcc.no_cache.is_all() {
        return Reuse::Validate;
    }
    let lifetime = freshness_lifetime(status, res, received.response_time);
    let age = current_age(res, received, now);
    // §5.2.1.1: the client will not take anything older.
    if qcc
        .max_age
        .is_some_and(|max| age > Duration::from_secs(max))
    {
        return Reuse::Validate;
    }
    // §5.2.1.3: fresh for at least this much longer.
    if let Some(min) = qcc.min_fresh
        && lifetime.saturating_sub(age) < Duration::from_secs(min)
    {
        return Reuse::Validate;
    }
    if lifetime > age {
        return Reuse::Fresh;
    }
    if !may_serve_stale(&rcc) {
        return Reuse::Validate;
    }
    let staleness = age - lifetime;
    // §5.2.1.2
    match qcc.max_stale {
        Some(None) => return Reuse::StaleAccepted,
        Some(Some(max)) if staleness <= Duration::from_secs(max) => {
            return Reuse::StaleAccepted;
        }
        _ => {}
    }
    if rcc
        .stale_while_revalidate
        .is_some_and(|window| staleness <= Duration::from_secs(window))
    {
        return Reuse::StaleWhileRevalidate;
    }
    Reuse::Validate
}

/// §4.2.4: `must-revalidate`, and for a shared cache `proxy-revalidate` and `s-maxage`
/// (§5.2.2.10), forbid serving the response stale.
fn may_serve_stale(rcc: &CacheControl) -> bool {
    !(rcc.must_revalidate || rcc.proxy_revalidate || rcc.s_maxage.is_some())
}

/// RFC 5861 §4 and a configured `grace`: may the stale response be served because the
/// origin failed (a 5xx or no answer)? The response's `stale-if-error` (or the request's)
/// bounds the staleness, else `grace` does; `must-revalidate` and friends forbid it.
pub fn stale_on_error(
    status: StatusCode,
    res: &HeaderMap,
    received: Received,
    req: &HeaderMap,
    now: SystemTime,
    grace: Duration,
) -> bool {
    let rcc = CacheControl::parse(res);
    if !may_serve_stale(&rcc) || rcc.no_cache.is_all() {
        return false;
    }
    let qcc = CacheControl::parse(req);
    let lifetime = freshness_lifetime(status, res, received.response_time);
    let staleness = current_age(res, received, now).saturating_sub(lifetime);
    let window = qcc
        .stale_if_error
        .or(rcc.stale_if_error)
        .map_or(grace, Duration::from_secs);
    staleness <= window
}

/// §4.3.1: the conditional fields that validate the stored response: `If-None-Match` from its
/// `ETag`, `If-Modified-Since` from its `Last-Modified`.
pub fn validators(res: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(etag) = res.get(header::ETAG) {
        out.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = res.get(header::LAST_MODIFIED) {
        out.insert(header::IF_MODIFIED_SINCE, lm.clone());
    }
    out
}

/// §4.3.4, §3.2: after a 304, the stored response takes the 304's fields, except those not
/// stored (§3.1) and those that describe the stored content (`Content-Length`,
/// `Content-Encoding`…: the 304 has none). The stored `Age` goes: the age now counts from the
/// 304 (§4.2.3), whose own `Age`, if any, replaces it.
pub fn merge_not_modified(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    let mut fresh = not_modified.clone();
    strip_for_storage(&mut fresh);
    for name in DESCRIBES_STORED_CONTENT {
        fresh.remove(name);
    }
    stored.remove(header::AGE);
    let mut last: Option<HeaderName> = None;
    for (name, value) in fresh {
        match name {
            Some(name) => {
                stored.insert(name.clone(), value);
                last = Some(name);
            }
            None => {
                if let Some(name) = &last {
                    stored.append(name.clone(), value);
                }
            }
        }
    }
}

/// §4.3.4: whether a 304 selects the stored response for update. A strong entity tag in the
/// 304 must equal the stored strong one; a weak one must match by weak comparison (RFC 9110
/// §8.8.3.2). Without an entity tag, a `Last-Modified` in the 304 must equal the stored one.
/// A 304 with no validator at all answers the conditional request made for this very stored
/// response (its only candidate), so it selects it — the reading of the public cache test
/// suite, whose origin sends such 304s; only a validator that contradicts forbids the update.
pub fn validates(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let field = |h: &HeaderMap, name| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_string)
    };
    let (stored_tag, new_tag) = (
        field(stored, header::ETAG),
        field(not_modified, header::ETAG),
    );
    let (stored_lm, new_lm) = (
        field(stored, header::LAST_MODIFIED),
        field(not_modified, header::LAST_MODIFIED),
    );
    match (stored_tag, new_tag, new_lm) {
        (Some(old), Some(new), _) if new.starts_with("W/") => weak_match(&old, &new),
        (Some(old), Some(new), _) => !old.starts_with("W/") && old == new,
        (None, Some(_), _) => false,
        (_, None, Some(lm)) => stored_lm.is_some_and(|old| old == lm),
        (_, None, None) => true,
    }
}

/// RFC 9110 §8.8.3.2: weak comparison of two entity tags (the opaque tags are equal).
fn weak_match(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// §4.3.2 and RFC 9110 §13.2.1: whether a request's own preconditions make the stored 2xx
/// response `stored` a 304 for it. `If-None-Match` (weak comparison; `*` matches) decides
/// when present; else `If-Modified-Since`, against `Last-Modified` or, without one, `Date`.
/// `If-Match` and `If-Unmodified-Since` are not for a cache to evaluate.
pub fn not_modified(status: StatusCode, stored: &HeaderMap, req: &HeaderMap) -> bool {
    if !status.is_success() {
        return false;
    }
    let mut validators = Validators::of(stored);
    validators.last_modified = validators.last_modified.or_else(|| date_of(stored));
    conditional::not_modified(req, &validators)
}

/// §4.4: a non-error response to an unsafe method invalidates the target URI (and the
/// same-origin `Location` and `Content-Location`).
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    !method.is_safe() && (status.is_success() || status.is_redirection())
}

/// The field names listed by `Vary`, lower-cased (`*` kept as is).
pub fn vary_names(res: &HeaderMap) -> Vec<String> {
    res.get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn date_of(res: &HeaderMap) -> Option<SystemTime> {
    res.get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::control::DELTA_MAX;
    use crate::cache::test_headers as headers;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    const OK: StatusCode = StatusCode::OK;

    fn received(secs: u64) -> Received {
        Received {
            request_time: at(secs),
            response_time: at(secs),
        }
    }

    #[test]
    fn only_final_get_responses_are_stored() {
        let none = HeaderMap::new();
        let cacheable = headers(&[("cache-control", "max-age=60")]);
        assert_eq!(storable(&Method::GET, &none, OK, &cacheable), Ok(()));
        assert_eq!(
            storable(&Method::POST, &none, OK, &cacheable),
            Err(NotStorable::Method)
        );
        assert_eq!(
            storable(&Method::HEAD, &none, OK, &cacheable),
            Err(NotStorable::Method)
        );
        for status in [206, 304] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                storable(&Method::GET, &none, status, &cacheable),
                Err(NotStorable::Status),
                "{status}"
            );
        }
    }

    #[test]
    fn an_unknown_status_needs_explicit_freshness_and_no_must_understand() {
        // §3: understanding the status is required only for 206, 304 and must-understand.
        let none = HeaderMap::new();
        let unknown = StatusCode::from_u16(599).unwrap();
        let get = |cc: &[(&str, &str)]| storable(&Method::GET, &none, unknown, &headers(cc));
        assert_eq!(get(&[("cache-control", "max-age=60")]), Ok(()));
        assert_eq!(get(&[]), Err(NotStorable::NoFreshness));
        assert_eq!(
            get(&[("cache-control", "max-age=60, must-understand")]),
            Err(NotStorable::Status)
        );
        assert_eq!(
            get(&[("cache-control", "no-store, must-understand, max-age=60")]),
            Err(NotStorable::Status)
        );
    }

    #[test]
    fn no_store_private_and_authorization_forbid_storing() {
        let none = HeaderMap::new();
        let get = |req: &HeaderMap, cc: &str| {
            storable(&Method::GET, req, OK, &headers(&[("cache-control", cc)]))
        };
        assert_eq!(
            get(&none, "no-store, max-age=60"),
            Err(NotStorable::NoStore)
        );
        let req_no_store = headers(&[("cache-control", "no-store")]);
        assert_eq!(get(&req_no_store, "max-age=60"), Err(NotStorable::NoStore));
        // must-understand with an understood status overrides no-store (§5.2.2.3).
        assert_eq!(get(&none, "no-store, must-understand, max-age=60"), Ok(()));
        assert_eq!(get(&none, "private, max-age=60"), Err(NotStorable::Private));
        // Qualified private: stored without the field.
        assert_eq!(get(&none, "private=\"set-cookie\", max-age=60"), Ok(()));
        let auth = headers(&[("authorization", "Basic eDp5")]);
        assert_eq!(get(&auth, "max-age=60"), Err(NotStorable::Authorization));
        for allowing in ["public", "must-revalidate, max-age=60", "s-maxage=60"] {
            assert_eq!(get(&auth, allowing), Ok(()), "{allowing}");
        }
    }

    #[test]
    fn storing_needs_freshness_information_or_a_heuristic_status() {
        let none = HeaderMap::new();
        let bare = HeaderMap::new();
        assert_eq!(storable(&Method::GET, &none, OK, &bare), Ok(()));
        let created = StatusCode::CREATED;
        assert_eq!(
            storable(&Method::GET, &none, created, &bare),
            Err(NotStorable::NoFreshness)
        );
        let explicit = headers(&[("expires", &date(100))]);
        assert_eq!(storable(&Method::GET, &none, created, &explicit), Ok(()));
        let vary_star = headers(&[("vary", "accept, *"), ("cache-control", "max-age=9")]);
        assert_eq!(
            storable(&Method::GET, &none, OK, &vary_star),
            Err(NotStorable::VaryStar)
        );
    }

    #[test]
    fn freshness_comes_from_s_maxage_then_max_age_then_expires_then_heuristics() {
        let t = at(0);
        let life = |pairs: &[(&str, &str)]| freshness_lifetime(OK, &headers(pairs), t);
        assert_eq!(
            life(&[("cache-control", "max-age=10, s-maxage=20")]),
            Duration::from_secs(20)
        );
        assert_eq!(
            life(&[("cache-control", "max-age=10"), ("expires", &date(500))]),
            Duration::from_secs(10)
        );
        assert_eq!(
            life(&[("date", &date(0)), ("expires", &date(300))]),
            Duration::from_secs(300)
        );
        // An invalid Expires means already expired.
        assert_eq!(life(&[("expires", "0")]), Duration::ZERO);
        // 10 % of the time since Last-Modified, at most a day.
        let lm = httpdate::fmt_http_date(t - Duration::from_secs(1000));
        assert_eq!(
            life(&[("date", &date(0)), ("last-modified", &lm)]),
            Duration::from_secs(100)
        );
        let old = httpdate::fmt_http_date(t - Duration::from_secs(100 * 86_400));
        assert_eq!(life(&[("last-modified", &old)]), HEURISTIC_MAX);
        // No heuristic for a status that is not heuristically cacheable.
        let h = headers(&[("last-modified", &lm)]);
        assert_eq!(
            freshness_lifetime(StatusCode::CREATED, &h, t),
            Duration::ZERO
        );
    }

    #[test]
    fn age_follows_the_corrected_initial_age_plus_resident_time() {
        // Sent at 0, answered at 2 with Age: 10 and a Date of 1: corrected initial age is
        // max(apparent 1, 10 + delay 2) = 12; at 20 it is 12 + 18.
        let res = headers(&[("age", "10"), ("date", &date(1))]);
        let r = Received {
            request_time: at(0),
            response_time: at(2),
        };
        assert_eq!(current_age(&res, r, at(20)), Duration::from_secs(30));
        // A Date in the past with no Age: the apparent age counts.
        let res = headers(&[("date", &date(0))]);
        assert_eq!(
            current_age(&res, received(50), at(60)),
            Duration::from_secs(60)
        );
        // A Date in the future counts as zero.
        let res = headers(&[("date", &date(100))]);
        assert_eq!(
            current_age(&res, received(50), at(60)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn an_age_that_is_not_one_delta_seconds_makes_the_response_stale() {
        let age = |values: &[&str]| {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("age", *v)).collect();
            age_value(&headers(&pairs))
        };
        assert_eq!(age(&[]), 0);
        assert_eq!(age(&["30"]), 30);
        assert_eq!(age(&[" 30 "]), 30);
        for invalid in ["ten", "-5", "1.5", "7200;x=1", "0, 7200", "3600,3600", ""] {
            assert_eq!(age(&[invalid]), DELTA_MAX, "{invalid:?}");
        }
        assert_eq!(age(&["0", "0"]), DELTA_MAX);
        let res = headers(&[("age", "abc"), ("cache-control", "max-age=3600")]);
        assert_eq!(
            reuse(OK, &res, received(0), &HeaderMap::new(), at(1)),
            Reuse::Validate
        );
    }

    #[test]
    fn reuse_honours_freshness_and_the_request_directives() {
        let res = headers(&[("cache-control", "max-age=100"), ("date", &date(0))]);
        let none = HeaderMap::new();
        let reuse_at = |req: &HeaderMap, now: u64| reuse(OK, &res, received(0), req, at(now));
        assert_eq!(reuse_at(&none, 50), Reuse::Fresh);
        assert_eq!(reuse_at(&none, 150), Reuse::Validate);
        let req = |cc: &str| headers(&[("cache-control", cc)]);
        assert_eq!(reuse_at(&req("no-cache"), 1), Reuse::Validate);
        assert_eq!(
            reuse_at(&headers(&[("pragma", "no-cache")]), 1),
            Reuse::Validate
        );
        assert_eq!(reuse_at(&req("max-age=30"), 50), Reuse::Validate);
        assert_eq!(reuse_at(&req("max-age=60"), 50), Reuse::Fresh);
        assert_eq!(reuse_at(&req("min-fresh=60"), 50), Reuse::Validate);
        assert_eq!(reuse_at(&req("min-fresh=40"), 50), Reuse::Fresh);
        assert_eq!(reuse_at(&req("max-stale"), 500), Reuse::StaleAccepted);
        assert_eq!(reuse_at(&req("max-stale=60"), 150), Reuse::StaleAccepted);
        assert_eq!(reuse_at(&req("max-stale=10"), 150), Reuse::Validate);
    }

    #[test]
    fn must_revalidate_and_s_maxage_forbid_stale_and_no_cache_always_validates() {
        let none = HeaderMap::new();
        let max_stale = headers(&[("cache-control", "max-stale")]);
        for cc in [
            "max-age=10, must-revalidate",
            "max-age=10, proxy-revalidate",
            "s-maxage=10",
        ] {
            let res = headers(&[("cache-control", cc)]);
            assert_eq!(
                reuse(OK, &res, received(0), &max_stale, at(20)),
                Reuse::Validate,
                "{cc}"
            );
            assert!(!stale_on_error(
                OK,
                &res,
                received(0),
                &none,
                at(20),
                Duration::from_secs(3600)
            ));
        }
        let res = headers(&[("cache-control", "no-cache, max-age=100")]);
        assert_eq!(reuse(OK, &res, received(0), &none, at(1)), Reuse::Validate);
    }

    #[test]
    fn stale_while_revalidate_and_stale_if_error_have_windows() {
        let none = HeaderMap::new();
        let res = headers(&[(
            "cache-control",
            "max-age=10, stale-while-revalidate=20, stale-if-error=100",
        )]);
        assert_eq!(
            reuse(OK, &res, received(0), &none, at(25)),
            Reuse::StaleWhileRevalidate
        );
        assert_eq!(reuse(OK, &res, received(0), &none, at(31)), Reuse::Validate);
        let grace = Duration::ZERO;
        assert!(stale_on_error(OK, &res, received(0), &none, at(100), grace));
        assert!(!stale_on_error(
            OK,
            &res,
            received(0),
            &none,
            at(120),
            grace
        ));
        // Without stale-if-error the configured grace decides.
        let res = headers(&[("cache-control", "max-age=10")]);
        assert!(stale_on_error(
            OK,
            &res,
            received(0),
            &none,
            at(60),
            Duration::from_secs(60)
        ));
        assert!(!stale_on_error(
            OK,
            &res,
            received(0),
            &none,
            at(60),
            Duration::ZERO
        ));
    }

    #[test]
    fn stored_fields_exclude_hop_by_hop_connection_named_and_qualified_ones() {
        let mut res = headers(&[
            ("connection", "x-trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authentication-info", "nextnonce=\"n\""),
            ("set-cookie", "a=b"),
            ("x-user", "u"),
            (
                "cache-control",
                "max-age=60, private=\"set-cookie\", no-cache=\"x-user\"",
            ),
            ("content-type", "text/plain"),
        ]);
        strip_for_storage(&mut res);
        let mut kept: Vec<&str> = res.keys().map(|k| k.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["cache-control", "content-type"]);
    }

    #[test]
    fn a_304_updates_the_stored_fields_but_not_the_length() {
        let mut stored = headers(&[
            ("etag", "\"v1\""),
            ("content-length", "5"),
            ("cache-control", "max-age=10"),
            ("x-old", "kept"),
        ]);
        let not_modified = headers(&[
            ("etag", "\"v1\""),
            ("cache-control", "max-age=99"),
            ("content-length", "0"),
            ("connection", "close"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        assert!(validates(&stored, &not_modified));
        merge_not_modified(&mut stored, &not_modified);
        assert_eq!(stored["cache-control"], "max-age=99");
        assert_eq!(stored["content-length"], "5");
        assert_eq!(stored["x-old"], "kept");
        assert_eq!(stored.get_all("set-cookie").iter().count(), 2);
        assert!(!stored.contains_key("connection"));
        let other = headers(&[("etag", "\"v2\"")]);
        assert!(!validates(&stored, &other));
        // The fields that describe the stored content stay; the old Age goes.
        let mut stored = headers(&[
            ("content-encoding", "gzip"),
            ("content-range", "bytes 0-4/5"),
            ("age", "100"),
        ]);
        merge_not_modified(
            &mut stored,
            &headers(&[("content-encoding", "br"), ("content-range", "x")]),
        );
        assert_eq!(stored["content-encoding"], "gzip");
        assert_eq!(stored["content-range"], "bytes 0-4/5");
        assert!(!stored.contains_key("age"));
        let v = validators(&headers(&[("etag", "\"v1\""), ("last-modified", &date(0))]));
        assert_eq!(v["if-none-match"], "\"v1\"");
        assert_eq!(v["if-modified-since"], date(0).as_str());
    }

    #[test]
    fn a_304_selects_the_stored_response_by_its_validators() {
        let h = |pairs: &[(&str, &str)]| headers(pairs);
        let strong = h(&[("etag", "\"a\"")]);
        let weak = h(&[("etag", "W/\"a\"")]);
        assert!(validates(&strong, &strong));
        assert!(!validates(&strong, &h(&[("etag", "\"b\"")])));
        // A strong tag in the 304 needs a strong stored tag; a weak one compares weakly.
        assert!(!validates(&weak, &strong));
        assert!(validates(&weak, &weak));
        assert!(validates(&strong, &weak));
        assert!(!validates(&h(&[]), &strong));
        // Without an entity tag: Last-Modified must agree; no validator contradicts nothing.
        let lm = h(&[("last-modified", &date(0))]);
        assert!(validates(&lm, &lm));
        assert!(!validates(&lm, &h(&[("last-modified", &date(1))])));
        assert!(!validates(&strong, &lm));
        assert!(validates(&strong, &h(&[])));
        assert!(validates(&lm, &h(&[])));
        assert!(validates(&h(&[]), &h(&[])));
    }

    #[test]
    fn a_request_s_own_preconditions_turn_a_stored_2xx_into_a_304() {
        let stored = headers(&[
            ("etag", "W/\"a,1\""),
            ("last-modified", &date(100)),
            ("date", &date(200)),
        ]);
        let req = |name: &str, value: &str| headers(&[(name, value)]);
        let inm = |v: &str| not_modified(OK, &stored, &req("if-none-match", v));
        assert!(inm("\"a,1\""));
        assert!(inm("\"x\", W/\"a,1\""));
        assert!(inm("*"));
        assert!(!inm("\"a\""));
        let ims = |at: u64| not_modified(OK, &stored, &req("if-modified-since", &date(at)));
        assert!(ims(100) && ims(150));
        assert!(!ims(99));
        // If-None-Match decides when present, whatever If-Modified-Since says.
        let both = headers(&[
            ("if-none-match", "\"b\""),
            ("if-modified-since", &date(150)),
        ]);
        assert!(!not_modified(OK, &stored, &both));
        // Without Last-Modified, the stored Date stands in.
        let dated = headers(&[("date", &date(200))]);
        assert!(not_modified(
            OK,
            &dated,
            &req("if-modified-since", &date(200))
        ));
        assert!(!not_modified(
            OK,
            &dated,
            &req("if-modified-since", &date(199))
        ));
        // Only a 2xx becomes a 304; no precondition, no 304.
        assert!(!not_modified(
            StatusCode::NOT_FOUND,
            &stored,
            &req("if-none-match", "*")
        ));
        assert!(!not_modified(OK, &stored, &HeaderMap::new()));
        // If-Match and If-Unmodified-Since are the origin's to evaluate (§4.3.2).
        assert!(!not_modified(OK, &stored, &req("if-match", "W/\"a,1\"")));
        assert!(!not_modified(
            OK,
            &stored,
            &req("if-unmodified-since", &date(150))
        ));
    }

    #[test]
    fn unsafe_methods_with_non_error_answers_invalidate() {
        assert!(invalidates(&Method::POST, StatusCode::OK));
        assert!(invalidates(&Method::DELETE, StatusCode::NO_CONTENT));
        assert!(invalidates(&Method::PUT, StatusCode::SEE_OTHER));
        assert!(!invalidates(
            &Method::POST,
            StatusCode::INTERNAL_SERVER_ERROR
        ));
        assert!(!invalidates(&Method::GET, StatusCode::OK));
        assert!(!invalidates(&Method::HEAD, StatusCode::OK));
    }
}
