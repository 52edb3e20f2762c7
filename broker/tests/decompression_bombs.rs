//! Small zstd batches that decompress to 64 MiB each must not cost the
//! broker 64 MiB each when read back: the message peek and ListOffsets by
//! timestamp stream records through a small buffer and keep only what they
//! show. The broker runs in this test process (alone in this file, so no
//! other test shares its memory), and its resident set is read from
//! /proc/self/status: VmHWM (the peak) after the peeks, against VmRSS before
//! them, with the peak reset in between through /proc/self/clear_refs.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::{Raw, http_get, produce, start};
use serde_json::Value;
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::list_offsets::{LATEST, ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::share::{
    AckBatch, AckKind, ShareAckPartition, ShareAckRequest, ShareFetchRequest, ShareFetchResponse,
};
use warren_protocol::api::topics::CreateTopicRequest;
use warren_protocol::{Compression, ErrorCode, RecordBatch, RecordBatchBuilder};

/// Batches produced.
const BATCHES: usize = 50;
/// Each batch's one value: just under 64 MiB, so its records block fits the
/// 64 MiB a batch may decompress to (the produce-time cap, see below).
const VALUE_BYTES: usize = (64 << 20) - 1024;
/// What reading them back may add to the resident set.
const MAX_GROWTH_BYTES: u64 = 100 << 20;
/// The peek's `MAX_PEEK_FIELD_BYTES` (broker/src/http/api/messages.rs).
const MAX_PEEK_FIELD_BYTES: usize = 64 << 10;
/// The base timestamp of every batch.
const TIMESTAMP: i64 = 1_700_000_000_000;

/// The tests of this file measure the whole process: one at a time.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resets the process's peak resident set (VmHWM) to the current one.
fn reset_peak() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

/// A `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?;
    Ok(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peeking_and_searching_zstd_bombs_stays_within_100_mb() -> Result<()> {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let http = broker.http_addr();
    let mut c = Raw::connect(broker.local_addr()).await?;
    // Produce validation decompresses each batch (bounded by the topic's
    // max.message.bytes and 64 MiB): the topic takes 64 MiB so these are
    // accepted, and the read paths are what is measured.
    c.call(&CreateTopicRequest {
        name: "bomb".into(),
        partitions: 1,
        configs: vec![
            ("durability".into(), "none".into()),
            ("max.message.bytes".into(), (64u32 << 20).to_string()),
        ],
    })
    .await?;
    let batch = {
        let value = vec![b'x'; VALUE_BYTES];
        let mut b = RecordBatchBuilder::new(Compression::Zstd);
        b.append(TIMESTAMP, Some(b"k"), Some(&value), &[]);
        b.build()?
    };
    ensure!(batch.len() < 16 << 10, "{} bytes compressed", batch.len());
    for i in 0..BATCHES {
        let r = c.call(&produce("bomb", 0, batch.clone(), 1)).await?;
        let p = &r.topics[0].partitions[0];
        ensure!(p.error_code == ErrorCode::NONE, "batch {i}: {p:?}");
    }

    // Idle: let the produce buffers go, then reset the peak to now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = status_bytes("VmRSS:")?;
    reset_peak()?;

    let mut offset = 0u64;
    let mut shapes = Vec::new();
    for _ in 0..2 * BATCHES {
        if offset >= BATCHES as u64 {
            break;
        }
        let path = format!("/api/topics/bomb/partitions/0/messages?offset={offset}&limit=1000");
        let (status, body) = http_get(http, &path).await?;
        ensure!(status == 200, "{status}: {body}");
        let page: Value = serde_json::from_str(&body)?;
        let messages = page["messages"].as_array().context("no messages")?;
        ensure!(!messages.is_empty(), "a peek makes progress");
        // Kept small (checked after the memory): what each value looked like.
        for m in messages {
            let value = &m["value"];
            shapes.push((
                value["truncated"].clone(),
                value["bytes"].clone(),
                value["encoding"].clone(),
                value["data"].as_str().map(str::len),
                m["key"]["data"].clone(),
            ));
        }
        offset = page["next_offset"].as_u64().context("next_offset")?;
    }

    // ListOffsets by timestamp reads records too.
    let r = c
        .call(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "bomb".into(),
                partitions: vec![(0, TIMESTAMP)],
            }],
        })
        .await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.offset, p.timestamp),
        (ErrorCode::NONE, 0, TIMESTAMP)
    );

    let peak = status_bytes("VmHWM:")?;
    let growth = peak.saturating_sub(idle);
    println!(
        "resident set: idle {} MiB, peak while reading {} MiB",
        idle >> 20,
        peak >> 20
    );
    assert!(
        growth < MAX_GROWTH_BYTES,
        "resident set grew {} MiB (idle {} MiB, peak {} MiB)",
        growth >> 20,
        idle >> 20,
        peak >> 20
    );

    // Each value came cut, with its full length.
    assert_eq!(shapes.len(), BATCHES);
    for (truncated, bytes, encoding, shown, key) in shapes {
        assert_eq!(truncated, true);
        assert_eq!(bytes, VALUE_BYTES);
        assert_eq!(encoding, "utf8");
        assert_eq!(shown, Some(MAX_PEEK_FIELD_BYTES));
        assert_eq!(key, "k");
    }
    broker.shutdown().await?;
    Ok(())
}

/// A share group rejects a small zstd batch's three records, one of them a
/// 64 MiB value: the two small ones reach the dead-letter topic, the big one
/// (over its 1 MiB max.message.bytes) is archived without a copy, and the
/// copy never holds the batch decompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettering_a_zstd_bomb_copies_what_fits_within_100_mb() -> Result<()> {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&CreateTopicRequest {
        name: "jobs.dlq".into(),
        partitions: 1,
        configs: vec![("durability".into(), "none".into())],
    })
    .await?;
    c.call(&CreateTopicRequest {
        name: "jobs".into(),
        partitions: 1,
        configs: vec![
            ("durability".into(), "none".into()),
            ("max.message.bytes".into(), (64u32 << 20).to_string()),
            ("dead.letter.topic".into(), "jobs.dlq".into()),
        ],
    })
    .await?;
    let batch = {
        let value = vec![b'x'; VALUE_BYTES - 64];
        let mut b = RecordBatchBuilder::new(Compression::Zstd);
        b.append(TIMESTAMP, None, Some(b"small-a"), &[]);
        b.append(TIMESTAMP, None, Some(&value), &[]);
        b.append(TIMESTAMP, None, Some(b"small-b"), &[]);
        b.build()?
    };
    let r = c.call(&produce("jobs", 0, batch, 1)).await?;
    let p = &r.topics[0].partitions[0];
    ensure!(p.error_code == ErrorCode::NONE, "{p:?}");
    let got: ShareFetchResponse = c
        .call(&ShareFetchRequest {
            group: "workers".into(),
            member_id: "w1".into(),
            topic: "jobs".into(),
            max_records: 3,
            max_wait_ms: 1_000,
            partitions: Vec::new(),
        })
        .await?;
    ensure!(got.partitions.len() == 1, "{:?}", got.partitions.len());

    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = status_bytes("VmRSS:")?;
    reset_peak()?;
    c.call(&ShareAckRequest {
        group: "workers".into(),
        member_id: "w1".into(),
        topic: "jobs".into(),
        partitions: vec![ShareAckPartition {
            partition: 0,
            batches: vec![AckBatch {
                first_offset: 0,
                last_offset: 2,
                kind: AckKind::Reject,
            }],
        }],
    })
    .await?;
    // The copy runs in the background: wait (bounded) for its two records.
    let mut end = 0;
    for _ in 0..100 {
        let r = c
            .call(&ListOffsetsRequest {
                topics: vec![ListOffsetsTopic {
                    topic: "jobs.dlq".into(),
                    partitions: vec![(0, LATEST)],
                }],
            })
            .await?;
        end = r.topics[0].partitions[0].offset;
        if end >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = status_bytes("VmHWM:")?;
    println!(
        "resident set: idle {} MiB, peak while dead-lettering {} MiB",
        idle >> 20,
        peak >> 20
    );
    assert!(
        peak.saturating_sub(idle) < MAX_GROWTH_BYTES,
        "resident set grew {} MiB",
        peak.saturating_sub(idle) >> 20
    );
    assert_eq!(end, 2, "two records dead-lettered");
    let f = c
        .call(&FetchRequest {
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: "jobs.dlq".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                }],
            }],
        })
        .await?;
    let records = &f.topics[0].partitions[0].records;
    let len = warren_protocol::record_batch::peek_batch_len(records)?.context("a batch")?;
    let copied = RecordBatch::new(records.slice(..len))?.records()?;
    // (value, x-origin-offset) of each copy.
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
    let seen: Vec<(String, String)> = copied
        .iter()
        .map(|r| {
            let origin = r
                .headers
                .iter()
                .find(|h| h.key == "x-origin-offset")
                .and_then(|h| h.value.as_deref());
            (text(r.value.as_deref()), text(origin))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("small-a".to_string(), "0".to_string()),
            ("small-b".to_string(), "2".to_string())
        ]
    );
    broker.shutdown().await?;
    Ok(())
}

/// One ListOffsets request decompresses at most 64 MiB: the first partition's
/// huge batch is searched record by record, the second (past the budget) is
/// answered by its batch, base offset and max timestamp, without decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_time_answers_by_batch_past_its_decompression_budget() -> Result<()> {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&CreateTopicRequest {
        name: "search".into(),
        partitions: 2,
        configs: vec![
            ("durability".into(), "none".into()),
            ("max.message.bytes".into(), (64u32 << 20).to_string()),
        ],
    })
    .await?;
    let batch = {
        let value = vec![b'x'; VALUE_BYTES - 64];
        let mut b = RecordBatchBuilder::new(Compression::Zstd);
        b.append(TIMESTAMP, None, Some(&value), &[]);
        b.append(TIMESTAMP + 1, None, Some(b"tail"), &[]);
        b.build()?
    };
    for partition in [0, 1] {
        let r = c
            .call(&produce("search", partition, batch.clone(), 1))
            .await?;
        let p = &r.topics[0].partitions[0];
        ensure!(p.error_code == ErrorCode::NONE, "{p:?}");
    }
    let r = c
        .call(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "search".into(),
                partitions: vec![(0, TIMESTAMP + 1), (1, TIMESTAMP + 1)],
            }],
        })
        .await?;
    let answers: Vec<(ErrorCode, i64, i64)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset, p.timestamp))
        .collect();
    assert_eq!(
        answers,
        [
            (ErrorCode::NONE, 1, TIMESTAMP + 1),
            (ErrorCode::NONE, 0, TIMESTAMP + 1)
        ]
    );
    broker.shutdown().await?;
    Ok(())
}
