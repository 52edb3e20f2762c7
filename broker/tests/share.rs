//! ShareFetch and ShareAck on the wire, against the real broker on
//! 127.0.0.1:0: request validation, the acquired ranges and the batches that
//! carry them, the in-flight window bound, long polls woken by new records and
//! by releases, per-offset acknowledgement checks, and the share topic configs.
//!
//! Every wait is bounded (the raw client gives up after 10 s).

mod common;

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use common::{Raw, batch, create, produce, start, values_of};
use warren_protocol::ErrorCode;
use warren_protocol::api::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use warren_protocol::api::share::{
    AckBatch, AckKind, AcquiredRecords, ShareAckPartition, ShareAckRequest, ShareAckResponse,
    ShareFetchRequest, ShareFetchResponse,
};
use warren_protocol::api::topics::{CreateTopicRequest, DescribeTopicRequest};
use warren_protocol::api::{self, ErrorBody};

fn share_fetch(member: &str, max_records: u32, max_wait_ms: u32) -> ShareFetchRequest {
    ShareFetchRequest {
        group: "g".into(),
        member_id: member.into(),
        topic: "t".into(),
        max_records,
        max_wait_ms,
        partitions: Vec::new(),
    }
}

fn share_ack(member: &str, batches: &[(u64, u64, AckKind)]) -> ShareAckRequest {
    ShareAckRequest {
        group: "g".into(),
        member_id: member.into(),
        topic: "t".into(),
        partitions: vec![ShareAckPartition {
            partition: 0,
            batches: batches
                .iter()
                .map(|(first_offset, last_offset, kind)| AckBatch {
                    first_offset: *first_offset,
                    last_offset: *last_offset,
                    kind: *kind,
                })
                .collect(),
        }],
    }
}

/// Sends `req` and returns the header's error code (NONE or the error).
async fn header_code<R: api::Request>(c: &mut Raw, req: &R) -> Result<ErrorCode> {
    c.send(req).await?;
    let f = c.recv().await?;
    if f.header.error_code != 0 {
        let _: ErrorBody = api::decode(f.body)?;
    }
    Ok(ErrorCode(f.header.error_code))
}

async fn produce_values(c: &mut Raw, values: &[&str]) -> Result<()> {
    let response = c.call(&produce("t", 0, batch(values)?, -1)).await?;
    let code = response.topics[0].partitions[0].error_code;
    ensure!(code == ErrorCode::NONE, "produce: {code:?}");
    Ok(())
}

fn ranges(acquired: &[AcquiredRecords]) -> Vec<(u64, u64, u16)> {
    acquired
        .iter()
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

#[tokio::test]
async fn share_fetch_and_ack_validate_their_requests() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let versions: ApiVersionsResponse = c.call(&ApiVersionsRequest).await?;
    ensure!(
        versions.apis.iter().any(|a| a.api_key == 16)
            && versions.apis.iter().any(|a| a.api_key == 17)
    );
    create(&mut c, "t", 1, "none").await?;

    let mut bad_group = share_fetch("m", 10, 0);
    bad_group.group = "a b".into();
    ensure!(header_code(&mut c, &bad_group).await? == ErrorCode::INVALID_GROUP_ID);
    ensure!(header_code(&mut c, &share_fetch("", 10, 0)).await? == ErrorCode::INVALID_MEMBER_ID);
    ensure!(header_code(&mut c, &share_fetch("m", 0, 0)).await? == ErrorCode::INVALID_REQUEST);
    let mut unknown = share_fetch("m", 10, 0);
    unknown.topic = "nope".into();
    ensure!(header_code(&mut c, &unknown).await? == ErrorCode::UNKNOWN_TOPIC);
    let mut ack = share_ack("m", &[]);
    ack.topic = "nope".into();
    ensure!(header_code(&mut c, &ack).await? == ErrorCode::UNKNOWN_TOPIC);

    // An unknown partition is a per-partition error, answered at once.
    let mut partitions = share_fetch("m", 10, 5_000);
    partitions.partitions = vec![7];
    let response: ShareFetchResponse = c.call(&partitions).await?;
    ensure!(response.partitions.len() == 1);
    ensure!(response.partitions[0].error_code == ErrorCode::UNKNOWN_PARTITION);
    ensure!(response.acquisition_lock_timeout_ms == 30_000);

    // A kind outside 1..=3 makes the body malformed.
    let mut body = api::encode(&share_ack("m", &[(0, 0, AckKind::Accept)]))?.to_vec();
    let last = body.len() - 1;
    body[last] = 9;
    c.send_frame(17, 0, Bytes::from(body)).await?;
    ensure!(ErrorCode(c.recv().await?.header.error_code) == ErrorCode::INVALID_REQUEST);

    // Nothing fetched yet: any acknowledgement names an offset not acquired.
    let response: ShareAckResponse = c.call(&share_ack("m", &[(0, 5, AckKind::Accept)])).await?;
    ensure!(response.partitions == [(0, ErrorCode::INVALID_RECORD_STATE)]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn acquired_ranges_come_with_the_batches_that_hold_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    produce_values(&mut c, &["a", "b", "c"]).await?;
    produce_values(&mut c, &["d", "e"]).await?;

    let response: ShareFetchResponse = c.call(&share_fetch("m1", 4, 0)).await?;
    let p = &response.partitions[0];
    ensure!(p.error_code == ErrorCode::NONE);
    ensure!(ranges(&p.acquired) == [(0, 3, 1)], "{:?}", p.acquired);
    // Both batches, whole: the client keeps only the acquired offsets.
    ensure!(values_of(p.records.clone())? == ["a", "b", "c", "d", "e"]);

    // Another member gets only what is left; the first member's acks of
    // offsets it does not hold change nothing for them.
    let other: ShareFetchResponse = c.call(&share_fetch("m2", 10, 0)).await?;
    ensure!(ranges(&other.partitions[0].acquired) == [(4, 4, 1)]);
    let response: ShareAckResponse = c
        .call(&share_ack(
            "m1",
            &[
                (0, 0, AckKind::Accept),
                (1, 1, AckKind::Release),
                (4, 4, AckKind::Accept),
            ],
        ))
        .await?;
    ensure!(
        response.partitions == [(0, ErrorCode::INVALID_RECORD_STATE)],
        "offset 4 is m2's"
    );
    // Offset 1 was released (count 2 next time), offset 4 is still m2's.
    let again: ShareFetchResponse = c.call(&share_fetch("m3", 10, 0)).await?;
    ensure!(ranges(&again.partitions[0].acquired) == [(1, 1, 2)]);
    let response: ShareAckResponse = c.call(&share_ack("m2", &[(4, 4, AckKind::Accept)])).await?;
    ensure!(response.partitions == [(0, ErrorCode::NONE)]);
    // Offset 0 was accepted: acknowledging it again is invalid.
    let response: ShareAckResponse = c.call(&share_ack("m1", &[(0, 0, AckKind::Accept)])).await?;
    ensure!(response.partitions == [(0, ErrorCode::INVALID_RECORD_STATE)]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_window_holds_at_most_2000_records() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    let values: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    for chunk in refs.chunks(500) {
        produce_values(&mut c, chunk).await?;
    }
    let response: ShareFetchResponse = c.call(&share_fetch("m", 100_000, 0)).await?;
    ensure!(ranges(&response.partitions[0].acquired) == [(0, 1999, 1)]);
    let full: ShareFetchResponse = c.call(&share_fetch("m", 100_000, 0)).await?;
    ensure!(full.partitions.is_empty(), "a full window gives nothing");
    // Acknowledging the oldest 100 moves the window by 100.
    let _: ShareAckResponse = c.call(&share_ack("m", &[(0, 99, AckKind::Accept)])).await?;
    let more: ShareFetchResponse = c.call(&share_fetch("m", 100_000, 0)).await?;
    ensure!(ranges(&more.partitions[0].acquired) == [(2000, 2099, 1)]);
    broker.shutdown().await?;
    Ok(())
}

/// On paused time: the 50 ms pauses (for each fetch to reach its wait) and
/// the 9 s `max_wait_ms` are tokio timers. A missed wake-up would show as the
/// clock jumping to the 9 s deadline and an empty answer.
#[tokio::test(start_paused = true)]
async fn a_long_poll_is_woken_by_new_records_and_by_a_release() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut waiter = Raw::connect(broker.local_addr()).await?;
    let mut other = Raw::connect(broker.local_addr()).await?;
    create(&mut other, "t", 1, "fsync").await?;

    // Nothing to acquire: the fetch waits until a produce arrives.
    waiter.send(&share_fetch("w", 10, 9_000)).await?;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    produce_values(&mut other, &["x", "y"]).await?;
    let f = waiter.recv().await?;
    let response: ShareFetchResponse = api::decode(f.body)?;
    ensure!(ranges(&response.partitions[0].acquired) == [(0, 1, 1)]);

    // All held by "w": a second member waits until "w" releases one.
    waiter.send(&share_fetch("v", 10, 9_000)).await?;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let released: ShareAckResponse = other
        .call(&share_ack("w", &[(1, 1, AckKind::Release)]))
        .await?;
    ensure!(released.partitions == [(0, ErrorCode::NONE)]);
    let f = waiter.recv().await?;
    let response: ShareFetchResponse = api::decode(f.body)?;
    ensure!(ranges(&response.partitions[0].acquired) == [(1, 1, 2)]);
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn share_configs_are_checked_stored_and_described() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    for (key, value) in [
        ("max.delivery.attempts", "0"),
        ("share.lock.timeout.ms", "10"),
        ("dead.letter.topic", "t"),
        ("dead.letter.topic", "bad name"),
    ] {
        let req = CreateTopicRequest {
            name: "t".into(),
            partitions: 1,
            configs: vec![(key.into(), value.into())],
        };
        ensure!(
            header_code(&mut c, &req).await? == ErrorCode::INVALID_CONFIG,
            "{key}={value}"
        );
    }
    c.call(&CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        configs: vec![
            ("dead.letter.topic".into(), "t.dlq".into()),
            ("max.delivery.attempts".into(), "7".into()),
            ("share.lock.timeout.ms".into(), "2000".into()),
        ],
    })
    .await?;
    let described = c.call(&DescribeTopicRequest { name: "t".into() }).await?;
    let configs: BTreeSet<(String, String)> = described.configs.into_iter().collect();
    for (k, v) in [
        ("dead.letter.topic", "t.dlq"),
        ("max.delivery.attempts", "7"),
        ("share.lock.timeout.ms", "2000"),
    ] {
        ensure!(
            configs.contains(&(k.to_string(), v.to_string())),
            "{k}: {configs:?}"
        );
    }
    let response: ShareFetchResponse = c.call(&share_fetch("m", 1, 0)).await?;
    ensure!(response.acquisition_lock_timeout_ms == 2000);
    let dir_path = dir.path().to_path_buf();
    broker.shutdown().await?;
    // They survive a restart (stored with the topic).
    let broker = start(&dir_path).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let described = c.call(&DescribeTopicRequest { name: "t".into() }).await?;
    ensure!(
        described
            .configs
            .iter()
            .any(|(k, v)| k == "max.delivery.attempts" && v == "7"),
        "{:?}",
        described.configs
    );
    broker.shutdown().await.context("shutdown")?;
    Ok(())
}
