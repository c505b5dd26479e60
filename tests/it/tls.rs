//! HTTPS over real TLS (a rustls client, and `openssl s_client` for what rustls cannot speak):
//! TLS 1.3 and 1.2 handshakes, older versions refused, the certificate chosen by SNI, ALPN h2
//! and http/1.1 on one port, plain HTTP redirected to HTTPS, HSTS, a certificate reloaded on
//! HUP without dropping an open connection, and bad certificate/key pairs refused at start
//! with the file named. Certificates come from a test CA made with rcgen. HTTPS listens on
//! 127.0.0.2 so that its `:0` address differs from the plain one on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::harness::raw::find;
use crate::harness::{Server, WorkDir, portico};

/// A certificate authority for the tests.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portico test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Writes `NAME.pem` and `NAME-key.pem` for `names` into `work`; the serial tells
    /// certificates for the same names apart.
    fn issue(&self, work: &WorkDir, file: &str, names: &[&str], serial: u64) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.serial_number = Some(serial.into());
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        work.write(&format!("{file}.pem"), cert.pem());
        work.write(&format!("{file}-key.pem"), key.serialize_pem());
    }

    fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        let der = CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

use rustls::pki_types::pem::PemObject;

async fn connect(connector: &TlsConnector, addr: SocketAddr, sni: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .unwrap_or_else(|e| panic!("TLS handshake with {sni}: {e}"))
}

/// The DNS names of the certificate the server presented.
fn peer_names(stream: &TlsStream<TcpStream>) -> Vec<String> {
    let certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate");
    portico::tls::certs::names(&certs[0])
}

/// The serial number of the presented certificate.
fn peer_serial(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    parsed.raw_serial().to_vec()
}

/// One HTTP/1.1 request on a TLS (or any) stream; the response head and body (by
/// Content-Length).
async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    head: &str,
) -> (String, Vec<u8>) {
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&got[..end]).to_string();
            let length = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return (text, got[end + 4..end + 4 + length].to_vec());
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "connection closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
}

fn site_config(extra_site: &str) -> String {
    format!(
        r#"
[server]
workers = 1

[[site]]
name = "a"
hosts = ["a.test"]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.2:0"]
default = true
[site.tls]
cert = "a.pem"
key = "a-key.pem"
hsts = "1h"
redirect_http = true
[[site.route]]
respond = {{ body = "site a\n" }}

[[site]]
name = "b"
hosts = ["b.test", "*.b.test"]
listen_tls = ["127.0.0.2:0"]
[site.tls]
cert = "b.pem"
key = "b-key.pem"
[[site.route]]
respond = {{ body = "site b\n" }}
{extra_site}"#
    )
}

fn start(ca: &Ca) -> Server {
    let work = WorkDir::new();
    ca.issue(&work, "a", &["a.test"], 1);
    ca.issue(&work, "b", &["b.test", "*.b.test"], 2);
    Server::start(work, &site_config(""))
}

#[tokio::test]
async fn tls_1_3_and_1_2_handshakes_serve_requests_and_alpn_picks_h2_or_http_1_1() {
    let ca = Ca::new();
    let server = start(&ca);
    let addr = server.addr_of("https");
    for (versions, expected) in [
        (
            &[&rustls::version::TLS13][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
    ] {
        let connector = ca.client(versions, &[b"http/1.1"]);
        let mut tls = connect(&connector, addr, "a.test").await;
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (head, body) = request(&mut tls, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"site a\n");
        // Keep-alive over TLS: a second request on the same connection.
        let (head, _) = request(&mut tls, "GET /again HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    // ALPN h2 on the same port.
    let connector = ca.client(&[&rustls::version::TLS13], &[b"h2", b"http/1.1"]);
    let tls = connect(&connector, addr, "b.test").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://b.test/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), http::Version::HTTP_2);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"site b\n");
}

#[tokio::test]
async fn tls_1_1_and_older_are_refused() {
    let ca = Ca::new();
    let server = start(&ca);
    let addr = server.addr_of("https");
    for flag in ["-tls1_1", "-tls1"] {
        let out = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                flag,
                "-servername",
                "a.test",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl is installed (make test installs it)");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} handshake succeeded:\n{text}");
        assert!(
            text.contains("Cipher is (NONE)") || text.contains("no peer certificate available"),
            "{flag} negotiated:\n{text}"
        );
    }
    // The same tool can speak TLS 1.3 to it (the refusal above is about the version).
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-tls1_3",
            "-servername",
            "a.test",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TLSv1.3"), "{text}");
}

#[tokio::test]
async fn sni_picks_each_sites_certificate_and_the_default_for_other_names() {
    let ca = Ca::new();
    let server = start(&ca);
    let addr = server.addr_of("https");
    let connector = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    for (sni, names, body) in [
        ("a.test", vec!["a.test"], "site a\n"),
        ("b.test", vec!["b.test", "*.b.test"], "site b\n"),
        ("www.b.test", vec!["b.test", "*.b.test"], "site b\n"),
    ] {
        let mut tls = connect(&connector, addr, sni).await;
        assert_eq!(peer_names(&tls), names, "certificate for {sni}");
        let (_, got) = request(&mut tls, &format!("GET / HTTP/1.1\r\nHost: {sni}\r\n\r\n")).await;
        assert_eq!(got, body.as_bytes(), "{sni}");
    }
    // A name no site has: the default site's certificate (which the client then refuses to
    // trust for that name).
    let tcp = TcpStream::connect(addr).await.unwrap();
    let refused = connector
        .connect(ServerName::try_from("c.test").unwrap(), tcp)
        .await;
    let error = refused.expect_err("no certificate for c.test").to_string();
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn plain_http_is_redirected_to_https_and_https_answers_carry_hsts() {
    let ca = Ca::new();
    let server = start(&ca);
    let (http, https) = (server.addr_of("http"), server.addr_of("https"));
    let mut plain = TcpStream::connect(http).await.unwrap();
    let (head, _) = request(&mut plain, "GET /x?y=1 HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    let location = format!("location: https://a.test:{}/x?y=1", https.port());
    assert!(head.to_lowercase().contains(&location), "{head}");
    let (head, _) = request(
        &mut plain,
        "POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.to_lowercase()
            .contains(&format!("location: https://a.test:{}/form", https.port())),
        "{head}"
    );
    assert!(
        !head.to_lowercase().contains("strict-transport-security"),
        "HSTS over plain HTTP: {head}"
    );

    let connector = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut tls = connect(&connector, https, "a.test").await;
    let (head, _) = request(&mut tls, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(
        head.to_lowercase()
            .contains("strict-transport-security: max-age=3600"),
        "{head}"
    );
    // Site b has no HSTS.
    let mut tls = connect(&connector, https, "b.test").await;
    let (head, _) = request(&mut tls, "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n").await;
    assert!(
        !head.to_lowercase().contains("strict-transport-security"),
        "{head}"
    );
}

#[tokio::test]
async fn a_new_certificate_is_picked_up_on_hup_without_dropping_an_open_connection() {
    let ca = Ca::new();
    let server = start(&ca);
    let addr = server.addr_of("https");
    let connector = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut open = connect(&connector, addr, "a.test").await;
    assert_eq!(peer_serial(&open), vec![1]);
    // Another connection that stays idle through the reload.
    let mut idle = connect(&connector, addr, "a.test").await;
    let (head, _) = request(&mut idle, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) = request(&mut open, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    ca.issue(server.work(), "a", &["a.test"], 7);
    server.signal(libc::SIGHUP);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = connect(&connector, addr, "a.test").await;
        if peer_serial(&fresh) == vec![7] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 10 s of HUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the reload still gets its answer (marked close: its
    // worker is draining).
    let (head, body) = request(&mut open, "GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"site a\n");
    // The idle one is closed by its draining worker after the grace (5 s), which then exits:
    // one worker left, and the master's own stop is clean.
    // (8 s: before `shutdown_timeout`, 10 s, would end it anyway.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while server.worker_pids().len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old worker still runs 8 s after HUP: {:?}",
            server.worker_pids()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let mut server = server;
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn bad_certificate_and_key_pairs_are_refused_at_start_naming_the_file() {
    let ca = Ca::new();
    let work = WorkDir::new();
    ca.issue(&work, "a", &["a.test"], 1);
    ca.issue(&work, "b", &["b.test"], 2);
    // Site a with b's key.
    let config = site_config("").replace("key = \"a-key.pem\"", "key = \"b-key.pem\"");
    work.write("portico.toml", &config);
    let out = portico(work.path(), &["check", "-c", "portico.toml"]);
    out.assert_code(2);
    let text = out.all_output();
    assert!(
        text.contains("does not match")
            && text.contains("b-key.pem")
            && text.contains("portico.toml:"),
        "{text}"
    );
    // A missing file, named with its path.
    let config = site_config("").replace("cert = \"b.pem\"", "cert = \"missing.pem\"");
    work.write("portico.toml", &config);
    let out = portico(
        work.path(),
        &["--data-dir", "state", "serve", "-c", "portico.toml"],
    );
    out.assert_code(2);
    assert!(out.all_output().contains("missing.pem"), "{out}");
}

/// A connector that trusts only the CA certificate in `ca_pem_path`.
fn trusting(ca_pem_path: &std::path::Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem_path).unwrap();
    roots
        .add(CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn the_local_ca_makes_certificates_a_client_can_trust() {
    let work = WorkDir::new();
    work.write("public/index.html", "local https\n");
    // `portico cert` makes the CA once (key 0600) and a leaf for the names.
    let out = portico(
        work.path(),
        &["--data-dir", "state", "cert", "dev.test", "127.0.0.2"],
    );
    out.assert_code(0);
    let ca_pem = work.join("state/ca/ca.pem");
    let ca_key = work.join("state/ca/ca-key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the CA key is private");
    assert!(out.stdout.contains("update-ca-certificates"), "{out}");
    let cert = work.join("state/certs/dev.test.pem");
    let key = work.join("state/certs/dev.test-key.pem");
    assert!(cert.exists() && key.exists(), "{out}");
    let ca_before = std::fs::read(&ca_pem).unwrap();

    // The quick start serves HTTPS with that pair …
    let server = Server::start_with_args(
        work,
        &[
            "--data-dir",
            "state",
            "file-server",
            "--root",
            "public",
            "--listen",
            "127.0.0.2:0",
            "--workers",
            "1",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let connector = trusting(&ca_pem);
    let mut tls = connect(&connector, server.addr_of("https"), "dev.test").await;
    let (head, body) = request(&mut tls, "GET / HTTP/1.1\r\nHost: dev.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"local https\n");

    // … and `--tls-local` makes its own pair for localhost from the same CA (a second server
    // with the first one's data directory).
    let state = server.work().join("state");
    let other = WorkDir::new();
    other.write("public/index.html", "local https\n");
    let server = Server::start_with_args(
        other,
        &[
            "--data-dir",
            state.to_str().unwrap(),
            "file-server",
            "--root",
            "public",
            "--listen",
            "127.0.0.3:0",
            "--workers",
            "1",
            "--tls-local",
        ],
    );
    let mut tls = connect(&connector, server.addr_of("https"), "localhost").await;
    let (head, _) = request(&mut tls, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        std::fs::read(&ca_pem).unwrap(),
        ca_before,
        "the CA is made once"
    );
}

#[tokio::test]
async fn a_site_can_require_client_certificates_from_its_ca() {
    let ca = Ca::new();
    let work = WorkDir::new();
    ca.issue(&work, "a", &["a.test"], 1);
    ca.issue(&work, "b", &["b.test", "*.b.test"], 2);
    ca.issue(&work, "c", &["c.test"], 3);
    ca.issue(&work, "client", &["client.test"], 4);
    work.write("clients-ca.pem", &ca.pem);
    let extra = r#"
[[site]]
name = "c"
hosts = ["c.test"]
listen_tls = ["127.0.0.2:0"]
[site.tls]
cert = "c.pem"
key = "c-key.pem"
client_ca = "clients-ca.pem"
[[site.route]]
respond = { body = "site c\n" }
"#;
    let server = Server::start(work, &site_config(extra));
    let addr = server.addr_of("https");
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
        roots
    };
    let provider = || Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // With a client certificate from the CA: served.
    let chain = vec![
        CertificateDer::from_pem_slice(&std::fs::read(server.work().join("client.pem")).unwrap())
            .unwrap(),
    ];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(
        &std::fs::read(server.work().join("client-key.pem")).unwrap(),
    )
    .unwrap();
    let with_cert = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain, key)
        .unwrap();
    let mut tls = connect(&TlsConnector::from(Arc::new(with_cert)), addr, "c.test").await;
    let (head, body) = request(&mut tls, "GET / HTTP/1.1\r\nHost: c.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"site c\n");

    // Without one: refused (at the handshake, or by the alert that follows it in TLS 1.3).
    let without = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let refused = match without
        .connect(ServerName::try_from("c.test").unwrap(), tcp)
        .await
    {
        Err(_) => true,
        Ok(mut tls) => {
            let _ = tls
                .write_all(b"GET / HTTP/1.1\r\nHost: c.test\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            matches!(
                tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await,
                Ok(Err(_)) | Ok(Ok(0))
            )
        }
    };
    assert!(refused, "a client without a certificate was served");
    // The other sites on the same port ask for none.
    let mut tls = connect(&without, addr, "a.test").await;
    let (head, _) = request(&mut tls, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
