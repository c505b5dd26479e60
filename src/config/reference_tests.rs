//! The README's configuration reference against the schema (STYLE §4): the reference block
//! must name every key of [`schema::Config`] at its place, and must itself parse and resolve.
//!
//! The schema's keys are not listed by hand: they are read from serde itself. Every table
//! refuses unknown keys, and serde's error for an unknown key lists the keys the table expects
//! (``unknown field `x`, expected one of `a`, `b` ``, the same text `schema::parse` turns into
//! "did you mean"). So probing each table with an unknown key yields its keys, and probing each
//! key with a table (or an array of tables, or a map of tables) tells which keys are tables
//! themselves. A field added to the schema is thus found without touching this file, and the
//! test fails until the README names it.

use std::collections::BTreeSet;
use std::path::Path;

use super::schema;

/// The README, read at compile time so that editing it reruns these tests.
const README: &str = include_str!("../../README.md");

/// A key no table has; its error message lists the keys the table does have.
const PROBE: &str = "__portico_probe__";

/// How a key holds a nested table, in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `key = { ... }` or `[key]`.
    Table,
    /// `key = [{ ... }]` or `[[key]]`.
    Array,
    /// `key = { NAME = { ... } }`: a map from names of the user's choice to tables.
    Map,
}

impl Shape {
    const ALL: [Shape; 3] = [Shape::Table, Shape::Array, Shape::Map];

    /// `inner` (the body of an inline table) wrapped as a value of this shape.
    fn wrap(self, inner: &str) -> String {
        match self {
            Shape::Table => format!("{{ {inner} }}"),
            Shape::Array => format!("[{{ {inner} }}]"),
            Shape::Map => format!("{{ name = {{ {inner} }} }}"),
        }
    }
}

/// The keys of the table at `path` (outermost first), or `None` when `path` does not lead to
/// a table with fixed keys.
fn table_keys(path: &[(String, Shape)]) -> Option<Vec<String>> {
    let mut document = format!("{PROBE} = 1");
    for (key, shape) in path.iter().rev() {
        document = format!("{key} = {}", shape.wrap(&document));
    }
    let error = toml::from_str::<schema::Config>(&document)
        .err()
        .unwrap_or_else(|| panic!("the probe was accepted:\n{document}"));
    let expected = error
        .message()
        .strip_prefix(&format!("unknown field `{PROBE}`, "))?
        .to_string();
    // "expected one of `a`, `b`", "expected `a` or `b`", "expected `a`", "there are no fields":
    // the keys are the quoted words.
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Every key path of the schema, such as `site.route.static.root`; a map's names are `*`.
fn schema_keys() -> BTreeSet<String> {
    fn walk(path: &[(String, Shape)], keys: &mut BTreeSet<String>) {
        let Some(names) = table_keys(path) else {
            return;
        };
        let prefix: String = path
            .iter()
            .map(|(key, shape)| match shape {
                Shape::Map => format!("{key}.*."),
                Shape::Table | Shape::Array => format!("{key}."),
            })
            .collect();
        for name in names {
            keys.insert(format!("{prefix}{name}"));
            let nested = Shape::ALL.into_iter().find_map(|shape| {
                let mut nested = path.to_vec();
                nested.push((name.clone(), shape));
                table_keys(&nested).is_some().then_some(nested)
            });
            if let Some(nested) = nested {
                walk(&nested, keys);
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk(&[], &mut keys);
    keys
}

/// Every key path of a TOML document, arrays of tables looked through (`site.route.exact`).
fn document_keys(table: &toml::Table) -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            keys.insert(path.clone());
            let nested: Vec<&toml::Table> = match value {
                toml::Value::Table(table) => vec![table],
                toml::Value::Array(items) => {
                    items.iter().filter_map(toml::Value::as_table).collect()
                }
                _ => Vec::new(),
            };
            for table in nested {
                walk(&format!("{path}."), table, keys);
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk("", table, &mut keys);
    keys
}

/// Whether `pattern` (from [`schema_keys`], `*` standing for any name) names `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, path): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), path.split('.').collect());
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, k)| *p == "*" || p == k)
}

/// The one ```` ```toml ```` block of the README's "Configuration reference" section.
fn reference_block() -> &'static str {
    let heading = "\n## Configuration reference\n";
    let start = README
        .find(heading)
        .expect("README.md has no \"## Configuration reference\" section")
        + heading.len();
    let section = &README[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .map(|rest| {
            let end = rest
                .find("\n```")
                .expect("an unclosed ```toml block in the README");
            &rest[..=end]
        })
        .collect();
    let [block] = blocks.as_slice() else {
        panic!(
            "the README's configuration reference should have exactly one ```toml block, not {}",
            blocks.len()
        );
    };
    block
}

#[test]
fn probing_finds_the_schema_keys() {
    let keys = schema_keys();
    // A few keys from every depth, so that a change in serde's message cannot make the
    // README test below pass on an empty list.
    for key in [
        "server",
        "server.threads",
        "server.workers",
        "server.single_process",
        "access_log.format",
        "limits.shutdown_timeout",
        "site",
        "site.listen",
        "site.route",
        "site.route.exact",
        "site.route.static.root",
        "site.route.redirect.to",
        "site.route.respond.headers",
    ] {
        assert!(keys.contains(key), "`{key}` not found; found: {keys:#?}");
    }
    // Values that take a table but have free keys or no keys are leaves.
    for leaf in [
        "site.route.respond.headers",
        "site.listen",
        "limits.max_header_size",
    ] {
        let nested = format!("{leaf}.");
        assert!(!keys.iter().any(|k| k.starts_with(&nested)), "{keys:#?}");
    }
    assert!(keys.len() > 40, "{keys:#?}");
}

#[test]
fn the_readme_reference_names_every_schema_key() {
    let block: toml::Table = reference_block()
        .parse()
        .unwrap_or_else(|e| panic!("the README's reference block is not TOML: {e}"));
    let documented = document_keys(&block);
    let missing: Vec<String> = schema_keys()
        .into_iter()
        .filter(|key| !documented.iter().any(|path| matches(key, path)))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md, section \"Configuration reference\": the ```toml block does not set these \
         schema keys (add each at its place, with a comment giving its default and effect): \
         {missing:#?}"
    );
}

#[test]
fn the_readme_reference_parses_and_resolves() {
    let text = reference_block();
    let block: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("the README's reference block is not TOML: {e}"));
    // Relative paths start at the file's folder: create the folders the block names.
    let dir = tempfile::tempdir().unwrap();
    let mut folders = Vec::new();
    for site in block
        .get("site")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        for route in site
            .get("route")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(root) = route
                .get("static")
                .and_then(|s| s.get("root"))
                .and_then(toml::Value::as_str)
            {
                folders.push(Path::new(root).to_path_buf());
            }
        }
    }
    if let Some(log) = block
        .get("access_log")
        .and_then(|a| a.get("path"))
        .and_then(toml::Value::as_str)
    {
        folders.extend(Path::new(log).parent().map(Path::to_path_buf));
    }
    // Absolute paths are the reader's machine's business; only relative ones are made here.
    for folder in folders.iter().filter(|f| f.is_relative()) {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    // Certificates the reference names: a self-signed pair for the site's hosts.
    for site in block
        .get("site")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let tls = site.get("tls");
        let file = |key: &str| tls.and_then(|t| t.get(key)).and_then(toml::Value::as_str);
        if let (Some(cert), Some(key)) = (file("cert"), file("key")) {
            let pair = rcgen::KeyPair::generate().unwrap();
            let made = rcgen::CertificateParams::new(vec!["example.com".to_string()])
                .unwrap()
                .self_signed(&pair)
                .unwrap();
            std::fs::write(dir.path().join(cert), made.pem()).unwrap();
            std::fs::write(dir.path().join(key), pair.serialize_pem()).unwrap();
            if let Some(client_ca) = file("client_ca") {
                std::fs::write(dir.path().join(client_ca), made.pem()).unwrap();
            }
        }
    }
    if let Some(ca_root) = block
        .get("acme")
        .and_then(|acme| acme.get("ca_root"))
        .and_then(toml::Value::as_str)
    {
        std::fs::write(dir.path().join(ca_root), "a CA certificate").unwrap();
    }
    let path = dir.path().join("portico.toml");
    std::fs::write(&path, text).unwrap();
    if let Err(diagnostics) = super::load(&path) {
        panic!("the README's reference block is refused:\n{diagnostics}");
    }
}

#[test]
fn key_patterns_match_paths_segment_by_segment() {
    assert!(matches("site.route.static.root", "site.route.static.root"));
    assert!(matches("upstream.*.servers", "upstream.main.servers"));
    assert!(!matches("upstream.*.servers", "upstream.servers"));
    assert!(!matches("site.route", "site.route.static"));
}
