//! `portico ctl status|reload|stop|reopen|purge`: a command to the running master over its control
//! socket in the data directory (`process::ctl`).

use std::process::ExitCode;

use super::{Environment, exit};
use crate::process::ctl;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to ask the master.
    #[arg(value_enum)]
    command: Command,
    /// With `purge`: one URL (every variant), `http://host/path?query`.
    #[arg(long, conflicts_with_all = ["prefix", "tag"])]
    url: Option<String>,
    /// With `purge`: every URL starting so, `http://host/images/`.
    #[arg(long, conflicts_with = "tag")]
    prefix: Option<String>,
    /// With `purge`: every response the origin tagged so (`Surrogate-Key`, `Cache-Tag`).
    #[arg(long)]
    tag: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum Command {
    /// Workers (pid, uptime, restarts), connections and request totals, TCP states.
    Status,
    /// Read the configuration again; says whether it was accepted and why not.
    Reload,
    /// Stop gracefully: requests in flight finish, idle connections get a last chance.
    Stop,
    /// Reopen log files (after logrotate moved them).
    Reopen,
    /// Remove stored responses from the cache of every worker and the disk tier: give
    /// `--url`, `--prefix` or `--tag`.
    Purge,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let purge = [
        ("url", &args.url),
        ("prefix", &args.prefix),
        ("tag", &args.tag),
    ]
    .into_iter()
    .find_map(|(name, value)| value.as_ref().map(|v| (name, v)));
    let command = match (args.command, purge) {
        (Command::Status, None) => "status".to_string(),
        (Command::Reload, None) => "reload".to_string(),
        (Command::Stop, None) => "stop".to_string(),
        (Command::Reopen, None) => "reopen".to_string(),
        (Command::Purge, Some((name, value))) => {
            let value =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            format!("purge {name}={value}")
        }
        (Command::Purge, None) => {
            eprintln!("error: `ctl purge` needs --url, --prefix or --tag");
            return exit::code(exit::INVALID_CONFIG);
        }
        (_, Some(_)) => {
            eprintln!("error: --url, --prefix and --tag go with `ctl purge` only");
            return exit::code(exit::INVALID_CONFIG);
        }
    };
    match ctl::call(&env.data_dir, &command) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("ok") {
                exit::code(exit::SUCCESS)
            } else {
                exit::code(exit::FAILURE)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::code(exit::FAILURE)
        }
    }
}
