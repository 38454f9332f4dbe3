//! How a subcommand fails, and the exit code each failure gets: 254 for
//! bad arguments (nothing was done), 255 for a harness failure (a missing
//! tool, no root, a command that failed).

use std::process::ExitCode;

pub const EXIT_BAD_ARGS: u8 = 254;
pub const EXIT_HARNESS: u8 = 255;

pub enum Failure {
    BadArgs(String),
    Harness(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Harness(e)
    }
}

/// Prints a failure as `faultline <command>: ...` and returns its exit code.
pub fn report<T>(command: &str, result: Result<T, Failure>, on_ok: impl FnOnce(T)) -> ExitCode {
    match result {
        Ok(v) => {
            on_ok(v);
            ExitCode::SUCCESS
        }
        Err(Failure::BadArgs(msg)) => {
            eprintln!("faultline {command}: {msg}");
            ExitCode::from(EXIT_BAD_ARGS)
        }
        Err(Failure::Harness(e)) => {
            eprintln!("faultline {command}: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}
