//! Runs the `warren` binary with a deadline: stdin fed from a buffer, stdout and
//! stderr collected on their own threads (so a full pipe never blocks the
//! child), and the child killed if it outlives the deadline.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

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
