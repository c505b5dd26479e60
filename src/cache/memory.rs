//! The memory tier: stored responses bounded in bytes, evicted by TinyUFO (S3-FIFO with TinyLFU
//! admission, chosen over LRU by hit ratio on Zipf traces: BENCHMARKS.md § Cache eviction).
//!
//! One entry per primary key holds its `Vary` variants; an entry is replaced whole (copy on
//! write), so a reader never sees a half-updated list. TinyUFO keeps only a hash of the key,
//! so every lookup checks the entry's own key.
//!
//! Purges walk a side index (keys in order for prefixes, and surrogate keys/tags) and remove
//! what they find. The index can miss a key for a moment when two requests store the same key
//! at once, so a purge also records a ban: an object stored before a ban that matches it is
//! never served (checked at lookup), which makes a purge exact without stopping the world.
//! A ban also keeps its time, for objects read back from the disk tier
//! ([`MemoryStore::promote`]): the disk's part of a purge runs in the background, so a lookup
//! may still find there what a purge already selected; an object received before a ban that
//! matches it is not promoted.
//! The index lock and the ban lock are never held together, nor across an `.await`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::key::Variant;
use super::rules::Received;

/// Weights count KiB (TinyUFO weighs in `u16`), so one object is at most 64 MiB here.
const WEIGHT_UNIT: usize = 1024;

/// Most bans kept; the oldest go first.
const MAX_BANS: usize = 4096;

/// A stored response.
#[derive(Debug, Clone)]
pub struct Object {
    /// The primary key (`cache::key::primary`).
    pub key: String,
    pub variant: Variant,
    pub status: StatusCode,
    /// The stored fields (`rules::strip_for_storage` applied).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub received: Received,
    /// Surrogate keys (`Surrogate-Key`, `Cache-Tag`).
    pub tags: Vec<String>,
    /// Set by the store: the order of storing, for bans.
    pub seq: u64,
}

impl Object {
    /// Bytes this object holds (body, fields, key), as weighed for the bound.
    pub fn size(&self) -> usize {
        let fields: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        self.body.len() + fields + self.key.len() + 128
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    variants: Vec<Arc<Object>>,
}

impl Entry {
    fn weight(&self) -> u16 {
        let bytes: usize = self.variants.iter().map(|o| o.size()).sum();
        bytes.div_ceil(WEIGHT_UNIT).clamp(1, u16::MAX as usize) as u16
    }
}

/// What a purge matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// One primary key.
    Exact(String),
    /// Every primary key starting with this.
    Prefix(String),
    /// Every object carrying this surrogate key.
    Tag(String),
}

impl Matcher {
    fn matches(&self, object: &Object) -> bool {
        match self {
            Matcher::Exact(key) => object.key == *key,
            Matcher::Prefix(prefix) => object.key.starts_with(prefix.as_str()),
            Matcher::Tag(tag) => object.tags.iter().any(|t| t == tag),
        }
    }
}

/// A purge remembered: objects stored before it (in order, `seq`, or for objects from the
/// disk tier, in time) that it matches are never served.
#[derive(Debug)]
struct Ban {
    seq: u64,
    at: SystemTime,
    matcher: Matcher,
}

#[derive(Debug, Default)]
struct Index {
    keys: BTreeSet<String>,
    tags: HashMap<String, HashSet<String>>,
}

/// The memory tier.
pub struct MemoryStore {
    objects: tinyufo::TinyUfo<String, Arc<Entry>>,
    index: Mutex<Index>,
    bans: Mutex<Vec<Ban>>,
    seq: AtomicU64,
    max_object: usize,
}

impl MemoryStore {
    /// A store of at most `max_bytes`, expecting about `expected_objects` objects.
    pub fn new(max_bytes: usize, expected_objects: usize) -> MemoryStore {
        MemoryStore {
            objects: tinyufo::TinyUfo::new(
                (max_bytes / WEIGHT_UNIT).max(1),
                expected_objects.max(16),
            ),
            index: Mutex::default(),
            bans: Mutex::default(),
            seq: AtomicU64::new(1),
            max_object: (max_bytes / 8).min(u16::MAX as usize * WEIGHT_UNIT),
        }
    }

    /// The stored variant of `key` that may answer a request with headers `req`.
    pub fn lookup(&self, key: &str, req: &HeaderMap) -> Option<Arc<Object>> {
        let entry = self.objects.get(&key.to_string())?;
        if entry.key != key {
            return None;
        }
        let object = entry
            .variants
            .iter()
            .find(|o| o.variant.matches(req))?
            .clone();
        if self.banned(&object) {
            return None;
        }
        Some(object)
    }

    /// Stores `object`, replacing the variant it selects like; false when it is too large
    /// for this tier (an eighth of it at most).
    pub fn insert(&self, mut object: Object) -> bool {
        if object.size() > self.max_object {
            return false;
        }
        object.seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(object);
        let mut variants: Vec<Arc<Object>> = match self.objects.get(&object.key) {
            Some(entry) if entry.key == object.key => entry
                .variants
                .iter()
                .filter(|o| o.variant != object.variant && !self.banned(o))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        variants.insert(0, object.clone());
        let entry = Arc::new(Entry {
            key: object.key.clone(),
            variants,
        });
        {
            let mut index = self.lock_index();
            index.keys.insert(entry.key.clone());
            for tag in &object.tags {
                index
                    .tags
                    .entry(tag.clone())
                    .or_default()
                    .insert(entry.key.clone());
            }
        }
        let weight = entry.weight();
        let evicted = self.objects.put(entry.key.clone(), entry, weight);
        if !evicted.is_empty() {
            let mut index = self.lock_index();
            for gone in evicted {
                unindex(&mut index, &gone.data);
            }
        }
        true
    }

    /// Removes every object `matcher` selects; returns how many primary keys it removed.
    /// Objects the walk misses are still never served (a ban is kept).
    pub fn purge(&self, matcher: Matcher) -> usize {
        let keys: Vec<String> = {
            let index = self.lock_index();
            match &matcher {
                Matcher::Exact(key) => index.keys.get(key).cloned().into_iter().collect(),
                Matcher::Prefix(prefix) => index
                    .keys
                    .range(prefix.clone()..)
                    .take_while(|k| k.starts_with(prefix.as_str()))
                    .cloned()
                    .collect(),
                Matcher::Tag(tag) => index
                    .tags
                    .get(tag)
                    .map(|keys| keys.iter().cloned().collect())
                    .unwrap_or_default(),
            }
        };
        {
            let mut bans = self.bans.lock().unwrap_or_else(|e| e.into_inner());
            if bans.len() >= MAX_BANS {
                bans.remove(0);
            }
            bans.push(Ban {
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
                at: SystemTime::now(),
                matcher: matcher.clone(),
            });
        }
        let mut removed = 0;
        for key in keys {
            let Some(entry) = self.objects.remove(&key) else {
                continue;
            };
            let (gone, kept): (Vec<_>, Vec<_>) = entry
                .variants
                .iter()
                .cloned()
                .partition(|o| matcher.matches(o));
            let mut index = self.lock_index();
            unindex(&mut index, &entry);
            drop(index);
            if !gone.is_empty() {
                removed += 1;
            }
            if !kept.is_empty() {
                let entry = Arc::new(Entry {
                    key: entry.key.clone(),
                    variants: kept,
                });
                let mut index = self.lock_index();
                index.keys.insert(entry.key.clone());
                for tag in entry.variants.iter().flat_map(|o| &o.tags) {
                    index
                        .tags
                        .entry(tag.clone())
                        .or_default()
                        .insert(entry.key.clone());
                }
                drop(index);
                let weight = entry.weight();
                self.objects.force_put(entry.key.clone(), entry, weight);
            }
        }
        removed
    }

    /// The largest object this tier takes, in bytes.
    pub fn max_object(&self) -> usize {
        self.max_object
    }

    /// Primary keys in the index (stored now, or a moment ago).
    pub fn len(&self) -> usize {
        self.lock_index().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An object read from the disk tier, stored here and returned; `None` when a purge made
    /// since it was received selects it (the disk's part of that purge has not reached its
    /// file yet, or another writer put it back). Compared by time, not order: the disk tier
    /// has no order, and the receiving time is the object's own.
    pub fn promote(&self, object: Object) -> Option<Arc<Object>> {
        let purged = {
            let bans = self.bans.lock().unwrap_or_else(|e| e.into_inner());
            bans.iter()
                .any(|ban| ban.at >= object.received.response_time && ban.matcher.matches(&object))
        };
        if purged {
            return None;
        }
        let promoted = Arc::new(object.clone());
        self.insert(object);
        Some(promoted)
    }

    fn banned(&self, object: &Object) -> bool {
        let bans = self.bans.lock().unwrap_or_else(|e| e.into_inner());
        bans.iter()
            .rev()
            .take_while(|ban| ban.seq > object.seq)
            .any(|ban| ban.matcher.matches(object))
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unindex(index: &mut Index, entry: &Entry) {
    index.keys.remove(&entry.key);
    for tag in entry.variants.iter().flat_map(|o| &o.tags) {
        if let Some(keys) = index.tags.get_mut(tag) {
            keys.remove(&entry.key);
            if keys.is_empty() {
                index.tags.remove(tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn object(key: &str, body: &str, tags: &[&str], variant: Variant) -> Object {
        Object {
            key: key.to_string(),
            variant,
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            received: Received {
                request_time: SystemTime::UNIX_EPOCH,
                response_time: SystemTime::UNIX_EPOCH,
            },
            tags: tags.iter().map(|t| t.to_string()).collect(),
            seq: 0,
        }
    }

    fn body(store: &MemoryStore, key: &str) -> Option<Bytes> {
        store.lookup(key, &HeaderMap::new()).map(|o| o.body.clone())
    }

    #[test]
    fn objects_are_found_by_key_and_replaced() {
        let store = MemoryStore::new(1 << 20, 100);
        assert!(store.insert(object("http://a/1", "one", &[], Variant::default())));
        assert_eq!(body(&store, "http://a/1").as_deref(), Some(&b"one"[..]));
        assert_eq!(body(&store, "http://a/2"), None);
        store.insert(object("http://a/1", "uno", &[], Variant::default()));
        assert_eq!(body(&store, "http://a/1").as_deref(), Some(&b"uno"[..]));
        // Too large for the tier.
        let big = "x".repeat(200_000);
        assert!(!store.insert(object("http://a/big", &big, &[], Variant::default())));
    }

    #[test]
    fn variants_live_side_by_side_under_one_key() {
        let store = MemoryStore::new(1 << 20, 100);
        let lang = |v: &str| Variant {
            fields: vec![(http::header::ACCEPT_LANGUAGE, Some(v.to_string()))],
            coding: None,
        };
        store.insert(object("http://a/", "en", &[], lang("en")));
        store.insert(object("http://a/", "fr", &[], lang("fr")));
        let mut req = HeaderMap::new();
        req.insert(http::header::ACCEPT_LANGUAGE, "fr".parse().unwrap());
        assert_eq!(&store.lookup("http://a/", &req).unwrap().body[..], b"fr");
        req.insert(http::header::ACCEPT_LANGUAGE, "en".parse().unwrap());
        assert_eq!(&store.lookup("http://a/", &req).unwrap().body[..], b"en");
        req.insert(http::header::ACCEPT_LANGUAGE, "de".parse().unwrap());
        assert!(store.lookup("http://a/", &req).is_none());
    }

    #[test]
    fn purges_by_key_prefix_and_tag() {
        let store = MemoryStore::new(1 << 20, 100);
        for (key, tags) in [
            ("http://a/img/1", &["img", "p1"][..]),
            ("http://a/img/2", &["img"][..]),
            ("http://a/page", &["p1"][..]),
            ("http://b/img/1", &[][..]),
        ] {
            store.insert(object(key, key, tags, Variant::default()));
        }
        assert_eq!(store.purge(Matcher::Tag("p1".into())), 2);
        assert_eq!(body(&store, "http://a/page"), None);
        assert_eq!(body(&store, "http://a/img/1"), None);
        assert!(body(&store, "http://a/img/2").is_some());
        assert_eq!(store.purge(Matcher::Prefix("http://a/img/".into())), 1);
        assert_eq!(body(&store, "http://a/img/2"), None);
        assert!(body(&store, "http://b/img/1").is_some());
        assert_eq!(store.purge(Matcher::Exact("http://b/img/1".into())), 1);
        assert!(store.is_empty());
        // Stored again after the purge: served.
        store.insert(object("http://a/page", "new", &["p1"], Variant::default()));
        assert_eq!(body(&store, "http://a/page").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn a_ban_hides_objects_the_index_walk_missed() {
        let store = MemoryStore::new(1 << 20, 100);
        store.insert(object("http://a/x", "x", &["t"], Variant::default()));
        // Simulate the race: the index lost the key.
        store.lock_index().keys.clear();
        store.lock_index().tags.clear();
        assert_eq!(store.purge(Matcher::Prefix("http://a/".into())), 0);
        assert_eq!(body(&store, "http://a/x"), None, "banned");
    }

    #[test]
    fn the_bound_in_bytes_holds_and_evictions_leave_the_index() {
        let store = MemoryStore::new(64 * 1024, 100);
        let body = "y".repeat(4000);
        for i in 0..200 {
            store.insert(object(
                &format!("http://a/{i}"),
                &body,
                &[],
                Variant::default(),
            ));
        }
        let present = (0..200)
            .filter(|i| {
                store
                    .lookup(&format!("http://a/{i}"), &HeaderMap::new())
                    .is_some()
            })
            .count();
        assert!(present <= 16, "{present} objects of 4 KB in 64 KiB");
        assert!(present >= 4, "{present}");
        assert!(store.len() <= 20, "index holds {}", store.len());
    }
}
