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
//! - [`topic`]: `warren topic create|list|describe|delete`, topic administration.
//! - [`bind`]: `warren bind|unbind TOPIC KEY --partition P`, routing bindings.
//! - [`produce`]: `warren produce TOPIC`, one message per stdin line, exits once all are acknowledged.
//! - [`consume`]: `warren consume TOPIC`, prints records as text or JSON lines; with
//!   `--share-group` as a share-group member that acknowledges, rejects or releases them.
//! - [`bench`]: `warren bench produce|consume|share`, load generators with latency percentiles.
//! - [`user`]: `warren user add|delete|list`, users (the new password from stdin or env).
//! - [`acl`]: `warren acl grant|revoke|list`, users' permissions on topics, groups, cluster.
//! - [`connect`]: `--broker`, `--user`, `--password`, the client timeouts and runtime shared
//!   by every client subcommand.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod acl;
mod bench;
mod bench_groups;
mod bind;
mod connect;
mod consume;
mod dump_log;
mod group;
mod produce;
mod serve;
mod topic;
mod user;

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
    /// Create, list, describe and delete topics.
    Topic(topic::TopicArgs),
    /// Bind a routing key (direct) or pattern (topic) to partitions of a topic.
    Bind(bind::BindArgs),
    /// Remove bindings of a routing key or pattern from partitions of a topic.
    Unbind(bind::BindArgs),
    /// Send one message per line of standard input to a topic.
    Produce(produce::ProduceArgs),
    /// Print a topic's records, one per line.
    Consume(consume::ConsumeArgs),
    /// List and describe consumer groups (with lag), reset their offsets.
    Group(group::GroupArgs),
    /// Measure produce, consume or share-group throughput and latency against a broker.
    Bench(bench::BenchArgs),
    /// Add, delete and list users (passwords stored as SCRAM-SHA-256 credentials).
    User(user::UserArgs),
    /// Grant, revoke and list users' permissions on topics, groups and the cluster.
    Acl(acl::AclArgs),
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
        Command::Topic(args) => topic::run(args),
        Command::Bind(args) => bind::run(args, true),
        Command::Unbind(args) => bind::run(args, false),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Group(args) => group::run(args),
        Command::Bench(args) => bench::run(args),
        Command::User(args) => user::run(args),
        Command::Acl(args) => acl::run(args),
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
