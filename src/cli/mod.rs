//! The command line: one file per subcommand, each turning flags into settings and handing
//! them to the module that does the work. The environment is read here, once.

mod cert;
mod check;
mod ctl;
/// Exit codes: the table lives with the processes that end with them.
pub use crate::process::exit;
mod file_server;
mod reverse_proxy;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  portico serve                                  run the built-in demo on http://127.0.0.1:8080
                                                 and https://localhost:8443
  portico serve -c portico.toml                  run what a configuration file names
  portico check -c portico.toml                  validate a configuration, every error with its line
  portico file-server --root ./public            serve a folder on http://127.0.0.1:8080
  portico file-server --root . --listen 0.0.0.0:8000 --listing
  portico reverse-proxy --to 127.0.0.1:3000,127.0.0.1:3001
                                                 balance http://127.0.0.1:8080 over two origins
  portico serve --workers 4                      the demo with four worker processes
  portico ctl status                             workers, connections and request totals
  portico ctl reload                             read the configuration again (as kill -HUP)
  portico cert localhost 127.0.0.1               a development certificate from the local CA
  portico file-server --root . --tls-local       HTTPS with a local-CA certificate";

/// portico: one binary for the whole web edge.
#[derive(Parser, Debug)]
#[command(name = "portico", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Where runtime state lives (pid file, control socket, local CA, sessions, cache).
    /// Default: $XDG_STATE_HOME/portico, else ~/.local/state/portico.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every part the configuration names (the built-in demo without -c).
    Serve(serve::Args),
    /// Quick start: a static file server for one folder.
    FileServer(file_server::Args),
    /// Quick start: a load-balancing reverse proxy in front of one or more origins.
    ReverseProxy(reverse_proxy::Args),
    /// Validate a configuration file and explain every error with its line.
    Check(check::Args),
    /// Talk to the running master: status, reload, stop, reopen.
    Ctl(ctl::Args),
    /// Make a development certificate for the names given, signed by the local CA.
    Cert(cert::Args),
}

/// What the process was given by its environment, read once at start.
pub struct Environment {
    pub data_dir: PathBuf,
    pub rust_log: Option<String>,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Environment {
        data_dir: cli.data_dir.clone().unwrap_or_else(default_data_dir),
        rust_log: std::env::var("RUST_LOG").ok(),
    };
    match cli.command {
        Command::Serve(args) => serve::run(args, &env),
        Command::FileServer(args) => file_server::run(args, &env),
        Command::ReverseProxy(args) => reverse_proxy::run(args, &env),
        Command::Check(args) => check::run(args),
        Command::Ctl(args) => ctl::run(args, &env),
        Command::Cert(args) => cert::run(args, &env),
    }
}

/// `$XDG_STATE_HOME/portico`, else `$HOME/.local/state/portico`, else `./.portico`.
fn default_data_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(state).join("portico");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/state/portico");
    }
    PathBuf::from(".portico")
}
