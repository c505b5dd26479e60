//! `portico check -c FILE`: validates a configuration; prints `ok: FILE` or every diagnostic.

use std::path::PathBuf;
use std::process::ExitCode;

use super::exit;
use crate::config;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file to check.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    match config::load(&args.config) {
        Ok(_) => {
            println!("ok: {}", args.config.display());
            exit::code(exit::SUCCESS)
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            exit::code(exit::INVALID_CONFIG)
        }
    }
}
