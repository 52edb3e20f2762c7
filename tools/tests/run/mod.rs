//! Runs the `warren` binary with a deadline: stdin fed from a buffer, stdout and
//! stderr collected on their own threads (so a full pipe never blocks the
//! child), and the child killed if it outlives the deadline.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::common::BrokerProcess;

/// Deadline for one CLI command that should finish promptly.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// A child started by [`spawn`]: collects its output until it exits.
pub struct Running {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stdin: Option<JoinHandle<()>>,
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        buf
    })
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Starts `cmd` with `stdin` as its whole standard input (closed after it).
pub fn spawn(mut cmd: Command, stdin: &[u8]) -> Result<Running> {
    let mut child = cmd
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning warren")?;
    let mut pipe = child.stdin.take().context("no stdin")?;
    let input = stdin.to_vec();
    let stdin = std::thread::spawn(move || {
        // The child may exit without reading everything (an error): ignore EPIPE.
        let _ = pipe.write_all(&input);
    });
    let stdout = drain(child.stdout.take().context("no stdout")?);
    let stderr = drain(child.stderr.take().context("no stderr")?);
    Ok(Running {
        child,
        stdout: Some(stdout),
        stderr: Some(stderr),
        stdin: Some(stdin),
    })
}

impl Running {
    /// The child's process id (to signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `deadline` for the exit; kills the child and fails past it.
    pub fn wait(mut self, deadline: Duration) -> Result<Output> {
        let start = Instant::now();
        let status: ExitStatus = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if start.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = join(self.stderr.take());
                bail!(
                    "warren did not exit within {deadline:?}; stderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(stdin) = self.stdin.take() {
            let _ = stdin.join();
        }
        let stdout = join(self.stdout.take());
        let stderr = join(self.stderr.take());
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached without `wait` (a failed test): never leave the child behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `warren ARGS` with `stdin`, waiting at most `deadline`.
pub fn run(args: &[&str], stdin: &[u8], deadline: Duration) -> Result<Output> {
    let mut cmd = super::common::warren();
    cmd.args(args);
    spawn(cmd, stdin)?.wait(deadline)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails unless the command exited 0; the error carries its stderr.
pub fn check_ok(output: &Output, what: &str) -> Result<()> {
    if output.status.code() != Some(0) {
        bail!(
            "{what}: exit {:?}, stderr:\n{}",
            output.status,
            stderr(output)
        );
    }
    Ok(())
}

/// Asserts the command failed with exit 1 and exactly one `Error: ...` line on
/// stderr (no panic, no backtrace), and returns that line.
pub fn single_error_line(output: &Output) -> Result<String> {
    let err = stderr(output);
    if output.status.code() != Some(1) {
        bail!("expected exit 1, got {:?}; stderr:\n{err}", output.status);
    }
    let lines: Vec<&str> = err.lines().collect();
    if lines.len() != 1 {
        bail!("stderr should be one line, got:\n{err}");
    }
    let line = lines.first().copied().unwrap_or_default();
    if !line.starts_with("Error: ") || err.contains("panicked") || err.contains("backtrace") {
        bail!("not a one-line error: {err}");
    }
    Ok(line.to_owned())
}

/// A small runtime for the in-process client parts of a test.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs `warren ARGS --broker <broker>` with `stdin`.
pub fn warren(broker: &BrokerProcess, args: &[&str], stdin: &[u8]) -> Result<Output> {
    let addr = broker.broker_arg();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--broker", &addr]);
    run(&all, stdin, COMMAND_DEADLINE)
}

/// As [`warren`], failing unless it exits 0.
pub fn warren_ok(broker: &BrokerProcess, args: &[&str], stdin: &[u8]) -> Result<Output> {
    let output = warren(broker, args, stdin)?;
    check_ok(&output, &args.join(" "))?;
    Ok(output)
}

/// Parses every stdout line as JSON.
pub fn json_lines(output: &Output) -> Result<Vec<Value>> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

/// Per partition, `(log_end_offset, high_watermark)` from `warren topic describe`.
pub fn partition_offsets(broker: &BrokerProcess, topic: &str) -> Result<Vec<(u64, u64)>> {
    let output = warren_ok(broker, &["topic", "describe", topic], b"")?;
    let text = stdout(&output);
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PARTITION"));
    lines.next().context("no partition table")?;
    // The partition table ends where a binding table (or a `Bindings:` line) starts.
    lines
        .take_while(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|c| c.parse::<u32>().is_ok())
        })
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            match cells.as_slice() {
                [_, _, end, hw, _, _] => Ok((end.parse()?, hw.parse()?)),
                _ => bail!("bad row: {l}"),
            }
        })
        .collect()
}

/// The first `count` records of a partition as `(offset, value)`, read with
/// `warren consume --format json` (values must be UTF-8).
pub fn read_partition(
    broker: &BrokerProcess,
    topic: &str,
    partition: u32,
    count: u64,
) -> Result<Vec<(u64, String)>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let (p, n) = (partition.to_string(), count.to_string());
    let args = [
        "consume",
        topic,
        "--partition",
        &p,
        "--from-beginning",
        "--max-messages",
        &n,
        "--format",
        "json",
        "--timeout-ms",
        "10000",
    ];
    let output = warren_ok(broker, &args, b"")?;
    json_lines(&output)?
        .iter()
        .map(|r| {
            let offset = r["offset"].as_u64().context("offset")?;
            let value = r["value"].as_str().context("value")?.to_owned();
            Ok((offset, value))
        })
        .collect()
}
