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
    #[command(flatten)]
    process: serve::ProcessArgs,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let raw = config::demo::file_server(&args.root, args.listen, args.threads, args.listing);
    serve::start_with(
        &args.process,
        Box::new(move || config::resolve::resolve(&raw, Origin::CommandLine)),
        env,
    )
}
