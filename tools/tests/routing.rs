//! Routing through the real `warren` binary against a real broker process on
//! 127.0.0.1:0: `topic create --routing`, `bind`/`unbind`, `produce --key`,
//! `consume --partition`, `topic describe`, and bindings across a kill -9.

mod common;
mod run;

use anyhow::{Result, ensure};
use common::BrokerProcess;
use run::{partition_offsets, read_partition, single_error_line, stdout, warren, warren_ok};

/// `(offset, value)` pairs.
fn records(values: &[(u64, &str)]) -> Vec<(u64, String)> {
    values.iter().map(|(o, v)| (*o, (*v).to_owned())).collect()
}

/// Log end offset per partition.
fn ends(broker: &BrokerProcess, topic: &str) -> Result<Vec<u64>> {
    Ok(partition_offsets(broker, topic)?
        .into_iter()
        .map(|(end, _)| end)
        .collect())
}

#[test]
fn direct_and_topic_routing_through_the_cli() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;

    // direct: exact keys, one bound to two partitions.
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--routing",
            "direct",
        ],
        b"",
    )?;
    let out = warren_ok(
        &broker,
        &[
            "bind",
            "orders",
            "eu",
            "--partition",
            "0",
            "--partition",
            "2",
        ],
        b"",
    )?;
    assert_eq!(stdout(&out), "bound \"eu\" to orders partitions 0, 2\n");
    warren_ok(&broker, &["bind", "orders", "us", "--partition", "1"], b"")?;
    warren_ok(&broker, &["produce", "orders", "--key", "eu"], b"e1\ne2\n")?;
    warren_ok(&broker, &["produce", "orders", "--key", "us"], b"u1\n")?;
    let eu = records(&[(0, "e1"), (1, "e2")]);
    assert_eq!(read_partition(&broker, "orders", 0, 2)?, eu);
    assert_eq!(
        read_partition(&broker, "orders", 1, 1)?,
        records(&[(0, "u1")])
    );
    assert_eq!(read_partition(&broker, "orders", 2, 2)?, eu);

    // An unbound key: one clear error line, exit 1, nothing written.
    let out = warren(&broker, &["produce", "orders", "--key", "asia"], b"lost\n")?;
    let line = single_error_line(&out)?;
    ensure!(
        line.contains("UNROUTABLE")
            && line.contains("no binding of topic orders matches routing key \"asia\""),
        "{line}"
    );
    assert_eq!(ends(&broker, "orders")?, [2, 1, 2]);

    let described = stdout(&warren_ok(&broker, &["topic", "describe", "orders"], b"")?);
    ensure!(
        described
            .starts_with("Topic: orders  Partitions: 3  Routing: direct  Alternate-topic: -\n"),
        "{described}"
    );
    ensure!(
        described
            .lines()
            .any(|l| l.split_whitespace().eq(["routing", "direct"])),
        "{described}"
    );
    ensure!(described.contains("\n  alternate.topic\n"), "{described}");
    ensure!(
        described.ends_with("BINDING  PARTITIONS\neu       0,2\nus       1\n"),
        "{described}"
    );

    // Unbind one partition: eu now reaches partition 2 only.
    let out = warren_ok(
        &broker,
        &["unbind", "orders", "eu", "--partition", "0"],
        b"",
    )?;
    assert_eq!(stdout(&out), "unbound \"eu\" from orders partitions 0\n");
    warren_ok(&broker, &["produce", "orders", "--key", "eu"], b"e3\n")?;
    assert_eq!(ends(&broker, "orders")?, [2, 1, 3]);
    assert_eq!(
        read_partition(&broker, "orders", 2, 3)?,
        records(&[(0, "e1"), (1, "e2"), (2, "e3")])
    );

    // topic: patterns, and an alternate topic for what matches none.
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "events",
            "--partitions",
            "3",
            "--routing",
            "topic",
            "--alternate-topic",
            "spill",
        ],
        b"",
    )?;
    warren_ok(
        &broker,
        &["topic", "create", "spill", "--partitions", "1"],
        b"",
    )?;
    let described = stdout(&warren_ok(&broker, &["topic", "describe", "events"], b"")?);
    ensure!(
        described.contains("Routing: topic  Alternate-topic: spill"),
        "{described}"
    );
    ensure!(described.ends_with("Bindings: (none)\n"), "{described}");
    warren_ok(
        &broker,
        &["bind", "events", "orders.*.eu", "--partition", "0"],
        b"",
    )?;
    warren_ok(
        &broker,
        &["bind", "events", "orders.#", "--partition", "1"],
        b"",
    )?;
    warren_ok(
        &broker,
        &["bind", "events", "#.refund", "--partition", "2"],
        b"",
    )?;
    for (key, value) in [
        ("orders.paid.eu", "a"),
        ("orders", "b"),
        ("cards.refund", "c"),
        ("orders.x.refund", "d"),
        ("other.thing", "e"),
    ] {
        warren_ok(
            &broker,
            &["produce", "events", "--key", key],
            format!("{value}\n").as_bytes(),
        )?;
    }
    assert_eq!(
        read_partition(&broker, "events", 0, 1)?,
        records(&[(0, "a")])
    );
    assert_eq!(
        read_partition(&broker, "events", 1, 3)?,
        records(&[(0, "a"), (1, "b"), (2, "d")])
    );
    assert_eq!(
        read_partition(&broker, "events", 2, 2)?,
        records(&[(0, "c"), (1, "d")])
    );
    assert_eq!(
        read_partition(&broker, "spill", 0, 1)?,
        records(&[(0, "e")])
    );
    assert_eq!(ends(&broker, "events")?, [1, 3, 2]);

    // Refusals: one line each, exit 1, with the broker's reason.
    warren_ok(
        &broker,
        &["topic", "create", "plain", "--partitions", "1"],
        b"",
    )?;
    for (args, reason) in [
        (
            vec!["bind", "orders", "k", "--partition", "9"],
            "partition 9 does not exist",
        ),
        (
            vec!["bind", "plain", "k", "--partition", "0"],
            "routes by hash",
        ),
        (
            vec!["bind", "nope", "k", "--partition", "0"],
            "unknown topic \"nope\"",
        ),
        (
            vec!["unbind", "orders", "k", "--partition", "3"],
            "INVALID_BINDING",
        ),
    ] {
        let line = single_error_line(&warren(&broker, &args, b"")?)?;
        ensure!(line.contains(reason), "{args:?}: {line}");
    }
    let out = warren(
        &broker,
        &[
            "topic",
            "create",
            "x",
            "--partitions",
            "1",
            "--routing",
            "fanout",
        ],
        b"",
    )?;
    assert_eq!(out.status.code(), Some(1));
    let line = single_error_line(&warren(
        &broker,
        &[
            "topic",
            "create",
            "x",
            "--partitions",
            "1",
            "--alternate-topic",
            "spill",
        ],
        b"",
    )?)?;
    ensure!(line.contains("INVALID_CONFIG"), "{line}");
    Ok(())
}

#[test]
fn bindings_survive_kill_9() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "2",
            "--routing",
            "topic",
        ],
        b"",
    )?;
    warren_ok(&broker, &["bind", "t", "a.#", "--partition", "0,1"], b"")?;
    warren_ok(&broker, &["bind", "t", "b", "--partition", "1"], b"")?;
    warren_ok(&broker, &["unbind", "t", "b", "--partition", "1"], b"")?;
    // Acknowledged means durable: no clean shutdown, no chance to flush.
    broker.kill9()?;

    let broker = BrokerProcess::start(dir.path())?;
    let described = stdout(&warren_ok(&broker, &["topic", "describe", "t"], b"")?);
    ensure!(
        described.ends_with("BINDING  PARTITIONS\na.#      0,1\n"),
        "{described}"
    );
    warren_ok(&broker, &["produce", "t", "--key", "a.x"], b"after\n")?;
    assert_eq!(
        read_partition(&broker, "t", 0, 1)?,
        records(&[(0, "after")])
    );
    assert_eq!(
        read_partition(&broker, "t", 1, 1)?,
        records(&[(0, "after")])
    );
    let out = warren(&broker, &["produce", "t", "--key", "b"], b"x\n")?;
    ensure!(single_error_line(&out)?.contains("UNROUTABLE"));
    Ok(())
}
