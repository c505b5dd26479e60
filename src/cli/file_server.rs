//! `portico file-server`: the quick start for serving one folder. It builds the same raw
//! configuration a file would and resolves it the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Environment, serve};
use crate::config::{self, Origin};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The folder to serve.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Runtime threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Show folder listings where there is no index file.
    #[arg(long)]
    listing: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from the local CA (`portico cert`) for localhost and the
    /// listen address.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_local: bool,
    #[command(flatten)]
    process: serve::ProcessArgs,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let pair = if args.tls_local {
        let ip = args.listen.ip().to_string();
        let make = crate::process::inherit::role() != crate::process::inherit::Role::Worker;
        match serve::local_pair(&env.data_dir, &["localhost", &ip, "::1"], make, None) {
            Ok(leaf) => Some((leaf.cert_path, leaf.key_path)),
            Err(e) => {
                eprintln!("error: cannot make a local certificate: {e}");
                return super::exit::code(super::exit::FAILURE);
            }
        }
    } else {
        args.tls_cert.clone().zip(args.tls_key.clone())
    };
    let tls = pair.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    let raw = config::demo::file_server(&args.root, args.listen, args.threads, args.listing, tls);
    serve::start_with(
        &args.process,
        Box::new(move || config::resolve::resolve(&raw, Origin::CommandLine)),
        env,
    )
}
