//! Requests whose decoded form is small must not make the broker allocate
//! many times their size. Found by the adversarial suite (adversarial.rs).
//!
//! Each test measures this process's resident peak (`VmHWM` in
//! `/proc/self/status`), so this file holds one test: tests of one binary run
//! in parallel threads and would blur each other's peak.

mod common;

use anyhow::{Context, Result};
use common::{Raw, create, start};
use warren_protocol::api::groups::{HeartbeatRequest, JoinGroupRequest, TopicPartitions};

/// A `/proc/self/status` field, in KiB.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .with_context(|| format!("no {field} line"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?)
}

/// Heartbeat's `owned` list: one entry naming a 60,000-byte topic with 3,000
/// partitions is a 72 KB request. Materialised as `(topic, partition)` pairs
/// it was 180 MB (a 16 MiB frame could ask for hundreds of gigabytes and
/// abort the broker); only the member's partitions being revoked are looked
/// up now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_listing_many_partitions_under_a_long_topic_name_allocates_little() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 2, "none").await?;
    let joined = c
        .call(&JoinGroupRequest {
            group: "g".into(),
            member_id: String::new(),
            session_timeout_ms: 30_000,
            topics: vec!["t".into()],
        })
        .await?;
    let heartbeat = HeartbeatRequest {
        group: "g".into(),
        member_id: joined.member_id.clone(),
        generation: joined.generation,
        owned: vec![
            TopicPartitions {
                topic: "n".repeat(60_000),
                partitions: (0..3_000).collect(),
            },
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 1],
            },
        ],
    };
    let before = status_kib("VmHWM")?;
    let r = c.call(&heartbeat).await?;
    let after = status_kib("VmHWM")?;
    assert_eq!(r.generation, joined.generation);
    assert!(
        after.saturating_sub(before) < 48 * 1024,
        "one 72 KB heartbeat raised the resident peak from {before} KiB to {after} KiB"
    );
    // The member is still served normally.
    c.call(&HeartbeatRequest {
        owned: vec![],
        ..heartbeat
    })
    .await?;
    broker.shutdown().await?;
    Ok(())
}
