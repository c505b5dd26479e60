//! The `static` handler: MIME types, validators and conditional requests, ranges, HEAD, index
//! files, listings, precompressed siblings, on-the-fly compression, symlinks.

use std::io::Read;

use bytes::Bytes;
use http::Request;
use tokio::io::AsyncWriteExt;

use crate::harness::{RawConn, Server, WorkDir, get, send};

/// One site, one route serving `public/` (nginx `root` semantics: the whole path maps).
const CONFIG: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
"#;

const INDEX_HTML: &str = "<!doctype html><h1>portico home</h1>\n";
const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// A text file large and repetitive enough that any compression threshold is passed.
fn notes() -> String {
    (0..150)
        .map(|i| format!("line {i:03}: portico serves static files with validators.\n"))
        .collect()
}

/// `public/` with a file of each common type, folders with and without an index.
fn public_site() -> WorkDir {
    let work = WorkDir::new();
    work.write("public/index.html", INDEX_HTML);
    work.write("public/style.css", "body { color: #333; }\n");
    work.write("public/app.js", "console.log('portico');\n");
    work.write("public/data.json", "{\"ok\":true}\n");
    work.write("public/pixel.png", PNG_BYTES);
    work.write("public/blob.qqq", "opaque\n");
    work.write("public/notes.txt", notes());
    work.write("public/docs/index.html", "<h1>docs</h1>\n");
    work.write("public/noindex/file.txt", "no index here\n");
    work
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Bytes> {
    let mut builder = Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Bytes::new()).unwrap()
}

#[tokio::test]
async fn mime_types_follow_the_extension() {
    let server = Server::start(public_site(), CONFIG);
    let notes = notes();
    let cases: &[(&str, &str, &[u8])] = &[
        ("/index.html", "text/html", INDEX_HTML.as_bytes()),
        ("/style.css", "text/css", b"body { color: #333; }\n"),
        ("/app.js", "javascript", b"console.log('portico');\n"),
        ("/data.json", "application/json", b"{\"ok\":true}\n"),
        ("/pixel.png", "image/png", PNG_BYTES),
        ("/notes.txt", "text/plain", notes.as_bytes()),
        ("/blob.qqq", "application/octet-stream", b"opaque\n"),
    ];
    for (path, mime, body) in cases {
        let r = get(server.addr(), path).await;
        r.assert_status(200);
        let content_type = r.header("content-type").unwrap_or("");
        // `javascript` covers both text/javascript (RFC 9239) and application/javascript.
        assert!(
            content_type.contains(mime),
            "{path}: expected a {mime} Content-Type\n{r}"
        );
        assert_eq!(
            &r.body[..],
            *body,
            "{path}: body differs from the file\n{r}"
        );
    }
}

#[tokio::test]
async fn missing_file_is_404() {
    let server = Server::start(public_site(), CONFIG);
    // The root is served, so the 404 below is about the file, not a dead route.
    get(server.addr(), "/index.html").await.assert_status(200);
    get(server.addr(), "/no-such-file.txt")
        .await
        .assert_status(404);
    get(server.addr(), "/docs/no-such-page.html")
        .await
        .assert_status(404);
}

#[tokio::test]
async fn etag_and_last_modified_give_304() {
    let server = Server::start(public_site(), CONFIG);
    let addr = server.addr();
    let full = get(addr, "/notes.txt").await;
    full.assert_status(200);
    let etag = full
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag\n{full}"))
        .to_string();
    let modified = full
        .header("last-modified")
        .unwrap_or_else(|| panic!("no Last-Modified\n{full}"))
        .to_string();
    assert!(
        httpdate::parse_http_date(&modified).is_ok(),
        "Last-Modified is not an HTTP date\n{full}"
    );

    let r = send(addr, get_with("/notes.txt", &[("if-none-match", &etag)])).await;
    r.assert_status(304);
    assert!(r.body.is_empty(), "304 with a body\n{r}");
    assert_eq!(
        r.header("etag"),
        Some(etag.as_str()),
        "304 must repeat the ETag\n{r}"
    );

    // A list, and weak comparison (RFC 9110 §13.1.2: If-None-Match compares weakly).
    let listed = format!("\"something-else\", {etag}");
    send(addr, get_with("/notes.txt", &[("if-none-match", &listed)]))
        .await
        .assert_status(304);
    if !etag.starts_with("W/") {
        let weak = format!("W/{etag}");
        send(addr, get_with("/notes.txt", &[("if-none-match", &weak)]))
            .await
            .assert_status(304);
    }
    send(addr, get_with("/notes.txt", &[("if-none-match", "*")]))
        .await
        .assert_status(304);

    let r = send(
        addr,
        get_with("/notes.txt", &[("if-none-match", "\"not-the-etag\"")]),
    )
    .await;
    r.assert_status(200);
    assert_eq!(
        r.body, full.body,
        "200 after a non-matching If-None-Match must carry the file\n{r}"
    );

    send(
        addr,
        get_with("/notes.txt", &[("if-modified-since", &modified)]),
    )
    .await
    .assert_status(304);
    let old = "Sun, 06 Nov 1994 08:49:37 GMT";
    send(addr, get_with("/notes.txt", &[("if-modified-since", old)]))
        .await
        .assert_status(200);

    // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
    let both = [
        ("if-none-match", "\"not-the-etag\""),
        ("if-modified-since", modified.as_str()),
    ];
    send(addr, get_with("/notes.txt", &both))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn failed_preconditions_are_412() {
    let server = Server::start(public_site(), CONFIG);
    let addr = server.addr();
    let full = get(addr, "/notes.txt").await;
    full.assert_status(200);
    let etag = full
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag\n{full}"))
        .to_string();

    send(
        addr,
        get_with("/notes.txt", &[("if-match", "\"not-the-etag\"")]),
    )
    .await
    .assert_status(412);
    send(addr, get_with("/notes.txt", &[("if-match", &etag)]))
        .await
        .assert_status(200);

    let past = "Sun, 06 Nov 1994 08:49:37 GMT";
    send(
        addr,
        get_with("/notes.txt", &[("if-unmodified-since", past)]),
    )
    .await
    .assert_status(412);
    let tomorrow = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(86_400),
    );
    send(
        addr,
        get_with("/notes.txt", &[("if-unmodified-since", &tomorrow)]),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn single_ranges_are_206() {
    let server = Server::start(public_site(), CONFIG);
    let addr = server.addr();
    let text = notes();
    let len = text.len();

    let full = get(addr, "/notes.txt").await;
    full.assert_status(200);
    full.assert_header("accept-ranges", "bytes");

    let cases = [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, len),
        ("bytes=-5", len - 5, len),
        ("bytes=20-29", 20, 30),
        ("bytes=10-999999", 10, len),
    ];
    for (range, start, end) in cases {
        let r = send(addr, get_with("/notes.txt", &[("range", range)])).await;
        r.assert_status(206);
        let expected = format!("bytes {start}-{}/{len}", end - 1);
        assert_eq!(
            r.header("content-range"),
            Some(expected.as_str()),
            "{range}\n{r}"
        );
        assert_eq!(
            &r.body[..],
            &text.as_bytes()[start..end],
            "{range}: wrong bytes\n{r}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start).to_string().as_str()),
            "{range}\n{r}"
        );
    }

    // If-Range (RFC 9110 §13.1.5): the range applies only while the validator matches.
    let etag = full
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag\n{full}"));
    let r = send(
        addr,
        get_with("/notes.txt", &[("range", "bytes=0-9"), ("if-range", etag)]),
    )
    .await;
    r.assert_status(206);
    let r = send(
        addr,
        get_with(
            "/notes.txt",
            &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
        ),
    )
    .await;
    r.assert_status(200);
    assert_eq!(
        r.body.len(),
        len,
        "If-Range mismatch must send the whole file\n{r}"
    );
}

#[tokio::test]
async fn range_past_the_end_is_416() {
    let server = Server::start(public_site(), CONFIG);
    let len = notes().len();
    let r = send(
        server.addr(),
        get_with("/notes.txt", &[("range", "bytes=999999-")]),
    )
    .await;
    r.assert_status(416);
    let expected = format!("bytes */{len}");
    assert_eq!(
        r.header("content-range"),
        Some(expected.as_str()),
        "416 needs Content-Range\n{r}"
    );
}

#[tokio::test]
async fn head_has_the_get_headers_and_no_body() {
    let server = Server::start(public_site(), CONFIG);
    let addr = server.addr();

    let mut conn = RawConn::connect(addr).await;
    conn.send("GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let get = conn.read_response().await;
    get.assert_status(200);

    let mut conn = RawConn::connect(addr).await;
    conn.send("HEAD /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let head = conn.read_head_response().await;
    head.assert_status(200);
    let trailing = conn.read_to_end().await;
    assert!(
        trailing.is_empty(),
        "HEAD response followed by {} body bytes\n{head}",
        trailing.len()
    );

    let expected_length = notes().len().to_string();
    assert_eq!(
        head.header("content-length"),
        Some(expected_length.as_str()),
        "HEAD\n{head}\nGET\n{get}"
    );
    for name in [
        "content-length",
        "content-type",
        "etag",
        "last-modified",
        "accept-ranges",
    ] {
        assert_eq!(
            head.header(name),
            get.header(name),
            "{name} differs\nHEAD:\n{head}\nGET:\n{get}"
        );
    }
}

#[tokio::test]
async fn index_files_and_folder_redirect() {
    let server = Server::start(public_site(), CONFIG);
    let addr = server.addr();

    let r = get(addr, "/").await;
    r.assert_status(200);
    assert_eq!(r.text(), INDEX_HTML, "{r}");
    let r = get(addr, "/docs/").await;
    r.assert_status(200);
    assert_eq!(r.text(), "<h1>docs</h1>\n", "{r}");

    // A folder without its trailing slash: 301 to the slash form (relative links resolve).
    let r = get(addr, "/docs").await;
    r.assert_status(301);
    let location = r
        .header("location")
        .unwrap_or_else(|| panic!("301 without Location\n{r}"));
    assert_eq!(location_path(location), "/docs/", "{r}");
}

#[tokio::test]
async fn folder_without_index_is_403_when_listing_is_off() {
    let server = Server::start(public_site(), CONFIG);
    let r = get(server.addr(), "/noindex/").await;
    r.assert_status(403);
    assert!(
        !r.text().contains("file.txt"),
        "403 must not list the folder\n{r}"
    );
}

#[tokio::test]
async fn listing_is_chosen_per_route() {
    let work = WorkDir::new();
    work.write("listed/open/alpha.txt", "a\n");
    work.write("listed/open/beta.txt", "b\n");
    work.write("listed/open/sub/inner.txt", "i\n");
    work.write("listed/open/<img src=x onerror=alert(1)>.txt", "x\n");
    work.write("listed/closed/gamma.txt", "g\n");
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/open/"
[site.route.static]
root = "listed"
listing = true

[[site.route]]
prefix = "/"
[site.route.static]
root = "listed"
listing = false
"#;
    let server = Server::start(work, config);
    let r = get(server.addr(), "/open/").await;
    r.assert_status(200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{r}"
    );
    for name in ["alpha.txt", "beta.txt", "sub"] {
        assert!(r.text().contains(name), "listing misses {name}\n{r}");
    }
    assert!(
        !r.text().contains("<img src=x"),
        "file names must be HTML-escaped in listings\n{r}"
    );

    get(server.addr(), "/closed/").await.assert_status(403);
    // Files themselves are served on both routes.
    get(server.addr(), "/closed/gamma.txt")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn strip_prefix_maps_the_path_after_the_prefix() {
    let work = WorkDir::new();
    work.write("files/logo.txt", "logo\n");
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/assets/"
[site.route.static]
root = "files"
strip_prefix = true
"#;
    let server = Server::start(work, config);
    let r = get(server.addr(), "/assets/logo.txt").await;
    r.assert_status(200);
    assert_eq!(r.text(), "logo\n", "{r}");
}

#[tokio::test]
async fn precompressed_siblings_are_served_with_content_encoding() {
    let work = public_site();
    let original = "function portico() { return 'precompressed'; }\n".repeat(80);
    work.write("public/bundle.js", &original);
    // A gzip member with a file name in its header: on-the-fly gzip never produces these
    // exact bytes, so equality proves the sibling was sent.
    let mut gz = flate2::GzBuilder::new()
        .filename("bundle.js")
        .mtime(1)
        .write(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, original.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    work.write("public/bundle.js.gz", &gz);
    let br = brotli(original.as_bytes()).await;
    work.write("public/bundle.js.br", &br);
    let server = Server::start(work, CONFIG);
    let addr = server.addr();

    for (coding, sibling) in [("gzip", &gz), ("br", &br)] {
        let r = send(addr, get_with("/bundle.js", &[("accept-encoding", coding)])).await;
        r.assert_status(200);
        r.assert_header("content-encoding", coding);
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .contains("javascript"),
            "type of the original\n{r}"
        );
        assert!(
            vary_has_accept_encoding(&r.headers),
            "Vary: Accept-Encoding missing\n{r}"
        );
        assert_eq!(
            &r.body[..],
            &sibling[..],
            "{coding}: body is not the sibling file\n{r}"
        );
    }

    let r = get(addr, "/bundle.js").await;
    r.assert_status(200);
    assert_eq!(
        r.header("content-encoding"),
        None,
        "no Accept-Encoding → identity\n{r}"
    );
    assert_eq!(r.text(), original, "{r}");
}

#[tokio::test]
async fn text_is_gzipped_on_the_fly() {
    let server = Server::start(public_site(), CONFIG);
    let r = send(
        server.addr(),
        get_with("/notes.txt", &[("accept-encoding", "gzip")]),
    )
    .await;
    r.assert_status(200);
    r.assert_header("content-encoding", "gzip");
    assert!(
        vary_has_accept_encoding(&r.headers),
        "Vary: Accept-Encoding missing\n{r}"
    );
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{r}"
    );
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut decoded)
        .unwrap_or_else(|e| panic!("body is not gzip ({e})\n{r}"));
    assert_eq!(decoded, notes(), "gunzipped body differs from the file");
    assert!(
        r.body.len() < notes().len(),
        "compressed body is not smaller\n{r}"
    );
}

#[tokio::test]
async fn symlinks_leading_outside_the_root_are_403() {
    const MARKER: &str = "PORTICO-SYMLINK-SECRET-5d1e";
    let work = public_site();
    work.write("secret.txt", MARKER);
    work.write("outside/secret.txt", MARKER);
    work.symlink("notes.txt", "public/inside-link.txt");
    work.symlink("../secret.txt", "public/leak.txt");
    work.symlink("../outside", "public/leakdir");
    let server = Server::start(work, CONFIG);
    let addr = server.addr();

    let r = get(addr, "/inside-link.txt").await;
    r.assert_status(200);
    assert_eq!(r.text(), notes(), "a link inside the root is followed\n{r}");

    let r = get(addr, "/leak.txt").await;
    r.assert_status(403);
    assert!(!r.text().contains(MARKER), "secret leaked\n{r}");

    let r = get(addr, "/leakdir/secret.txt").await;
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "through a linked folder\n{r}"
    );
    assert!(!r.text().contains(MARKER), "secret leaked\n{r}");
}

/// The path of a Location value, absolute (`http://host/p`) or not (`/p`).
fn location_path(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

fn vary_has_accept_encoding(headers: &http::HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding") || v.trim() == "*")
}

async fn brotli(data: &[u8]) -> Vec<u8> {
    let mut encoder = async_compression::tokio::write::BrotliEncoder::new(Vec::new());
    encoder.write_all(data).await.unwrap();
    encoder.shutdown().await.unwrap();
    encoder.into_inner()
}

/// Files from 256 KiB are cached with their descriptor and sent with `sendfile(2)`; whole
/// bodies and ranges must be byte for byte the file, first (read from disk) and later (from
/// the cache through `sendfile`), over one keep-alive connection and over new ones.
#[tokio::test]
async fn large_cached_files_are_sent_whole_and_in_ranges() {
    let work = WorkDir::new();
    let content: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 253) as u8).collect();
    work.write("public/big.bin", &content);
    let server = Server::start(work, CONFIG);
    for _ in 0..3 {
        let r = get(server.addr(), "/big.bin").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), content.len());
        assert!(
            r.body[..] == content[..],
            "whole body differs from the file"
        );
    }
    let mut conn = RawConn::connect(server.addr()).await;
    for (range, start, end) in [
        ("bytes=300000-", 300_000, 700_000),
        ("bytes=1-262145", 1, 262_146),
    ] {
        conn.send(format!(
            "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: {range}\r\n\r\n"
        ))
        .await;
        let r = conn.read_response().await;
        r.assert_status(206);
        assert!(
            r.body[..] == content[start..end],
            "range {range} differs from the file"
        );
    }
}

/// Files beyond the open-file cache (over 1 MiB) are never read into memory on HTTP/1: the
/// socket sends them with `sendfile(2)` in frames of up to 1 MiB (`net/sendfile.rs`). Whole
/// bodies, ranges and several requests on one connection must be the file byte for byte;
/// HTTP/2 reads and frames them.
#[tokio::test]
async fn files_beyond_the_cache_go_out_zero_copy_whole_and_in_ranges() {
    let work = WorkDir::new();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    work.write("public/huge.bin", &content);
    let server = Server::start(work, CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    for (range, start, end) in [
        ("", 0, 3_000_000),
        ("Range: bytes=1048570-2097160\r\n", 1_048_570, 2_097_161),
        ("Range: bytes=-1500000\r\n", 1_500_000, 3_000_000),
        ("", 0, 3_000_000),
    ] {
        conn.send(format!("GET /huge.bin HTTP/1.1\r\nHost: a\r\n{range}\r\n"))
            .await;
        let r = conn.read_response().await;
        r.assert_status(if range.is_empty() { 200 } else { 206 });
        assert_eq!(r.body.len(), end - start, "{range}");
        assert!(
            r.body[..] == content[start..end],
            "{range:?} differs from the file"
        );
    }
    let h2 = crate::harness::H2Client::connect(server.addr()).await;
    let r = h2.get("/huge.bin").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body[..] == content[..],
        "HTTP/2 body differs from the file"
    );
}

/// A file cut short while its response is being sent cannot keep the response's promise:
/// the connection closes before `Content-Length` bytes, so the client can tell, and the
/// server keeps serving. (What the kernel had already taken from the file's pages with
/// `sendfile` may arrive zeroed by the truncation, as with nginx; that the server never
/// writes its placeholder frames itself is checked in `net/sendfile.rs`.)
#[tokio::test]
async fn a_file_truncated_while_sent_ends_the_connection_early() {
    let work = WorkDir::new();
    let content: Vec<u8> = (0..8_000_000u32).map(|i| (i % 241 + 1) as u8).collect();
    work.write("public/shrinking.bin", &content);
    let server = Server::start(work, CONFIG);
    // A small receive buffer, and no reading yet: the server stalls mid-body.
    let mut conn = RawConn::connect_with_small_buffer(server.addr(), 4096).await;
    conn.send("GET /shrinking.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    conn.wait_for_bytes(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(server.work().join("public/shrinking.bin"))
        .unwrap()
        .set_len(1_000_000)
        .unwrap();
    let got = conn.read_to_end().await;
    let body_at = crate::harness::raw::find(&got, b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&got[..body_at]).to_lowercase();
    assert!(head.contains("content-length: 8000000"), "{head}");
    let body = &got[body_at..];
    assert!(
        body.len() < content.len(),
        "the connection stayed open as if the whole file was sent"
    );
    let kept = body.len().min(1_000_000);
    assert!(
        body[..kept] == content[..kept],
        "bytes before the cut are not the file's"
    );
    get(server.addr(), "/shrinking.bin")
        .await
        .assert_status(200);
}

/// Several ranges: one `multipart/byteranges` answer, parts in the order asked, each with its
/// `Content-Range`, framed by the boundary the head names.
#[tokio::test]
async fn several_ranges_are_answered_with_multipart_byteranges() {
    let work = WorkDir::new();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    work.write("public/parts.bin", &content);
    let server = Server::start(work, CONFIG);
    let mut conn = RawConn::connect(server.addr()).await;
    for _ in 0..2 {
        conn.send("GET /parts.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=299990-,0-9\r\n\r\n")
            .await;
        let r = conn.read_response().await;
        r.assert_status(206);
        let ctype = r.header("content-type").unwrap().to_string();
        let boundary = ctype
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap_or_else(|| panic!("{ctype}"));
        let mut expected = Vec::new();
        for (start, end) in [(299_990usize, 299_999usize), (0, 9)] {
            expected.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {start}-{end}/300000\r\n\r\n"
                )
                .as_bytes(),
            );
            expected.extend_from_slice(&content[start..=end]);
        }
        expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert!(r.body == expected, "multipart body differs:\n{r}");
    }
}
