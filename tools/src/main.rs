//! `warren`: the command-line tool for Warren, one subcommand per module.
//!
//! `main` only parses the command line, dispatches, and turns the outcome into an
//! exit code. Errors are printed as one line, `Error: <cause>: <cause>...`, never
//! with a backtrace:
//!
//! ```text
//! 0  success
//! 1  usage or I/O error (bad arguments, missing file, failed write to stdout)
//! 2  the input is corrupt (see dump_log::CorruptLog)
//! ```
//!
//! # Layout
//! - [`serve`]: `warren serve`, runs the broker until SIGINT/SIGTERM.
//! - [`dump_log`]: `warren dump-log PATH`, prints the batches and records of a segment file.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod dump_log;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for usage and I/O errors.
const EXIT_ERROR: u8 = 1;
/// Exit code when the input is corrupt.
const EXIT_CORRUPT: u8 = 2;

/// Warren: a Kafka-style partitioned-log message broker.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(serve::ServeArgs),
    /// Print every RecordBatch (and record) of a segment `.log` file.
    DumpLog(dump_log::DumpLogArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap exits with 2 on usage errors; 2 means "corrupt input" here.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                // --help and --version
                ExitCode::SUCCESS
            };
        }
    };
    let result = match &cli.command {
        Command::Serve(args) => serve::run(args),
        Command::DumpLog(args) => dump_log::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            if err.downcast_ref::<dump_log::CorruptLog>().is_some() {
                ExitCode::from(EXIT_CORRUPT)
            } else {
                ExitCode::from(EXIT_ERROR)
            }
        }
    }
}
