//! `GET /metrics` against a real broker: traffic over the native protocol,
//! then a scrape over a real HTTP socket, checked series by series; topic
//! deletion; metrics off; and `promtool check metrics` when it is installed.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::{Context, Result, bail, ensure};
use common::{Raw, batch, create, fetch, http_get, produce};
use warren_broker::{Broker, BrokerConfig};
use warren_protocol::ErrorCode;
use warren_protocol::api::groups::{CommitOffsetsRequest, CommitPartition, CommitTopic};
use warren_protocol::api::share::{AckBatch, AckKind, ShareAckPartition, ShareAckRequest};
use warren_protocol::api::share::{ShareFetchRequest, ShareFetchResponse};
use warren_protocol::api::topics::{CreateTopicRequest, DeleteTopicRequest};

/// A scrape: every sample by its series (`name{labels}` as rendered), and
/// every family's `# TYPE` and `# HELP`.
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: String) -> Result<Scrape> {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        let mut helps = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').context("bad TYPE line")?;
                ensure!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "family {name} has two TYPE lines"
                );
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').context("bad HELP line")?;
                helps.insert(name.to_string(), help.to_string());
            } else {
                let (series, value) = line.rsplit_once(' ').context("bad sample line")?;
                let value: f64 = value
                    .parse()
                    .with_context(|| format!("value of {line:?}"))?;
                ensure!(
                    samples.insert(series.to_string(), value).is_none(),
                    "series {series} twice"
                );
            }
        }
        Ok(Scrape {
            text,
            samples,
            types,
            helps,
        })
    }

    fn get(&self, series: &str) -> Result<f64> {
        self.samples
            .get(series)
            .copied()
            .with_context(|| format!("no series {series} in:\n{}", self.text))
    }

    fn kind(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }
}

async fn scrape(broker: &warren_broker::RunningBroker) -> Result<Scrape> {
    let (status, body) = http_get(broker.http_addr(), "/metrics").await?;
    ensure!(status == 200, "GET /metrics answered {status}: {body}");
    Scrape::parse(body)
}

fn part(name: &str, topic: &str, partition: u32) -> String {
    format!("{name}{{topic=\"{topic}\",partition=\"{partition}\"}}")
}

#[tokio::test]
async fn a_scrape_after_traffic_shows_the_key_series_with_their_values() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "orders", 2, "fsync").await?;

    // Partition 0: 3 + 2 records; partition 1: 1 record. All acks=-1.
    let batches = [
        (0, batch(&["a", "b", "c"])?),
        (0, batch(&["d", "e"])?),
        (1, batch(&["f"])?),
    ];
    let mut bytes_p0 = 0;
    for (partition, records) in &batches {
        if *partition == 0 {
            bytes_p0 += records.len();
        }
        let r = c
            .call(&produce("orders", *partition, records.clone(), -1))
            .await?;
        let code = r.topics[0].partitions[0].error_code;
        ensure!(code == ErrorCode::NONE, "produce: {code:?}");
    }
    // A produce to a missing topic: header NONE, partition UNKNOWN_TOPIC.
    c.call(&produce("missing", 0, batch(&["x"])?, -1)).await?;
    // Fetch all of partition 0.
    let fetched = c.call(&fetch("orders", 0, 0)).await?;
    let records = fetched.topics[0].partitions[0].records.clone();
    ensure!(
        records.len() == bytes_p0,
        "fetch got {} bytes",
        records.len()
    );
    // The group committed 2 of the 5 records of partition 0.
    c.call(&CommitOffsetsRequest {
        group: "billing".into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: "orders".into(),
            partitions: vec![CommitPartition {
                partition: 0,
                offset: 2,
                metadata: None,
            }],
        }],
    })
    .await?;

    let m = scrape(&broker).await?;
    // Every family has a TYPE and a HELP.
    for family in m.types.keys() {
        ensure!(m.helps.contains_key(family), "no HELP for {family}");
    }
    for (family, kind) in [
        ("warren_produced_records_total", "counter"),
        ("warren_produced_bytes_total", "counter"),
        ("warren_fetched_records_total", "counter"),
        ("warren_fetched_bytes_total", "counter"),
        ("warren_requests_total", "counter"),
        ("warren_request_duration_seconds", "histogram"),
        ("warren_fsync_duration_seconds", "histogram"),
        ("warren_fsyncs_total", "counter"),
        ("warren_connections_active", "gauge"),
        ("warren_connections_total", "counter"),
        ("warren_log_start_offset", "gauge"),
        ("warren_log_end_offset", "gauge"),
        ("warren_log_size_bytes", "gauge"),
        ("warren_partitions", "gauge"),
        ("warren_group_lag", "gauge"),
        ("warren_share_inflight_records", "gauge"),
        ("warren_dead_lettered_records_total", "counter"),
    ] {
        ensure!(
            m.kind(family) == Some(kind),
            "{family}: TYPE {:?}, want {kind}\n{}",
            m.kind(family),
            m.text
        );
    }
    let p0 = |name| part(name, "orders", 0);
    let p1 = |name| part(name, "orders", 1);
    ensure!(m.get(&p0("warren_produced_records_total"))? == 5.0);
    ensure!(m.get(&p1("warren_produced_records_total"))? == 1.0);
    ensure!(m.get(&p0("warren_produced_bytes_total"))? == bytes_p0 as f64);
    ensure!(m.get(&p0("warren_fetched_records_total"))? == 5.0);
    ensure!(m.get(&p0("warren_fetched_bytes_total"))? == bytes_p0 as f64);
    ensure!(m.get(&p1("warren_fetched_bytes_total"))? == 0.0);
    ensure!(m.get(&p0("warren_log_start_offset"))? == 0.0);
    ensure!(m.get(&p0("warren_log_end_offset"))? == 5.0);
    ensure!(m.get(&p1("warren_log_end_offset"))? == 1.0);
    ensure!(m.get(&p0("warren_log_size_bytes"))? == bytes_p0 as f64);
    ensure!(m.get("warren_partitions")? == 2.0);
    ensure!(m.get("warren_connections_active")? >= 1.0);
    ensure!(m.get("warren_connections_total")? >= 1.0);
    // Durability fsync: every acked produce waited for an fsync.
    ensure!(m.get("warren_fsyncs_total")? >= 3.0);
    ensure!(m.get("warren_fsync_duration_seconds_count")? >= 3.0);
    ensure!(
        m.get("warren_fsync_duration_seconds_bucket{le=\"+Inf\"}")?
            == m.get("warren_fsync_duration_seconds_count")?
    );
    // Requests by api and outcome; latency counted once per request.
    let produce_ok = "warren_requests_total{api=\"Produce\",error_code=\"NONE\"}";
    let produce_unknown = "warren_requests_total{api=\"Produce\",error_code=\"UNKNOWN_TOPIC\"}";
    ensure!(m.get(produce_ok)? == 3.0);
    ensure!(m.get(produce_unknown)? == 1.0);
    ensure!(m.get("warren_requests_total{api=\"Fetch\",error_code=\"NONE\"}")? == 1.0);
    ensure!(m.get("warren_request_duration_seconds_count{api=\"Produce\"}")? == 4.0);
    ensure!(m.get("warren_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"}")? == 4.0);
    ensure!(m.get("warren_request_duration_seconds_sum{api=\"Produce\"}")? > 0.0);
    // Lag = high watermark (5, all fsynced) - committed (2).
    ensure!(m.get("warren_group_lag{group=\"billing\",topic=\"orders\",partition=\"0\"}")? == 3.0);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn share_groups_show_in_flight_and_dead_lettered_records() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "jobs.dlq", 1, "fsync").await?;
    c.call(&CreateTopicRequest {
        name: "jobs".into(),
        partitions: 1,
        configs: vec![("dead.letter.topic".into(), "jobs.dlq".into())],
    })
    .await?;
    c.call(&produce("jobs", 0, batch(&["1", "2", "3", "4"])?, -1))
        .await?;
    let got: ShareFetchResponse = c
        .call(&ShareFetchRequest {
            group: "workers".into(),
            member_id: "w1".into(),
            topic: "jobs".into(),
            max_records: 4,
            max_wait_ms: 0,
            partitions: Vec::new(),
        })
        .await?;
    ensure!(
        got.partitions.len() == 1,
        "share fetch: {:?}",
        got.partitions.len()
    );
    let m = scrape(&broker).await?;
    let inflight =
        "warren_share_inflight_records{group=\"workers\",topic=\"jobs\",partition=\"0\"}";
    let dead = "warren_dead_lettered_records_total{group=\"workers\",topic=\"jobs\"}";
    ensure!(m.get(inflight)? == 4.0);
    ensure!(m.get(dead)? == 0.0);
    ensure!(m.get(&part("warren_fetched_records_total", "jobs", 0))? == 4.0);
    // Accept offsets 0-1, reject 2-3: two records go to the dead-letter topic.
    c.call(&ShareAckRequest {
        group: "workers".into(),
        member_id: "w1".into(),
        topic: "jobs".into(),
        partitions: vec![ShareAckPartition {
            partition: 0,
            batches: vec![
                AckBatch {
                    first_offset: 0,
                    last_offset: 1,
                    kind: AckKind::Accept,
                },
                AckBatch {
                    first_offset: 2,
                    last_offset: 3,
                    kind: AckKind::Reject,
                },
            ],
        }],
    })
    .await?;
    let m = scrape(&broker).await?;
    ensure!(m.get(inflight)? == 0.0);
    ensure!(m.get(dead)? == 2.0);
    ensure!(m.get(&part("warren_log_end_offset", "jobs.dlq", 0))? == 2.0);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_a_topic_removes_its_series() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "keep", 1, "none").await?;
    create(&mut c, "gone", 3, "none").await?;
    for topic in ["keep", "gone"] {
        c.call(&produce(topic, 0, batch(&["v"])?, 1)).await?;
        c.call(&CommitOffsetsRequest {
            group: "g".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![CommitTopic {
                topic: topic.into(),
                partitions: vec![CommitPartition {
                    partition: 0,
                    offset: 0,
                    metadata: None,
                }],
            }],
        })
        .await?;
    }
    let before = scrape(&broker).await?;
    ensure!(before.get(&part("warren_produced_records_total", "gone", 0))? == 1.0);
    ensure!(before.get(&part("warren_log_end_offset", "gone", 2))? == 0.0);
    ensure!(before.get("warren_group_lag{group=\"g\",topic=\"gone\",partition=\"0\"}")? == 1.0);
    ensure!(before.get("warren_partitions")? == 4.0);

    c.call(&DeleteTopicRequest {
        name: "gone".into(),
    })
    .await?;
    let after = scrape(&broker).await?;
    if let Some(line) = after.text.lines().find(|l| l.contains("topic=\"gone\"")) {
        bail!("a series of the deleted topic is still there: {line}");
    }
    ensure!(after.get(&part("warren_produced_records_total", "keep", 0))? == 1.0);
    ensure!(after.get("warren_group_lag{group=\"g\",topic=\"keep\",partition=\"0\"}")? == 1.0);
    ensure!(after.get("warren_partitions")? == 1.0);
    // The family stays (with no samples of the deleted topic).
    ensure!(after.kind("warren_produced_records_total") == Some("counter"));

    // The name comes back as a new topic: its counters start from zero.
    create(&mut c, "gone", 1, "none").await?;
    let again = scrape(&broker).await?;
    ensure!(again.get(&part("warren_produced_records_total", "gone", 0))? == 0.0);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn metrics_off_answers_404_with_a_json_error_and_the_broker_still_works() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        metrics: false,
        ..BrokerConfig::default()
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    let r = c.call(&produce("t", 0, batch(&["a", "b"])?, -1)).await?;
    ensure!(r.topics[0].partitions[0].error_code == ErrorCode::NONE);
    let got = c.call(&fetch("t", 0, 0)).await?;
    ensure!(common::values_of(got.topics[0].partitions[0].records.clone())? == ["a", "b"]);

    let (status, body) = http_get(broker.http_addr(), "/metrics").await?;
    ensure!(status == 404, "status {status}: {body}");
    ensure!(body.contains("\"error\":\"NOT_FOUND\""), "{body}");
    ensure!(body.contains("\"message\":"), "{body}");
    let (status, _) = http_get(broker.http_addr(), "/healthz").await?;
    ensure!(status == 200);
    broker.shutdown().await?;
    Ok(())
}

/// `promtool check metrics` (Debian package `prometheus`) on a real scrape
/// with every family populated; skipped with a notice when promtool is not
/// installed (`.ci/run` installs it when it can).
#[tokio::test]
async fn promtool_accepts_the_output() -> Result<()> {
    let promtool = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    let Some(promtool) = promtool else {
        println!("NOTICE: promtool not on PATH; skipping `promtool check metrics`");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let broker = common::start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 2, "fsync").await?;
    c.call(&produce("t", 1, batch(&["a"])?, -1)).await?;
    c.call(&produce("nope", 0, batch(&["a"])?, -1)).await?;
    c.call(&fetch("t", 0, 0)).await?;
    c.call(&CommitOffsetsRequest {
        group: "g".into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: "t".into(),
            partitions: vec![CommitPartition {
                partition: 1,
                offset: 0,
                metadata: None,
            }],
        }],
    })
    .await?;
    let (status, body) = http_get(broker.http_addr(), "/metrics").await?;
    ensure!(status == 200);
    broker.shutdown().await?;

    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("promtool stdin")?;
    std::io::Write::write_all(&mut stdin, body.as_bytes())?;
    drop(stdin);
    // promtool reads its input and exits; the broker is already stopped,
    // so blocking this test's thread is harmless.
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- input ---\n{body}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
