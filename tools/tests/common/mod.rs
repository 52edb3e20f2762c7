//! Shared by the CLI's tests: the real `warren` binary, and a broker process
//! (`warren serve` on 127.0.0.1:0) that can be stopped gracefully or killed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The `warren` binary under test.
pub fn warren() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warren"))
}

/// A `warren serve` child process.
pub struct BrokerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Everything the broker logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts `warren serve` on a data dir and waits for its "started" line.
    pub fn start(data_dir: &Path) -> Result<BrokerProcess> {
        let mut child = warren()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            // A test's own switch, not a broker setting: `warren serve`
            // refuses unknown WARREN_* variables.
            .env_remove("WARREN_UI_SCREENSHOT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning warren serve")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Logged before it is announced, so `log_lines` finds the
                // start line as soon as `start` returns.
                sink.lock().map(|mut l| l.push(line.clone())).ok();
                if line.contains("warren broker started") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "warren serve did not start: {:?}",
                    log.lock().map(|l| l.clone())
                );
            }
        };
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .context("no listen= in the start line")?
            .parse()?;
        Ok(BrokerProcess {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
        })
    }

    /// `--broker ADDR` for CLI commands.
    pub fn broker_arg(&self) -> String {
        self.addr.to_string()
    }

    /// SIGKILL: no chance to flush or write recovery points.
    pub fn kill9(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits for the exit (at most 30 s).
    pub fn terminate(mut self) -> Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("warren serve did not exit within 30 s of SIGTERM")
    }

    /// The log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().filter(|x| x.contains(needle)).cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
