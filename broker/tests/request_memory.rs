//! Requests whose decoded form is small must not make the broker allocate
//! many times their size. Found by the adversarial suite (adversarial.rs).
//!
//! Each test measures this process's resident peak (`VmHWM` in
//! `/proc/self/status`); tests of one binary run in parallel threads and would
//! blur each other's peak, so each holds [`ONE_AT_A_TIME`] throughout.

mod common;

use anyhow::{Context, Result};
use common::{Raw, create, start};
use warren_protocol::ErrorCode;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, TopicPartitions,
};

/// Serializes the tests of this file (see the module docs).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _one = ONE_AT_A_TIME.lock().await;
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

/// CommitOffsets naming one partition 90,000 times (a 1.3 MB request, under
/// the per-request partition bounds) under the longest group and topic
/// names: each entry became a store key of about 500 bytes before anything
/// was written (47 MB; a 16 MiB frame could ask for 500 MB), then a store
/// batch over its 16 MiB limit.
/// Entries for the same partition are now folded, the last one winning, as
/// the store itself would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_naming_one_partition_many_times_writes_it_once() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let topic = "t".repeat(242);
    let group = "g".repeat(255);
    create(&mut c, &topic, 2, "none").await?;
    let commit = CommitOffsetsRequest {
        group: group.clone(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: topic.clone(),
            partitions: (0..90_000u64)
                .map(|i| CommitPartition {
                    partition: u32::from(i % 1_000 == 999),
                    offset: i,
                    metadata: None,
                })
                .collect(),
        }],
    };
    let before = status_kib("VmHWM")?;
    let r = c.call(&commit).await?;
    let after = status_kib("VmHWM")?;
    assert!(
        after.saturating_sub(before) < 48 * 1024,
        "one 1.3 MB commit raised the resident peak from {before} KiB to {after} KiB"
    );
    let codes = &r.topics[0].partitions;
    assert_eq!(codes.len(), 90_000, "one code per entry, as sent");
    assert!(codes.iter().all(|(_, code)| *code == ErrorCode::NONE));
    // The last entry of each partition won.
    let committed = c
        .call(&FetchOffsetsRequest {
            group,
            member_id: String::new(),
            generation: 0,
            topics: vec![TopicPartitions {
                topic,
                partitions: vec![0, 1],
            }],
        })
        .await?;
    let offsets: Vec<i64> = committed.topics[0]
        .partitions
        .iter()
        .map(|p| p.offset)
        .collect();
    assert_eq!(offsets, [89_998, 89_999]);
    broker.shutdown().await?;
    Ok(())
}
