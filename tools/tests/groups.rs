//! Consumer groups through the CLI against a real `warren serve` process:
//! `warren consume --group` processes share a topic and one is killed with
//! SIGKILL; committed offsets survive kill -9 of the broker; `warren group
//! describe|list|reset-offsets`. Every loop is bounded in count and time.

mod common;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{BrokerProcess, warren};
use run::{json_lines, runtime, stdout, warren_ok};
use warren_client::warren_protocol::api::groups::PartitionLag;
use warren_client::{
    Acks, Admin, ConnectionConfig, DescribeGroupResponse, Producer, ProducerConfig,
};

/// One printed record: (consumer index, partition, offset, value).
type Printed = (usize, u32, u64, String);

fn connection(broker: &BrokerProcess) -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(10),
        ..ConnectionConfig::new(broker.broker_arg())
    }
}

/// Produces values `{prefix}-{i}` for i in 0..n, keyed to spread over
/// partitions, and waits for every acknowledgement.
async fn produce(broker: &BrokerProcess, topic: &str, prefix: &str, n: usize) -> Result<()> {
    let producer = Producer::connect(ProducerConfig {
        connection: connection(broker),
        acks: Acks::All,
        ..ProducerConfig::default()
    })
    .await?;
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("{prefix}-{i}");
        deliveries.push(
            producer
                .send(topic, Some(key.as_bytes()), value.as_bytes())
                .await?,
        );
    }
    producer.flush().await?;
    for d in deliveries {
        d.await?;
    }
    Ok(())
}

async fn describe(broker: &BrokerProcess, group: &str) -> Result<DescribeGroupResponse> {
    Ok(Admin::connect(connection(broker))
        .await?
        .describe_group(group)
        .await?)
}

/// A `warren consume --group` process whose JSON lines are collected.
struct GroupMember {
    child: Child,
}

impl GroupMember {
    fn spawn(
        broker: &BrokerProcess,
        index: usize,
        topic: &str,
        sink: &Arc<Mutex<Vec<Printed>>>,
    ) -> Result<Self> {
        let mut child = warren()
            .args([
                "consume",
                topic,
                "--group",
                "g",
                "--from-beginning",
                "--format",
                "json",
                "--session-timeout-ms",
                "1500",
                "--broker",
                &broker.broker_arg(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning warren consume --group")?;
        let out = child.stdout.take().context("no stdout")?;
        let sink = Arc::clone(sink);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let partition = v["partition"].as_u64().and_then(|p| u32::try_from(p).ok());
                let (Some(partition), Some(offset), Some(value)) =
                    (partition, v["offset"].as_u64(), v["value"].as_str())
                else {
                    continue;
                };
                sink.lock()
                    .map(|mut s| s.push((index, partition, offset, value.to_owned())))
                    .ok();
            }
        });
        Ok(GroupMember { child })
    }

    fn kill9(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM (commit and leave), then the exit code.
    fn terminate(&mut self) -> Result<Option<i32>> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("warren consume did not exit within 30 s of SIGTERM")
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most `limit`) until `done` holds for the printed records.
fn wait_printed(
    sink: &Arc<Mutex<Vec<Printed>>>,
    limit: Duration,
    done: impl Fn(&[Printed]) -> bool,
) -> Result<Vec<Printed>> {
    let start = Instant::now();
    loop {
        let now = sink.lock().map(|s| s.clone()).unwrap_or_default();
        if done(&now) {
            return Ok(now);
        }
        if start.elapsed() > limit {
            bail!(
                "timed out after {limit:?} with {} records printed",
                now.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn distinct_values(printed: &[Printed]) -> BTreeSet<&str> {
    printed.iter().map(|(_, _, _, v)| v.as_str()).collect()
}

#[test]
fn three_consumer_processes_share_six_partitions_and_a_killed_ones_uncommitted_records_are_redelivered()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let rt = runtime()?;
    warren_ok(
        &broker,
        &["topic", "create", "orders", "--partitions", "6"],
        b"",
    )?;
    let sink = Arc::new(Mutex::new(Vec::new()));
    let mut members: Vec<GroupMember> = (0..3)
        .map(|i| GroupMember::spawn(&broker, i, "orders", &sink))
        .collect::<Result<_>>()?;

    // Wait for a settled group: 3 members with 2 partitions each.
    let start = Instant::now();
    let settled = loop {
        let d = rt.block_on(describe(&broker, "g"))?;
        let counts: Vec<usize> = d
            .members
            .iter()
            .map(|m| m.assignment.iter().map(|t| t.partitions.len()).sum())
            .collect();
        if counts == [2, 2, 2] {
            break d;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "group never settled: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(settled.members.len(), 3);

    // Each record goes to exactly one member.
    rt.block_on(produce(&broker, "orders", "a", 600))?;
    let printed = wait_printed(&sink, Duration::from_secs(30), |p| p.len() >= 600)?;
    std::thread::sleep(Duration::from_millis(300));
    let printed_now = sink.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        printed_now.len(),
        600,
        "no record printed twice: {}",
        printed_now.len() - printed.len()
    );
    assert_eq!(distinct_values(&printed_now).len(), 600);
    let per_member: BTreeMap<usize, usize> =
        printed_now.iter().fold(BTreeMap::new(), |mut m, (i, ..)| {
            *m.entry(*i).or_default() += 1;
            m
        });
    assert_eq!(
        per_member.len(),
        3,
        "every member printed records: {per_member:?}"
    );

    // Kill member 0 (no LeaveGroup) while records flow to it.
    let victim_partitions: BTreeSet<u32> = printed_now
        .iter()
        .filter(|(i, ..)| *i == 0)
        .map(|(_, p, ..)| *p)
        .collect();
    let producing = {
        let addr = broker.broker_arg();
        std::thread::spawn(move || -> Result<()> {
            let rt = runtime()?;
            let broker_addr = addr;
            rt.block_on(async move {
                let producer = Producer::connect(ProducerConfig {
                    connection: ConnectionConfig::new(broker_addr),
                    acks: Acks::All,
                    ..ProducerConfig::default()
                })
                .await?;
                let mut deliveries = Vec::new();
                for i in 0..600 {
                    let key = format!("k{i}");
                    let value = format!("b-{i}");
                    deliveries.push(
                        producer
                            .send("orders", Some(key.as_bytes()), value.as_bytes())
                            .await?,
                    );
                    if i % 50 == 49 {
                        producer.flush().await?;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                producer.flush().await?;
                for d in deliveries {
                    d.await?;
                }
                Ok(())
            })
        })
    };
    wait_printed(&sink, Duration::from_secs(30), |p| {
        p.iter().any(|(i, _, _, v)| *i == 0 && v.starts_with("b-"))
    })?;
    members[0].kill9()?;
    let killed_at = sink.lock().map(|s| s.len()).unwrap_or_default();
    producing
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;

    // After the session timeout the survivors take over; nothing is lost.
    let all = wait_printed(&sink, Duration::from_secs(60), |p| {
        distinct_values(p).len() >= 1200
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let all = sink.lock().map(|s| s.clone()).unwrap_or(all);
    assert_eq!(distinct_values(&all).len(), 1200, "every record delivered");
    let victim_printed: BTreeSet<&str> = all
        .iter()
        .take(killed_at)
        .filter(|(i, ..)| *i == 0)
        .map(|(_, _, _, v)| v.as_str())
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, _, v) in &all {
        *seen.entry(v.as_str()).or_default() += 1;
    }
    for (value, count) in &seen {
        if *count > 1 {
            assert_eq!(*count, 2, "{value} printed {count} times");
            assert!(
                victim_printed.contains(value),
                "{value} was printed twice but the killed member never printed it"
            );
        }
    }
    // The redelivered records are on the victim's partitions.
    for (i, p, _, v) in &all {
        if seen.get(v.as_str()).copied() == Some(2) && *i != 0 {
            assert!(victim_partitions.contains(p), "{v} on partition {p}");
        }
    }
    let d = rt.block_on(describe(&broker, "g"))?;
    assert_eq!(d.members.len(), 2, "the killed member was expelled: {d:?}");

    // The survivors exit cleanly on SIGTERM and leave the group.
    for m in members.iter_mut().skip(1) {
        assert_eq!(m.terminate()?, Some(0));
    }
    let d = rt.block_on(describe(&broker, "g"))?;
    assert!(d.members.is_empty(), "{d:?}");
    let lag: i64 = d
        .offsets
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.lag)
        .sum();
    assert_eq!(lag, 0, "everything printed was committed: {d:?}");
    Ok(())
}

#[test]
fn committed_offsets_survive_kill9_of_the_broker_and_the_cli_describes_and_resets_them()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path())?;
    let rt = runtime()?;
    warren_ok(&broker, &["topic", "create", "t", "--partitions", "2"], b"")?;
    rt.block_on(produce(&broker, "t", "v", 100))?;
    let consume = |broker: &BrokerProcess, n: &str| {
        warren_ok(
            broker,
            &[
                "consume",
                "t",
                "--group",
                "g",
                "--from-beginning",
                "--max-messages",
                n,
                "--format",
                "json",
                "--timeout-ms",
                "10000",
            ],
            b"",
        )
    };
    let first = json_lines(&consume(&broker, "60")?)?;
    assert_eq!(first.len(), 60);

    broker.kill9()?;
    let broker = BrokerProcess::start(dir.path())?;
    let described = stdout(&warren_ok(&broker, &["group", "describe", "g"], b"")?);
    let committed: u64 = described
        .lines()
        .filter(|l| l.starts_with("t "))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum();
    assert_eq!(committed, 60, "{described}");
    let listed = stdout(&warren_ok(&broker, &["group", "list"], b"")?);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["g", "0"]),
        "{listed}"
    );

    // The rest, exactly once: nothing committed is delivered again.
    let rest = json_lines(&consume(&broker, "40")?)?;
    let values = |records: &[serde_json::Value]| -> BTreeSet<String> {
        records
            .iter()
            .filter_map(|r| r["value"].as_str().map(str::to_owned))
            .collect()
    };
    let (a, b) = (values(&first), values(&rest));
    assert_eq!(a.len() + b.len(), 100);
    assert!(a.is_disjoint(&b));

    // Resets: refused while a member is there, then to an offset, to the
    // beginning and to a time after everything.
    let mut member = GroupMember::spawn(&broker, 0, "t", &Arc::new(Mutex::new(Vec::new())))?;
    let start = Instant::now();
    while rt.block_on(describe(&broker, "g"))?.members.is_empty() {
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the member never joined"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = run::warren(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
        b"",
    )?;
    let line = run::single_error_line(&refused)?;
    assert!(line.contains("members"), "{line}");
    assert_eq!(member.terminate()?, Some(0));

    // Resets through the CLI, each checked with DescribeGroup.
    let reset = |to: &[&str]| -> Result<Vec<PartitionLag>> {
        let mut args = vec!["group", "reset-offsets", "g", "--topic", "t"];
        args.extend_from_slice(to);
        warren_ok(&broker, &args, b"")?;
        let d = rt.block_on(describe(&broker, "g"))?;
        Ok(d.offsets.into_iter().flat_map(|t| t.partitions).collect())
    };
    let after = reset(&["--partition", "0", "--to-offset", "5"])?;
    let p0 = after.iter().find(|p| p.partition == 0).context("p0")?;
    assert_eq!(p0.committed, 5);
    assert_eq!(p0.lag, p0.log_end_offset - 5);
    let after = reset(&["--to-earliest"])?;
    assert!(after.iter().all(|p| p.committed == 0), "{after:?}");
    let after = reset(&["--to-datetime", "2999-01-01T00:00:00Z"])?;
    assert!(after.iter().all(|p| p.lag == 0), "{after:?}");
    Ok(())
}
