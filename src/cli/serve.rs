//! `portico serve [-c FILE]`: runs what the configuration names, or the built-in demo.
//!
//! Start-up prints one line per bound listener (`listening kind=http addr=…`) and then
//! `ready pid=…` on stdout; scripts and the tests read them, so their wording is an interface.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Environment, exit};
use crate::config::{self, Config, Origin};
use crate::edge::Server;
use crate::process::{memory, runtime, signals};
use crate::telemetry::{access_log, logging};

/// The welcome site of the demo, compiled into the binary.
const WELCOME: &[(&str, &str)] = &[
    (
        "index.html",
        include_str!("../../assets/welcome/index.html"),
    ),
    ("style.css", include_str!("../../assets/welcome/style.css")),
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file; without it the built-in demo runs.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let loaded = match &args.config {
        Some(path) => config::load(path),
        None => demo(&env.data_dir),
    };
    match loaded {
        Ok(config) => run_config(config, env),
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            exit::code(exit::INVALID_CONFIG)
        }
    }
}

/// Serves a resolved configuration until a stop signal.
pub fn run_config(config: Config, env: &Environment) -> ExitCode {
    logging::init(
        env.rust_log.as_deref(),
        config.telemetry.log_level.as_deref(),
    );
    if let Err(e) = std::fs::create_dir_all(&env.data_dir) {
        tracing::warn!(dir = %env.data_dir.display(), error = %e, "cannot create the data directory");
    }
    let mut listeners = Vec::with_capacity(config.edge.listeners.len());
    for addr in &config.edge.listeners {
        match crate::net::listener::bind_tcp(*addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return exit::code(exit::FAILURE);
            }
        }
    }
    let runtime = match runtime::build(config.process.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::code(exit::FAILURE);
        }
    };
    runtime.block_on(async move {
        let access_log = match config
            .telemetry
            .access_log
            .as_ref()
            .map(access_log::Writer::start)
            .transpose()
        {
            Ok(writer) => writer,
            Err(e) => {
                eprintln!("error: cannot open the access log: {e}");
                return exit::code(exit::FAILURE);
            }
        };
        let server = Server::new(&config.edge, access_log);
        for listener in &listeners {
            if let Ok(addr) = listener.local_addr() {
                println!("listening kind=http addr={addr}");
            }
        }
        if let Err(e) = server.start(listeners) {
            eprintln!("error: cannot start listening: {e}");
            return exit::code(exit::FAILURE);
        }
        let mut signals = match signals::Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return exit::code(exit::FAILURE);
            }
        };
        let server = std::sync::Arc::new(server);
        let reclaim = tokio::spawn(reclaim_memory(server.clone()));
        println!("ready pid={}", std::process::id());
        tracing::info!("ready");
        match signals.next().await {
            signals::Request::Stop => tracing::info!("stopping: finishing requests in flight"),
        }
        reclaim.abort();
        if server.stop(config.edge.limits.shutdown_timeout).await {
            tracing::info!("stopped");
            exit::code(exit::SUCCESS)
        } else {
            tracing::warn!("shutdown_timeout passed with requests still in flight");
            exit::code(exit::STOP_TIMED_OUT)
        }
    })
}

/// Returns memory to the OS after waves of connections went idle (`process::memory`).
async fn reclaim_memory(server: std::sync::Arc<Server>) {
    let mut reclaimer = memory::Reclaimer::default();
    let mut tick = tokio::time::interval(memory::PERIOD);
    loop {
        tick.tick().await;
        if reclaimer.should_trim(server.parks()) {
            let _ = tokio::task::spawn_blocking(memory::trim).await;
        }
    }
}

/// The built-in demo: writes the welcome site under the data directory and resolves the demo
/// configuration that serves it.
fn demo(data_dir: &Path) -> Result<Config, config::Diagnostics> {
    let root = data_dir.join("demo").join("welcome");
    if let Err(e) = write_welcome(&root) {
        return Err(config::Diagnostics::single(config::Diagnostic::file_error(
            &root, &e,
        )));
    }
    config::resolve::resolve(&config::demo::demo(&root), Origin::Demo)
}

fn write_welcome(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for (name, text) in WELCOME {
        let path = root.join(name);
        // Write to a temporary name, then rename: a reader never sees half a file.
        let tmp = root.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}
