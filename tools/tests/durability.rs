//! Crash and shutdown tests against a real `warren serve` process: what the
//! broker acknowledged survives `kill -9`, a SIGTERM with clients mid-request
//! exits 0 and leaves logs that reopen without a recovery scan.
//!
//! Records are written with the real `warren produce` or, where the test must
//! know exactly which deliveries were acknowledged before a crash, with an
//! in-process `warren_client::Producer`; they are read back with
//! `warren consume --format json`. Every loop is bounded in count and time.

mod common;
mod run;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::BrokerProcess;
use run::{partition_offsets, read_partition, runtime, warren_ok};
use warren_client::{
    Acks, ConnectionConfig, Consumer, ConsumerConfig, DeliveryFuture, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord,
};

/// Storage's log lines that mean a partition was opened with a recovery scan
/// (storage/src/log/recovery.rs, `PartitionLog::open`). A clean open logs none of them.
const RECOVERY_LINES: [&str; 4] = [
    "log recovered",
    "flushed segment fails its checks, recovering it",
    "truncated log at the first invalid batch",
    "unreadable recovery point, scanning every segment",
];

/// Client settings for a broker that is about to die: give up quickly.
fn connection(broker: &BrokerProcess) -> ConnectionConfig {
    ConnectionConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        reconnect_backoff: Duration::from_millis(20),
        reconnect_backoff_max: Duration::from_millis(200),
        ..ConnectionConfig::new(broker.broker_arg())
    }
}

fn producer_config(broker: &BrokerProcess) -> ProducerConfig {
    ProducerConfig {
        connection: connection(broker),
        linger: Duration::from_millis(1),
        acks: Acks::All,
        delivery_timeout: Duration::from_secs(3),
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(200),
        ..ProducerConfig::default()
    }
}

/// Waits (at most 10 s) until the broker's captured log has a line with `needle`:
/// the log is read by a thread that may lag the process's exit.
fn wait_for_log(log: &std::sync::Mutex<Vec<String>>, needle: &str) -> Result<()> {
    for _ in 0..1000 {
        if log
            .lock()
            .map(|l| l.iter().any(|x| x.contains(needle)))
            .unwrap_or(false)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("no log line with {needle:?}")
}

fn recovery_lines(broker: &BrokerProcess) -> Vec<String> {
    RECOVERY_LINES
        .iter()
        .flat_map(|needle| broker.log_lines(needle))
        .collect()
}

/// A record sent by [`produce_until`]: its sequence number (also its value),
/// partition, and the broker's answer.
struct Sent {
    seq: u64,
    partition: u32,
    delivery: DeliveryFuture,
}

/// What the broker acknowledged: per partition, offset -> sequence number.
type Acked = BTreeMap<u32, BTreeMap<u64, u64>>;

/// Sends records `0, 1, 2...` (value = the number as text) round-robin over
/// `partitions`, a little at a time, until `stop` is set (then `after_stop`
/// more) or `max` records; returns each delivery's outcome. `acked` counts
/// acknowledgements as they arrive, in send order.
async fn produce_until(
    producer: &Producer,
    topic: &str,
    partitions: u32,
    stop: &AtomicBool,
    after_stop: u64,
    max: u64,
    acked: &Arc<AtomicU64>,
) -> Result<(Acked, u64)> {
    let mut stopped_at = None;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    // Awaits deliveries in send order, counting acknowledgements.
    let counter = Arc::clone(acked);
    let collector = tokio::spawn(async move {
        let mut done = Vec::new();
        while let Some(s) = rx.recv().await {
            let result = s.delivery.await;
            if result.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            done.push((s.seq, s.partition, result));
        }
        done
    });
    for seq in 0..max {
        if stop.load(Ordering::SeqCst) {
            let at = *stopped_at.get_or_insert(seq);
            if seq >= at + after_stop {
                break;
            }
        }
        let partition = (seq % u64::from(partitions)) as u32;
        let record = ProducerRecord::new(topic, seq.to_string()).partition(partition);
        match producer.send_record(record).await {
            Ok(delivery) => {
                tx.send(Sent {
                    seq,
                    partition,
                    delivery,
                })
                .ok()
                .context("collector gone")?;
            }
            Err(e) => bail!("send {seq} refused: {e}"),
        }
        if seq % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    drop(tx);
    let done = tokio::time::timeout(Duration::from_secs(30), collector)
        .await
        .context("deliveries did not finish within 30 s")??;
    let mut by_partition = Acked::new();
    let mut failed = 0;
    for (seq, partition, result) in done {
        match result {
            Ok(meta) => {
                ensure!(meta.partition == partition, "record {seq} went to {meta:?}");
                let offset = meta.offset.context("acks=-1 gives an offset")?;
                let previous = by_partition
                    .entry(partition)
                    .or_default()
                    .insert(offset, seq);
                ensure!(previous.is_none(), "offset {offset} acknowledged twice");
            }
            Err(_) => failed += 1,
        }
    }
    Ok((by_partition, failed))
}

/// Checks that every acknowledged record is in the log at its offset, and
/// that each partition holds its sequence numbers in increasing order (no
/// duplicate, no reordering). Returns each partition's log end offset.
fn check_acknowledged(broker: &BrokerProcess, topic: &str, acked: &Acked) -> Result<Vec<u64>> {
    let offsets = partition_offsets(broker, topic)?;
    let mut ends = Vec::new();
    for (p, (log_end, high_watermark)) in offsets.into_iter().enumerate() {
        let p = u32::try_from(p)?;
        ensure!(
            log_end == high_watermark,
            "partition {p}: log end {log_end} but high watermark {high_watermark}"
        );
        let records = read_partition(broker, topic, p, log_end)?;
        let expected_offsets: Vec<u64> = (0..log_end).collect();
        let got_offsets: Vec<u64> = records.iter().map(|(o, _)| *o).collect();
        ensure!(
            got_offsets == expected_offsets,
            "partition {p}: offsets {got_offsets:?}"
        );
        let seqs: Vec<u64> = records
            .iter()
            .map(|(_, v)| v.parse())
            .collect::<Result<_, _>>()?;
        ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {p}: sequence numbers out of order: {seqs:?}"
        );
        for (offset, seq) in acked.get(&p).into_iter().flatten() {
            let got = seqs.get(*offset as usize);
            ensure!(
                got == Some(seq),
                "partition {p}: acknowledged record {seq} at offset {offset} is {got:?} after restart"
            );
        }
        ends.push(log_end);
    }
    Ok(ends)
}

/// Produces one record per partition and checks it lands at the log end.
async fn produce_continues_at(broker: &BrokerProcess, topic: &str, ends: &[u64]) -> Result<()> {
    let producer = Producer::connect(producer_config(broker)).await?;
    for (p, end) in ends.iter().enumerate() {
        let p = u32::try_from(p)?;
        let record = ProducerRecord::new(topic, format!("after-{p}")).partition(p);
        let meta = producer.send_record(record).await?;
        producer.flush().await?;
        let meta = meta.await?;
        ensure!(
            meta.offset == Some(*end),
            "partition {p}: the next record got {:?}, the log ended at {end}",
            meta.offset
        );
    }
    producer.close().await?;
    Ok(())
}

#[test]
fn kill9_keeps_every_acknowledged_record() -> Result<()> {
    const PER_PARTITION: u64 = 1000;
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let args = [
        "topic",
        "create",
        "dur",
        "--partitions",
        "2",
        "--durability",
        "fsync",
    ];
    warren_ok(&broker, &args, b"")?;
    for p in 0..2 {
        let lines: String = (0..PER_PARTITION).map(|i| format!("p{p}-{i}\n")).collect();
        let partition = p.to_string();
        let args = ["produce", "dur", "--partition", &partition, "--acks", "-1"];
        warren_ok(&broker, &args, lines.as_bytes())?;
    }
    broker.kill9()?;

    let broker = BrokerProcess::start(dir.path())?;
    // After a kill -9 the last segments are scanned: this is the line the
    // graceful shutdown test expects not to see.
    let recovered = broker.log_lines("log recovered");
    ensure!(
        recovered.iter().any(|l| l.contains("dur-0"))
            && recovered.iter().any(|l| l.contains("dur-1")),
        "recovery lines: {recovered:?}"
    );
    ensure!(
        partition_offsets(&broker, "dur")? == [(PER_PARTITION, PER_PARTITION); 2],
        "offsets after restart"
    );
    for p in 0..2 {
        let records = read_partition(&broker, "dur", p, PER_PARTITION)?;
        let expected: Vec<(u64, String)> = (0..PER_PARTITION)
            .map(|i| (i, format!("p{p}-{i}")))
            .collect();
        ensure!(records == expected, "partition {p} after restart");
    }

    // New records continue at the next offsets: no gap, no overlap.
    for p in 0..2 {
        let partition = p.to_string();
        let args = ["produce", "dur", "--partition", &partition];
        warren_ok(&broker, &args, b"after-0\nafter-1\n")?;
    }
    ensure!(partition_offsets(&broker, "dur")? == [(PER_PARTITION + 2, PER_PARTITION + 2); 2]);
    for p in 0..2 {
        let records = read_partition(&broker, "dur", p, PER_PARTITION + 2)?;
        let tail: Vec<(u64, String)> = records
            .into_iter()
            .skip(PER_PARTITION as usize - 1)
            .collect();
        let expected = [
            (PER_PARTITION - 1, format!("p{p}-{}", PER_PARTITION - 1)),
            (PER_PARTITION, "after-0".to_owned()),
            (PER_PARTITION + 1, "after-1".to_owned()),
        ];
        ensure!(tail == expected, "partition {p}: {tail:?}");
    }
    Ok(())
}

#[test]
fn kill9_while_producing_keeps_every_acknowledged_record() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let args = [
        "topic",
        "create",
        "live",
        "--partitions",
        "2",
        "--durability",
        "fsync",
    ];
    warren_ok(&broker, &args, b"")?;
    let rt = runtime()?;
    let producer = rt.block_on(Producer::connect(producer_config(&broker)))?;

    let acked = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    // Kills the broker once 500 records are acknowledged (or after 20 s).
    let killer = {
        let (acked, killed) = (Arc::clone(&acked), Arc::clone(&killed));
        std::thread::spawn(move || -> Result<u64> {
            let start = Instant::now();
            while acked.load(Ordering::SeqCst) < 500 && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let acked_at_kill = acked.load(Ordering::SeqCst);
            broker.kill9()?;
            killed.store(true, Ordering::SeqCst);
            Ok(acked_at_kill)
        })
    };
    let (acked_records, failed) = rt.block_on(produce_until(
        &producer, "live", 2, &killed, 500, 200_000, &acked,
    ))?;
    let acked_at_kill = killer
        .join()
        .map_err(|_| anyhow::anyhow!("killer panicked"))??;
    drop(producer);
    ensure!(
        acked_at_kill >= 500,
        "only {acked_at_kill} acknowledged before the kill"
    );
    ensure!(
        failed > 0,
        "records sent after the kill cannot have been acknowledged"
    );
    let total: usize = acked_records.values().map(BTreeMap::len).sum();
    ensure!(total as u64 >= acked_at_kill);
    eprintln!("acknowledged: {acked_at_kill} when killed, {total} in all; {failed} failed");

    let broker = BrokerProcess::start(dir.path())?;
    let ends = check_acknowledged(&broker, "live", &acked_records)?;
    rt.block_on(produce_continues_at(&broker, "live", &ends))?;
    Ok(())
}

/// Parses `peer=ADDR` out of a connection log line.
fn peer(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("peer="))
}

#[test]
fn sigterm_with_clients_mid_request_exits_0_and_reopens_without_recovery() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    warren_ok(
        &broker,
        &["topic", "create", "grace", "--partitions", "2"],
        b"",
    )?;
    warren_ok(
        &broker,
        &["topic", "create", "quiet", "--partitions", "1"],
        b"",
    )?;
    let rt = runtime()?;

    // A consumer long-polling on a topic nobody writes to: its fetch is
    // always waiting in the broker.
    let mut consumer = rt.block_on(Consumer::connect(ConsumerConfig {
        connection: connection(&broker),
        start_at: OffsetSpec::Latest,
        ..ConsumerConfig::default()
    }))?;
    consumer.assign("quiet", &[0]);
    let polling = rt.spawn(async move {
        let mut seen = 0usize;
        // Bounded: 60 polls of at most 10 s, and it ends at the first error.
        for _ in 0..60 {
            match consumer.poll(Duration::from_secs(10)).await {
                Ok(records) => seen += records.len(),
                Err(e) => return (seen, Some(e)),
            }
        }
        (seen, None)
    });

    // A producer sending until the broker is gone.
    let producer = rt.block_on(Producer::connect(producer_config(&broker)))?;
    let acked = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let log = Arc::clone(&broker.log);
    let terminator = {
        let (acked, stopped) = (Arc::clone(&acked), Arc::clone(&stopped));
        std::thread::spawn(move || -> Result<(std::process::ExitStatus, Duration)> {
            let start = Instant::now();
            while acked.load(Ordering::SeqCst) < 300 && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let start = Instant::now();
            let status = broker.terminate();
            stopped.store(true, Ordering::SeqCst);
            Ok((status?, start.elapsed()))
        })
    };
    let (acked_records, failed) = rt.block_on(produce_until(
        &producer, "grace", 2, &stopped, 50, 200_000, &acked,
    ))?;
    let (status, shutdown_took) = terminator
        .join()
        .map_err(|_| anyhow::anyhow!("terminator panicked"))??;
    drop(producer);
    ensure!(
        status.code() == Some(0),
        "warren serve exited with {status:?}"
    );
    ensure!(
        shutdown_took < Duration::from_secs(10),
        "shutdown took {shutdown_took:?}"
    );
    let total: usize = acked_records.values().map(BTreeMap::len).sum();
    ensure!(total >= 300, "only {total} records acknowledged");
    eprintln!("acknowledged {total}, {failed} failed; shutdown took {shutdown_took:?}");
    let (_, poll_error) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), polling).await })
        .context("the consumer did not notice the shutdown")??;
    ensure!(
        poll_error.is_some(),
        "the consumer's poll should fail once the broker is gone"
    );

    // One "connection opened" and one "connection closed" line per connection.
    wait_for_log(&log, "warren broker stopped")?;
    let lines = log.lock().map(|l| l.clone()).unwrap_or_default();
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("shutting down") && l.contains("SIGTERM"))
    );
    let opened: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("connection opened"))
        .map(|l| peer(l).context(format!("no peer in {l}")))
        .collect::<Result<_>>()?;
    let closed: Vec<(&str, &String)> = lines
        .iter()
        .filter(|l| l.contains("connection closed"))
        .map(|l| Ok((peer(l).context(format!("no peer in {l}"))?, l)))
        .collect::<Result<_>>()?;
    // The CLI's two topic creates, the consumer's and the producer's.
    ensure!(opened.len() >= 4, "opened: {opened:?}");
    ensure!(
        opened.len() == closed.len(),
        "opened {opened:?}, closed {closed:?}"
    );
    for peer in &opened {
        let closes: Vec<&&String> = closed
            .iter()
            .filter(|(p, _)| p == peer)
            .map(|(_, l)| l)
            .collect();
        ensure!(closes.len() == 1, "{peer}: closed lines {closes:?}");
        ensure!(
            opened.iter().filter(|p| *p == peer).count() == 1,
            "{peer} opened twice"
        );
        ensure!(closes.iter().all(|l| l.contains(" reason=")), "{closes:?}");
    }
    ensure!(
        closed
            .iter()
            .any(|(_, l)| l.contains("reason=broker shutting down")),
        "no connection was closed by the shutdown: {closed:?}"
    );

    // Restart: every partition opens from its clean recovery point.
    let broker = BrokerProcess::start(dir.path())?;
    let recovery = recovery_lines(&broker);
    ensure!(
        recovery.is_empty(),
        "recovery after a clean shutdown: {recovery:?}"
    );
    let ends = check_acknowledged(&broker, "grace", &acked_records)?;
    rt.block_on(produce_continues_at(&broker, "grace", &ends))?;
    Ok(())
}
