//! The command line outside `serve`/`check`: `--version`, `--help`, and `file-server`.

use crate::harness::{Server, WorkDir, get, portico};

#[tokio::test]
async fn version_prints_the_package_version() {
    let work = WorkDir::new();
    let out = portico(work.path(), &["--version"]);
    out.assert_code(0);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[tokio::test]
async fn help_names_the_subcommands() {
    let work = WorkDir::new();
    let out = portico(work.path(), &["--help"]);
    out.assert_code(0);
    for subcommand in ["serve", "file-server", "check"] {
        assert!(
            out.stdout.contains(subcommand),
            "--help does not mention {subcommand}\n{out}"
        );
    }
}

#[tokio::test]
async fn file_server_serves_a_folder() {
    let work = WorkDir::new();
    work.write("site/hello.txt", "hello from file-server\n");
    work.write("site/sub/a.txt", "a\n");
    let root = work.join("site");
    let data = work.join("state");
    let args = [
        "--data-dir".as_ref(),
        data.as_os_str(),
        "file-server".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    let server = Server::start_with_args(work, &args);
    let r = get(server.addr(), "/hello.txt").await;
    r.assert_status(200);
    assert_eq!(r.text(), "hello from file-server\n", "{r}");
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{r}"
    );
    // Listing is off unless asked for.
    get(server.addr(), "/sub/").await.assert_status(403);
}

#[tokio::test]
async fn file_server_listing_flag_lists_folders() {
    let work = WorkDir::new();
    work.write("site/sub/a.txt", "a\n");
    let root = work.join("site");
    let data = work.join("state");
    let args = [
        "--data-dir".as_ref(),
        data.as_os_str(),
        "file-server".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--listing".as_ref(),
    ];
    let server = Server::start_with_args(work, &args);
    let r = get(server.addr(), "/sub/").await;
    r.assert_status(200);
    assert!(r.text().contains("a.txt"), "{r}");
}
