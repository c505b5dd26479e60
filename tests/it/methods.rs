//! Methods: 405 with `Allow`, OPTIONS (per route and `OPTIONS *`), TRACE off by default and
//! echoing when a route enables it, 501 for unknown methods.

use bytes::Bytes;
use http::Request;

use crate::harness::{Server, WorkDir, client::methods, exchange, send};

const CONFIG: &str = r#"
[[site]]
listen = ["127.0.0.1:0"]

[[site.route]]
exact = "/echo"
trace = true
respond = { body = "echo route" }

[[site.route]]
exact = "/api"
respond = { body = "api" }

[[site.route]]
prefix = "/"
[site.route.static]
root = "public"
"#;

fn site() -> WorkDir {
    let work = WorkDir::new();
    work.write("public/index.html", "<h1>home</h1>\n");
    work
}

#[tokio::test]
async fn post_to_a_static_route_is_405_with_allow() {
    let server = Server::start(site(), CONFIG);
    let post = Request::post("/index.html")
        .body(Bytes::from_static(b"a=1"))
        .unwrap();
    let r = send(server.addr(), post).await;
    r.assert_status(405);
    assert_eq!(
        r.allow(),
        methods(&["GET", "HEAD", "OPTIONS"]),
        "Allow\n{r}"
    );

    for method in ["PUT", "DELETE", "PATCH"] {
        let raw = format!("{method} /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        let r = exchange(server.addr(), raw).await;
        r.assert_status(405);
        assert_eq!(
            r.allow(),
            methods(&["GET", "HEAD", "OPTIONS"]),
            "{method}\n{r}"
        );
    }
}

#[tokio::test]
async fn options_lists_the_route_methods() {
    let server = Server::start(site(), CONFIG);
    let r = exchange(
        server.addr(),
        "OPTIONS /index.html HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .await;
    assert!(
        matches!(r.status, 200 | 204),
        "OPTIONS on a static route\n{r}"
    );
    assert_eq!(r.allow(), methods(&["GET", "HEAD", "OPTIONS"]), "{r}");

    let r = exchange(server.addr(), "OPTIONS /api HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(
        matches!(r.status, 200 | 204),
        "OPTIONS on a respond route\n{r}"
    );
    let allow = r.allow();
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        assert!(
            allow.contains(method),
            "respond route's Allow lacks {method}\n{r}"
        );
    }
    assert!(
        !allow.contains("TRACE"),
        "TRACE is not enabled on /api\n{r}"
    );
}

#[tokio::test]
async fn options_asterisk_lists_the_server_methods() {
    let server = Server::start(site(), CONFIG);
    let r = exchange(server.addr(), "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(matches!(r.status, 200 | 204), "OPTIONS *\n{r}");
    let allow = r.allow();
    for method in ["GET", "HEAD", "OPTIONS"] {
        assert!(
            allow.contains(method),
            "OPTIONS * Allow lacks {method}\n{r}"
        );
    }
    assert!(!allow.contains("FOO"), "{r}");
}

#[tokio::test]
async fn trace_is_405_by_default() {
    let server = Server::start(site(), CONFIG);
    for path in ["/index.html", "/api"] {
        let raw = format!("TRACE {path} HTTP/1.1\r\nHost: t\r\nX-Probe: secret-ish\r\n\r\n");
        let r = exchange(server.addr(), raw).await;
        r.assert_status(405);
        assert!(
            !r.allow().contains("TRACE"),
            "{path}: Allow must not offer TRACE\n{r}"
        );
        assert!(
            !r.text().contains("secret-ish"),
            "{path}: request echoed although TRACE is off\n{r}"
        );
    }
}

#[tokio::test]
async fn trace_echoes_the_request_when_the_route_enables_it() {
    let server = Server::start(site(), CONFIG);
    let raw = "TRACE /echo?x=1 HTTP/1.1\r\nHost: t\r\nX-Probe: 42\r\n\r\n";
    let r = exchange(server.addr(), raw).await;
    r.assert_status(200);
    let content_type = r.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("message/http"),
        "Content-Type\n{r}"
    );
    let body = r.text();
    assert!(
        body.starts_with("TRACE /echo?x=1 HTTP/1.1\r\n"),
        "echo must start with the request line\n{r}"
    );
    assert!(
        body.to_ascii_lowercase().contains("x-probe: 42"),
        "echo must carry the headers\n{r}"
    );
}

#[tokio::test]
async fn unknown_method_is_501() {
    let server = Server::start(site(), CONFIG);
    for path in ["/index.html", "/api"] {
        let raw = format!("FOO {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        exchange(server.addr(), raw).await.assert_status(501);
    }
}
