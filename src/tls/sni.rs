//! Choosing a site's TLS configuration by the name the client asked for (SNI): an exact
//! name, else the longest matching `*.` suffix, else the listener's default (the default
//! site's, else the first site's). Names are compared without case.

use std::collections::HashMap;

/// What one HTTPS listener has for each name (a site's TLS configuration).
#[derive(Debug)]
pub struct SniMap<T> {
    exact: HashMap<String, T>,
    /// (`.example.com`, value), longest suffix first.
    suffixes: Vec<(String, T)>,
    default: Option<T>,
}

impl<T> Default for SniMap<T> {
    fn default() -> Self {
        SniMap {
            exact: HashMap::new(),
            suffixes: Vec::new(),
            default: None,
        }
    }
}

impl<T: Clone> SniMap<T> {
    /// Serves `key` for `name` (`example.com` or `*.example.com`); the first one added for a
    /// name wins.
    pub fn add(&mut self, name: &str, key: T) {
        let name = name.to_ascii_lowercase();
        if let Some(suffix) = name.strip_prefix('*') {
            if !self.suffixes.iter().any(|(s, _)| s == suffix) {
                self.suffixes.push((suffix.to_string(), key));
                self.suffixes
                    .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
            }
        } else {
            self.exact.entry(name).or_insert(key);
        }
    }

    /// What clients get that name no known host (or none at all).
    pub fn set_default(&mut self, key: T) {
        self.default = Some(key);
    }

    /// What `name` gets.
    pub fn pick(&self, name: Option<&str>) -> Option<T> {
        let found = name.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            self.exact.get(&name).cloned().or_else(|| {
                self.suffixes
                    .iter()
                    .find(|(suffix, _)| {
                        name.ends_with(suffix.as_str()) && name.len() > suffix.len()
                    })
                    .map(|(_, key)| key.clone())
            })
        });
        found.or_else(|| self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn key(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn exact_then_longest_suffix_then_default() {
        let (a, b, wild, deeper, fallback) = (
            key("a.test"),
            key("b.test"),
            key("*.w.test"),
            key("*.x.w.test"),
            key("default"),
        );
        let mut sni = SniMap::default();
        sni.add("a.test", a.clone());
        sni.add("B.test", b.clone());
        sni.add("*.w.test", wild.clone());
        sni.add("*.x.w.test", deeper.clone());
        sni.set_default(fallback.clone());
        let is = |got: Option<Arc<str>>, want: &Arc<str>| Arc::ptr_eq(&got.unwrap(), want);
        assert!(is(sni.pick(Some("a.test")), &a));
        assert!(is(sni.pick(Some("b.TEST.")), &b));
        assert!(is(sni.pick(Some("one.w.test")), &wild));
        assert!(is(sni.pick(Some("two.x.w.test")), &deeper));
        assert!(is(sni.pick(Some("w.test")), &fallback));
        assert!(is(sni.pick(None), &fallback));
    }
}
