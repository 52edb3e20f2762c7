//! The management page driven in headless Chromium against a real `warren
//! serve` process: `tests/ui/management.mjs` (playwright-core) creates a topic
//! through the page's form, produces with the CLI, reads the records in the
//! message browser, runs a CLI group consumer and checks the lag per partition
//! in the groups view, and deletes the topic through the page. Then, with a
//! superuser and a user without ACLs added by the CLI, it logs in through the
//! page's form against the real token route: a wrong password's banner, the
//! topics view after login, "Log out", a filtered (empty) topic list and the
//! FORBIDDEN banner on connections for the user without ACLs.
//!
//! Needs `/usr/bin/chromium`, `node` and `npm ci --prefix tests/ui`
//! (`.ci/run` installs all three); without one of them the test prints why
//! and passes. With `WARREN_UI_SCREENSHOT=1` the script also writes
//! `docs/management-page.png`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::BrokerProcess;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Longer than the script's own deadline (240 s), which ends it more cleanly.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite(ui: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is missing".to_owned());
    }
    let playwright = ui.join("node_modules/playwright-core");
    if !playwright.exists() {
        return Some(format!(
            "{} is missing (npm ci --prefix tests/ui)",
            playwright.display()
        ));
    }
    None
}

/// The broker's HTTP address, from its "warren broker started ... http=ADDR" line.
fn http_addr(broker: &BrokerProcess) -> Result<String> {
    broker
        .log_lines("warren broker started")
        .iter()
        .flat_map(|line| line.split_whitespace())
        .find_map(|w| w.strip_prefix("http="))
        .map(str::to_owned)
        .context("no http= in the broker's start line")
}

#[test]
fn management_page_in_headless_chromium() -> Result<()> {
    let ui = ui_dir();
    if let Some(missing) = missing_prerequisite(&ui) {
        eprintln!("SKIPPED management_page_in_headless_chromium: {missing}");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let http = http_addr(&broker)?;
    let mut child = Command::new("node")
        .arg(ui.join("management.mjs"))
        .current_dir(&ui)
        .env("WARREN_UI_URL", format!("http://{http}/"))
        .env("WARREN_BROKER", broker.broker_arg())
        .env("WARREN_BIN", env!("CARGO_BIN_EXE_warren"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning node tests/ui/management.mjs")?;
    // Drained on threads so a full pipe never blocks the script.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().context("no stdout")?));
    let stderr = drain(Box::new(child.stderr.take().context("no stderr")?));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    println!("--- management.mjs stdout\n{stdout}--- management.mjs stderr\n{stderr}---");
    match status {
        None => bail!("management.mjs ran longer than {SCRIPT_DEADLINE:?}"),
        Some(s) if !s.success() => {
            let log = broker.log.lock().map(|l| l.join("\n")).unwrap_or_default();
            bail!("management.mjs failed ({s}); the broker logged:\n{log}")
        }
        Some(_) => Ok(()),
    }
}
