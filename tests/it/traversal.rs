//! Path traversal: request targets that try to climb out of a static root, sent as raw bytes
//! (a normal client would normalise them first). A secret file with a unique marker sits just
//! outside the root; whatever the encoding, the answer is 400, 403 or 404 and never carries
//! the marker.

use crate::harness::{RawConn, Server, WorkDir, get};

const MARKER: &str = "PORTICO-TRAVERSAL-SECRET-8c41b7";

/// The targets tried. Every file that could be reached by a traversal is called
/// `secret.txt`, and no file of that name exists inside the roots.
const TARGETS: &[&str] = &[
    "/../secret.txt",
    "/../../../../../../../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%5csecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/../secret.txt%00",
    "/%00/../secret.txt",
    "/..%00/secret.txt",
    "/....//secret.txt",
    "/....//....//secret.txt",
    "/static/../../secret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/./../secret.txt",
    "/./.././secret.txt",
    "//../secret.txt",
    "/\\../secret.txt",
    "\\..\\secret.txt",
    "http://127.0.0.1/../secret.txt",
    "http://127.0.0.1/%2e%2e/secret.txt",
    // The nginx `alias` classic: a prefix without its trailing slash, mapped with strip_prefix.
    "/assets../secret.txt",
    "/assets../../secret.txt",
    "/assets/../../secret.txt",
    "/assets%2f..%2f..%2fsecret.txt",
];

/// Targets aimed at a system file rather than the marker file.
const SYSTEM_TARGETS: &[&str] = &[
    "//etc/passwd",
    "/../../../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc/passwd",
    "/etc/passwd",
    "/%2fetc%2fpasswd",
];

const CONFIG: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/assets"
[site.route.static]
root = "site/public/assets"
strip_prefix = true

[[site.route]]
prefix = "/"
[site.route.static]
root = "site/public"
"#;

fn site() -> WorkDir {
    let work = WorkDir::new();
    // The secret sits in the parent of the root, in the grandparent, and beside the alias.
    work.write("secret.txt", MARKER);
    work.write("site/secret.txt", MARKER);
    work.write("site/public/index.html", "<h1>home</h1>\n");
    work.write("site/public/static/app.css", "body{}\n");
    work.write("site/public/assets/logo.txt", "logo\n");
    work
}

#[tokio::test]
async fn encoded_traversals_never_leave_the_root() {
    let server = Server::start(site(), CONFIG);
    let addr = server.addr();

    // The roots do serve files, so a refusal below is a decision, not a broken server.
    let r = get(addr, "/static/app.css").await;
    r.assert_status(200);
    let r = get(addr, "/assets/logo.txt").await;
    r.assert_status(200);

    let mut failures = Vec::new();
    for target in TARGETS.iter().chain(SYSTEM_TARGETS) {
        let mut conn = RawConn::connect(addr).await;
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        conn.send(request.as_bytes()).await;
        let response = conn.read_response().await;
        let text = String::from_utf8_lossy(&response.raw).into_owned();
        let leaked = text.contains(MARKER) || text.contains("root:x:0:0");
        if leaked || !matches!(response.status, 400 | 403 | 404) {
            failures.push(format!("GET {target}\n{response}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} traversal targets were not refused (or leaked):\n\n{}",
        failures.len(),
        TARGETS.len() + SYSTEM_TARGETS.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn raw_nul_and_control_bytes_in_the_target_are_400() {
    let server = Server::start(site(), CONFIG);
    for target in [
        &b"/secret.txt\0"[..],
        b"/\x01../secret.txt",
        b"/..\x7f/secret.txt",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut conn = RawConn::connect(server.addr()).await;
        conn.send(&request).await;
        let response = conn.read_response().await;
        response.assert_status(400);
        assert!(
            !String::from_utf8_lossy(&response.raw).contains(MARKER),
            "{response}"
        );
    }
}
