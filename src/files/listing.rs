//! HTML directory listings for folders without an index file, when the site sets `listing`.
//!
//! Called by `serve.rs`: [`read`] (blocking, from `spawn_blocking`) collects the entries, then
//! [`render`] (pure) writes the page, served as `text/html; charset=utf-8`.
//!
//! Invariants: every name is HTML-escaped in text and percent-encoded in links (all but RFC 3986
//! unreserved characters), and links are relative and start with `./`, so a name such as
//! `javascript:x` or `a:b` can never become a scheme. Like nginx's autoindex, names starting
//! with `.` are not listed; neither are names that are not UTF-8 (no request could reach them),
//! special files, and, unless symlinks may lead outside, symlinks that do.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::path::{Kind, confine};

/// One listed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name (UTF-8, not starting with `.`).
    pub name: String,
    /// A file or a folder (symlinks followed).
    pub kind: Kind,
    /// Size of a file; 0 for folders.
    pub size_bytes: u64,
    /// Modification time, when the file system has one.
    pub modified: Option<SystemTime>,
}

/// The listable entries of `folder`, a folder inside `root`, in no particular order.
/// Entries that vanish or cannot be read while listing are skipped.
pub fn read(root: &Path, folder: &Path, follow_symlinks_outside: bool) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for dir_entry in fs::read_dir(folder)? {
        let Ok(dir_entry) = dir_entry else { continue };
        let Ok(name) = dir_entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = dir_entry.path();
        let is_symlink = dir_entry.file_type().is_ok_and(|t| t.is_symlink());
        if is_symlink && confine(root, &path, follow_symlinks_outside).is_err() {
            continue;
        }
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let kind = if meta.is_dir() {
            Kind::Folder
        } else if meta.is_file() {
            Kind::File
        } else {
            continue;
        };
        entries.push(Entry {
            name,
            kind,
            size_bytes: if kind == Kind::File { meta.len() } else { 0 },
            modified: meta.modified().ok(),
        });
    }
    Ok(entries)
}

/// The listing page. `title` is the decoded request path shown to the reader (`/docs/`);
/// `at_root` leaves out the link to the parent folder. Folders come first, then files, each
/// sorted by name ignoring case.
pub fn render(title: &str, at_root: bool, mut entries: Vec<Entry>) -> String {
    entries.sort_by(|a, b| {
        let folder_first = (b.kind == Kind::Folder).cmp(&(a.kind == Kind::Folder));
        folder_first
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    let title = escape(title);
    let mut html = String::with_capacity(512 + entries.len() * 160);
    html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    let _ = write!(
        html,
        "<title>Index of {title}</title>{STYLE}</head>\n<body>\n"
    );
    let _ = writeln!(html, "<h1>Index of {title}</h1>");
    html.push_str("<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>\n");
    html.push_str("<tbody>\n");
    if !at_root {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in &entries {
        let slash = if entry.kind == Kind::Folder { "/" } else { "" };
        let href = utf8_percent_encode(&entry.name, LINK);
        let size = match entry.kind {
            Kind::Folder => "-".to_string(),
            Kind::File => human_size(entry.size_bytes),
        };
        let modified = entry.modified.map(utc_minute).unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td><a href=\"./{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"size\">{size}</td><td>{modified}</td></tr>",
            name = escape(&entry.name),
        );
    }
    html.push_str("</tbody>\n</table>\n</body></html>\n");
    html
}

/// Escapes the five characters that matter in HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `1023 B`, `1.5 KiB`, `12.0 MiB`...
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `2024-03-09 14:05` (UTC); empty before 1970.
fn utc_minute(time: SystemTime) -> String {
    let Ok(since) = time.duration_since(UNIX_EPOCH) else {
        return String::new();
    };
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Everything but RFC 3986 unreserved characters is percent-encoded in links.
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const STYLE: &str = "<style>body{font-family:system-ui,sans-serif;margin:2em}\
table{border-collapse:collapse}th,td{padding:.2em 1.2em .2em 0;text-align:left}\
td.size{text-align:right}</style>";

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::time::Duration;

    use super::*;

    fn file(name: &str, size_bytes: u64) -> Entry {
        Entry {
            name: name.to_string(),
            kind: Kind::File,
            size_bytes,
            modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn folder(name: &str) -> Entry {
        Entry {
            name: name.to_string(),
            kind: Kind::Folder,
            size_bytes: 0,
            modified: None,
        }
    }

    #[test]
    fn folders_come_first_then_names_ignoring_case() {
        let html = render(
            "/",
            true,
            vec![file("b.txt", 1), folder("zeta"), file("A.txt", 1)],
        );
        let zeta = html.find("zeta/").unwrap();
        let a = html.find("A.txt").unwrap();
        let b = html.find("b.txt").unwrap();
        assert!(zeta < a && a < b, "{html}");
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let html = render("/", true, vec![file("<script>&\"'.txt", 1)]);
        assert!(
            html.contains("&lt;script&gt;&amp;&quot;&#39;.txt"),
            "{html}"
        );
        assert!(
            html.contains("href=\"./%3Cscript%3E%26%22%27.txt\""),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn scheme_like_names_stay_relative() {
        let html = render("/", true, vec![file("javascript:alert(1)", 1)]);
        assert!(
            html.contains("href=\"./javascript%3Aalert%281%29\""),
            "{html}"
        );
    }

    #[test]
    fn unicode_and_spaces_are_percent_encoded() {
        let html = render("/", true, vec![folder("café menu")]);
        assert!(html.contains("href=\"./caf%C3%A9%20menu/\""), "{html}");
        assert!(html.contains(">café menu/</a>"), "{html}");
    }

    #[test]
    fn title_is_escaped() {
        let html = render("/<b>/", false, Vec::new());
        assert!(
            html.contains("<title>Index of /&lt;b&gt;/</title>"),
            "{html}"
        );
    }

    #[test]
    fn parent_link_only_below_root() {
        assert!(!render("/", true, Vec::new()).contains("href=\"../\""));
        assert!(render("/a/", false, Vec::new()).contains("href=\"../\""));
    }

    #[test]
    fn sizes_and_dates_are_shown() {
        let html = render("/", true, vec![file("x", 1536), folder("d")]);
        assert!(html.contains("1.5 KiB"), "{html}");
        assert!(html.contains("2023-11-14 22:13"), "{html}");
        assert!(html.contains("<td class=\"size\">-</td>"), "{html}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn dates_convert_to_the_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            utc_minute(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_660)),
            "2000-02-29 01:01"
        );
    }

    #[test]
    fn read_skips_hidden_special_and_outside_entries() {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let root = base.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(root.join("a.txt"), "abc").unwrap();
        fs::write(root.join(".env"), "secret").unwrap();
        symlink(base.join("outside"), root.join("out")).unwrap();
        symlink(root.join("a.txt"), root.join("in")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();

        let mut names: Vec<_> = read(&root, &root, false)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names, vec!["a.txt", "in", "sub"]);

        let mut names: Vec<_> = read(&root, &root, true)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names, vec!["a.txt", "in", "out", "sub"]);

        let a = read(&root, &root, false)
            .unwrap()
            .into_iter()
            .find(|e| e.name == "a.txt")
            .unwrap();
        assert_eq!((a.kind, a.size_bytes), (Kind::File, 3));
    }
}
