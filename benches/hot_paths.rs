//! Benchmarks of the code every request runs: the gate's head check, URL path normalisation,
//! site and route choice, an open-file cache hit, and a balancer's choice of member. Run: `cargo bench --bench hot_paths`.
//! Figures go to BENCHMARKS.md with the command; compare runs on one machine only.

use std::hint::black_box;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use portico::edge::gate::{HeadLimits, check_head};
use portico::edge::router::Router;
use portico::edge::{Handler, HostPattern, Limits, PathMatch, Respond, Route, Settings, Site};
use portico::files;

const HEAD: &[u8] = b"GET /static/css/site.css HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/css,*/*;q=0.1\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n";

fn gate(c: &mut Criterion) {
    let limits = HeadLimits {
        max_head_bytes: 32 * 1024,
        max_headers: 100,
        max_uri_bytes: 8 * 1024,
    };
    c.bench_function("gate_check_head_browser_get", |b| {
        b.iter(|| check_head(black_box(HEAD), limits))
    });
}

fn path(c: &mut Criterion) {
    c.bench_function("path_normalize_plain", |b| {
        b.iter(|| files::path::normalize(black_box("/static/css/site.css")))
    });
    c.bench_function("path_normalize_encoded", |b| {
        b.iter(|| files::path::normalize(black_box("/static/a%20b/./c%2Fd/../e.txt")))
    });
}

fn router(c: &mut Criterion) {
    let addr: SocketAddr = "127.0.0.1:80".parse().expect("literal address");
    let respond = |body: &'static str| {
        Handler::Respond(Respond {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    };
    let routes: Vec<Route> = (0..20)
        .map(|i| Route {
            path: PathMatch::Prefix(format!("/section{i}/")),
            methods: None,
            trace: false,
            handler: respond("x"),
        })
        .chain([Route {
            path: PathMatch::Exact("/healthz".into()),
            methods: None,
            trace: false,
            handler: respond("ok"),
        }])
        .collect();
    let sites = (0..10)
        .map(|i| Site {
            name: format!("site{i}"),
            hosts: vec![HostPattern::Exact(format!("www.example{i}.com"))],
            listen: vec![addr],
            default: i == 0,
            maintenance: false,
            tls: None,
            forward_proxy: None,
            routes: routes.clone(),
        })
        .collect();
    let settings = Settings {
        listeners: vec![addr],
        tls: vec![None],
        sites,
        limits: Limits::default(),
        acme_challenges: None,
        cache: None,
        upstreams: Vec::new(),
    };
    let router = Router::new(&settings);
    c.bench_function("router_site_and_route_10_sites_21_routes", |b| {
        b.iter(|| {
            let site = router.site(0, Some(black_box("www.example7.com")));
            site.and_then(|s| s.route(black_box("/section13/page")))
                .is_some()
        })
    });
}

/// An open-file cache hit: the express lane's lookup, and the main path's whole answer from
/// memory (headers cloned, body a slice).
fn cache_hit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = std::fs::canonicalize(dir.path()).expect("canonical root");
    std::fs::write(root.join("1k.bin"), vec![7u8; 1024]).expect("write the file");
    let settings = files::Settings::new(root);
    let parts = http::Request::get("/1k.bin")
        .body(())
        .expect("a request")
        .into_parts()
        .0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let first = runtime.block_on(files::serve(&parts, "/1k.bin", &settings));
    assert_eq!(first.status(), StatusCode::OK);
    c.bench_function("cache_hit_express_lookup_1k", |b| {
        b.iter(|| {
            files::serve::plain_entry(black_box("/1k.bin"), &settings, std::iter::empty())
                .expect("cached")
        })
    });
    c.bench_function("cache_hit_main_path_answer_1k", |b| {
        b.iter(|| {
            files::serve_from_memory(black_box(&parts), "/1k.bin", &settings).expect("cached")
        })
    });
}

/// Choosing a member of ten for a request, per policy (no lock, no allocation but the key).
fn balancer_pick(c: &mut Criterion) {
    use portico::lb::{HashKey, Policy, Pool, Subject};
    let members: Vec<http::uri::Authority> = (1..=10)
        .map(|i| {
            format!("10.0.0.{i}:8080")
                .parse()
                .expect("literal authority")
        })
        .collect();
    let parts = http::Request::get("/static/css/site.css?v=3")
        .header("x-user", "user-1234")
        .body(())
        .expect("literal request")
        .into_parts()
        .0;
    let subject = Subject {
        parts: &parts,
        client_ip: "192.0.2.7".parse().expect("literal address"),
    };
    for (name, policy) in [
        ("round_robin", Policy::RoundRobin),
        ("least_conn", Policy::LeastConn),
        ("hash_uri", Policy::Hash(HashKey::Uri)),
        ("p2c", Policy::P2c),
    ] {
        let mut settings = portico::lb::Settings::new("bench", members.clone());
        settings.policy = policy;
        let pool = Pool::new(settings);
        c.bench_function(&format!("balancer_pick_{name}_10_members"), |b| {
            b.iter(|| pool.choose(black_box(&subject), &[]))
        });
    }
}

criterion_group!(benches, gate, path, router, cache_hit, balancer_pick);
criterion_main!(benches);
