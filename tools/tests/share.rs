//! Share groups against a real `warren serve` process: their state survives
//! `kill -9` (nothing acknowledged comes back, nothing unacknowledged is
//! lost), and `warren consume --share-group` drains (`--ack`), dead-letters
//! (`--reject-all`) or only inspects (no flag) a queue.
//!
//! Every loop is bounded in count and time; nothing asserts on durations.

mod common;
mod run;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::BrokerProcess;
use run::{json_lines, partition_offsets, stderr, stdout, warren_ok};
use serde_json::Value;
use warren_client::{ConnectionConfig, ShareConsumer, ShareConsumerConfig, ShareRecord};

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn member(
    broker: &BrokerProcess,
    group: &str,
    topic: &str,
    id: &str,
) -> Result<ShareConsumer> {
    let config = ShareConsumerConfig {
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..ConnectionConfig::new(broker.broker_arg())
        },
        max_records: 10_000,
        member_id: Some(id.into()),
    };
    Ok(ShareConsumer::new(config, group, topic).await?)
}

/// Polls (at most `polls` times, 200 ms each) until `n` records came.
async fn poll_n(c: &mut ShareConsumer, n: usize, polls: usize) -> Result<Vec<ShareRecord>> {
    let mut out = Vec::new();
    for _ in 0..polls {
        if out.len() >= n {
            break;
        }
        out.extend(c.poll(Duration::from_millis(200)).await?);
    }
    Ok(out)
}

#[test]
fn share_group_state_survives_kill9() -> Result<()> {
    const N: u64 = 1000;
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "q",
            "--partitions",
            "2",
            "--durability",
            "fsync",
        ],
        b"",
    )?;
    let lines: String = (0..N).map(|i| format!("m{i}\n")).collect();
    warren_ok(&broker, &["produce", "q", "--acks", "-1"], lines.as_bytes())?;
    let rt = runtime()?;

    // Acknowledge about two thirds, hold the rest (acquired, never acknowledged).
    let (acked, held) = rt.block_on(async {
        let mut c = member(&broker, "workers", "q", "before").await?;
        let got = poll_n(&mut c, N as usize, 50).await?;
        ensure!(got.len() as u64 == N, "got {} of {N} records", got.len());
        let mut acked = BTreeSet::new();
        let mut held = BTreeSet::new();
        for r in &got {
            ensure!(r.delivery_count == 1);
            if r.offset % 3 == 0 {
                held.insert((r.partition, r.offset));
            } else {
                c.ack(r)?;
                acked.insert((r.partition, r.offset));
            }
        }
        // Answered once durable: these must never come back.
        c.commit().await?;
        drop(c); // no close: the broker dies with the locks held
        anyhow::Ok((acked, held))
    })?;
    broker.kill9()?;

    let broker = BrokerProcess::start(dir.path())?;
    let offsets = partition_offsets(&broker, "q")?;
    ensure!(
        offsets.iter().map(|(end, _)| end).sum::<u64>() == N,
        "log offsets after restart: {offsets:?}"
    );
    rt.block_on(async {
        let mut c = member(&broker, "workers", "q", "after").await?;
        let got = poll_n(&mut c, held.len(), 50).await?;
        let back: Vec<(u32, u64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
        let unique: BTreeSet<(u32, u64)> = back.iter().copied().collect();
        ensure!(unique.len() == back.len(), "a record came back twice");
        ensure!(unique.is_disjoint(&acked), "acknowledged records came back");
        ensure!(
            unique == held,
            "{} held records, {} came back",
            held.len(),
            unique.len()
        );
        for r in &got {
            // The commit wrote their first delivery; the lock did not survive.
            ensure!(
                r.delivery_count == 2,
                "offset {} count {}",
                r.offset,
                r.delivery_count
            );
            c.ack(r)?;
        }
        c.commit().await?;
        drop(c);
        anyhow::Ok(())
    })?;

    // Everything acknowledged now: after another kill -9 nothing comes back.
    broker.kill9()?;
    let broker = BrokerProcess::start(dir.path())?;
    rt.block_on(async {
        let mut c = member(&broker, "workers", "q", "last").await?;
        let got = poll_n(&mut c, 1, 5).await?;
        ensure!(got.is_empty(), "{} records came back", got.len());
        c.close().await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

fn offsets_and_counts(records: &[Value]) -> Result<Vec<(u64, u64)>> {
    records
        .iter()
        .map(|r| {
            Ok((
                r["offset"].as_u64().context("offset")?,
                r["delivery_count"].as_u64().context("delivery_count")?,
            ))
        })
        .collect()
}

#[test]
fn consume_share_group_ack_drains_reject_all_dead_letters_and_default_only_inspects() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let help = warren_ok(&broker, &["consume", "--help"], b"")?;
    ensure!(
        stdout(&help).contains("released at exit"),
        "--help does not say the default releases: {}",
        stdout(&help)
    );
    warren_ok(
        &broker,
        &["topic", "create", "q.dlq", "--partitions", "1"],
        b"",
    )?;
    warren_ok(
        &broker,
        &[
            "topic",
            "create",
            "q",
            "--partitions",
            "1",
            "--dead-letter-topic",
            "q.dlq",
        ],
        b"",
    )?;
    let describe = warren_ok(&broker, &["topic", "describe", "q"], b"")?;
    ensure!(stdout(&describe).contains("dead.letter.topic"));
    ensure!(stdout(&describe).contains("q.dlq"));
    let lines: String = (0..10).map(|i| format!("m{i}\n")).collect();
    warren_ok(&broker, &["produce", "q"], lines.as_bytes())?;
    let share = |extra: &[&str]| -> Result<Vec<Value>> {
        let mut args = vec![
            "consume",
            "q",
            "--share-group",
            "ops",
            "--format",
            "json",
            "--timeout-ms",
            "1500",
        ];
        args.extend_from_slice(extra);
        json_lines(&warren_ok(&broker, &args, b"")?)
    };

    // Inspect twice: the same records, one more delivery each time.
    let first = share(&[])?;
    ensure!(
        offsets_and_counts(&first)? == (0..10).map(|o| (o, 1)).collect::<Vec<_>>(),
        "{first:?}"
    );
    let second = share(&["--max-messages", "4"])?;
    ensure!(
        offsets_and_counts(&second)? == (0..4).map(|o| (o, 2)).collect::<Vec<_>>(),
        "{second:?}"
    );
    ensure!(second[0]["value"] == "m0" && second[0]["topic"] == "q");

    // --ack drains the queue; a second run gets nothing.
    let output = warren_ok(
        &broker,
        &[
            "consume",
            "q",
            "--share-group",
            "ops",
            "--ack",
            "--timeout-ms",
            "1500",
        ],
        b"",
    )?;
    let text = stdout(&output);
    let values: Vec<String> = text.lines().map(str::to_owned).collect();
    ensure!(
        values == (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "{values:?}"
    );
    ensure!(
        stderr(&output).contains("consumed 10 messages from q (share group ops, acknowledged)"),
        "{}",
        stderr(&output)
    );
    ensure!(
        share(&["--ack"])?.is_empty(),
        "a drained queue gave records"
    );

    // --reject-all sends new records to the dead-letter topic.
    warren_ok(&broker, &["produce", "q"], b"bad-1\nbad-2\n")?;
    let rejected = share(&["--reject-all"])?;
    ensure!(
        offsets_and_counts(&rejected)? == [(10, 1), (11, 1)],
        "{rejected:?}"
    );
    ensure!(
        share(&[])?.is_empty(),
        "rejected records are not delivered again"
    );
    let dead = json_lines(&warren_ok(
        &broker,
        &[
            "consume",
            "q.dlq",
            "--from-beginning",
            "--max-messages",
            "2",
            "--format",
            "json",
            "--timeout-ms",
            "10000",
        ],
        b"",
    )?)?;
    ensure!(dead.len() == 2, "{dead:?}");
    for (record, (offset, value)) in dead.iter().zip([(10, "bad-1"), (11, "bad-2")]) {
        ensure!(record["value"] == value, "{record}");
        let headers = record["headers"].as_array().context("headers")?;
        let header = |key: &str| {
            headers
                .iter()
                .find(|h| h["key"] == key)
                .and_then(|h| h["value"].as_str())
                .map(str::to_owned)
        };
        ensure!(header("x-origin-topic").as_deref() == Some("q"), "{record}");
        ensure!(
            header("x-origin-partition").as_deref() == Some("0"),
            "{record}"
        );
        ensure!(
            header("x-origin-offset") == Some(offset.to_string()),
            "{record}"
        );
        ensure!(
            header("x-delivery-count").as_deref() == Some("1"),
            "{record}"
        );
        ensure!(
            header("x-death-reason").as_deref() == Some("rejected"),
            "{record}"
        );
    }
    Ok(())
}
