//! `portico ctl status|reload|stop|reopen`: a command to the running master over its control
//! socket in the data directory (`process::ctl`).

use std::process::ExitCode;

use super::{Environment, exit};
use crate::process::ctl;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to ask the master.
    #[arg(value_enum)]
    command: Command,
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
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let command = match args.command {
        Command::Status => "status",
        Command::Reload => "reload",
        Command::Stop => "stop",
        Command::Reopen => "reopen",
    };
    match ctl::call(&env.data_dir, command) {
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
