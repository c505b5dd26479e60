//! ACME against a real ACME server: Pebble (Let's Encrypt's test CA, Debian package `pebble`)
//! with `pebble-challtestsrv` as its DNS, which answers every name with 127.0.0.1, so Pebble's
//! http-01 validation reaches portico's plain listener. Pebble's own HTTPS certificate comes
//! from a test CA that portico is told to trust (`ca_root`).
//!
//! Shown: a site with `acme = true` gets a certificate for its names, whose chain verifies
//! against Pebble's root; the account and the key are stored mode 0600; a restart with the CA
//! gone serves the stored certificate; a short-lived certificate is renewed and presented
//! without a restart, both by workers (the master reloads them) and by a single process (the
//! certificate is swapped in place); and without a reachable CA a placeholder is presented
//! while the site keeps serving.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::harness::{Server, WorkDir};

/// Pebble and its DNS server, stopped when dropped.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    management: SocketAddr,
    ca: TlsConnector,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free for both UDP and TCP (the DNS server binds both).
fn free_dns_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Pebble {
    /// Starts Pebble with certificates valid `validity_secs`; its http-01 validation connects
    /// to 127.0.0.1:`http_port`. Its HTTPS certificate and CA are written into `work`.
    fn start(work: &WorkDir, http_port: u16, validity_secs: u64) -> Pebble {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA for pebble");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        work.write("pebble/ca.pem", ca_cert.pem());
        let cert_path = work.write("pebble/cert.pem", cert.pem());
        let key_path = work.write("pebble/key.pem", key.serialize_pem());

        let (acme_port, management_port, dns_port, dns_management) =
            (free_port(), free_port(), free_dns_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme_port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": cert_path,
                "privateKey": key_path,
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity_secs,
            }
        });
        let config_path = work.write("pebble/pebble.json", config.to_string());
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble) is installed");
        let mut pebble = Pebble {
            children: vec![dns],
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management: SocketAddr::from(([127, 0, 0, 1], management_port)),
            ca: connector(&[ca_cert.der().clone()]),
        };
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], dns_port)),
            "pebble-challtestsrv",
        );
        let server = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble (Debian package pebble) is installed");
        pebble.children.push(server);
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], acme_port)), "pebble");
        wait_for_port(pebble.management, "pebble's management interface");
        pebble
    }

    /// Pebble's root CA, from its management interface.
    async fn root(&self) -> CertificateDer<'static> {
        let mut tls = connect(&self.ca, self.management, "127.0.0.1").await;
        let head = "GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        let pem = &text[text.find("-----BEGIN").expect("a PEM root")..];
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }
}

fn connector(roots: &[CertificateDer<'static>]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .unwrap_or_else(|e| panic!("TLS handshake with {sni} at {addr}: {e}"))
}

/// A client that accepts any certificate, to look at what the server presents.
fn any_certificate() -> TlsConnector {
    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The issuer's common name and the serial of the certificate presented for `sni`.
async fn presented(addr: SocketAddr, sni: &str) -> (String, Vec<u8>) {
    let tls = connect(&any_certificate(), addr, sni).await;
    let certs = tls.get_ref().1.peer_certificates().expect("a certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    (parsed.issuer().to_string(), parsed.raw_serial().to_vec())
}

/// Waits until the certificate presented for `sni` is issued by Pebble and differs from
/// `not`; returns its serial.
async fn wait_for_pebble_certificate(
    addr: SocketAddr,
    sni: &str,
    not: Option<&[u8]>,
    within: Duration,
) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
        let (issuer, serial) = presented(addr, sni).await;
        if issuer.contains("Pebble") && Some(serial.as_slice()) != not {
            return serial;
        }
        assert!(
            Instant::now() < deadline,
            "no new Pebble certificate within {within:?}; still presenting one from `{issuer}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(pebble: &Pebble, http_port: u16, renew: &str) -> String {
    config_with(pebble, http_port, renew, "workers = 1")
}

fn config_with(pebble: &Pebble, http_port: u16, renew: &str, server: &str) -> String {
    format!(
        r#"
[server]
{server}

[acme]
directory = "{directory}"
ca_root = "pebble/ca.pem"
email = "ops@acme.test"
{renew}

[[site]]
hosts = ["acme.test", "www.acme.test"]
listen = ["127.0.0.1:{http_port}"]
listen_tls = ["127.0.0.2:0"]
[site.tls]
acme = true
[[site.route]]
respond = {{ body = "served over ACME" }}
"#,
        directory = pebble.directory,
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_gets_its_certificate_from_the_ca_and_keeps_it_across_a_restart() {
    let work = WorkDir::new();
    let http_port = free_port();
    let pebble = Pebble::start(&work, http_port, 3600);
    let server = Server::start(work, &config(&pebble, http_port, ""));
    let https = server.addr_of("https");

    let serial =
        wait_for_pebble_certificate(https, "acme.test", None, Duration::from_secs(30)).await;
    // The chain verifies against Pebble's root for both names, and the site answers.
    let root = pebble.root().await;
    for name in ["acme.test", "www.acme.test"] {
        let mut tls = connect(&connector(std::slice::from_ref(&root)), https, name).await;
        let head = format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("served over ACME"), "{text}");
    }
    let state = server.work().join("state/acme");
    assert_eq!(mode(&state.join("certs/acme.test/key.pem")), 0o600);
    let accounts: Vec<_> = std::fs::read_dir(state.join("accounts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(mode(&accounts[0]), 0o600);
    // Every challenge answer was withdrawn once the order was done.
    let left = std::fs::read_dir(state.join("challenges")).unwrap().count();
    assert_eq!(left, 0, "challenge answers left behind");

    // With the CA gone, a restart presents the stored certificate at once.
    drop(pebble);
    let work = server.into_work();
    let config = work.read_to_string("portico.toml").unwrap();
    let server = Server::start(work, &config);
    let (issuer, again) = presented(server.addr_of("https"), "acme.test").await;
    assert!(issuer.contains("Pebble"), "{issuer}");
    assert_eq!(
        again, serial,
        "the stored certificate is served after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_renewed_before_it_expires_and_the_workers_present_it() {
    renewal("workers = 1").await;
}

/// The single process swaps the certificate in place instead of reloading workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_process_renews_and_presents_the_new_certificate_in_place() {
    renewal("single_process = true").await;
}

async fn renewal(server_table: &str) {
    let work = WorkDir::new();
    let http_port = free_port();
    // Valid 12 s; renewed when 5 s are left, so 7 s after it was issued.
    let pebble = Pebble::start(&work, http_port, 12);
    let config = config_with(&pebble, http_port, "renew_before = \"5s\"", server_table);
    let server = Server::start(work, &config);
    let https = server.addr_of("https");
    let first =
        wait_for_pebble_certificate(https, "acme.test", None, Duration::from_secs(30)).await;
    let second =
        wait_for_pebble_certificate(https, "acme.test", Some(&first), Duration::from_secs(20))
            .await;
    assert_ne!(first, second);
    // An HTTP request keeps working on the plain listener through the renewals.
    let plain = SocketAddr::from(([127, 0, 0, 1], http_port));
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    assert!(response.starts_with(b"HTTP/1.1 200"));
    assert!(server.stderr().contains("ACME certificate issued"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_ca_the_site_presents_a_placeholder_and_keeps_serving() {
    let work = WorkDir::new();
    let http_port = free_port();
    let closed = free_port();
    let config = format!(
        r#"
[acme]
directory = "https://127.0.0.1:{closed}/dir"
[[site]]
hosts = ["acme.test"]
listen = ["127.0.0.1:{http_port}"]
listen_tls = ["127.0.0.2:0"]
[site.tls]
acme = true
[[site.route]]
respond = {{ body = "still here" }}
"#
    );
    let server = Server::start(work, &config);
    let (issuer, _) = presented(server.addr_of("https"), "acme.test").await;
    assert!(issuer.contains("placeholder"), "{issuer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("ACME order failed") {
        assert!(Instant::now() < deadline, "the failed order was not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tcp = TcpStream::connect(("127.0.0.1", http_port)).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    assert!(response.ends_with(b"still here"));
}
