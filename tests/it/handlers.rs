//! The `respond` and `redirect` handlers, site selection by Host, and route matching.

use bytes::Bytes;
use http::Request;

use crate::harness::{Server, WorkDir, client::methods, get, send};

fn with_host(path: &str, host: &str) -> Request<Bytes> {
    Request::get(path)
        .header("host", host)
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn respond_sends_status_headers_and_body() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/created"
respond = { status = 201, body = "made it\n", headers = { "Content-Type" = "text/plain; charset=utf-8", "X-Portico-Test" = "yes" } }

[[site.route]]
exact = "/health"
respond = { body = "ok\n" }

[[site.route]]
exact = "/gone"
respond = { status = 410 }
"#;
    let server = Server::start(WorkDir::new(), config);
    let addr = server.addr();

    let r = get(addr, "/created").await;
    r.assert_status(201);
    r.assert_header("content-type", "text/plain; charset=utf-8");
    r.assert_header("x-portico-test", "yes");
    r.assert_header("content-length", "8");
    assert_eq!(r.text(), "made it\n", "{r}");

    let r = get(addr, "/health").await;
    r.assert_status(200);
    assert_eq!(r.text(), "ok\n", "{r}");

    let r = get(addr, "/gone").await;
    r.assert_status(410);

    // POST is among a respond route's default methods; its body is read and ignored.
    let post = Request::post("/health")
        .body(Bytes::from_static(b"payload"))
        .unwrap();
    let r = send(addr, post).await;
    r.assert_status(200);
    assert_eq!(r.text(), "ok\n", "{r}");
}

/// Template variables (see `edge::settings::Redirect`): `{host}` (with the port when the
/// request had one), `{path}`, `{query}` (without `?`), `{uri}` (path and `?query`),
/// `{suffix}` (the path after the route's prefix).
#[tokio::test]
async fn redirect_fills_the_template_and_uses_the_status() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/p/"
redirect = { to = "https://elsewhere.test{path}", status = 301 }

[[site.route]]
exact = "/q"
redirect = { to = "/search?{query}", status = 302 }

[[site.route]]
exact = "/h"
redirect = { to = "https://{host}/moved", status = 303 }

[[site.route]]
exact = "/u"
redirect = { to = "https://mirror.test{uri}", status = 307 }

[[site.route]]
prefix = "/s/"
redirect = { to = "https://new.test/docs/{suffix}", status = 308 }

[[site.route]]
exact = "/default"
redirect = { to = "/landing" }
"#;
    let server = Server::start(WorkDir::new(), config);
    let addr = server.addr();
    let cases = [
        (
            "/p/a/b.html?x=1",
            "example.test",
            301,
            "https://elsewhere.test/p/a/b.html",
        ),
        ("/q?a=1&b=two", "example.test", 302, "/search?a=1&b=two"),
        (
            "/h",
            "example.test:8443",
            303,
            "https://example.test:8443/moved",
        ),
        ("/h", "example.test", 303, "https://example.test/moved"),
        ("/u?k=v", "example.test", 307, "https://mirror.test/u?k=v"),
        ("/u", "example.test", 307, "https://mirror.test/u"),
        (
            "/s/guide/intro.html?z=9",
            "example.test",
            308,
            "https://new.test/docs/guide/intro.html",
        ),
        ("/default", "example.test", 302, "/landing"),
    ];
    for (path, host, status, location) in cases {
        let r = send(addr, with_host(path, host)).await;
        r.assert_status(status);
        assert_eq!(
            r.header("location"),
            Some(location),
            "GET {path} (Host: {host})\n{r}"
        );
    }
}

#[tokio::test]
async fn sites_are_chosen_by_host() {
    let config = r#"
[[site]]
name = "a"
listen = ["127.0.0.1:0"]
hosts = ["a.test"]
[[site.route]]
respond = { body = "site a" }

[[site]]
name = "b"
listen = ["127.0.0.1:0"]
hosts = ["*.b.test"]
[[site.route]]
respond = { body = "site b" }

[[site]]
name = "fallback"
listen = ["127.0.0.1:0"]
default = true
[[site.route]]
respond = { body = "fallback" }
"#;
    let server = Server::start(WorkDir::new(), config);
    // Equal listen addresses (port 0 included) name one shared listener.
    assert_eq!(server.listeners().len(), 1, "{:?}", server.listeners());
    let addr = server.addr();
    let cases = [
        ("a.test", "site a"),
        ("A.TEST", "site a"),
        ("a.test:8080", "site a"),
        ("www.b.test", "site b"),
        ("deep.www.b.test", "site b"),
        ("other.test", "fallback"),
        ("b.test.evil", "fallback"),
    ];
    for (host, body) in cases {
        let r = send(addr, with_host("/", host)).await;
        r.assert_status(200);
        assert_eq!(r.text(), body, "Host: {host}\n{r}");
    }
}

#[tokio::test]
async fn sites_on_separate_listeners() {
    let config = r#"
[[site]]
name = "one"
listen = ["127.0.0.1:0"]
[[site.route]]
respond = { body = "one" }

[[site]]
name = "two"
listen = ["127.0.0.2:0"]
[[site.route]]
respond = { body = "two" }
"#;
    let server = Server::start(WorkDir::new(), config);
    assert_eq!(server.listeners().len(), 2, "{:?}", server.listeners());
    let r = get(server.addr_on("127.0.0.1"), "/").await;
    assert_eq!(r.text(), "one", "{r}");
    let r = get(server.addr_on("127.0.0.2"), "/").await;
    assert_eq!(r.text(), "two", "{r}");
}

#[tokio::test]
async fn exact_beats_prefix_and_the_longest_prefix_wins() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
prefix = "/"
respond = { body = "root" }

[[site.route]]
exact = "/api/v2/special"
respond = { body = "exact" }

[[site.route]]
prefix = "/api/"
respond = { body = "api" }

[[site.route]]
prefix = "/api/v2/"
respond = { body = "v2" }
"#;
    let server = Server::start(WorkDir::new(), config);
    let cases = [
        ("/", "root"),
        ("/index.html", "root"),
        ("/api", "root"),
        ("/api/", "api"),
        ("/api/users", "api"),
        ("/api/v2/users", "v2"),
        ("/api/v2/special", "exact"),
        ("/api/v2/special/more", "v2"),
        ("/api/v2/special?x=1", "exact"),
    ];
    for (path, body) in cases {
        let r = get(server.addr(), path).await;
        r.assert_status(200);
        assert_eq!(r.text(), body, "GET {path}\n{r}");
    }
}

#[tokio::test]
async fn route_methods_restrict_and_are_listed_in_allow() {
    let config = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/submit"
methods = ["POST"]
respond = { status = 202, body = "accepted" }
"#;
    let server = Server::start(WorkDir::new(), config);
    let post = Request::post("/submit")
        .body(Bytes::from_static(b"x=1"))
        .unwrap();
    send(server.addr(), post).await.assert_status(202);

    let r = get(server.addr(), "/submit").await;
    r.assert_status(405);
    let allow = r.allow();
    assert!(
        allow.contains("POST") && !allow.contains("GET"),
        "Allow must list POST only (+OPTIONS)\n{r}"
    );
    assert!(allow.is_subset(&methods(&["POST", "OPTIONS"])), "{r}");
}

#[tokio::test]
async fn maintenance_answers_503_with_retry_after() {
    let config = r#"
[[site]]
name = "down"
listen = ["127.0.0.1:0"]
hosts = ["down.test"]
maintenance = true
[[site.route]]
respond = { body = "content behind maintenance" }

[[site]]
name = "up"
listen = ["127.0.0.1:0"]
hosts = ["up.test"]
[[site.route]]
respond = { body = "up" }
"#;
    let server = Server::start(WorkDir::new(), config);
    assert_eq!(server.listeners().len(), 1, "{:?}", server.listeners());
    for path in ["/", "/any/path"] {
        let r = send(server.addr(), with_host(path, "down.test")).await;
        r.assert_status(503);
        assert!(
            r.header("retry-after").is_some(),
            "maintenance 503 without Retry-After\n{r}"
        );
        assert!(!r.text().contains("content behind maintenance"), "{r}");
    }
    let post = Request::post("/")
        .header("host", "down.test")
        .body(Bytes::from_static(b"x"))
        .unwrap();
    send(server.addr(), post).await.assert_status(503);

    // Only the site in maintenance is affected.
    let r = send(server.addr(), with_host("/", "up.test")).await;
    r.assert_status(200);
    assert_eq!(r.text(), "up", "{r}");
}
