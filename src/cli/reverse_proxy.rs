//! `portico reverse-proxy`: the quick start for a load-balancing reverse proxy in front of
//! one or more origins. It builds the same raw configuration a file would (one `[[upstream]]`,
//! one site forwarding every path to it) and resolves it the same way, so a bad `--to` gets
//! the diagnostic a bad `servers` entry would.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::{Environment, serve};
use crate::config::{self, Origin};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The origins, comma-separated: `http://127.0.0.1:3000,127.0.0.1:3001`.
    #[arg(
        long,
        value_name = "URL[,URL…]",
        value_delimiter = ',',
        required = true
    )]
    to: Vec<String>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Runtime threads per worker (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Balancing policy: round_robin (default), least_conn, hash (on the URI) or p2c.
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Check each origin with a GET of this path every 5 s and take failing ones out.
    #[arg(long, value_name = "PATH")]
    health_path: Option<String>,
    /// Send the origin's own address as Host instead of the client's.
    #[arg(long)]
    change_host_header: bool,
    /// Keep the origin's responses in the shared cache (RFC 9111) and answer from it.
    #[arg(long)]
    cache: bool,
    #[command(flatten)]
    process: serve::ProcessArgs,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let options = config::demo::ReverseProxy {
        listen: args.listen,
        threads: args.threads,
        policy: args.policy.clone(),
        health_path: args.health_path.clone(),
        change_host_header: args.change_host_header,
        cache: args.cache,
    };
    let raw = config::demo::reverse_proxy(&args.to, &options);
    serve::start_with(
        &args.process,
        Box::new(move || config::resolve::resolve(&raw, Origin::CommandLine)),
        env,
    )
}
