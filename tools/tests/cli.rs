//! End-to-end tests of `warren topic`, `warren produce` and `warren consume`:
//! the real binary against a real broker process on 127.0.0.1:0.

mod common;
mod run;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::BrokerProcess;
use run::{
    COMMAND_DEADLINE, check_ok, json_lines, run, single_error_line, stderr, stdout, warren,
    warren_ok,
};
use serde_json::Value;

#[test]
fn cli_round_trip() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &["topic", "create", "rt", "--partitions", "1"],
        b"",
    )?;

    // An empty line, spaces and unicode, bytes that are not UTF-8 (a lone
    // 0xff, a NUL, a CR kept as data), and a last line without a newline.
    let messages: Vec<&[u8]> = vec![
        b"hello",
        b"",
        "with  spaces and \u{fc}nic\u{f6}de \u{1f980}".as_bytes(),
        &[0xff, 0xfe, 0x00, 0x80, b'x'],
        b"carriage\r",
        b"last line without newline",
    ];
    let mut input = messages.join(&b'\n');
    let value_bytes: usize = messages.iter().map(|m| m.len()).sum();
    let output = warren_ok(&broker, &["produce", "rt"], &input)?;
    let summary = stderr(&output);
    ensure!(
        summary.starts_with(&format!(
            "produced 6 messages ({value_bytes} bytes) to rt in "
        )),
        "summary: {summary}"
    );
    ensure!(stdout(&output).is_empty());

    let output = warren_ok(
        &broker,
        &["consume", "rt", "--from-beginning", "--max-messages", "6"],
        b"",
    )?;
    input.push(b'\n');
    assert_eq!(
        output.stdout,
        input,
        "consume printed:\n{}",
        stdout(&output)
    );

    let output = warren_ok(
        &broker,
        &[
            "consume",
            "rt",
            "--from-beginning",
            "--max-messages",
            "6",
            "--format",
            "json",
        ],
        b"",
    )?;
    let records = json_lines(&output)?;
    assert_eq!(records.len(), 6);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["topic"], "rt");
        assert_eq!(r["partition"], 0);
        assert_eq!(r["offset"], i as u64);
        let ts = r["timestamp"].as_i64().context("timestamp")?;
        ensure!(
            (now_ms - 60_000..=now_ms + 1000).contains(&ts),
            "timestamp {ts}"
        );
        assert_eq!(r["key"], Value::Null);
        assert_eq!(r["headers"], serde_json::json!([]));
        let keys: Vec<&str> = r
            .as_object()
            .context("object")?
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "headers",
                "key",
                "offset",
                "partition",
                "timestamp",
                "topic",
                "value"
            ]
        );
    }
    assert_eq!(records[0]["value"], "hello");
    assert_eq!(records[1]["value"], "");
    assert_eq!(
        records[2]["value"],
        "with  spaces and \u{fc}nic\u{f6}de \u{1f980}"
    );
    assert_eq!(
        records[3]["value"],
        serde_json::json!({"hex": "fffe008078"})
    );
    assert_eq!(records[4]["value"], "carriage\r");
    assert_eq!(records[5]["value"], "last line without newline");

    // Keys: --key on produce shows up in JSON; the partition follows the key.
    warren_ok(
        &broker,
        &["produce", "rt", "--key", "k-1"],
        b"keyed one\nkeyed two\n",
    )?;
    let output = warren_ok(
        &broker,
        &[
            "consume",
            "rt",
            "--partition",
            "0",
            "--offset",
            "6",
            "--max-messages",
            "2",
            "--format",
            "json",
        ],
        b"",
    )?;
    let records = json_lines(&output)?;
    assert_eq!(records.len(), 2);
    for (r, (offset, value)) in records.iter().zip([(6, "keyed one"), (7, "keyed two")]) {
        assert_eq!(r["offset"], offset);
        assert_eq!(r["key"], "k-1");
        assert_eq!(r["value"], value);
    }
    Ok(())
}

#[test]
fn consume_reads_every_partition_and_starts_at_the_end_by_default() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &["topic", "create", "multi", "--partitions", "3"],
        b"",
    )?;
    for p in 0..3 {
        let lines = format!("p{p}-a\np{p}-b\n");
        warren_ok(
            &broker,
            &["produce", "multi", "--partition", &p.to_string()],
            lines.as_bytes(),
        )?;
    }

    // Every partition from the beginning; per partition in offset order.
    let output = warren_ok(
        &broker,
        &[
            "consume",
            "multi",
            "--from-beginning",
            "--max-messages",
            "6",
            "--format",
            "json",
        ],
        b"",
    )?;
    let records = json_lines(&output)?;
    assert_eq!(records.len(), 6);
    for p in 0..3u64 {
        let got: Vec<(u64, String)> = records
            .iter()
            .filter(|r| r["partition"] == p)
            .map(|r| {
                (
                    r["offset"].as_u64().unwrap_or(u64::MAX),
                    r["value"].to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [(0, format!("\"p{p}-a\"")), (1, format!("\"p{p}-b\""))],
            "partition {p}"
        );
    }

    // By default only new records: the six old ones are not printed, and
    // --timeout-ms ends the wait with exit 0.
    let start = Instant::now();
    let output = warren_ok(&broker, &["consume", "multi", "--timeout-ms", "500"], b"")?;
    assert_eq!(stdout(&output), "");
    ensure!(start.elapsed() < Duration::from_secs(10));

    // A record produced while the consumer waits is printed. The consumer
    // looks up the end when it starts, so keep producing (boundedly) until it
    // has seen one.
    let addr = broker.broker_arg();
    let mut cmd = common::warren();
    cmd.args([
        "consume",
        "multi",
        "--max-messages",
        "1",
        "--timeout-ms",
        "20000",
        "--broker",
        &addr,
    ]);
    let consumer = run::spawn(cmd, b"")?;
    let pid = consumer.id();
    let mut produced = 0;
    while produced < 60 && process_alive(pid) {
        warren_ok(
            &broker,
            &["produce", "multi"],
            format!("new-{produced}\n").as_bytes(),
        )?;
        produced += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = consumer.wait(COMMAND_DEADLINE)?;
    check_ok(&output, "consume of new records")?;
    let out = stdout(&output);
    ensure!(
        out.starts_with("new-") && out.ends_with('\n') && out.lines().count() == 1,
        "stdout: {out:?}"
    );
    Ok(())
}

#[test]
fn consume_ends_quietly_when_its_reader_goes() -> Result<()> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &["topic", "create", "pipe", "--partitions", "1"],
        b"",
    )?;
    // 5 lines fit in the pipe: the reader's exit is noticed without a write.
    // 50000 do not: the next write fails with EPIPE.
    let mut produced = 0;
    for count in [5, 50_000] {
        let lines: String = (produced..produced + count)
            .map(|i| format!("line {i}\n"))
            .collect();
        warren_ok(&broker, &["produce", "pipe"], lines.as_bytes())?;
        produced += count;
        let mut child = common::warren()
            .args([
                "consume",
                "pipe",
                "--from-beginning",
                "--broker",
                &broker.broker_arg(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        assert_eq!(first, "line 0\n");
        // Like `head -1`: go away without reading the rest.
        drop(stdout);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("consume kept running after its reader left ({count} records)");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .context("stderr")?
            .read_to_string(&mut err)?;
        ensure!(
            status.code() == Some(0),
            "{count} records: {status:?}, stderr: {err}"
        );
        ensure!(err.is_empty(), "{count} records: stderr: {err}");
    }
    Ok(())
}

#[test]
fn consume_without_a_limit_ends_on_sigint_and_sigterm_with_exit_0() -> Result<()> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &["topic", "create", "sig", "--partitions", "2"],
        b"",
    )?;
    warren_ok(&broker, &["produce", "sig", "--partition", "1"], b"only\n")?;
    for signal in ["-INT", "-TERM"] {
        let mut child = common::warren()
            .args([
                "consume",
                "sig",
                "--from-beginning",
                "--broker",
                &broker.broker_arg(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Once a record is printed the handlers are installed and the
        // consumer is long-polling for more.
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        assert_eq!(first, "only\n");
        let killed = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        ensure!(killed.success());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("consume ignored SIG{}", &signal[1..]);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .context("stderr")?
            .read_to_string(&mut err)?;
        ensure!(
            status.code() == Some(0),
            "{signal}: {status:?}, stderr: {err}"
        );
        assert_eq!(err, "consumed 1 messages from sig\n");
    }
    Ok(())
}

/// True while `pid` has not exited (a zombie counts as exited).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn topic_create_list_describe_delete() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;

    let output = warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "alpha",
            "--partitions",
            "3",
            "--durability",
            "interval:50",
            "--retention-bytes",
            "1048576",
            "--retention-ms",
            "-1",
            "--segment-bytes",
            "65536",
            "--max-message-bytes",
            "4096",
        ],
        b"",
    )?;
    assert_eq!(stdout(&output), "created topic alpha\n");
    warren_ok(
        &broker,
        &["topic", "create", "beta", "--partitions", "1"],
        b"",
    )?;

    // Creating it twice fails with one line naming the topic.
    let output = warren(
        &broker,
        &["topic", "create", "alpha", "--partitions", "1"],
        b"",
    )?;
    let line = single_error_line(&output)?;
    ensure!(
        line.contains("alpha") && line.contains("already exists"),
        "{line}"
    );

    // The broker's own checks come back as one line too.
    let output = warren(
        &broker,
        &["topic", "create", "gamma", "--partitions", "0"],
        b"",
    )?;
    let line = single_error_line(&output)?;
    ensure!(
        line.contains("gamma") && line.contains("INVALID_PARTITIONS"),
        "{line}"
    );
    let output = warren(
        &broker,
        &["topic", "create", "bad/name", "--partitions", "1"],
        b"",
    )?;
    single_error_line(&output)?;

    let output = warren_ok(&broker, &["topic", "list"], b"")?;
    let rows: Vec<Vec<String>> = stdout(&output)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        rows,
        [["TOPIC", "PARTITIONS"], ["alpha", "3"], ["beta", "1"]],
        "list:\n{}",
        stdout(&output)
    );

    warren_ok(
        &broker,
        &["produce", "alpha", "--partition", "1"],
        b"a\nb\nc\n",
    )?;
    let output = warren_ok(&broker, &["topic", "describe", "alpha"], b"")?;
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("Topic: alpha  Partitions: 3  Routing: hash"),
        "{text}"
    );
    let config = |key: &str| -> Option<String> {
        lines.iter().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(key)).then(|| words.collect::<Vec<_>>().join(" "))
        })
    };
    assert_eq!(
        config("durability").as_deref(),
        Some("interval:50"),
        "{text}"
    );
    assert_eq!(
        config("retention.bytes").as_deref(),
        Some("1048576"),
        "{text}"
    );
    assert_eq!(config("retention.ms").as_deref(), Some("-1"), "{text}");
    assert_eq!(config("segment.bytes").as_deref(), Some("65536"), "{text}");
    assert_eq!(
        config("max.message.bytes").as_deref(),
        Some("4096"),
        "{text}"
    );
    // Defaults are listed too.
    assert_eq!(config("segment.ms").as_deref(), Some("604800000"), "{text}");
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("PARTITION"))
        .context("no partition table")?;
    let columns: Vec<&str> = lines[header].split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "PARTITION",
            "LOG_START_OFFSET",
            "LOG_END_OFFSET",
            "HIGH_WATERMARK",
            "SIZE",
            "SEGMENTS"
        ]
    );
    let rows: Vec<Vec<&str>> = lines[header + 1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (p, row) in rows.iter().enumerate() {
        let end = if p == 1 { "3" } else { "0" };
        assert_eq!(row[..4], [p.to_string().as_str(), "0", end, end], "{text}");
        assert_eq!(row[5], "1", "{text}");
        let size = row[4];
        if p == 1 {
            ensure!(size.ends_with('B') && size != "0B", "size {size}");
        } else {
            assert_eq!(size, "0B");
        }
    }

    // Unknown topics: exit 1, one line naming the topic.
    let output = warren(&broker, &["topic", "describe", "nope"], b"")?;
    let line = single_error_line(&output)?;
    ensure!(line.contains("nope"), "{line}");
    assert_eq!(stdout(&output), "");

    let output = warren_ok(&broker, &["topic", "delete", "beta"], b"")?;
    assert_eq!(stdout(&output), "deleted topic beta\n");
    let output = warren_ok(&broker, &["topic", "list"], b"")?;
    ensure!(!stdout(&output).contains("beta"), "{}", stdout(&output));
    for args in [["topic", "describe", "beta"], ["topic", "delete", "beta"]] {
        let output = warren(&broker, &args, b"")?;
        let line = single_error_line(&output)?;
        ensure!(line.contains("beta"), "{line}");
    }

    // Produce and consume to an unknown topic or partition fail the same way.
    let output = warren(&broker, &["produce", "beta"], b"x\n")?;
    let line = single_error_line(&output)?;
    ensure!(line.contains("beta"), "{line}");
    let output = warren(&broker, &["produce", "alpha", "--partition", "7"], b"x\n")?;
    let line = single_error_line(&output)?;
    ensure!(line.contains("alpha") && line.contains('7'), "{line}");
    let output = warren(&broker, &["consume", "beta", "--timeout-ms", "100"], b"")?;
    let line = single_error_line(&output)?;
    ensure!(line.contains("beta"), "{line}");
    Ok(())
}

#[test]
fn produce_reports_a_refused_message_with_one_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "small",
            "--partitions",
            "1",
            "--max-message-bytes",
            "4096",
        ],
        b"",
    )?;
    // Many short lines fit: batches are cut at the topic's limit.
    let lines: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    let output = warren_ok(
        &broker,
        &["produce", "small", "--linger-ms", "50"],
        lines.as_bytes(),
    )?;
    ensure!(
        stderr(&output).starts_with("produced 3000 messages"),
        "{}",
        stderr(&output)
    );
    // One line larger than the limit does not.
    let big = vec![b'x'; 8192];
    let output = warren(&broker, &["produce", "small"], &big)?;
    let line = single_error_line(&output)?;
    ensure!(
        line.contains("small") && line.contains("too large"),
        "{line}"
    );
    Ok(())
}

#[test]
fn unreachable_broker_fails_fast_with_one_line() -> Result<()> {
    // A port nobody listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let commands: [&[&str]; 5] = [
        &["topic", "list"],
        &["topic", "create", "t", "--partitions", "1"],
        &["topic", "describe", "t"],
        &["produce", "t"],
        &["consume", "t", "--from-beginning"],
    ];
    for args in commands {
        let start = Instant::now();
        let mut all = args.to_vec();
        all.extend(["--broker", &addr]);
        let output = run(&all, b"x\n", COMMAND_DEADLINE)?;
        let elapsed = start.elapsed();
        let line = single_error_line(&output)?;
        ensure!(
            line.starts_with(&format!(
                "Error: cannot connect to {addr}: Connection refused"
            )),
            "{args:?}: {line}"
        );
        ensure!(
            elapsed < Duration::from_secs(5),
            "{args:?} took {elapsed:?}"
        );
    }

    // WARREN_BROKER is the default for --broker.
    let mut cmd = common::warren();
    cmd.args(["topic", "list"]).env("WARREN_BROKER", &addr);
    let output = run::spawn(cmd, b"")?.wait(COMMAND_DEADLINE)?;
    let line = single_error_line(&output)?;
    ensure!(line.contains(&addr), "{line}");
    Ok(())
}

#[test]
fn silent_broker_fails_within_the_connect_timeout() -> Result<()> {
    // Bound but never accepted: the kernel completes the TCP handshake, and
    // the ApiVersions request is never answered.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let start = Instant::now();
    let output = run(&["topic", "list", "--broker", &addr], b"", COMMAND_DEADLINE)?;
    let elapsed = start.elapsed();
    let line = single_error_line(&output)?;
    ensure!(
        line.starts_with(&format!("Error: cannot connect to {addr}: "))
            && line.contains("timed out"),
        "{line}"
    );
    // The CLI's connect timeout is 5 s (the client's default is 10 s).
    ensure!(elapsed < Duration::from_secs(9), "took {elapsed:?}");
    drop(listener);
    Ok(())
}

#[test]
fn usage_errors_exit_1() -> Result<()> {
    for args in [
        &["topic", "create", "t"][..],
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "1",
            "--durability",
            "always",
        ],
        &["produce", "t", "--acks", "2"],
        &["consume", "t", "--offset", "3"],
        &["consume", "t", "--format", "xml"],
    ] {
        let output = run(args, b"", COMMAND_DEADLINE)?;
        if output.status.code() != Some(1) {
            bail!(
                "{args:?}: exit {:?}, stderr {}",
                output.status,
                stderr(&output)
            );
        }
    }
    Ok(())
}

/// `warren serve` on 0.0.0.0 with no users: one line naming both ways out,
/// exit 1, nothing listening; `--allow-anonymous` is the on-purpose switch.
#[test]
fn serve_with_no_users_refuses_a_public_address_in_one_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let serve = |extra: &[&str], log: &str| -> Result<std::process::Output> {
        let mut cmd = common::warren();
        cmd.args(["serve", "--listen", "0.0.0.0:0", "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .env("RUST_LOG", log);
        run::spawn(cmd, b"")?.wait(COMMAND_DEADLINE)
    };
    // Logs off: the error is all there is, on one line.
    let output = serve(&[], "off")?;
    let line = single_error_line(&output)?;
    ensure!(line.contains("0.0.0.0"), "{line}");
    ensure!(line.contains("warren user add"), "{line}");
    ensure!(line.contains("--allow-anonymous"), "{line}");
    ensure!(!data.exists(), "the data dir was created");
    // With the default logs the error is still the last line, exit 1.
    let output = serve(&[], "info")?;
    ensure!(output.status.code() == Some(1), "exit {:?}", output.status);
    let err = stderr(&output);
    ensure!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("Error: refusing to start")),
        "{err}"
    );
    ensure!(!err.contains("warren broker started"), "{err}");
    // The switch reaches the config.
    let output = serve(&["--allow-anonymous", "--print-config"], "off")?;
    check_ok(&output, "serve --allow-anonymous --print-config")?;
    ensure!(
        stdout(&output).contains("allow_anonymous = true"),
        "{}",
        stdout(&output)
    );
    Ok(())
}
