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
use warren_protocol::api::list_offsets::{ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::topics::CreateTopicRequest;
use warren_protocol::{Compression, ErrorCode, RecordBatchBuilder};

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
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;

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
