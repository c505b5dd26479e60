//! The only code that maps a URL path to a file path under a site's root.
//!
//! **Invariant: for any request path, [`resolve`] returns either an error or a path inside the
//! root.** "Inside" is checked on the canonical path (every symlink resolved), so a symlink
//! that leads out is refused with 403 unless the site sets `follow_symlinks_outside`; with that
//! setting the returned path is still lexically inside the root (no `..` ever survives), and
//! only symlinks the operator placed there can lead elsewhere. The fuzz target
//! `fuzz/fuzz_targets/path.rs` checks this invariant, and that nothing here panics.
//!
//! Called by `serve.rs` for the request path, and (through [`confine`]) for index files and
//! precompressed siblings, which must obey the same rule. It does not decide what to send.
//!
//! The steps, in order:
//!
//! 1. [`normalize`], a pure function: the path must start with `/`; it is percent-decoded exactly
//!    once (RFC 3986 §2.1), so `%252e%252e` is the literal name `%2e%2e`, never a traversal.
//!    Refused with 400: invalid percent-encoding, NUL, other control characters (C0, DEL and
//!    C1, raw or encoded), `%2F` (an encoded slash would smuggle a separator into a segment),
//!    backslashes raw or encoded (a separator on Windows), bytes that are not UTF-8, any `..`
//!    segment in any spelling (`%2e%2e`, `.%2E`, `..;param`, `...`, `.. `: any segment made only
//!    of dots and spaces, before a `;`, other than a single `.`), and segments that look like a
//!    Windows drive (`C:`). Empty and `.` segments are dropped (RFC 3986 §5.2.4 removes `.`;
//!    `//` collapses as in nginx).
//! 2. The segments are joined onto the root; each must be one normal path component, a second
//!    check that does not rely on step 1 being complete.
//! 3. [`confine`]: unless symlinks may lead outside, the joined path is canonicalized and must
//!    start with the root (component-wise, so `/srv/www2` is not inside `/srv/www`). Then its kind
//!    is read: a regular file, a folder, or anything else (refused, 403).
//!
//! The root must be absolute and canonical (the config resolution canonicalizes it at start-up).
//! A root that is not canonical fails closed: every file is refused with 403.
//!
//! Residual race, accepted: someone who can write inside the root could swap a folder for a
//! symlink between the check and the open. That person can already publish any file there.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::{Error, PathProblem};

/// A request path after decoding and normalisation: safe segments, and whether it ended in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Decoded segments joined by `/`, without a leading or trailing slash; empty for the root.
    relative: String,
    trailing_slash: bool,
}

impl Normalized {
    /// The decoded path relative to the root, segments joined by `/` (`""` for the root itself).
    pub fn relative(&self) -> &str {
        &self.relative
    }

    /// The decoded segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.relative.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment, if the path names something below the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// Whether the request path ended in `/` (it names a folder).
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }
}

/// What a file or folder under the root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (after following symlinks).
    File,
    /// A folder (after following symlinks).
    Folder,
}

/// A request path resolved to something that exists inside the root.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The path to open: canonical, inside the root (or, when symlinks may lead outside, the
    /// lexical path below).
    pub path: PathBuf,
    /// The root joined with the decoded segments, before symlinks are resolved. Siblings
    /// (`name.br`) and index files are looked up from here, then confined again.
    pub lexical: PathBuf,
    /// A file or a folder.
    pub kind: Kind,
    /// The decoded, normalised request path.
    pub normalized: Normalized,
}

/// Maps `raw_path` (the request path as received: percent-encoded, starting with `/`, without the
/// query) to an existing file or folder inside `root`.
///
/// Errors: 400 ([`Error::BadPath`]) for an unsafe or malformed path, 404 for a missing name or a
/// file named with a trailing slash, 403 for a symlink that leads outside the root (unless
/// `follow_symlinks_outside`), for special files and when the OS refuses access. Does blocking
/// file system calls: call it from `spawn_blocking`.
pub fn resolve(
    root: &Path,
    raw_path: &str,
    follow_symlinks_outside: bool,
) -> Result<Resolved, Error> {
    let normalized = normalize(raw_path)?;
    let mut lexical = root.to_path_buf();
    for segment in normalized.segments() {
        // Defence in depth: step 1 already refused everything that is not one plain name.
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if name == segment => lexical.push(name),
            _ => return Err(PathProblem::DotDot.into()),
        }
    }
    let (path, kind) = confine(root, &lexical, follow_symlinks_outside)?;
    if kind == Kind::File && normalized.has_trailing_slash() {
        // `/file.txt/` names a folder that does not exist (nginx answers 404 too).
        return Err(Error::NotFound);
    }
    Ok(Resolved {
        path,
        lexical,
        kind,
        normalized,
    })
}

/// Checks that `candidate`, a path built by joining plain names onto `root`, exists and stays
/// inside `root` once symlinks are resolved; returns the path to open and its kind.
///
/// With `follow_symlinks_outside` the candidate is returned as is (it is lexically inside the
/// root by construction) after checking that it exists. Errors as [`resolve`].
pub fn confine(
    root: &Path,
    candidate: &Path,
    follow_symlinks_outside: bool,
) -> Result<(PathBuf, Kind), Error> {
    let path = if follow_symlinks_outside {
        candidate.to_path_buf()
    } else {
        let canonical = fs::canonicalize(candidate)?;
        if !canonical.starts_with(root) {
            return Err(Error::OutsideRoot);
        }
        canonical
    };
    let file_type = fs::metadata(&path)?.file_type();
    let kind = if file_type.is_file() {
        Kind::File
    } else if file_type.is_dir() {
        Kind::Folder
    } else {
        return Err(Error::SpecialFile);
    };
    Ok((path, kind))
}

/// Decodes and normalises a request path without touching the file system (step 1 in the
/// module doc). Every segment of the result is a plain name: not empty, not `.` or `..`, free of
/// `/`, `\`, NUL and control characters.
pub fn normalize(raw_path: &str) -> Result<Normalized, PathProblem> {
    if !raw_path.starts_with('/') {
        return Err(PathProblem::NotAbsolute);
    }
    let mut relative = String::with_capacity(raw_path.len());
    for raw_segment in raw_path.split('/') {
        let segment = decode_segment(raw_segment)?;
        check_segment(&segment)?;
        if segment.is_empty() || segment == "." {
            continue;
        }
        if !relative.is_empty() {
            relative.push('/');
        }
        relative.push_str(&segment);
    }
    Ok(Normalized {
        relative,
        trailing_slash: raw_path.ends_with('/'),
    })
}

/// Percent-decodes one segment strictly (RFC 3986 §2.1: `%` must be followed by two hex
/// digits) and refuses bytes that have no business in a file name, raw or decoded.
fn decode_segment(raw: &str) -> Result<String, PathProblem> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(PathProblem::InvalidPercentEncoding)?;
            let (hi, lo) = (hex_value(hex[0]), hex_value(hex[1]));
            let byte = match (hi, lo) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(PathProblem::InvalidPercentEncoding),
            };
            if byte == b'/' {
                return Err(PathProblem::EncodedSlash);
            }
            i += 3;
            byte
        } else {
            i += 1;
            bytes[i - 1]
        };
        match byte {
            0 => return Err(PathProblem::Nul),
            b'\\' => return Err(PathProblem::Backslash),
            0x01..=0x1f | 0x7f => return Err(PathProblem::ControlChar),
            _ => decoded.push(byte),
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathProblem::NotUtf8)?;
    // C1 controls (U+0080 to U+009F), raw or encoded, are control characters too.
    if decoded.chars().any(char::is_control) {
        return Err(PathProblem::ControlChar);
    }
    Ok(decoded)
}

/// Refuses dot-dot segments in every spelling and Windows drive prefixes.
fn check_segment(segment: &str) -> Result<(), PathProblem> {
    // What Tomcat and friends treat as the segment proper: the part before `;` path parameters.
    let stem = segment.split(';').next().unwrap_or_default();
    // Windows drops trailing dots and spaces, so `...` and `.. ` mean `..` there.
    let only_dots = stem.contains('.') && stem.bytes().all(|b| b == b'.' || b == b' ');
    if only_dots && segment != "." {
        return Err(PathProblem::DotDot);
    }
    let bytes = segment.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathProblem::DriveLetter);
    }
    Ok(())
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use http::StatusCode;

    use super::*;

    /// One test per traversal spelling: each must be refused with the given problem.
    macro_rules! refused {
        ($($name:ident: $raw:expr => $problem:ident;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(normalize($raw), Err(PathProblem::$problem), "path {:?}", $raw);
            }
        )*};
    }

    refused! {
        dotdot_plain_is_refused: "/../etc/passwd" => DotDot;
        dotdot_in_the_middle_is_refused: "/a/b/../../../etc/passwd" => DotDot;
        dotdot_at_the_end_is_refused: "/a/.." => DotDot;
        dotdot_with_trailing_slash_is_refused: "/a/../" => DotDot;
        dotdot_fully_encoded_is_refused: "/%2e%2e/etc/passwd" => DotDot;
        dotdot_upper_case_encoded_is_refused: "/%2E%2E/etc/passwd" => DotDot;
        dotdot_half_encoded_first_is_refused: "/%2e./etc/passwd" => DotDot;
        dotdot_half_encoded_second_is_refused: "/.%2e/etc/passwd" => DotDot;
        dotdot_mixed_case_is_refused: "/.%2E/%2e%2E/x" => DotDot;
        dotdot_with_semicolon_is_refused: "/..;/etc/passwd" => DotDot;
        dotdot_with_path_parameter_is_refused: "/..;jsessionid=1/etc" => DotDot;
        dotdot_encoded_with_semicolon_is_refused: "/%2e%2e;/etc" => DotDot;
        dotdot_with_encoded_semicolon_is_refused: "/..%3b/etc" => DotDot;
        three_dots_are_refused: "/.../etc" => DotDot;
        dotdot_with_trailing_space_is_refused: "/..%20/etc" => DotDot;
        dot_with_parameter_is_refused: "/.;x/etc" => DotDot;
        dotdot_after_double_slash_is_refused: "//..//etc" => DotDot;
        encoded_slash_lower_is_refused: "/a%2f..%2f..%2fetc" => EncodedSlash;
        encoded_slash_upper_is_refused: "/..%2F..%2Fetc%2Fpasswd" => EncodedSlash;
        encoded_backslash_is_refused: "/..%5c..%5cwindows" => Backslash;
        encoded_backslash_upper_is_refused: "/..%5C..%5Cwindows" => Backslash;
        raw_backslash_is_refused: "/..\\..\\windows" => Backslash;
        raw_backslash_alone_is_refused: "/a\\b" => Backslash;
        encoded_nul_is_refused: "/index.html%00.png" => Nul;
        raw_nul_is_refused: "/index.html\0.png" => Nul;
        encoded_control_char_is_refused: "/a%0ab" => ControlChar;
        encoded_delete_is_refused: "/a%7Fb" => ControlChar;
        raw_tab_is_refused: "/a\tb" => ControlChar;
        encoded_c1_control_is_refused: "/a%C2%85b" => ControlChar;
        raw_c1_control_is_refused: "/\u{1d6}\u{96}/l" => ControlChar;
        overlong_utf8_dot_is_refused: "/%c0%ae%c0%ae/etc" => NotUtf8;
        lone_continuation_byte_is_refused: "/%80" => NotUtf8;
        truncated_percent_is_refused: "/a%2" => InvalidPercentEncoding;
        percent_at_end_is_refused: "/a%" => InvalidPercentEncoding;
        percent_non_hex_is_refused: "/%zz" => InvalidPercentEncoding;
        percent_with_sign_is_refused: "/%+1" => InvalidPercentEncoding;
        drive_letter_is_refused: "/C:/windows/win.ini" => DriveLetter;
        encoded_drive_letter_is_refused: "/c%3a/windows" => DriveLetter;
        drive_letter_deeper_is_refused: "/a/d:secret" => DriveLetter;
        relative_path_is_refused: "a/b" => NotAbsolute;
        empty_path_is_refused: "" => NotAbsolute;
        asterisk_form_is_refused: "*" => NotAbsolute;
    }

    fn relative(raw: &str) -> String {
        normalize(raw).unwrap().relative().to_string()
    }

    #[test]
    fn double_encoded_dotdot_is_a_literal_name() {
        assert_eq!(relative("/%252e%252e/etc/passwd"), "%2e%2e/etc/passwd");
        assert_eq!(relative("/%252E%252E%252Fetc"), "%2E%2E%2Fetc");
    }

    #[test]
    fn double_slashes_collapse() {
        assert_eq!(relative("//a///b//"), "a/b");
        assert!(normalize("//a///b//").unwrap().has_trailing_slash());
    }

    #[test]
    fn dot_segments_are_dropped() {
        assert_eq!(relative("/./a/./b/."), "a/b");
        assert_eq!(relative("/%2e/a/%2E/b"), "a/b");
    }

    #[test]
    fn root_is_empty_relative_with_trailing_slash() {
        let n = normalize("/").unwrap();
        assert_eq!(n.relative(), "");
        assert!(n.has_trailing_slash());
        assert_eq!(n.file_name(), None);
    }

    #[test]
    fn names_with_dots_inside_are_kept() {
        assert_eq!(relative("/a..b/..c/d../.hidden"), "a..b/..c/d../.hidden");
    }

    #[test]
    fn percent_encoded_utf8_and_spaces_decode() {
        assert_eq!(relative("/caf%C3%A9/a%20b.txt"), "café/a b.txt");
        assert_eq!(relative("/ünïcode"), "ünïcode");
    }

    #[test]
    fn plus_is_not_a_space() {
        assert_eq!(relative("/a+b"), "a+b");
    }

    #[test]
    fn colon_later_in_a_name_is_allowed() {
        assert_eq!(
            relative("/logs/2024-01-01T10:00.log"),
            "logs/2024-01-01T10:00.log"
        );
    }

    #[test]
    fn decoding_happens_once_only() {
        // `%25` is `%`; the result is not decoded again.
        assert_eq!(relative("/100%25"), "100%");
        assert_eq!(relative("/%2500"), "%00");
    }

    /// A root with files inside, a folder outside, and symlinks both ways.
    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root.join("inside.txt"), "in").unwrap();
        fs::write(root.join("sub/deep.txt"), "deep").unwrap();
        fs::write(root.join("%2e%2e"), "literal").unwrap();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        symlink(root.join("inside.txt"), root.join("link_in")).unwrap();
        symlink(root.join("sub"), root.join("dir_in")).unwrap();
        symlink(outside.join("secret.txt"), root.join("link_out")).unwrap();
        symlink(&outside, root.join("dir_out")).unwrap();
        symlink("../outside/secret.txt", root.join("relative_out")).unwrap();
        symlink(root.join("loop_b"), root.join("loop_a")).unwrap();
        symlink(root.join("loop_a"), root.join("loop_b")).unwrap();
        Tree {
            _dir: dir,
            root,
            outside,
        }
    }

    fn status(root: &Path, raw: &str, follow: bool) -> StatusCode {
        match resolve(root, raw, follow) {
            Ok(_) => StatusCode::OK,
            Err(err) => err.status(),
        }
    }

    #[test]
    fn file_inside_resolves_to_canonical_path() {
        let t = tree();
        let r = resolve(&t.root, "/sub//./deep.txt", false).unwrap();
        assert_eq!(r.path, t.root.join("sub/deep.txt"));
        assert_eq!(r.kind, Kind::File);
    }

    #[test]
    fn root_resolves_to_folder() {
        let t = tree();
        let r = resolve(&t.root, "/", false).unwrap();
        assert_eq!(r.path, t.root);
        assert_eq!(r.kind, Kind::Folder);
    }

    #[test]
    fn missing_file_is_404() {
        let t = tree();
        assert_eq!(status(&t.root, "/nope.txt", false), StatusCode::NOT_FOUND);
    }

    #[test]
    fn double_encoded_dotdot_is_404_not_traversal() {
        let t = tree();
        assert_eq!(
            status(&t.root, "/%252e%252e/outside/secret.txt", false),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&t.root, "/%252e%252e/outside/secret.txt", true),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn double_encoded_dotdot_names_the_literal_file() {
        let t = tree();
        let r = resolve(&t.root, "/%252e%252e", false).unwrap();
        assert_eq!(r.path, t.root.join("%2e%2e"));
    }

    #[test]
    fn traversal_is_400_with_either_symlink_setting() {
        let t = tree();
        for follow in [false, true] {
            for raw in [
                "/../outside/secret.txt",
                "/%2e%2e/outside/secret.txt",
                "/sub/..%2f..",
            ] {
                assert_eq!(
                    status(&t.root, raw, follow),
                    StatusCode::BAD_REQUEST,
                    "{raw}"
                );
            }
        }
    }

    #[test]
    fn symlink_inside_root_is_followed() {
        let t = tree();
        let r = resolve(&t.root, "/link_in", false).unwrap();
        assert_eq!(r.path, t.root.join("inside.txt"));
        assert_eq!(r.lexical, t.root.join("link_in"));
        let r = resolve(&t.root, "/dir_in/deep.txt", false).unwrap();
        assert_eq!(r.path, t.root.join("sub/deep.txt"));
    }

    #[test]
    fn symlink_to_file_outside_is_403() {
        let t = tree();
        assert_eq!(status(&t.root, "/link_out", false), StatusCode::FORBIDDEN);
        assert_eq!(
            status(&t.root, "/relative_out", false),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn symlink_to_folder_outside_is_403() {
        let t = tree();
        assert_eq!(
            status(&t.root, "/dir_out/secret.txt", false),
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(&t.root, "/dir_out/", false), StatusCode::FORBIDDEN);
    }

    #[test]
    fn missing_file_behind_outside_symlink_is_404() {
        let t = tree();
        assert_eq!(
            status(&t.root, "/dir_out/nope", false),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn symlinks_outside_are_followed_when_allowed() {
        let t = tree();
        let r = resolve(&t.root, "/link_out", true).unwrap();
        assert_eq!(r.path, t.root.join("link_out"));
        assert_eq!(fs::read_to_string(&r.path).unwrap(), "secret");
        let r = resolve(&t.root, "/dir_out/secret.txt", true).unwrap();
        assert!(r.path.starts_with(&t.root));
        assert!(t.outside.join("secret.txt").exists());
    }

    #[test]
    fn symlink_loop_is_403() {
        let t = tree();
        assert_eq!(status(&t.root, "/loop_a", false), StatusCode::FORBIDDEN);
        assert_eq!(status(&t.root, "/loop_a", true), StatusCode::FORBIDDEN);
    }

    #[test]
    fn file_with_trailing_slash_is_404() {
        let t = tree();
        assert_eq!(
            status(&t.root, "/inside.txt/", false),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&t.root, "/inside.txt/more", false),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn socket_file_is_403() {
        let t = tree();
        let _listener = std::os::unix::net::UnixListener::bind(t.root.join("sock")).unwrap();
        assert_eq!(status(&t.root, "/sock", false), StatusCode::FORBIDDEN);
    }

    #[test]
    fn overlong_name_is_404() {
        let t = tree();
        let raw = format!("/{}", "a".repeat(300));
        assert_eq!(status(&t.root, &raw, false), StatusCode::NOT_FOUND);
    }

    #[test]
    fn root_that_is_not_canonical_fails_closed() {
        let t = tree();
        let crooked = t.root.join("sub/..");
        assert_eq!(
            status(&crooked, "/inside.txt", false),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn sibling_root_with_common_prefix_is_outside() {
        let t = tree();
        let sibling = t.root.with_file_name("root2");
        fs::create_dir_all(&sibling).unwrap();
        fs::write(sibling.join("x"), "x").unwrap();
        symlink(sibling.join("x"), t.root.join("to_root2")).unwrap();
        assert_eq!(status(&t.root, "/to_root2", false), StatusCode::FORBIDDEN);
    }
}
