//! The cache's disk tier (`[cache] disk`), against the real binary and a counting origin: a
//! stored response survives a restart with the origin gone, a response one worker stored is a
//! hit in the other, a damaged file is never served, the folder is trimmed to its bound by the
//! master or the single process, and bad `disk` values are diagnostics at their line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::Response;

use crate::harness::origin::{Origin, full, handler};
use crate::harness::raw::{RawResponse, get};
use crate::harness::{Server, WorkDir, portico};

/// How long a disk write or a trim may take to show in the folder.
const DISK_TIMEOUT: Duration = Duration::from_secs(15);

/// An origin answering every path with `max-age=600` and a body naming the path and the
/// request's number; `/big/...` bodies are 2,000 bytes.
async fn origin() -> Origin {
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Origin::start(
        "disk-origin",
        handler(move |req, _seen| {
            let served = served.clone();
            async move {
                let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let path = req.uri().path().to_string();
                let mut body = format!("{path} {n} ");
                if path.starts_with("/big/") {
                    body.extend(std::iter::repeat_n('z', 2000 - body.len()));
                } else {
                    body.push_str("precious stored bytes");
                }
                Response::builder()
                    .header("cache-control", "max-age=600")
                    .header("content-type", "text/plain")
                    .body(full(body))
                    .unwrap()
            }
        }),
    )
    .await
}

/// A proxy route with the cache on, `server` as the `[server]` table's body and `cache` as
/// the `[cache]` table's.
fn config(origin: &Origin, server: &str, cache: &str) -> String {
    format!(
        r#"
[server]
{server}

[cache]
memory = "8m"
{cache}

[[upstream]]
name = "app"
servers = ["{}"]

[[site]]
listen = ["127.0.0.1:0"]
[[site.route]]
proxy = {{ upstream = "app", cache = true }}
"#,
        origin.addr
    )
}

#[track_caller]
fn assert_hit(res: &RawResponse) {
    res.assert_status(200);
    res.assert_hit();
}

/// The disk tier's folder with the default `disk_path`.
fn disk_folder(work: &WorkDir) -> PathBuf {
    work.join("state/cache")
}

/// Every file under the disk tier's folder (`ROOT/ab/<key>/<file>`), with its size.
fn disk_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let levels = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for fan in levels(root) {
        for key in levels(&fan) {
            for file in levels(&key) {
                if let Ok(meta) = std::fs::metadata(&file) {
                    files.push((file, meta.len()));
                }
            }
        }
    }
    files
}

/// The stored objects (`.obj` files) under `root`.
fn objects(root: &Path) -> Vec<(PathBuf, u64)> {
    disk_files(root)
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "obj"))
        .collect()
}

/// Polls until `done` holds for the disk folder's objects; panics with what it saw after
/// [`DISK_TIMEOUT`].
async fn wait_for_disk(root: &Path, what: &str, done: impl Fn(&[(PathBuf, u64)]) -> bool) {
    let deadline = Instant::now() + DISK_TIMEOUT;
    loop {
        let now = objects(root);
        if done(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited {DISK_TIMEOUT:?} for {what}; the folder holds {:#?}",
            disk_files(root)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stored_response_is_served_from_disk_after_a_restart_without_the_origin() {
    let mut origin = origin().await;
    let config = config(&origin, "workers = 1", "disk = \"1m\"");
    let server = Server::start(WorkDir::new(), &config);
    let first = get(server.addr(), "/warm", "").await;
    first.assert_status(200);
    let folder = disk_folder(server.work());
    wait_for_disk(&folder, "the stored object", |o| o.len() == 1).await;
    let work = server.into_work();
    origin.stop().await;

    let server = Server::start(work, &config);
    let again = get(server.addr(), "/warm", "").await;
    assert_hit(&again);
    assert_eq!(again.body, first.body, "{again}");
    assert_eq!(origin.hits(), 1);
}

/// A stopped worker (SIGSTOP) accepts nothing, so the other one takes every connection; it
/// goes on (SIGCONT) when dropped, even if the test failed.
struct Paused(u32);

impl Paused {
    /// Stops `pid` and waits until every thread of it has stopped: a signal is delivered
    /// asynchronously, and a thread still running could accept the next connection.
    fn new(pid: u32) -> Paused {
        signal(pid, libc::SIGSTOP);
        let paused = Paused(pid);
        let deadline = Instant::now() + DISK_TIMEOUT;
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "worker {pid} did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        paused
    }
}

/// Whether every thread of `pid` is in state `T` (stopped), from `/proc/PID/task/*/stat`.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // `pid (comm) S ...`: the state follows the last `)`.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a worker of this test's
    // server, read from /proc while the server runs.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

#[tokio::test]
async fn a_response_one_worker_stored_is_a_hit_in_the_other() {
    let origin = origin().await;
    let config = config(&origin, "workers = 2", "disk = \"1m\"");
    let server = Server::start(WorkDir::new(), &config);
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let first = get(server.addr(), "/shared", "").await;
    first.assert_status(200);
    wait_for_disk(&disk_folder(server.work()), "the stored object", |o| {
        o.len() == 1
    })
    .await;
    // Each worker in turn takes every connection: whichever stored it, the other one answers
    // from the disk tier.
    for pid in &workers {
        let _paused = Paused::new(*pid);
        for _ in 0..3 {
            let res = get(server.addr(), "/shared", "").await;
            assert_hit(&res);
            assert_eq!(res.body, first.body, "{res}");
        }
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_damaged_file_is_never_served_and_is_replaced() {
    let origin = origin().await;
    let config = config(&origin, "workers = 1", "disk = \"1m\"");
    let server = Server::start(WorkDir::new(), &config);
    let first = get(server.addr(), "/damaged", "").await;
    first.assert_status(200);
    let folder = disk_folder(server.work());
    wait_for_disk(&folder, "the stored object", |o| o.len() == 1).await;
    let work = server.into_work();

    // Flip a bit in the body: it sits just before the file's 32-byte SHA-256.
    let (file, _) = objects(&folder).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    let body_at = bytes
        .windows(first.body.len())
        .position(|w| w == first.body.as_slice())
        .expect("the body is stored as it is");
    bytes[body_at + first.body.len() - 3] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let damaged_body = bytes[body_at..body_at + first.body.len()].to_vec();

    let server = Server::start(work, &config);
    let res = get(server.addr(), "/damaged", "").await;
    res.assert_status(200);
    assert!(
        res.header("cache-status")
            .is_some_and(|s| s.contains("fwd=uri-miss")),
        "{res}"
    );
    assert_ne!(res.body, damaged_body, "the damaged bytes were served");
    assert!(res.text().starts_with("/damaged 2 "), "{res}");
    assert_eq!(origin.hits(), 2);
    assert!(
        server.stderr().contains("damaged cache file removed"),
        "{}",
        server.stderr()
    );
    // The damaged file is gone, replaced by the origin's new answer.
    wait_for_disk(&folder, "the damaged file replaced", |o| {
        o.len() == 1 && std::fs::read(&o[0].0).is_ok_and(|now| now != bytes)
    })
    .await;
    let again = get(server.addr(), "/damaged", "").await;
    assert_hit(&again);
    assert_eq!(again.body, res.body, "{again}");
}

/// Stores 30 objects of about 2 KiB with a 16 KiB disk tier, then starts the server again:
/// the trim (at start, then periodic) takes the folder down to the bound.
async fn the_folder_is_trimmed_to_its_bound(server_table: &str) {
    const BOUND: u64 = 16 * 1024;
    let origin = origin().await;
    let config = config(&origin, server_table, &format!("disk = {BOUND}"));
    let server = Server::start(WorkDir::new(), &config);
    for i in 0..30 {
        get(server.addr(), &format!("/big/{i}"), "")
            .await
            .assert_status(200);
    }
    let folder = disk_folder(server.work());
    let total = |o: &[(PathBuf, u64)]| o.iter().map(|(_, size)| size).sum::<u64>();
    // Over the bound at some point (the trim may already be at work): the test means something.
    wait_for_disk(&folder, "more than the bound stored", |o| total(o) > BOUND).await;
    let work = server.into_work();
    let server = Server::start(work, &config);
    wait_for_disk(&folder, "the folder trimmed to its bound", |o| {
        total(o) <= BOUND && !o.is_empty()
    })
    .await;
    // The newest objects are kept, and served from disk.
    let newest = get(server.addr(), "/big/29", "").await;
    assert_hit(&newest);
    assert_eq!(origin.hits(), 30);
    drop(server);
}

#[tokio::test]
async fn the_master_trims_the_folder_to_its_bound() {
    the_folder_is_trimmed_to_its_bound("workers = 2").await;
}

#[tokio::test]
async fn a_single_process_trims_the_folder_to_its_bound() {
    the_folder_is_trimmed_to_its_bound("single_process = true").await;
}

#[tokio::test]
async fn bad_disk_values_are_reported_at_their_line() {
    for (value, mentions) in [
        ("\"1z\"", "invalid `disk`: unknown unit"),
        ("-1", "invalid `disk`"),
        ("\"\"", "invalid `disk`"),
    ] {
        let text = format!(
            "[cache]\nmemory = \"8m\"\ndisk = {value}\n\n[[site]]\nlisten = [\"127.0.0.1:0\"]\n[[site.route]]\nrespond = {{ body = \"x\" }}\n"
        );
        let work = WorkDir::new();
        let path = work.write("bad.toml", &text);
        let out = portico(
            work.path(),
            &["check".as_ref(), "-c".as_ref(), path.as_os_str()],
        );
        out.assert_code(2);
        let expected = format!("error: {}:3:", path.display());
        assert!(
            out.all_output()
                .lines()
                .any(|l| l.starts_with(&expected) && l.contains(mentions)),
            "expected `{expected}<col>: …{mentions}…`\n{out}"
        );
    }
    // `disk_path` naming a file, at its line.
    let work = WorkDir::new();
    work.write("not-a-folder", "x");
    let path = work.write(
        "bad.toml",
        "[cache]\ndisk = \"1g\"\ndisk_path = \"not-a-folder\"\n\n[[site]]\nlisten = [\"127.0.0.1:0\"]\n[[site.route]]\nrespond = { body = \"x\" }\n",
    );
    let out = portico(
        work.path(),
        &["check".as_ref(), "-c".as_ref(), path.as_os_str()],
    );
    out.assert_code(2);
    let expected = format!("error: {}:3:", path.display());
    assert!(
        out.all_output()
            .lines()
            .any(|l| l.starts_with(&expected) && l.contains("not a folder")),
        "expected `{expected}<col>: …not a folder…`\n{out}"
    );
}
