//! Storage faults under a running broker, driven through the storage crate's
//! fault-injection seam (`warren_storage::fault_injection`, on for the tests
//! via the dev-dependency's `fault-injection` feature): the n-th segment fsync
//! of a partition fails or is held, by count, never by timing.
//!
//! - A failed fsync is never acknowledged: an acks=-1 producer gets
//!   `STORAGE_ERROR`, later produces are refused, consumers see only what was
//!   synced before, and a restart (a reopen, which recovers) brings the
//!   partition back with every batch that was synced.
//! - Background fsyncs (acks 0 and 1 to an `fsync` topic) are one per
//!   partition at a time: a flood of acks=0 produces while an fsync hangs holds
//!   no more tasks or blocking threads, offset commits still answer, and every
//!   record becomes visible once the fsync comes back.
#![expect(clippy::indexing_slicing, reason = "tests")]

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Raw, batch, create, fetch, produce, start, values_of};
use warren_protocol::ErrorCode;
use warren_protocol::api::groups::{CommitOffsetsRequest, CommitPartition, CommitTopic};
use warren_protocol::api::list_offsets::{LATEST, ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::produce::ProduceResponse;
use warren_storage::fault_injection::SyncFault;

/// acks=0 produces in the flood: more than tokio's 512 blocking threads, so a
/// task per request holding one (the old way) would fill the pool.
const FLOOD_PRODUCES: usize = 2000;

async fn produce_code(c: &mut Raw, value: &str, acks: i16) -> Result<(ErrorCode, Option<String>)> {
    let r: ProduceResponse = c.call(&produce("t", 0, batch(&[value])?, acks)).await?;
    let p = &r.topics[0].partitions[0];
    Ok((p.error_code, p.error_message.clone()))
}

/// An offset commit of group `g` on `t-0`: it needs a blocking thread for
/// its own fsync, so it shows whether the blocking pool is starved.
fn commit_offset_zero() -> CommitOffsetsRequest {
    CommitOffsetsRequest {
        group: "g".into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: "t".into(),
            partitions: vec![CommitPartition {
                partition: 0,
                offset: 0,
                metadata: None,
            }],
        }],
    }
}

async fn high_watermark(c: &mut Raw) -> Result<i64> {
    let r = c
        .call(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "t".into(),
                partitions: vec![(0, LATEST)],
            }],
        })
        .await?;
    Ok(r.topics[0].partitions[0].offset)
}

async fn fetch_values(c: &mut Raw) -> Result<Vec<String>> {
    let f = c.call(&fetch("t", 0, 0)).await?;
    let p = &f.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NONE);
    values_of(p.records.clone())
}

#[tokio::test]
async fn an_acks_all_producer_gets_storage_error_and_never_ok_after_a_failed_fsync() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "fsync").await?;
    assert_eq!(produce_code(&mut c, "synced", -1).await?.0, ErrorCode::NONE);

    let fault = SyncFault::fail_nth(dir.path().join("t-0"), 1).install();
    let (code, message) = produce_code(&mut c, "lost", -1).await?;
    assert_eq!(code, ErrorCode::STORAGE_ERROR, "{message:?}");
    assert!(fault.fired());
    // Refused from now on, whatever acks: the partition is offline for writes.
    for acks in [-1, 1, -1] {
        let (code, message) = produce_code(&mut c, "refused", acks).await?;
        assert_eq!(code, ErrorCode::STORAGE_ERROR, "acks={acks}");
        let message = message.context("a refused produce says why")?;
        assert!(message.contains("offline for writes"), "{message}");
    }
    assert_eq!(
        fault.syncs(),
        1,
        "no fsync of the partition after the failed one"
    );
    // Consumers see only what was synced before the failure.
    assert_eq!(high_watermark(&mut c).await?, 1);
    assert_eq!(fetch_values(&mut c).await?, ["synced"]);
    drop(c);
    // The failed log cannot close cleanly; the next start recovers it.
    assert!(broker.shutdown().await.is_err());
    drop(fault);

    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    assert_eq!(produce_code(&mut c, "after", -1).await?.0, ErrorCode::NONE);
    let values = fetch_values(&mut c).await?;
    assert_eq!(values.first().map(String::as_str), Some("synced"));
    assert_eq!(values.last().map(String::as_str), Some("after"));
    assert!(!values.iter().any(|v| v == "refused"), "{values:?}");
    broker.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_acks0_produces_keeps_one_background_sync_and_commits_answer() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut c = Raw::connect(addr).await?;
    create(&mut c, "t", 1, "fsync").await?;
    let mut committer = Raw::connect(addr).await?;
    let runtime = tokio::runtime::Handle::current().metrics();
    let tasks_before = runtime.num_alive_tasks();

    // The partition's first fsync hangs until released: every background
    // sync asked for meanwhile has to wait.
    let fault = SyncFault::hold_nth(dir.path().join("t-0"), 1).install();
    let mut flood = Raw::connect(addr).await?;
    for i in 0..FLOOD_PRODUCES {
        flood
            .send(&produce("t", 0, batch(&[&format!("v{i}")])?, 0))
            .await?;
    }
    // Answered after every acks=0 produce before it on the connection.
    let last: ProduceResponse = flood.call(&produce("t", 0, batch(&["last"])?, 1)).await?;
    assert_eq!(last.topics[0].partitions[0].error_code, ErrorCode::NONE);
    // Not `wait_reached` on a blocking thread: the old way left none free.
    for _ in 0..300 {
        if fault.fired() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fault.fired(), "the first background fsync started");

    let tasks_during = runtime.num_alive_tasks();
    assert!(
        tasks_during < tasks_before + 50,
        "{FLOOD_PRODUCES} acks=0 produces left {tasks_during} tasks alive ({tasks_before} before)"
    );
    // Offset commits need a blocking thread for their fsync: they still get one.
    let commit = commit_offset_zero();
    // Generous: only a starved blocking pool takes this long.
    let committed = tokio::time::timeout(Duration::from_secs(20), committer.call(&commit))
        .await
        .context("an offset commit got no answer during the flood")??;
    assert_eq!(committed.topics[0].partitions[0].1, ErrorCode::NONE);
    assert_eq!(
        high_watermark(&mut c).await?,
        0,
        "nothing is visible before its fsync"
    );

    fault.release();
    let end = FLOOD_PRODUCES as i64 + 1;
    let mut hw = 0;
    for _ in 0..300 {
        hw = high_watermark(&mut c).await?;
        if hw == end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hw, end, "every record becomes visible after the flood");
    drop(fault);
    broker.shutdown().await?;
    Ok(())
}

/// Connections of acks=-1 produces in flight at once in the test below:
/// 5 x 128 (`max_inflight_requests`) = 640, more than tokio's 512 blocking
/// threads.
const WAITING_CONNECTIONS: usize = 5;

#[tokio::test]
async fn acks_all_produces_waiting_on_a_slow_fsync_hold_no_threads_and_commits_answer() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut c = Raw::connect(addr).await?;
    create(&mut c, "t", 1, "fsync").await?;
    let mut committer = Raw::connect(addr).await?;

    // The partition's first fsync hangs until released; every acks=-1 produce
    // waits for it (or the one after it).
    let fault = SyncFault::hold_nth(dir.path().join("t-0"), 1).install();
    let mut waiting = Vec::new();
    let mut sent = 0;
    for _ in 0..WAITING_CONNECTIONS {
        let mut w = Raw::connect(addr).await?;
        for _ in 0..128 {
            let mut p = produce("t", 0, batch(&[&format!("v{sent}")])?, -1);
            p.timeout_ms = 120_000;
            w.send(&p).await?;
            sent += 1;
        }
        waiting.push(w);
    }
    for _ in 0..300 {
        if fault.fired() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(fault.fired(), "the first fsync started");
    // Give every produce time to reach its wait.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // An offset commit needs a blocking thread for its own fsync: with a
    // thread held per waiting produce, none was free until they timed out.
    let commit = commit_offset_zero();
    let committed = tokio::time::timeout(Duration::from_secs(20), committer.call(&commit))
        .await
        .context("an offset commit got no answer while acks=-1 produces waited")??;
    assert_eq!(committed.topics[0].partitions[0].1, ErrorCode::NONE);

    // Released, every produce is acknowledged and every record visible.
    fault.release();
    for w in &mut waiting {
        for _ in 0..128 {
            let f = w.recv().await.context("a waiting produce got no answer")?;
            assert_eq!(f.header.error_code, 0);
            let r: ProduceResponse = warren_protocol::api::decode(f.body)?;
            assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
        }
    }
    assert_eq!(high_watermark(&mut c).await?, sent as i64);
    drop(fault);
    broker.shutdown().await?;
    Ok(())
}
