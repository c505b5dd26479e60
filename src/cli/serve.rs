//! `portico serve [-c FILE]`: runs what the configuration names, or the built-in demo, as a
//! master with worker processes (`process::master`), or in one process with
//! `--single-process`. The same command line, re-executed by the master with `PORTICO_ROLE`
//! set, starts each worker (`process::inherit`).
//!
//! Start-up prints one line per bound listener (`listening kind=http addr=…`) and then
//! `ready pid=…` (the master's pid) on stdout once every worker serves; scripts and the tests
//! read them, so their wording is an interface.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use super::{Environment, exit};
use crate::config::{self, Config, Origin};
use crate::process::inherit::{self, Role};
use crate::process::master::{self, Launch, Loader};
use crate::process::worker;
use crate::telemetry::counters::Counters;
use crate::telemetry::logging;
use crate::telemetry::shm::Region;

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
    #[command(flatten)]
    process: ProcessArgs,
}

/// Process options every serving command takes; they override the configuration's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProcessArgs {
    /// Worker processes (default: the configuration's `workers`, else one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// Serve in one process, without master and workers (no reload): for debugging.
    #[arg(long)]
    single_process: bool,
}

impl ProcessArgs {
    fn apply(&self, config: &mut Config) {
        if let Some(n) = self.workers {
            config.process.workers = Some(usize::from(n));
        }
        if self.single_process {
            config.process.single_process = true;
        }
    }
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let data_dir = env.data_dir.clone();
    let path = args.config.clone();
    let process = args.process.clone();
    let load: Loader = Box::new(move || {
        let mut config = match &path {
            Some(path) => config::load(path)?,
            None => demo(&data_dir)?,
        };
        process.apply(&mut config);
        Ok(config)
    });
    start(load, env)
}

/// Starts what this process is for (master, worker or single process) on the configuration
/// `load` reads; a master calls `load` again on every reload.
pub fn start_with(process: &ProcessArgs, load: Loader, env: &Environment) -> ExitCode {
    let process = process.clone();
    start(
        Box::new(move || {
            let mut config = load()?;
            process.apply(&mut config);
            Ok(config)
        }),
        env,
    )
}

fn start(load: Loader, env: &Environment) -> ExitCode {
    let data_dir = env.data_dir.clone();
    let load: Loader = Box::new(move || {
        let mut config = load()?;
        config.attach(&data_dir);
        Ok(config)
    });
    let config = match load() {
        Ok(config) => config,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return exit::code(exit::INVALID_CONFIG);
        }
    };
    logging::init(
        env.rust_log.as_deref(),
        config.telemetry.log_level.as_deref(),
    );
    match inherit::role() {
        Role::Worker => run_worker(config),
        _ if config.process.single_process => run_single(config, env),
        _ => master::run(
            config,
            Launch {
                load,
                data_dir: env.data_dir.clone(),
            },
        ),
    }
}

/// `--single-process`: binds and serves here.
fn run_single(config: Config, env: &Environment) -> ExitCode {
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
    worker::run(
        config,
        listeners,
        Counters::detached(),
        worker::Role::Single,
    )
}

/// A worker: serves on the sockets its master handed it.
fn run_worker(config: Config) -> ExitCode {
    let fail = |what: String| {
        eprintln!("error: worker: {what}");
        exit::code(exit::FAILURE)
    };
    let mut inherited = match inherit::take_listeners() {
        Ok(listeners) => listeners,
        Err(e) => return fail(e.to_string()),
    };
    let mut listeners = Vec::with_capacity(config.edge.listeners.len());
    for addr in &config.edge.listeners {
        match inherited.remove(addr) {
            Some(listener) => listeners.push(listener),
            None => return fail(format!("the master handed no socket for {addr}")),
        }
    }
    let control = match inherit::take_fd(inherit::CONTROL_FD) {
        Ok(Some(fd)) => std::os::unix::net::UnixStream::from(fd),
        Ok(None) => return fail("no control socket".into()),
        Err(e) => return fail(e.to_string()),
    };
    let counters = match inherit::take_fd(inherit::COUNTERS_FD) {
        Ok(Some(fd)) => match Region::open(fd) {
            Ok(region) => {
                let slot = std::env::var(inherit::SLOT)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1);
                Some(Counters::new(Arc::new(region), slot))
            }
            Err(e) => return fail(e.to_string()),
        },
        Ok(None) => None,
        Err(e) => return fail(e.to_string()),
    };
    worker::run(config, listeners, counters, worker::Role::Worker(control))
}

/// The built-in demo: writes the welcome site under the data directory and resolves the demo
/// configuration that serves it.
fn demo(data_dir: &Path) -> Result<Config, config::Diagnostics> {
    let root = data_dir.join("demo").join("welcome");
    // Workers read the site their master wrote; two processes writing it at once could
    // leave a half-written file.
    if inherit::role() != Role::Worker
        && let Err(e) = write_welcome(&root)
    {
        return Err(config::Diagnostics::single(config::Diagnostic::file_error(
            &root, &e,
        )));
    }
    // The leaf names the CA's revocation list on the demo's plain listener, which serves it
    // from `demo/crl` (a client or testssl can then check revocation).
    let crl_root = data_dir.join("demo").join("crl");
    let crl_url = format!(
        "http://{}{}",
        config::demo::DEMO_LISTEN,
        crate::tls::local_ca::CRL_PATH
    );
    let tls = local_pair(
        data_dir,
        &["localhost", "127.0.0.1", "::1"],
        inherit::role() != Role::Worker,
        Some((&crl_url, &crl_root)),
    )
    .map_err(|e| {
        config::Diagnostics::single(config::Diagnostic::file_error(&data_dir.join("ca"), &e))
    })?;
    let tls = config::demo::DemoTls {
        cert: &tls.cert_path,
        key: &tls.key_path,
        crl_root: &crl_root,
    };
    config::resolve::resolve(&config::demo::demo(&root, Some(tls)), Origin::Demo)
}

/// A certificate for `names` from the local CA (`tls::local_ca`), made when `make` (the master
/// or a single process; workers read what their master made). With `crl`, the certificate
/// names the URL of the CA's revocation list, which is written to `DIR/local-ca.crl` to be
/// served there.
pub fn local_pair(
    data_dir: &Path,
    names: &[&str],
    make: bool,
    crl: Option<(&str, &Path)>,
) -> std::io::Result<crate::tls::local_ca::Leaf> {
    let dir = data_dir.join("certs");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    if make {
        let ca = crate::tls::local_ca::LocalCa::open_or_create(data_dir)?;
        if let Some((_, crl_dir)) = crl {
            ca.publish_crl(crl_dir)?;
        }
        return ca.issue(&names, &dir, crl.map(|(url, _)| url));
    }
    let file = names[0].replace(['*', ':', '/'], "_");
    Ok(crate::tls::local_ca::Leaf {
        cert_path: dir.join(format!("{file}.pem")),
        key_path: dir.join(format!("{file}-key.pem")),
    })
}

fn write_welcome(root: &Path) -> std::io::Result<()> {
    for (name, text) in WELCOME {
        // A reader never sees half a file.
        crate::fs::write_atomic(
            &root.join(name),
            text.as_bytes(),
            0o644,
            crate::fs::Sync::Unsynced,
        )?;
    }
    Ok(())
}
