//! Produce validates every batch before writing it (Kafka's LogValidator):
//! forged, damaged or far-future batches, sent as raw frames to a real
//! broker, are refused with a code and a reason, the log does not move, and
//! normal produce and consume still work after them.

mod common;

use anyhow::{Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use common::{Raw, batch, create, fetch, produce, start, values_of};
use warren_protocol::api::bindings::BindRequest;
use warren_protocol::api::list_offsets::{LATEST, ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::produce::{
    ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceTopic, ROUTE_BY_KEY,
};
use warren_protocol::api::topics::CreateTopicRequest;
use warren_protocol::record_batch::{self, BATCH_HEADER_LEN, CRC_OFFSET, CRC_START};
use warren_protocol::varint::{put_varint, put_varlong};
use warren_protocol::{Compression, ErrorCode, RecordBatchBuilder};

const TEN_YEARS_MS: i64 = 10 * 365 * 24 * 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn fix_crc(batch: &mut [u8]) {
    let crc = record_batch::compute_crc(batch);
    batch[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

/// A batch header around `records`, written by hand, with a correct CRC.
fn forged(attributes: i16, records_count: i32, last_offset_delta: i32, records: &[u8]) -> Bytes {
    let ts = 1_700_000_000_000i64;
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((BATCH_HEADER_LEN - 12 + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(attributes);
    b.put_i32(last_offset_delta);
    b.put_i64(ts);
    b.put_i64(ts);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(records_count);
    b.put_slice(records);
    fix_crc(&mut b);
    b.freeze()
}

/// One record (offset delta `offset_delta`, timestamp delta 0, value `v`).
fn record(offset_delta: i32, v: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i8(0);
    put_varlong(&mut body, 0);
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, -1);
    put_varint(&mut body, v.len() as i32);
    body.put_slice(v);
    put_varint(&mut body, 0);
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

async fn log_end(c: &mut Raw, topic: &str, partition: u32) -> Result<i64> {
    let r = c
        .call(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: topic.into(),
                partitions: vec![(partition, LATEST)],
            }],
        })
        .await?;
    Ok(r.topics[0].partitions[0].offset)
}

async fn produce_one(c: &mut Raw, topic: &str, records: Bytes) -> Result<ProducePartitionResponse> {
    let r = c.call(&produce(topic, 0, records, -1)).await?;
    Ok(r.topics[0].partitions[0].clone())
}

/// Each forged or damaged batch is refused with `code`, a message, and the
/// log end offset unchanged.
async fn assert_refused(
    c: &mut Raw,
    topic: &str,
    what: &str,
    records: Bytes,
    code: ErrorCode,
    message_has: &str,
) -> Result<()> {
    let before = log_end(c, topic, 0).await?;
    let p = produce_one(c, topic, records).await?;
    assert_eq!(p.error_code, code, "{what}: {p:?}");
    assert_eq!(p.base_offset, -1, "{what}");
    let message = p.error_message.context("a refusal says why")?;
    assert!(message.contains(message_has), "{what}: {message}");
    assert_eq!(
        log_end(c, topic, 0).await?,
        before,
        "{what}: nothing written"
    );
    Ok(())
}

#[tokio::test]
async fn forged_and_damaged_batches_are_refused_and_the_partition_keeps_working() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    let first = produce_one(&mut c, "t", batch(&["before"])?).await?;
    assert_eq!((first.error_code, first.base_offset), (ErrorCode::NONE, 0));

    // The 61 bytes: 2^31-1 records promised, none there, CRC right.
    let empty = forged(0, 0x7fff_ffff, 0x7fff_fffe, &[]);
    assert_eq!(empty.len(), 61);
    assert_refused(
        &mut c,
        "t",
        "forged count",
        empty,
        ErrorCode::CORRUPT_MESSAGE,
        "2147483647 records",
    )
    .await?;

    // Garbage where the records are, with a CRC that matches it.
    let mut garbage = batch(&["hello", "world"])?.to_vec();
    for b in &mut garbage[BATCH_HEADER_LEN..] {
        *b = 0xa5;
    }
    fix_crc(&mut garbage);
    assert_refused(
        &mut c,
        "t",
        "garbage records",
        garbage.into(),
        ErrorCode::CORRUPT_MESSAGE,
        "nothing written",
    )
    .await?;

    // Three records under a header that says two (count one short).
    let three = [record(0, b"a"), record(1, b"b"), record(2, b"c")].concat();
    assert_refused(
        &mut c,
        "t",
        "count one short",
        forged(0, 2, 1, &three),
        ErrorCode::CORRUPT_MESSAGE,
        "batch says 2 records",
    )
    .await?;

    // A record stamped ten years from now.
    let mut future = RecordBatchBuilder::new(Compression::None);
    future.append(now_ms() + TEN_YEARS_MS, None, Some(b"later"), &[]);
    assert_refused(
        &mut c,
        "t",
        "future timestamp",
        future.build()?,
        ErrorCode::CORRUPT_MESSAGE,
        "ahead of the broker's clock",
    )
    .await?;

    // Control and transactional batches are the broker's to write.
    for (bit, name) in [(0x20i16, "control"), (0x10, "transactional")] {
        let one = record(0, b"x");
        assert_refused(
            &mut c,
            "t",
            name,
            forged(bit, 1, 0, &one),
            ErrorCode::CORRUPT_MESSAGE,
            "attributes",
        )
        .await?;
    }

    // zstd: the header says two records, the decompressed block holds one.
    let mut one = RecordBatchBuilder::new(Compression::Zstd);
    one.append(1_700_000_000_000, None, Some(b"only one"), &[]);
    let mut two = one.build()?.to_vec();
    two[23..27].copy_from_slice(&1i32.to_be_bytes()); // last_offset_delta
    two[57..61].copy_from_slice(&2i32.to_be_bytes()); // records_count
    fix_crc(&mut two);
    assert_refused(
        &mut c,
        "t",
        "zstd count",
        two.into(),
        ErrorCode::CORRUPT_MESSAGE,
        "batch says 2 records but holds 1",
    )
    .await?;

    // A normal produce and a consume from the beginning still work.
    let after = produce_one(&mut c, "t", batch(&["after"])?).await?;
    assert_eq!((after.error_code, after.base_offset), (ErrorCode::NONE, 1));
    let f = c.call(&fetch("t", 0, 1000)).await?;
    let p = &f.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NONE);
    assert_eq!(values_of(p.records.clone())?, ["before", "after"]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_refused_routed_batch_reaches_none_of_its_partitions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&CreateTopicRequest {
        name: "d".into(),
        partitions: 2,
        configs: vec![
            ("routing".into(), "direct".into()),
            ("durability".into(), "none".into()),
        ],
    })
    .await?;
    c.call(&BindRequest {
        topic: "d".into(),
        key: "k".into(),
        partitions: vec![0, 1],
    })
    .await?;
    let routed = |records: Bytes| ProduceRequest {
        acks: 1,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            topic: "d".into(),
            partitions: vec![ProducePartition {
                partition: ROUTE_BY_KEY,
                routing_key: Some("k".into()),
                records,
            }],
        }],
    };
    let r = c
        .call(&routed(forged(0, 0x7fff_ffff, 0x7fff_fffe, &[])))
        .await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::CORRUPT_MESSAGE, "{p:?}");
    assert!(p.more.is_empty());
    for partition in [0, 1] {
        assert_eq!(log_end(&mut c, "d", partition).await?, 0);
    }
    let r = c.call(&routed(batch(&["ok"])?)).await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NONE, "{p:?}");
    assert_eq!(p.more.len(), 1);
    for partition in [0, 1] {
        assert_eq!(log_end(&mut c, "d", partition).await?, 1);
    }
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_timestamp_skew_is_configurable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        message_timestamp_max_skew_ms: i64::MAX as u64,
        ..warren_broker::BrokerConfig::default()
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    let mut future = RecordBatchBuilder::new(Compression::None);
    future.append(now_ms() + TEN_YEARS_MS, None, Some(b"later"), &[]);
    let p = produce_one(&mut c, "t", future.build()?).await?;
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 0));
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_request_of_zstd_bombs_decompresses_within_its_budget() -> Result<()> {
    // 200 batches of ~200 bytes, each inflating to just under the 1 MiB
    // `max.message.bytes`: one 40 KB request would cost 200 MiB of
    // decompression. Its budget is 64 MiB + 64 x its bytes, so about 66 are
    // accepted and the rest refused, each with a message naming the budget.
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "bombs", 1, "none").await?;
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    b.append(now_ms(), None, Some(&vec![0u8; (1 << 20) - 4096]), &[]);
    let bomb = b.build()?;
    assert!(bomb.len() < 1024, "{}", bomb.len());
    const BOMBS: usize = 200;
    let request = ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            topic: "bombs".into(),
            partitions: (0..BOMBS)
                .map(|_| ProducePartition {
                    partition: 0,
                    routing_key: None,
                    records: bomb.clone(),
                })
                .collect(),
        }],
    };
    let budget = (64 << 20) + 64 * BOMBS * bomb.len();
    let per_bomb = (1 << 20) - 4096;
    let r = c.call(&request).await?;
    let answers = &r.topics[0].partitions;
    assert_eq!(answers.len(), BOMBS);
    let accepted = answers
        .iter()
        .take_while(|p| p.error_code == ErrorCode::NONE)
        .count();
    assert!(
        accepted >= budget / per_bomb - 1 && accepted <= budget / per_bomb + 1,
        "accepted {accepted}, budget {budget} for {per_bomb} each"
    );
    for p in &answers[accepted..] {
        assert_eq!(p.error_code, ErrorCode::MESSAGE_TOO_LARGE, "{p:?}");
        let message = p.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("budget"), "{message}");
    }
    assert_eq!(log_end(&mut c, "bombs", 0).await?, accepted as i64);
    // One bomb in its own request is still fine.
    let p = produce_one(&mut c, "bombs", bomb.clone()).await?;
    assert_eq!(p.error_code, ErrorCode::NONE, "{p:?}");
    broker.shutdown().await?;
    Ok(())
}
