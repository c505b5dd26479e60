//! Exit codes of the `portico` command, one table for every subcommand.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (a graceful stop is a success) |
//! | 1 | runtime failure (a socket could not be bound, I/O error) |
//! | 2 | invalid configuration or command line |
//! | 3 | the server did not stop within `shutdown_timeout` (requests were cut off) |

use std::process::ExitCode;

pub const SUCCESS: u8 = 0;
pub const FAILURE: u8 = 1;
pub const INVALID_CONFIG: u8 = 2;
pub const STOP_TIMED_OUT: u8 = 3;

pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
