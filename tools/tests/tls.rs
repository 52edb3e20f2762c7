//! The CLI over TLS: `warren serve --tls-cert --tls-key` as a child process,
//! `warren topic/produce/consume --tls-ca` against it, and the one-line errors
//! for an untrusted broker, a plaintext client and unusable certificate files.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use common::warren;

/// A test CA and a broker certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Result<Pki> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
        .signed_by(&key, &issuer)?;
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca_cert.pem())?;
    std::fs::write(&pki.cert, cert.pem())?;
    std::fs::write(&pki.key, key.serialize_pem())?;
    Ok(pki)
}

/// `warren serve` with TLS; killed on drop.
struct TlsServe {
    child: Child,
    addr: SocketAddr,
    started: String,
}

impl Drop for TlsServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_tls(dir: &Path, pki: &Pki) -> Result<TlsServe> {
    let mut child = warren()
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning warren serve")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("warren broker started") {
                let _ = tx.send(line);
            }
        }
    });
    let Ok(started) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("warren serve --tls-cert did not start");
    };
    let addr = started
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .context("no listen= in the start line")?
        .parse()?;
    Ok(TlsServe {
        child,
        addr,
        started,
    })
}

/// Runs `warren ARGS --broker ADDR` with `stdin`, with a 60 s limit.
fn run(addr: SocketAddr, args: &[&str], tls_ca: Option<&Path>, stdin: &[u8]) -> Result<Output> {
    let mut cmd = warren();
    cmd.args(args)
        .arg("--broker")
        .arg(addr.to_string())
        .env_remove("WARREN_TLS_CA");
    if let Some(ca) = tls_ca {
        cmd.arg("--tls-ca").arg(ca);
    }
    output_of(cmd, stdin)
}

fn output_of(mut cmd: Command, stdin: &[u8]) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("no stdin")?.write_all(stdin)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Ok(rx
        .recv_timeout(Duration::from_secs(60))
        .context("warren did not finish in 60 s")??)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn produce_and_consume_through_a_tls_broker() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "broker")?;
    let serve = serve_tls(dir.path(), &pki)?;
    ensure!(serve.started.contains("tls=true"), "{}", serve.started);
    let addr = serve.addr;
    let ca = Some(pki.ca.as_path());
    let o = run(
        addr,
        &["topic", "create", "t", "--partitions", "2"],
        ca,
        b"",
    )?;
    ensure!(o.status.success(), "topic create: {}", stderr(&o));
    // A line longer than a TLS record (16 KiB) and some short ones.
    let long = "x".repeat(100_000);
    let input = format!("one\ntwo\n{long}\nfour\n");
    let o = run(addr, &["produce", "t"], ca, input.as_bytes())?;
    ensure!(o.status.success(), "produce: {}", stderr(&o));
    ensure!(
        stderr(&o).starts_with("produced 4 messages"),
        "{}",
        stderr(&o)
    );
    // Consume with the CA from the environment this time.
    let mut cmd = warren();
    cmd.args(["consume", "t", "--from-beginning", "--max-messages", "4"])
        .arg("--broker")
        .arg(addr.to_string())
        .env("WARREN_TLS_CA", &pki.ca);
    let o = output_of(cmd, b"")?;
    ensure!(o.status.success(), "consume: {}", stderr(&o));
    let mut got: Vec<String> = String::from_utf8(o.stdout)?
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    let mut want = vec!["one".to_string(), "two".into(), long, "four".into()];
    want.sort();
    ensure!(got == want, "consumed {} lines", got.len());

    // Without --tls-ca: an error, one line, exit 1.
    let o = run(addr, &["topic", "list"], None, b"")?;
    ensure!(o.status.code() == Some(1), "{:?}", o.status);
    ensure!(
        stderr(&o).contains("the broker answered with TLS"),
        "{}",
        stderr(&o)
    );
    ensure!(stderr(&o).starts_with("Error: "), "{}", stderr(&o));
    ensure!(stderr(&o).lines().count() == 1, "{}", stderr(&o));
    // With a CA that did not sign the broker's certificate: says so.
    let stranger = make_pki(dir.path(), "stranger")?;
    let o = run(addr, &["topic", "list"], Some(&stranger.ca), b"")?;
    ensure!(o.status.code() == Some(1), "{:?}", o.status);
    let err = stderr(&o);
    ensure!(err.contains("certificate was refused"), "{err}");
    ensure!(err.contains("stranger-ca.pem"), "{err}");
    // With --tls-server-name the certificate must carry that name.
    let o = run(
        addr,
        &["topic", "list", "--tls-server-name", "localhost"],
        ca,
        b"",
    )?;
    ensure!(o.status.success(), "{}", stderr(&o));
    ensure!(String::from_utf8_lossy(&o.stdout).contains('t'));
    Ok(())
}

#[test]
fn serve_refuses_unusable_certificate_settings() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = make_pki(dir.path(), "broker")?;
    let missing = dir.path().join("missing.pem");
    let serve = |args: &[&std::ffi::OsStr]| -> Result<String> {
        let mut cmd = warren();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args);
        let o = output_of(cmd, b"")?;
        ensure!(o.status.code() == Some(1), "serve exited {:?}", o.status);
        Ok(stderr(&o))
    };
    let err = serve(&[
        "--tls-cert".as_ref(),
        missing.as_os_str(),
        "--tls-key".as_ref(),
        pki.key.as_os_str(),
    ])?;
    ensure!(err.contains("missing.pem"), "{err}");
    ensure!(err.contains("cannot read the certificate file"), "{err}");
    let err = serve(&["--tls-cert".as_ref(), pki.cert.as_os_str()])?;
    ensure!(err.contains("tls_key is not"), "{err}");
    let err = serve(&[
        "--tls-cert".as_ref(),
        pki.key.as_os_str(),
        "--tls-key".as_ref(),
        pki.key.as_os_str(),
    ])?;
    ensure!(err.contains("no certificate in it"), "{err}");
    ensure!(
        !dir.path().join("data").exists(),
        "the data dir was created"
    );
    Ok(())
}
