//! One client cannot make the broker do unbounded work or keep unbounded
//! state, nor read past its permissions (issue 13, points 5, 8 and 10), over
//! raw sockets against the real broker on 127.0.0.1:0.
//!
//! Timing: the box running these tests may be loaded (2 cores shared by
//! several builds), so no assertion is tighter than one second, and every
//! wait is bounded (the raw client gives up after 10 s, and each test wraps
//! its slow parts in a timeout).

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use common::{Raw, batch, create, create_user, produce, start, start_with};
use warren_protocol::ErrorCode;
use warren_protocol::api::api_versions::ApiVersionsRequest;
use warren_protocol::api::auth::{AclEntry, AuthenticateRequest, CreateAclRequest, Permission};
use warren_protocol::api::bindings::BindRequest;
use warren_protocol::api::fetch::{FetchPartition, FetchRequest, FetchTopic};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, DescribeGroupRequest, FetchOffsetsRequest,
    JoinGroupRequest, ListGroupsRequest, ListGroupsResponse, TopicPartitions,
};
use warren_protocol::api::metadata::MetadataRequest;
use warren_protocol::api::share::{
    AckBatch, AckKind, ShareAckPartition, ShareAckRequest, ShareAckResponse, ShareFetchRequest,
    ShareFetchResponse,
};
use warren_protocol::api::topics::{CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest};
use warren_protocol::api::{self, ErrorBody};
use warren_protocol::scram::ScramClient;

/// Sends `req` and returns the header's error code and message.
async fn refusal<R: api::Request>(c: &mut Raw, req: &R) -> Result<(ErrorCode, String)> {
    c.send(req).await?;
    let f = c.recv().await?;
    let code = ErrorCode(f.header.error_code);
    if code == ErrorCode::NONE {
        return Ok((code, String::new()));
    }
    let body: ErrorBody = api::decode(f.body)?;
    Ok((code, body.message))
}

fn share_fetch(partitions: Vec<u32>) -> ShareFetchRequest {
    ShareFetchRequest {
        group: "g".into(),
        member_id: "m".into(),
        topic: "t".into(),
        max_records: 100,
        max_wait_ms: 0,
        partitions,
    }
}

fn share_ack(batches: Vec<AckBatch>) -> ShareAckRequest {
    ShareAckRequest {
        group: "g".into(),
        member_id: "m".into(),
        topic: "t".into(),
        partitions: vec![ShareAckPartition {
            partition: 0,
            batches,
        }],
    }
}

async fn produce_values(c: &mut Raw, topic: &str, partition: i32, values: &[&str]) -> Result<()> {
    let response = c
        .call(&produce(topic, partition, batch(values)?, -1))
        .await?;
    let code = response.topics[0].partitions[0].error_code;
    ensure!(code == ErrorCode::NONE, "produce: {code:?}");
    Ok(())
}

/// Before the fix, 200 000 partition numbers were de-duplicated with
/// `Vec::contains` (2 x 10^10 steps on a worker thread). Now the request is
/// refused at once and another client's ApiVersions, sent at the same time,
/// is answered within a second (measured from its send; the whole test is
/// bounded by 30 s).
#[tokio::test]
async fn a_200k_partition_share_fetch_is_refused_while_another_client_is_served() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut setup = Raw::connect(addr).await?;
    create(&mut setup, "t", 2, "none").await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut flood = Raw::connect(addr).await?;
        let mut other = Raw::connect(addr).await?;
        let big = share_fetch((0..200_000).collect());
        let flooding = tokio::spawn(async move {
            let started = Instant::now();
            let answer = refusal(&mut flood, &big).await;
            (answer, started.elapsed())
        });
        let started = Instant::now();
        let _ = other.call(&ApiVersionsRequest).await?;
        let api_versions = started.elapsed();
        let (answer, flood_took) = flooding.await?;
        let (code, message) = answer?;
        ensure!(code == ErrorCode::INVALID_REQUEST, "{code:?}");
        ensure!(
            message.contains("200000 partitions") && message.contains("10000"),
            "{message}"
        );
        ensure!(
            api_versions < Duration::from_secs(1),
            "ApiVersions took {api_versions:?}"
        );
        ensure!(
            flood_took < Duration::from_secs(5),
            "the refusal took {flood_took:?}"
        );
        anyhow::Ok(())
    })
    .await
    .context("bounded at 30 s")??;

    // At the bound, with every partition named 5 000 times, the request is
    // served, each partition once.
    produce_values(&mut setup, "t", 0, &["a", "b"]).await?;
    let repeated: Vec<u32> = (0..10_000).map(|i| i % 2).collect();
    let started = Instant::now();
    let response: ShareFetchResponse = setup.call(&share_fetch(repeated)).await?;
    ensure!(started.elapsed() < Duration::from_secs(5));
    ensure!(response.partitions.len() == 1, "{:?}", response.partitions);
    ensure!(response.partitions[0].acquired.len() == 1);
    broker.shutdown().await?;
    Ok(())
}

/// 100 000 ranges each covering every offset: the first acknowledges, the
/// others are flagged (each offset is acknowledged once), in time linear in
/// the request; one more range than the bound is refused.
#[tokio::test]
async fn a_share_ack_of_many_overlapping_ranges_is_linear_and_bounded() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    let values: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    produce_values(&mut c, "t", 0, &refs).await?;
    let mut fetch = share_fetch(Vec::new());
    fetch.max_records = 2000;
    let got: ShareFetchResponse = c.call(&fetch).await?;
    ensure!(got.partitions[0].acquired.len() == 1);

    let whole = |kind| AckBatch {
        first_offset: 0,
        last_offset: u64::MAX,
        kind,
    };
    let over = share_ack(vec![whole(AckKind::Accept); 100_001]);
    let (code, message) = refusal(&mut c, &over).await?;
    ensure!(code == ErrorCode::INVALID_REQUEST, "{code:?}");
    ensure!(message.contains("100001 ranges"), "{message}");

    let started = Instant::now();
    let mut batches = vec![whole(AckKind::Release); 100_000];
    batches[0] = AckBatch {
        first_offset: 0,
        last_offset: 1999,
        kind: AckKind::Accept,
    };
    let response: ShareAckResponse = c.call(&share_ack(batches)).await?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // Offsets past 1999 were never acquired: the partition is flagged.
    ensure!(response.partitions == [(0, ErrorCode::INVALID_RECORD_STATE)]);
    // Every record was accepted by the first range, none released after.
    produce_values(&mut c, "t", 0, &["next"]).await?;
    let after: ShareFetchResponse = c.call(&share_fetch(Vec::new())).await?;
    let acquired = &after.partitions[0].acquired;
    ensure!(
        acquired.len() == 1 && acquired[0].first_offset == 2000 && acquired[0].last_offset == 2000,
        "{acquired:?}"
    );

    // A partition named twice is answered once.
    let mut twice = share_ack(vec![AckBatch {
        first_offset: 2000,
        last_offset: 2000,
        kind: AckKind::Accept,
    }]);
    twice.partitions.push(twice.partitions[0].clone());
    let response: ShareAckResponse = c.call(&twice).await?;
    ensure!(
        response.partitions == [(0, ErrorCode::INVALID_RECORD_STATE)],
        "the second range finds 2000 done: {:?}",
        response.partitions
    );
    broker.shutdown().await?;
    Ok(())
}

/// Metadata naming one topic 100 000 times answers it once (each answer
/// lists every partition, so repeats multiplied the response); over the
/// topic bound it is refused.
#[tokio::test]
async fn metadata_answers_a_repeated_topic_once_and_bounds_the_list() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 100, "none").await?;
    let repeated = MetadataRequest {
        topics: vec!["t".to_string(); 10_000],
    };
    let response = c.call(&repeated).await?;
    ensure!(response.topics.len() == 1);
    ensure!(response.topics[0].partitions.len() == 100);
    let over = MetadataRequest {
        topics: vec!["t".to_string(); 10_001],
    };
    let (code, message) = refusal(&mut c, &over).await?;
    ensure!(
        code == ErrorCode::INVALID_REQUEST && message.contains("10001 topics"),
        "{message}"
    );
    broker.shutdown().await?;
    Ok(())
}

/// A commit naming one partition 50 000 times writes it once, with the last
/// offset; one over the partition bound is refused; FetchOffsets likewise.
#[tokio::test]
async fn a_commit_naming_a_partition_many_times_writes_it_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    let commit = |n: u64| CommitOffsetsRequest {
        group: "g".into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: "t".into(),
            partitions: (0..n)
                .map(|i| CommitPartition {
                    partition: 0,
                    offset: i,
                    metadata: None,
                })
                .collect(),
        }],
    };
    let response = c.call(&commit(50_000)).await?;
    ensure!(response.topics[0].partitions.len() == 50_000);
    let offsets = c
        .call(&FetchOffsetsRequest {
            group: "g".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0],
            }],
        })
        .await?;
    ensure!(offsets.topics[0].partitions[0].offset == 49_999);
    let (code, message) = refusal(&mut c, &commit(100_001)).await?;
    ensure!(
        code == ErrorCode::INVALID_REQUEST && message.contains("100001 partitions"),
        "{message}"
    );
    let (code, _) = refusal(
        &mut c,
        &FetchOffsetsRequest {
            group: "g".into(),
            member_id: String::new(),
            generation: 0,
            topics: vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0; 100_001],
            }],
        },
    )
    .await?;
    ensure!(code == ErrorCode::INVALID_REQUEST);
    broker.shutdown().await?;
    Ok(())
}

/// Logs in with SCRAM-SHA-256.
async fn connect_as(addr: std::net::SocketAddr, user: &str, password: &str) -> Result<Raw> {
    let mut c = Raw::connect(addr).await?;
    let client = ScramClient::new(user, password)?;
    let first = c
        .call(&AuthenticateRequest {
            mechanism: "SCRAM-SHA-256".into(),
            auth_bytes: Bytes::from(client.client_first()),
        })
        .await?;
    let (_, client_final) = client.handle_server_first(&first.auth_bytes)?;
    c.call(&AuthenticateRequest {
        mechanism: "SCRAM-SHA-256".into(),
        auth_bytes: Bytes::from(client_final),
    })
    .await?;
    Ok(c)
}

fn grant(user: &str, resource: &str, permission: Permission) -> Result<CreateAclRequest> {
    Ok(CreateAclRequest {
        acl: AclEntry {
            user: user.into(),
            resource: resource.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?,
            permission,
        },
    })
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Group `g` has committed offsets on topics `a` and `b`; alice may read
/// group `g` and topic `a` only. FetchOffsets with an empty list, DescribeGroup
/// and `GET /api/groups/g` (and the listing's lag) show her `a` only; the
/// superuser sees both.
#[tokio::test]
async fn a_group_reader_sees_offsets_and_lag_only_of_topics_it_may_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let addr = broker.local_addr();
    let mut anon = Raw::connect(addr).await?;
    for (topic, values) in [
        ("a", &["1", "2", "3"][..]),
        ("b", &["1", "2", "3", "4", "5"]),
    ] {
        create(&mut anon, topic, 1, "none").await?;
        produce_values(&mut anon, topic, 0, values).await?;
    }
    let commit = CommitOffsetsRequest {
        group: "g".into(),
        member_id: String::new(),
        generation: 0,
        topics: ["a", "b"]
            .iter()
            .map(|t| CommitTopic {
                topic: (*t).into(),
                partitions: vec![CommitPartition {
                    partition: 0,
                    offset: 1,
                    metadata: None,
                }],
            })
            .collect(),
    };
    anon.call(&commit).await?;
    anon.call(&create_user("root", "root-pw", true)?).await?;
    let mut root = connect_as(addr, "root", "root-pw").await?;
    root.call(&create_user("alice", "alice-pw", false)?).await?;
    root.call(&grant("alice", "group:g", Permission::Read)?)
        .await?;
    root.call(&grant("alice", "topic:a", Permission::Read)?)
        .await?;
    let mut alice = connect_as(addr, "alice", "alice-pw").await?;

    let all = FetchOffsetsRequest {
        group: "g".into(),
        member_id: String::new(),
        generation: 0,
        topics: Vec::new(),
    };
    let topics = |r: &warren_protocol::api::groups::FetchOffsetsResponse| -> Vec<String> {
        r.topics.iter().map(|t| t.topic.clone()).collect()
    };
    ensure!(topics(&alice.call(&all).await?) == ["a"]);
    ensure!(topics(&root.call(&all).await?) == ["a", "b"]);

    let describe = DescribeGroupRequest { group: "g".into() };
    let lag_topics = |r: &warren_protocol::api::groups::DescribeGroupResponse| -> Vec<String> {
        r.offsets.iter().map(|t| t.topic.clone()).collect()
    };
    ensure!(lag_topics(&alice.call(&describe).await?) == ["a"]);
    ensure!(lag_topics(&root.call(&describe).await?) == ["a", "b"]);

    let http = broker.http_addr();
    let as_alice = basic("alice", "alice-pw");
    let detail = common::http::call_as(http, "GET", "/api/groups/g", Some(&as_alice), None)
        .await?
        .json()?;
    let shown: Vec<&str> = detail["offsets"]
        .as_array()
        .context("offsets")?
        .iter()
        .filter_map(|o| o["topic"].as_str())
        .collect();
    ensure!(shown == ["a"], "{detail}");
    let listing = common::http::call_as(http, "GET", "/api/groups", Some(&as_alice), None)
        .await?
        .json()?;
    ensure!(
        listing[0]["name"] == "g" && listing[0]["lag"] == 2,
        "{listing}"
    );
    let as_root = basic("root", "root-pw");
    let listing = common::http::call_as(http, "GET", "/api/groups", Some(&as_root), None)
        .await?
        .json()?;
    ensure!(listing[0]["lag"] == 6, "{listing}");
    broker.shutdown().await?;
    Ok(())
}

/// With `fetch_max_bytes` at 64 KiB, a Fetch whose partitions each ask for
/// u32::MAX bytes (over 4 GiB in all) gets a well-formed response holding
/// at most 64 KiB of records (before, the request's limits alone counted).
#[tokio::test]
async fn a_fetch_asking_for_more_than_4_gib_is_capped_and_well_formed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        fetch_max_bytes: 64 << 10,
        ..warren_broker::BrokerConfig::default()
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 4, "none").await?;
    let value = "v".repeat(1000);
    let values: Vec<&str> = (0..40).map(|_| value.as_str()).collect();
    for p in 0..4 {
        produce_values(&mut c, "t", p, &values).await?;
    }
    let request = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: u32::MAX,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: (0..4)
                .map(|partition| FetchPartition {
                    partition,
                    fetch_offset: 0,
                    partition_max_bytes: u32::MAX,
                })
                .collect(),
        }],
    };
    let response = c.call(&request).await?;
    let sizes: Vec<usize> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.records.len())
        .collect();
    ensure!(sizes.len() == 4, "{sizes:?}");
    let total: usize = sizes.iter().sum();
    ensure!(total > 0 && total <= 64 << 10, "{sizes:?}");
    for p in &response.topics[0].partitions {
        ensure!(p.error_code == ErrorCode::NONE);
        common::values_of(p.records.clone())?;
    }
    // The connection is still in step: the next request is answered.
    let _ = c.call(&ApiVersionsRequest).await?;
    broker.shutdown().await?;
    Ok(())
}

fn fetch_committed(group: &str) -> FetchOffsetsRequest {
    FetchOffsetsRequest {
        group: group.into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![TopicPartitions {
            topic: "t".into(),
            partitions: vec![0],
        }],
    }
}

fn operator_commit(group: &str, offset: u64) -> CommitOffsetsRequest {
    CommitOffsetsRequest {
        group: group.into(),
        member_id: String::new(),
        generation: 0,
        topics: vec![CommitTopic {
            topic: "t".into(),
            partitions: vec![CommitPartition {
                partition: 0,
                offset,
                metadata: None,
            }],
        }],
    }
}

/// Deleting a topic deletes its committed offsets and share-group state: a
/// topic created again under the same name gives group `g` no committed
/// offset and share group `sg` a fresh state (it acquires offset 0 of the
/// new log, where the old state would start at 3), and both still hold
/// after a restart (the store does not bring them back).
#[tokio::test]
async fn a_recreated_topic_has_no_offsets_or_share_state_even_after_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    produce_values(&mut c, "t", 0, &["a", "b", "c"]).await?;
    c.call(&operator_commit("g", 2)).await?;
    let mut fetch = share_fetch(Vec::new());
    fetch.group = "sg".into();
    let got: ShareFetchResponse = c.call(&fetch).await?;
    ensure!(got.partitions[0].acquired[0].last_offset == 2);
    let mut ack = share_ack(vec![AckBatch {
        first_offset: 0,
        last_offset: 2,
        kind: AckKind::Accept,
    }]);
    ack.group = "sg".into();
    let acked: ShareAckResponse = c.call(&ack).await?;
    ensure!(acked.partitions == [(0, ErrorCode::NONE)]);

    c.call(&DeleteTopicRequest { name: "t".into() }).await?;
    create(&mut c, "t", 1, "none").await?;
    produce_values(&mut c, "t", 0, &["new"]).await?;
    let check = |broker_addr| async move {
        let mut c = Raw::connect(broker_addr).await?;
        let offsets = c.call(&fetch_committed("g")).await?;
        ensure!(offsets.topics[0].partitions[0].offset == -1, "{offsets:?}");
        let mut fetch = share_fetch(Vec::new());
        fetch.group = "sg".into();
        fetch.member_id = "m2".into();
        let got: ShareFetchResponse = c.call(&fetch).await?;
        let acquired = got.partitions.first().map(|p| p.acquired.clone());
        ensure!(
            acquired
                .as_ref()
                .and_then(|a| a.first())
                .map(|a| a.first_offset)
                == Some(0),
            "a fresh share state acquires offset 0: {acquired:?}"
        );
        anyhow::Ok(())
    };
    check(broker.local_addr()).await?;
    broker.shutdown().await?;
    let broker = start(dir.path()).await?;
    check(broker.local_addr()).await?;

    // The same through the HTTP twin, DELETE /api/topics/t.
    let mut c = Raw::connect(broker.local_addr()).await?;
    c.call(&operator_commit("g", 1)).await?;
    // check() left offset 0 acquired by m2: accepting it moves sg's start
    // to 1, which a state carried over to the next topic would keep.
    let mut accept = share_ack(vec![AckBatch {
        first_offset: 0,
        last_offset: 0,
        kind: AckKind::Accept,
    }]);
    accept.group = "sg".into();
    accept.member_id = "m2".into();
    let acked: ShareAckResponse = c.call(&accept).await?;
    ensure!(acked.partitions == [(0, ErrorCode::NONE)]);
    let deleted = common::http::call(broker.http_addr(), "DELETE", "/api/topics/t", None).await?;
    ensure!(deleted.status == 204, "DELETE: {}", deleted.status);
    create(&mut c, "t", 1, "none").await?;
    produce_values(&mut c, "t", 0, &["newer"]).await?;
    check(broker.local_addr()).await?;
    broker.shutdown().await?;
    let broker = start(dir.path()).await?;
    check(broker.local_addr()).await?;
    broker.shutdown().await?;
    Ok(())
}

/// A group with no members whose last commit is older than
/// `offsets_retention_minutes` (1 here) loses its offsets to the background
/// sweep (every 50 ms here), for good: gone after a restart too; a group
/// that committed recently keeps them. The old commit is written into the
/// stopped broker's store with a 1970 commit time. On paused time: the check
/// interval is a tokio timer (the age compared is wall-clock commit time,
/// which a 1970 commit exceeds either way).
#[tokio::test(start_paused = true)]
async fn an_empty_group_past_the_retention_loses_its_offsets_for_good() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    c.call(&operator_commit("recent", 4)).await?;
    drop(c);
    broker.shutdown().await?;
    {
        let kv = warren_storage::KvStore::open(
            &dir.path().join("meta").join("kv"),
            warren_storage::KvConfig::default(),
        )?;
        let key = warren_broker::metadata::offsets::key("idle", "t", 0);
        let value = warren_broker::metadata::offsets::encode(3, 0, None);
        kv.apply_durable(&[warren_storage::KvOp::Put(&key, &value)])?;
        kv.close()?;
    }
    let broker = start_with(dir.path(), |c| {
        c.offsets_retention_minutes = 1;
        c.offsets_retention_check_ms = 50;
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    let listed = |r: &ListGroupsResponse| -> Vec<String> {
        r.groups.iter().map(|g| g.group.clone()).collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let groups = listed(&c.call(&ListGroupsRequest).await?);
        if groups == ["recent"] {
            break;
        }
        ensure!(groups.contains(&"idle".to_string()), "{groups:?}");
        ensure!(
            tokio::time::Instant::now() < deadline,
            "not swept in 20 s: {groups:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(c.call(&fetch_committed("idle")).await?.topics[0].partitions[0].offset == -1);
    ensure!(c.call(&fetch_committed("recent")).await?.topics[0].partitions[0].offset == 4);
    drop(c);
    broker.shutdown().await?;
    let broker = start(dir.path()).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    ensure!(listed(&c.call(&ListGroupsRequest).await?) == ["recent"]);
    broker.shutdown().await?;
    Ok(())
}

/// Ever-new group names from one client stop at the configured caps with
/// `LIMIT_REACHED` naming the config key: members of a group, consumer
/// groups (joined or committed), share groups. Known ones still work.
#[tokio::test]
async fn ever_new_groups_and_members_stop_at_their_caps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start_with(dir.path(), |c| {
        c.group_max_size = 2;
        c.group_max_groups = 3;
        c.group_share_max_groups = 2;
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    let join = |group: &str, member: &str| JoinGroupRequest {
        group: group.into(),
        member_id: member.into(),
        session_timeout_ms: 30_000,
        topics: vec!["t".into()],
    };
    let first = c.call(&join("g", "")).await?;
    c.call(&join("g", "")).await?;
    let (code, message) = refusal(&mut c, &join("g", "")).await?;
    ensure!(
        code == ErrorCode::LIMIT_REACHED && message.contains("group_max_size"),
        "{message}"
    );
    c.call(&join("g", &first.member_id)).await?;

    c.call(&operator_commit("c1", 1)).await?;
    c.call(&operator_commit("c2", 1)).await?;
    for refused in [
        refusal(&mut c, &operator_commit("c3", 1)).await?,
        refusal(&mut c, &join("j", "")).await?,
    ] {
        ensure!(
            refused.0 == ErrorCode::LIMIT_REACHED && refused.1.contains("group_max_groups"),
            "{refused:?}"
        );
    }
    c.call(&operator_commit("c1", 2)).await?;

    for group in ["s1", "s2"] {
        let mut fetch = share_fetch(Vec::new());
        fetch.group = group.into();
        let _: ShareFetchResponse = c.call(&fetch).await?;
    }
    let mut third = share_fetch(Vec::new());
    third.group = "s3".into();
    let (code, message) = refusal(&mut c, &third).await?;
    ensure!(
        code == ErrorCode::LIMIT_REACHED && message.contains("group_share_max_groups"),
        "{message}"
    );
    broker.shutdown().await?;
    Ok(())
}

/// `/metrics` renders at most `metrics_max_group_series` series of a
/// per-group family and counts the rest in `warren_metrics_series_dropped`.
#[tokio::test]
async fn per_group_metric_series_are_capped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = start_with(dir.path(), |c| c.metrics_max_group_series = 2).await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "t", 1, "none").await?;
    for group in ["a", "b", "c", "d", "e"] {
        c.call(&operator_commit(group, 0)).await?;
    }
    let (status, text) = common::http_get(broker.http_addr(), "/metrics").await?;
    ensure!(status == 200, "{status}");
    let lag_series = text
        .lines()
        .filter(|l| l.starts_with("warren_group_lag{"))
        .count();
    ensure!(lag_series == 2, "{text}");
    ensure!(
        text.contains("warren_metrics_series_dropped{family=\"warren_group_lag\"} 3"),
        "{text}"
    );
    broker.shutdown().await?;
    Ok(())
}

/// A Bind naming one partition a million times binds it once (one store
/// write, not a million in one batch past the store's batch limit).
#[tokio::test]
async fn a_bind_naming_a_partition_many_times_binds_it_once() -> Result<()> {
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
    let mut partitions = vec![1; 1_000_000];
    partitions.push(0);
    c.call(&BindRequest {
        topic: "d".into(),
        key: "k".into(),
        partitions,
    })
    .await?;
    let d = c.call(&DescribeTopicRequest { name: "d".into() }).await?;
    let bound: Vec<(String, Vec<u32>)> = d
        .bindings
        .iter()
        .map(|b| (b.key.clone(), b.partitions.clone()))
        .collect();
    ensure!(bound == [("k".to_string(), vec![0, 1])], "{bound:?}");
    broker.shutdown().await?;
    Ok(())
}
