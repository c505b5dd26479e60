//! `portico check` and `portico serve` on invalid files: exit code 2 and one
//! `error: <path>:<line>:<col>: <message>` block per problem, pointing at the right line; the
//! same text from both commands. A valid file passes `check` with exit code 0.

use std::path::{Path, PathBuf};

use crate::harness::{CliOutput, WorkDir, portico};

/// One parsed `error: path:line:col: message` line.
#[derive(Debug)]
struct Diagnostic {
    line: usize,
    col: usize,
    message: String,
}

/// Writes `config` as `bad.toml` in a folder that also has `public/`.
fn bad_file(config: &str) -> (WorkDir, PathBuf) {
    let work = WorkDir::new();
    work.write("public/index.html", "ok\n");
    let path = work.write("bad.toml", config);
    (work, path)
}

fn check(work: &WorkDir, path: &Path) -> CliOutput {
    portico(
        work.path(),
        &["check".as_ref(), "-c".as_ref(), path.as_os_str()],
    )
}

fn serve(work: &WorkDir, path: &Path) -> CliOutput {
    let data = work.join("state");
    portico(
        work.path(),
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "serve".as_ref(),
            "-c".as_ref(),
            path.as_os_str(),
        ],
    )
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in config"))
        + 1
}

/// The diagnostics about `path` in `output`.
fn diagnostics(output: &str, path: &Path) -> Vec<Diagnostic> {
    let prefix = format!("error: {}:", path.display());
    output
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.trim().parse().ok()?;
            let col = parts.next()?.trim().parse().ok()?;
            let message = parts.next()?.trim().to_string();
            Some(Diagnostic { line, col, message })
        })
        .collect()
}

/// The `error:` lines of an output, for comparing `check` with `serve`.
fn error_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// Runs `check` and `serve` on `config`; both must exit 2, print the same diagnostics, and
/// report a problem on one of `lines` whose message contains `mentions`.
fn assert_rejected(config: &str, lines: std::ops::RangeInclusive<usize>, mentions: &str) {
    let (work, path) = bad_file(config);
    let out = check(&work, &path);
    out.assert_code(2);
    let found = diagnostics(&out.all_output(), &path);
    let hit = found
        .iter()
        .find(|d| lines.contains(&d.line) && d.message.contains(mentions));
    assert!(
        hit.is_some(),
        "expected `error: {}:<line in {lines:?}>:<col>: …{mentions}…`; parsed {found:?}\n{out}\n---- config ----\n{config}",
        path.display()
    );
    assert!(
        found.iter().all(|d| d.col >= 1),
        "columns are 1-based: {found:?}\n{out}"
    );

    let served = serve(&work, &path);
    served.assert_code(2);
    assert_eq!(
        error_lines(&served.stderr),
        error_lines(&out.all_output()),
        "serve must print check's diagnostics to stderr\n{served}\n{out}"
    );
}

#[tokio::test]
async fn unknown_key_is_reported_at_its_line() {
    let config = r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
rooot = "public"
"#;
    let line = line_of(config, "rooot");
    assert_rejected(config, line..=line, "rooot");
}

#[tokio::test]
async fn bad_listen_address_is_reported_at_its_line() {
    let config = r#"[[site]]
name = "main"
listen = ["127.0.0.1:99999"]

[[site.route]]
respond = { body = "x" }
"#;
    let line = line_of(config, "99999");
    assert_rejected(config, line..=line, "");
}

#[tokio::test]
async fn missing_root_folder_is_reported_at_its_line() {
    let config = r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"

[site.route.static]
index = ["index.html"]
root = "does-not-exist"
"#;
    let line = line_of(config, "does-not-exist");
    assert_rejected(config, line..=line, "does-not-exist");
}

#[tokio::test]
async fn two_handlers_in_one_route_are_reported_within_the_route() {
    let config = r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/ok"
respond = { body = "fine" }

[[site.route]]
exact = "/both"
respond = { body = "x" }
redirect = { to = "/y" }
"#;
    let first = line_of(config, "exact = \"/both\"") - 1;
    let last = line_of(config, "redirect = ");
    assert_rejected(config, first..=last, "");
}

#[tokio::test]
async fn bad_redirect_status_is_reported_at_its_line() {
    let config = r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/old"
redirect = { to = "/new", status = 200 }
"#;
    let line = line_of(config, "status = 200");
    assert_rejected(config, line..=line, "");
}

#[tokio::test]
async fn bad_size_unit_is_reported_at_its_line() {
    let config = r#"[limits]
max_headers = 50
max_header_size = "32q"

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
respond = { body = "x" }
"#;
    let line = line_of(config, "32q");
    assert_rejected(config, line..=line, "");
}

#[tokio::test]
async fn every_resolution_problem_is_reported() {
    let config = r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/files/"
[site.route.static]
root = "no-such-folder"

[[site.route]]
exact = "/old"
redirect = { to = "/new", status = 299 }
"#;
    let (work, path) = bad_file(config);
    let out = check(&work, &path);
    out.assert_code(2);
    let found = diagnostics(&out.all_output(), &path);
    for needle in ["no-such-folder", "status = 299"] {
        let line = line_of(config, needle);
        assert!(
            found.iter().any(|d| d.line == line),
            "no diagnostic at line {line} ({needle}); parsed {found:?}\n{out}"
        );
    }
}

#[tokio::test]
async fn check_accepts_a_valid_file() {
    let work = WorkDir::new();
    work.write("public/index.html", "ok\n");
    let path = work.write(
        "portico.toml",
        r#"[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
"#,
    );
    let out = check(&work, &path);
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!("ok: {}", path.display())),
        "{out}"
    );
}

/// Every key of the schema (README reference), in one file kept in tests/data.
#[tokio::test]
async fn check_accepts_the_full_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/full");
    let path = dir.join("portico.toml");
    let out = portico(&dir, &["check".as_ref(), "-c".as_ref(), path.as_os_str()]);
    out.assert_code(0);
    assert!(out.stdout.contains("ok: "), "{out}");
}

#[tokio::test]
async fn missing_config_file_is_an_error() {
    let work = WorkDir::new();
    let path = work.join("absent.toml");
    let out = check(&work, &path);
    out.assert_code(2);
    assert!(
        out.all_output()
            .contains(&format!("error: {}", path.display())),
        "{out}"
    );
}
