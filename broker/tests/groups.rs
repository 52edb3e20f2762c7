//! The group apis over a raw socket: generations fence stale members, the
//! session timeout expels, operator commits need an empty group, and the
//! offsets are durable across a restart.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, TopicPartitions,
};

mod common;
use common::{Raw, create, start};

fn join(member_id: &str, session_timeout_ms: u32) -> JoinGroupRequest {
    JoinGroupRequest {
        group: "g".into(),
        member_id: member_id.into(),
        session_timeout_ms,
        topics: vec!["t".into()],
    }
}

fn commit(member: &str, generation: u32, partition: u32, offset: u64) -> CommitOffsetsRequest {
    CommitOffsetsRequest {
        group: "g".into(),
        member_id: member.into(),
        generation,
        topics: vec![CommitTopic {
            topic: "t".into(),
            partitions: vec![CommitPartition {
                partition,
                offset,
                metadata: Some("m".into()),
            }],
        }],
    }
}

fn fetch_offsets(member: &str, generation: u32) -> FetchOffsetsRequest {
    FetchOffsetsRequest {
        group: "g".into(),
        member_id: member.into(),
        generation,
        topics: vec![TopicPartitions {
            topic: "t".into(),
            partitions: vec![0, 1, 2, 3],
        }],
    }
}

fn partitions(a: &[TopicPartitions]) -> BTreeSet<u32> {
    a.iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

fn codes(r: &warren_protocol::api::groups::CommitOffsetsResponse) -> Vec<ErrorCode> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|(_, c)| *c))
        .collect()
}

#[tokio::test]
async fn a_stale_generation_commit_or_offset_fetch_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let versions = c.call(&ApiVersionsRequest).await?;
    for key in [
        ApiKey::JoinGroup,
        ApiKey::CommitOffsets,
        ApiKey::DescribeGroup,
    ] {
        assert!(
            versions.apis.iter().any(|a| a.api_key == key as u16),
            "{key:?} offered"
        );
    }
    create(&mut c, "t", 4, "fsync").await?;
    let a: JoinGroupResponse = c.call(&join("", 10_000)).await?;
    assert_eq!(partitions(&a.assignment).len(), 4);
    assert_eq!(a.heartbeat_interval_ms, 250);
    let ok = c.call(&commit(&a.member_id, a.generation, 0, 10)).await?;
    assert_eq!(codes(&ok), [ErrorCode::NONE]);

    // b joins; a's next heartbeat moves it to a new generation giving up 2.
    let b: JoinGroupResponse = c.call(&join("", 10_000)).await?;
    assert!(b.assignment.is_empty());
    let a1 = c
        .call(&HeartbeatRequest {
            group: "g".into(),
            member_id: a.member_id.clone(),
            generation: a.generation,
            owned: a.assignment.clone(),
        })
        .await?;
    assert!(a1.generation > a.generation);
    assert_eq!(partitions(&a1.assignment).len(), 2);

    // The old generation is refused, per partition for a commit and in the
    // header for an offset fetch; the new one works.
    let kept = *partitions(&a1.assignment)
        .first()
        .ok_or_else(|| anyhow::anyhow!("kept"))?;
    let stale = c
        .call(&commit(&a.member_id, a.generation, kept, 20))
        .await?;
    assert_eq!(codes(&stale), [ErrorCode::STALE_GENERATION]);
    assert_eq!(
        c.try_call(&fetch_offsets(&a.member_id, a.generation))
            .await?
            .err(),
        Some(ErrorCode::STALE_GENERATION)
    );
    let fresh = c
        .call(&commit(&a.member_id, a1.generation, kept, 20))
        .await?;
    assert_eq!(codes(&fresh), [ErrorCode::NONE]);
    // A partition a does not hold, and b (which holds nothing yet).
    let b_side = partitions(&a.assignment)
        .difference(&partitions(&a1.assignment))
        .copied()
        .collect::<Vec<_>>();
    let not_held = c
        .call(&commit(&b.member_id, b.generation, b_side[0], 5))
        .await?;
    assert_eq!(codes(&not_held), [ErrorCode::PARTITION_NOT_ASSIGNED]);
    // Unknown members and operator commits on a group with members.
    assert_eq!(
        c.try_call(&commit("nobody", 1, 0, 1)).await?.err(),
        Some(ErrorCode::UNKNOWN_MEMBER)
    );
    assert_eq!(
        c.try_call(&commit("", 0, 0, 1)).await?.err(),
        Some(ErrorCode::GROUP_NOT_EMPTY)
    );
    // Session timeouts outside the broker's range.
    assert_eq!(
        c.try_call(&join("", 10)).await?.err(),
        Some(ErrorCode::INVALID_SESSION_TIMEOUT)
    );

    // Both leave; the operator may now reset; the offsets survive a restart.
    for m in [&a.member_id, &b.member_id] {
        c.call(&LeaveGroupRequest {
            group: "g".into(),
            member_id: m.clone(),
        })
        .await?;
    }
    let reset = c.call(&commit("", 0, 3, 33)).await?;
    assert_eq!(codes(&reset), [ErrorCode::NONE]);
    drop(c);
    broker.shutdown().await?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let offsets = c.call(&fetch_offsets("", 0)).await?;
    let got: Vec<(u32, i64)> = offsets
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.offset)))
        .collect();
    // In commit order: 0 -> 10, kept -> 20, then the operator's 3 -> 33.
    let mut expected = vec![(0, 10), (1, -1), (2, -1), (3, -1)];
    expected[kept as usize].1 = 20;
    expected[3].1 = 33;
    assert_eq!(got, expected);
    // After a restart the broker has forgotten members: they must rejoin.
    assert_eq!(
        c.try_call(&HeartbeatRequest {
            group: "g".into(),
            member_id: a.member_id.clone(),
            generation: a1.generation,
            owned: vec![],
        })
        .await?
        .err(),
        Some(ErrorCode::UNKNOWN_MEMBER)
    );
    broker.shutdown().await?;
    Ok(())
}

/// On paused time: session deadlines are tokio timers, so `a`'s 1 s session
/// runs out on the test's (virtual) 100 ms heartbeat sleeps, not on wall time.
#[tokio::test(start_paused = true)]
async fn a_member_that_stops_heartbeating_is_expelled_and_its_partitions_move() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 4, "fsync").await?;
    let a: JoinGroupResponse = c.call(&join("", 1_000)).await?;
    let b: JoinGroupResponse = c.call(&join("", 30_000)).await?;
    assert!(b.assignment.is_empty());
    // a never heartbeats again; b heartbeats until it owns everything.
    let mut generation = b.generation;
    let mut owned = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hb = c
            .call(&HeartbeatRequest {
                group: "g".into(),
                member_id: b.member_id.clone(),
                generation,
                owned: owned.clone(),
            })
            .await?;
        generation = hb.generation;
        owned = hb.assignment;
        if partitions(&owned).len() == 4 {
            break;
        }
    }
    assert_eq!(partitions(&owned).len(), 4);
    assert_eq!(
        c.try_call(&commit(&a.member_id, a.generation, 0, 1))
            .await?
            .err(),
        Some(ErrorCode::UNKNOWN_MEMBER)
    );
    broker.shutdown().await?;
    Ok(())
}
