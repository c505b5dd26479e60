//! The cache as one object: the memory tier in front of the optional disk tier, the
//! coalescer, and the RFC 9111 decisions, behind the four calls the proxy path makes —
//! [`Cache::lookup`] before forwarding, [`Cache::store`] with the origin's response,
//! [`Cache::invalidate`] after an unsafe method, [`Cache::purge`] for operators.
//!
//! The async runtime never waits on the file system: [`Cache::lookup_memory`] never touches
//! it (the express lane's lookup), [`Cache::lookup`] reads the disk tier on the blocking pool
//! after a memory miss, and every write or removal on disk is sent to the blocking pool
//! without waiting for it (outside a runtime, as in unit tests, it is done in place). At most
//! [`MAX_DISK_WRITES`] writes wait at once per process; past that a response is kept in
//! memory only, so a slow disk cannot pile up threads and copies of bodies.
//!
//! A hit from the disk tier is promoted to the memory tier unless a purge made since selects
//! it (`MemoryStore::promote`). Surrogate keys come from the origin's `Surrogate-Key`
//! (space-separated) and `Cache-Tag` (comma-separated) fields, which are kept out of the
//! stored (and so the served) fields, as CDNs do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::coalesce::Coalescer;
use super::control::CacheControl;
use super::disk::DiskStore;
use super::key::Variant;
use super::memory::{Matcher, MemoryStore, Object};
use super::rules::{self, NotStorable, Received, Reuse};
use super::status::Fwd;

const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Disk writes waiting on the blocking pool at most, per cache (one per worker process).
pub const MAX_DISK_WRITES: usize = 64;

/// How long an unsafe method's answer waits for its invalidation to reach every worker.
pub const INVALIDATE_WAIT: Duration = Duration::from_secs(1);

/// The cache's tiers and coalescer.
pub struct Cache {
    pub memory: MemoryStore,
    /// Shared with the blocking pool's tasks.
    pub disk: Option<Arc<DiskStore>>,
    pub coalescer: Arc<Coalescer>,
    /// How long a waiter waits for another request's fill.
    pub lock_timeout: Duration,
    /// How long past freshness a response may be served when the origin fails.
    pub grace: Duration,
    /// Disk writes sent to the blocking pool and not done yet.
    pub disk_writes: Arc<AtomicUsize>,
    /// How purges reach every process of the family (the master's ledger, or this process's
    /// own with `--single-process`); set once the process knows its role.
    pub family: std::sync::OnceLock<super::purge::Client>,
}

/// What the cache has for a request.
#[derive(Debug)]
pub enum Lookup {
    /// Serve this response as it is (fresh, or stale within what the request accepts).
    Hit(Arc<Object>),
    /// Serve it, and refresh it in the background (`stale-while-revalidate`).
    StaleWhileRevalidate(Arc<Object>),
    /// Validate it with the origin (conditional request); keep it for `stale-if-error`.
    Validate(Arc<Object>),
    /// Nothing usable: forward, saying why.
    Miss(Fwd),
}

impl Cache {
    /// The largest body worth collecting for storage.
    pub fn memory_object_limit(&self) -> usize {
        self.memory.max_object()
    }

    /// The stored response for `key` that may answer a request with headers `req` now: the
    /// memory tier, then (on a miss, when there is one) the disk tier, read on the blocking
    /// pool; a disk hit is promoted to the memory tier.
    pub async fn lookup(&self, key: &str, req: &HeaderMap, now: SystemTime) -> Lookup {
        let found = self.lookup_memory(key, req, now);
        let (Lookup::Miss(_), Some(disk)) = (&found, &self.disk) else {
            return found;
        };
        let (disk, owned_key, owned_req) = (disk.clone(), key.to_string(), req.clone());
        let read = tokio::task::spawn_blocking(move || disk.lookup(&owned_key, &owned_req)).await;
        match read.ok().flatten().and_then(|o| self.memory.promote(o)) {
            Some(object) => reuse(object, req, now),
            None => found,
        }
    }

    /// The memory tier's answer alone: never touches the file system, so it may run anywhere
    /// (the express lane answers its hits with it).
    pub fn lookup_memory(&self, key: &str, req: &HeaderMap, now: SystemTime) -> Lookup {
        match self.memory.lookup(key, req) {
            Some(object) => reuse(object, req, now),
            None => Lookup::Miss(Fwd::UriMiss),
        }
    }

    /// Stores the origin's response to a GET with headers `req`, if RFC 9111 allows it.
    pub fn store(
        &self,
        key: &str,
        req: &HeaderMap,
        status: StatusCode,
        res: &HeaderMap,
        body: Bytes,
        received: Received,
    ) -> Result<(), NotStorable> {
        rules::storable(&Method::GET, req, status, res)?;
        let mut headers = res.clone();
        let tags = tags(&headers);
        hide_tags(&mut headers);
        rules::strip_for_storage(&mut headers);
        let object = Object {
            key: key.to_string(),
            variant: Variant::of(req, res),
            status,
            headers,
            body,
            received,
            tags,
            seq: 0,
        };
        self.write_to_disk(&object);
        self.memory.insert(object);
        Ok(())
    }

    /// After a 304 for a stored response: its fields updated (§4.3.4), stored again; returns
    /// the updated response, which answers the request that validated it (§4).
    pub fn refresh(&self, stored: &Object, not_modified: &HeaderMap, received: Received) -> Object {
        let mut headers = stored.headers.clone();
        rules::merge_not_modified(&mut headers, not_modified);
        let object = Object {
            headers,
            received,
            ..stored.clone()
        };
        self.write_to_disk(&object);
        self.memory.insert(object.clone());
        object
    }

    /// §4.4: after `method` answered `status`, the stored responses for `keys` (the target,
    /// and same-origin `Location`/`Content-Location`) are dropped here at once, and from every
    /// other worker's memory tier through the family's purges (waited for up to
    /// [`INVALIDATE_WAIT`], so that the client's next request, on any worker, misses).
    pub async fn invalidate(&self, method: &Method, status: StatusCode, keys: &[String]) {
        if !rules::invalidates(method, status) {
            return;
        }
        for key in keys {
            self.purge(Matcher::Exact(key.clone()));
        }
        if let Some(family) = self.family.get() {
            let purges = keys
                .iter()
                .map(|key| family.purge(Matcher::Exact(key.clone()), INVALIDATE_WAIT));
            futures_util::future::join_all(purges).await;
        }
    }

    /// Removes what `matcher` selects from both tiers; returns how many keys the memory tier
    /// dropped. The disk tier's part (a removal for one key, a walk of every file for a
    /// prefix or a tag) is sent to the blocking pool and not waited for; until it is done,
    /// lookups do not serve from disk what the purge selects (`MemoryStore::promote`).
    pub fn purge(&self, matcher: Matcher) -> usize {
        let removed = self.memory.purge(matcher.clone());
        if let Some(disk) = &self.disk {
            let disk = disk.clone();
            off_runtime(move || {
                purge_disk(&disk, &matcher);
            });
        }
        removed
    }

    /// The disk tier's part of a purge, done here: returns how many objects it removed (for
    /// one key, how many keys: 0 or 1). Blocks on the file system (a prefix or a tag reads
    /// every file): callers on the runtime run it in `spawn_blocking`. [`Cache::purge`] does
    /// the memory tier's part and this one in the background.
    pub fn purge_disk(&self, matcher: &Matcher) -> usize {
        self.disk
            .as_ref()
            .map_or(0, |disk| purge_disk(disk, matcher))
    }

    /// Stores `object` on the disk tier, on the blocking pool; dropped (with a debug line)
    /// when [`MAX_DISK_WRITES`] writes are waiting already.
    fn write_to_disk(&self, object: &Object) {
        let Some(disk) = &self.disk else {
            return;
        };
        if self.disk_writes.fetch_add(1, Ordering::AcqRel) >= MAX_DISK_WRITES {
            self.disk_writes.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!(key = %object.key, "disk cache busy: kept in memory only");
            return;
        }
        let (disk, writes, object) = (disk.clone(), self.disk_writes.clone(), object.clone());
        off_runtime(move || {
            if let Err(e) = disk.insert(&object) {
                tracing::warn!(key = %object.key, error = %e, "cannot write to the disk cache");
            }
            writes.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// The lookup's answer for a stored `object`.
fn reuse(object: Arc<Object>, req: &HeaderMap, now: SystemTime) -> Lookup {
    match rules::reuse(object.status, &object.headers, object.received, req, now) {
        Reuse::Fresh | Reuse::StaleAccepted => Lookup::Hit(object),
        Reuse::StaleWhileRevalidate => Lookup::StaleWhileRevalidate(object),
        Reuse::Validate => Lookup::Validate(object),
    }
}

/// Removes what `matcher` selects from a disk tier (see [`Cache::purge_disk`]).
pub fn purge_disk(disk: &DiskStore, matcher: &Matcher) -> usize {
    match matcher {
        Matcher::Exact(key) => usize::from(disk.remove(key)),
        Matcher::Prefix(prefix) => disk.purge(|key, _| key.starts_with(prefix.as_str())),
        Matcher::Tag(tag) => disk.purge(|_, tags| tags.iter().any(|t| t == tag)),
    }
}

/// Runs `work` (file system work) on the blocking pool without waiting for it; in place when
/// there is no runtime (unit tests, tools), where blocking harms no one.
fn off_runtime(work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(work);
        }
        Err(_) => work(),
    }
}

/// The `Age` of a stored response at `now` (§5.1), in whole seconds.
pub fn age(object: &Object, now: SystemTime) -> HeaderValue {
    let age = rules::current_age(&object.headers, object.received, now);
    HeaderValue::from(age.as_secs())
}

/// Seconds of freshness left (negative when stale), for `Cache-Status: …; ttl=`.
pub fn ttl(object: &Object, now: SystemTime) -> i64 {
    let lifetime = rules::freshness_lifetime(
        object.status,
        &object.headers,
        object.received.response_time,
    );
    let age = rules::current_age(&object.headers, object.received, now);
    lifetime.as_secs() as i64 - age.as_secs() as i64
}

/// Whether the request said `only-if-cached` (§5.2.1.7): a miss is then a 504.
pub fn only_if_cached(req: &HeaderMap) -> bool {
    CacheControl::parse(req).only_if_cached
}

/// Removes the surrogate keys from fields a client gets or a hit will serve: they are for
/// purges, not for the world (as CDNs do).
pub fn hide_tags(headers: &mut HeaderMap) {
    headers.remove(SURROGATE_KEY);
    headers.remove(CACHE_TAG);
}

/// The surrogate keys of a response.
fn tags(res: &HeaderMap) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut add = |tag: &str| {
        let tag = tag.trim();
        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    };
    for value in res
        .get_all(SURROGATE_KEY)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        value.split_ascii_whitespace().for_each(&mut add);
    }
    for value in res
        .get_all(CACHE_TAG)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        value.split(',').for_each(&mut add);
    }
    tags
}

/// Response fields that name a same-origin URL an unsafe method invalidates along with its
/// target (§4.4).
pub fn invalidated_locations(res: &HeaderMap) -> impl Iterator<Item = &str> {
    [header::LOCATION, header::CONTENT_LOCATION]
        .into_iter()
        .filter_map(|name| res.get(name))
        .filter_map(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::primary;
    use crate::cache::test_headers as headers;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn received(secs: u64) -> Received {
        Received {
            request_time: at(secs),
            response_time: at(secs),
        }
    }

    fn cache(disk: Option<&std::path::Path>) -> Cache {
        Cache {
            memory: MemoryStore::new(1 << 20, 100),
            disk: disk.map(|d| Arc::new(DiskStore::open(d).unwrap())),
            coalescer: Arc::default(),
            lock_timeout: Duration::from_secs(1),
            grace: Duration::ZERO,
            disk_writes: Arc::default(),
            family: Default::default(),
        }
    }

    /// Waits until the disk writes sent to the blocking pool are done.
    async fn written(c: &Cache) {
        for _ in 0..1000 {
            if c.disk_writes.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("disk writes still pending after 5 s");
    }

    #[tokio::test]
    async fn a_stored_response_is_a_hit_until_stale_then_validated() {
        let c = cache(None);
        let key = primary("http", "a.test", "/x");
        let none = HeaderMap::new();
        let res = headers(&[
            ("cache-control", "max-age=60"),
            ("surrogate-key", "a b"),
            ("cache-tag", "c, a"),
        ]);
        c.store(
            &key,
            &none,
            StatusCode::OK,
            &res,
            Bytes::from_static(b"x"),
            received(0),
        )
        .unwrap();
        let Lookup::Hit(object) = c.lookup(&key, &none, at(30)).await else {
            panic!("a hit")
        };
        assert_eq!(object.tags, ["a", "b", "c"]);
        assert!(!object.headers.contains_key("surrogate-key"));
        assert_eq!(age(&object, at(30)), "30");
        assert_eq!(ttl(&object, at(30)), 30);
        assert!(matches!(
            c.lookup(&key, &none, at(90)).await,
            Lookup::Validate(_)
        ));
        assert!(matches!(
            c.lookup(&primary("http", "a.test", "/y"), &none, at(1))
                .await,
            Lookup::Miss(Fwd::UriMiss)
        ));
    }

    #[tokio::test]
    async fn refusals_purges_and_invalidation() {
        let c = cache(None);
        let key = primary("http", "a.test", "/p");
        let none = HeaderMap::new();
        let private = headers(&[("cache-control", "private, max-age=60")]);
        assert_eq!(
            c.store(
                &key,
                &none,
                StatusCode::OK,
                &private,
                Bytes::new(),
                received(0)
            ),
            Err(NotStorable::Private)
        );
        let ok = headers(&[("cache-control", "max-age=60"), ("cache-tag", "t")]);
        c.store(&key, &none, StatusCode::OK, &ok, Bytes::new(), received(0))
            .unwrap();
        c.invalidate(
            &Method::POST,
            StatusCode::INTERNAL_SERVER_ERROR,
            std::slice::from_ref(&key),
        )
        .await;
        assert!(matches!(c.lookup(&key, &none, at(1)).await, Lookup::Hit(_)));
        c.invalidate(&Method::POST, StatusCode::OK, std::slice::from_ref(&key))
            .await;
        assert!(matches!(
            c.lookup(&key, &none, at(1)).await,
            Lookup::Miss(_)
        ));
        c.store(&key, &none, StatusCode::OK, &ok, Bytes::new(), received(0))
            .unwrap();
        assert_eq!(c.purge(Matcher::Tag("t".into())), 1);
        assert!(matches!(
            c.lookup(&key, &none, at(1)).await,
            Lookup::Miss(_)
        ));
        assert!(only_if_cached(&headers(&[(
            "cache-control",
            "only-if-cached"
        )])));
    }

    #[tokio::test]
    async fn a_304_refreshes_the_stored_response() {
        let c = cache(None);
        let key = primary("http", "a.test", "/r");
        let none = HeaderMap::new();
        let res = headers(&[("cache-control", "max-age=10"), ("etag", "\"v1\"")]);
        c.store(
            &key,
            &none,
            StatusCode::OK,
            &res,
            Bytes::from_static(b"body"),
            received(0),
        )
        .unwrap();
        let Lookup::Validate(stale) = c.lookup(&key, &none, at(20)).await else {
            panic!("stale")
        };
        c.refresh(
            &stale,
            &headers(&[("cache-control", "max-age=100"), ("etag", "\"v1\"")]),
            received(20),
        );
        let Lookup::Hit(fresh) = c.lookup(&key, &none, at(50)).await else {
            panic!("fresh again")
        };
        assert_eq!(&fresh.body[..], b"body");
        assert_eq!(fresh.headers["cache-control"], "max-age=100");
    }

    #[tokio::test]
    async fn the_disk_tier_answers_after_a_restart_and_is_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let key = primary("http", "a.test", "/d");
        let none = HeaderMap::new();
        {
            let c = cache(Some(dir.path()));
            let res = headers(&[("cache-control", "max-age=60")]);
            c.store(
                &key,
                &none,
                StatusCode::OK,
                &res,
                Bytes::from_static(b"disk"),
                received(0),
            )
            .unwrap();
            written(&c).await;
        }
        let c = cache(Some(dir.path()));
        assert!(
            matches!(c.lookup_memory(&key, &none, at(5)), Lookup::Miss(_)),
            "the memory-only lookup does not read the disk"
        );
        let Lookup::Hit(object) = c.lookup(&key, &none, at(5)).await else {
            panic!("a hit from disk")
        };
        assert_eq!(&object.body[..], b"disk");
        assert!(c.memory.lookup(&key, &none).is_some(), "promoted to memory");
        assert_eq!(
            invalidated_locations(&headers(&[("location", "/a"), ("content-location", "/b")]))
                .collect::<Vec<_>>(),
            ["/a", "/b"]
        );
    }

    /// Stores `path` with surrogate key `tag`, received 10 s ago.
    fn store_tagged(c: &Cache, path: &str, tag: &str) -> String {
        let key = primary("http", "a.test", path);
        let ago = SystemTime::now() - Duration::from_secs(10);
        let res = headers(&[("cache-control", "max-age=600"), ("cache-tag", tag)]);
        c.store(
            &key,
            &HeaderMap::new(),
            StatusCode::OK,
            &res,
            Bytes::from_static(b"tagged"),
            Received {
                request_time: ago,
                response_time: ago,
            },
        )
        .unwrap();
        key
    }

    #[tokio::test]
    async fn what_a_purge_selects_is_not_promoted_while_the_disk_still_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let none = HeaderMap::new();
        let writer = cache(Some(dir.path()));
        let key = store_tagged(&writer, "/t", "t");
        let other = store_tagged(&writer, "/u", "u");
        written(&writer).await;
        let c = cache(Some(dir.path()));
        // The memory tier's part of a purge, its disk walk not done yet.
        c.memory.purge(Matcher::Tag("t".into()));
        let now = SystemTime::now();
        assert!(matches!(c.lookup(&key, &none, now).await, Lookup::Miss(_)));
        assert!(matches!(c.lookup(&other, &none, now).await, Lookup::Hit(_)));
        assert_eq!(c.purge_disk(&Matcher::Tag("t".into())), 1);
        assert!(c.disk.as_ref().unwrap().lookup(&key, &none).is_none());
        assert_eq!(c.purge_disk(&Matcher::Exact(other.clone())), 1);
        assert_eq!(c.purge_disk(&Matcher::Exact(other)), 0);
    }

    #[test]
    fn a_purge_outside_a_runtime_reaches_the_disk_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let none = HeaderMap::new();
        let c = cache(Some(dir.path()));
        let key = store_tagged(&c, "/p/1", "x");
        let disk = c.disk.as_ref().unwrap();
        assert!(disk.lookup(&key, &none).is_some(), "written in place");
        assert_eq!(
            c.purge(Matcher::Prefix(primary("http", "a.test", "/p/"))),
            1
        );
        assert!(disk.lookup(&key, &none).is_none());
    }
}
