//! Consumer groups end to end: `GroupConsumer`s and `Admin` against the real
//! broker, in-process on 127.0.0.1:0.
//!
//! Every loop is bounded in count and every test in time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warren_client::{Error, ErrorCode, GroupConfig, GroupConsumer, Producer, Rebalance};

mod common;

use common::{TestBroker, TestResult, bounded};

const POLL: Duration = Duration::from_millis(100);

/// Produces `n` records with values `{prefix}-{i}`, keyed so they spread over
/// the partitions; returns once all are acknowledged.
async fn produce(broker: &TestBroker, topic: &str, prefix: &str, n: usize) -> TestResult {
    let producer = Producer::connect(broker.producer_config()).await?;
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("{prefix}-{i}");
        deliveries.push(
            producer
                .send(topic, Some(key.as_bytes()), value.as_bytes())
                .await?,
        );
    }
    producer.flush().await?;
    for d in deliveries {
        d.await?;
    }
    Ok(())
}

fn group(name: &str, topic: &str) -> GroupConfig {
    GroupConfig {
        session_timeout: Duration::from_millis(1_500),
        auto_commit: Some(Duration::from_millis(200)),
        ..GroupConfig::new(name, &[topic])
    }
}

/// Polls every consumer in turn until `done` says so (at most `rounds`
/// rounds); returns the values each one received.
async fn poll_all(
    consumers: &mut [GroupConsumer],
    rounds: usize,
    mut done: impl FnMut(&[Vec<String>]) -> bool,
) -> Result<Vec<Vec<String>>, Error> {
    let mut got = vec![Vec::new(); consumers.len()];
    for _ in 0..rounds {
        if done(&got) {
            break;
        }
        for (i, c) in consumers.iter_mut().enumerate() {
            for r in c.poll(Duration::from_millis(20)).await? {
                got[i].push(
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                );
            }
        }
    }
    Ok(got)
}

fn total(got: &[Vec<String>]) -> usize {
    got.iter().map(Vec::len).sum()
}

/// On paused time: the members' polls, heartbeats and auto-commits are
/// tokio timers.
#[tokio::test(start_paused = true)]
async fn three_members_split_six_partitions_and_each_record_goes_to_one_member() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.admin().await?.create_topic("orders", 6, &[]).await?;
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(
                GroupConsumer::join(broker.consumer_config(), group("billing", "orders")).await?,
            );
        }
        // Let the hand-over settle: every member owns 2 partitions.
        for _ in 0..200 {
            poll_all(&mut members, 1, |_| false).await?;
            if members.iter().all(|m| m.assignment().len() == 2) {
                break;
            }
        }
        let owned: Vec<BTreeSet<(String, u32)>> = members
            .iter()
            .map(|m| m.assignment().into_iter().collect())
            .collect();
        assert!(owned.iter().all(|o| o.len() == 2), "{owned:?}");
        let union: BTreeSet<_> = owned.iter().flatten().cloned().collect();
        assert_eq!(union.len(), 6, "the members' partitions overlap: {owned:?}");

        produce(&broker, "orders", "r", 600).await?;
        let got = poll_all(&mut members, 500, |g| total(g) >= 600).await?;
        let mut all: Vec<String> = got.iter().flatten().cloned().collect();
        assert_eq!(all.len(), 600, "each record exactly once");
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 600);
        assert!(
            got.iter().all(|g| !g.is_empty()),
            "every member got records"
        );

        // Lag: after the commits, describe shows every partition at lag 0.
        for m in &mut members {
            m.commit().await?;
        }
        let d = broker.admin().await?.describe_group("billing").await?;
        assert_eq!(d.members.len(), 3);
        let partitions: Vec<_> = d.offsets.iter().flat_map(|t| &t.partitions).collect();
        assert_eq!(partitions.len(), 6);
        assert!(
            partitions.iter().all(|p| p.lag == 0 && !p.owner.is_empty()),
            "{d:?}"
        );
        assert_eq!(partitions.iter().map(|p| p.committed).sum::<i64>(), 600);
        for m in members {
            m.close().await?;
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn two_groups_on_one_topic_each_read_everything() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.admin().await?.create_topic("events", 3, &[]).await?;
        produce(&broker, "events", "e", 300).await?;
        let mut a =
            vec![GroupConsumer::join(broker.consumer_config(), group("audit", "events")).await?];
        let mut b =
            vec![GroupConsumer::join(broker.consumer_config(), group("search", "events")).await?];
        let got_a = poll_all(&mut a, 500, |g| total(g) >= 300).await?;
        let got_b = poll_all(&mut b, 500, |g| total(g) >= 300).await?;
        let set_a: BTreeSet<_> = got_a.iter().flatten().collect();
        let set_b: BTreeSet<_> = got_b.iter().flatten().collect();
        assert_eq!(set_a.len(), 300);
        assert_eq!(set_a, set_b);
        // No copy: the topic still holds 300 records, once.
        let d = broker.admin().await?.describe_topic("events").await?;
        assert_eq!(
            d.partitions.iter().map(|p| p.log_end_offset).sum::<u64>(),
            300
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn committed_offsets_survive_a_restart_and_a_new_member_resumes_there() -> TestResult {
    bounded(async {
        let mut broker = TestBroker::start().await?;
        broker.admin().await?.create_topic("t", 2, &[]).await?;
        produce(&broker, "t", "a", 100).await?;
        let mut config = group("g", "t");
        config.auto_commit = None;
        let mut c = vec![GroupConsumer::join(broker.consumer_config(), config.clone()).await?];
        let got = poll_all(&mut c, 300, |g| total(g) >= 100).await?;
        assert_eq!(total(&got), 100);
        let [mut member] = <[GroupConsumer; 1]>::try_from(c).map_err(|_| "one member")?;
        member.commit().await?;
        member.close().await?;
        broker.restart().await?;

        produce(&broker, "t", "b", 50).await?;
        let mut c = vec![GroupConsumer::join(broker.consumer_config(), config).await?];
        let got = poll_all(&mut c, 300, |g| total(g) >= 50).await?;
        // Only the records after the commit: nothing of the first 100 again.
        assert_eq!(total(&got), 50);
        assert!(got.iter().flatten().all(|v| v.starts_with("b-")), "{got:?}");
        Ok(())
    })
    .await
}

/// On paused time: the broker's session deadlines and the client's heartbeat
/// and poll timers are all tokio timers, so the dropped member's 1.5 s
/// session runs out on virtual time.
#[tokio::test(start_paused = true)]
async fn close_moves_partitions_at_once_and_a_dropped_member_is_expelled() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.admin().await?.create_topic("t", 4, &[]).await?;
        let events = Arc::new(Mutex::new(Vec::new()));
        // A long session: only LeaveGroup can move partitions quickly.
        let long = GroupConfig {
            session_timeout: Duration::from_secs(60),
            ..group("g", "t")
        };
        let mut a = GroupConsumer::join(broker.consumer_config(), long.clone()).await?;
        let seen = Arc::clone(&events);
        a.on_rebalance(move |e| seen.lock().map(|mut v| v.push(e.clone())).unwrap_or(()));
        a.poll(POLL).await?;
        assert_eq!(a.assignment().len(), 4);
        let b = GroupConsumer::join(broker.consumer_config(), long).await?;
        let mut members = vec![a, b];
        for _ in 0..100 {
            poll_all(&mut members, 1, |_| false).await?;
            if members.iter().all(|m| m.assignment().len() == 2) {
                break;
            }
        }
        assert!(members.iter().all(|m| m.assignment().len() == 2));
        {
            let events = events.lock().map_err(|_| "poisoned")?;
            assert!(
                matches!(events.first(), Some(Rebalance::Assigned(p)) if p.len() == 4),
                "{events:?}"
            );
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, Rebalance::Revoked(p) if p.len() == 2)),
                "{events:?}"
            );
        }
        let b = members.pop().ok_or("b")?;
        b.close().await?;
        for _ in 0..100 {
            poll_all(&mut members, 1, |_| false).await?;
            if members[0].assignment().len() == 4 {
                break;
            }
        }
        assert_eq!(
            members[0].assignment().len(),
            4,
            "b's partitions moved well before its 60 s session"
        );

        // A member dropped without close (a crash) is expelled after its
        // 1.5 s session and its partitions move.
        let mut c = GroupConsumer::join(broker.consumer_config(), group("h", "t")).await?;
        c.poll(POLL).await?;
        let d = GroupConsumer::join(broker.consumer_config(), group("h", "t")).await?;
        drop(d);
        for _ in 0..100 {
            c.poll(POLL).await?;
            let described = broker.admin().await?.describe_group("h").await?;
            if described.members.len() == 1 && c.assignment().len() == 4 {
                break;
            }
        }
        assert_eq!(c.assignment().len(), 4);
        assert_eq!(
            broker
                .admin()
                .await?
                .describe_group("h")
                .await?
                .members
                .len(),
            1
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn reset_offsets_is_refused_while_the_group_has_members() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("t", 2, &[]).await?;
        produce(&broker, "t", "x", 40).await?;
        let mut member = GroupConsumer::join(broker.consumer_config(), group("g", "t")).await?;
        member.poll(POLL).await?;
        let refused = admin.reset_offsets("g", "t", &[(0, 0)]).await;
        assert!(
            matches!(
                &refused,
                Err(Error::Broker {
                    code: ErrorCode::GROUP_NOT_EMPTY,
                    ..
                })
            ),
            "{refused:?}"
        );
        member.close().await?;
        admin.reset_offsets("g", "t", &[(0, 3), (1, 5)]).await?;
        let d = admin.describe_group("g").await?;
        let committed: BTreeMap<u32, i64> = d
            .offsets
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition, p.committed))
            .collect();
        assert_eq!(committed, BTreeMap::from([(0, 3), (1, 5)]));
        assert!(
            admin
                .list_groups()
                .await?
                .iter()
                .any(|g| g.group == "g" && g.members == 0)
        );

        // A new member starts from the reset offsets.
        let mut config = group("g", "t");
        config.auto_commit = None;
        let mut member = GroupConsumer::join(broker.consumer_config(), config).await?;
        let mut first: BTreeMap<u32, u64> = BTreeMap::new();
        for _ in 0..100 {
            for r in member.poll(POLL).await? {
                first.entry(r.partition).or_insert(r.offset);
            }
            if first.len() == 2 {
                break;
            }
        }
        assert_eq!(first, BTreeMap::from([(0, 3), (1, 5)]));

        // Unknown partitions and invalid names are refused clearly.
        let bad = admin.reset_offsets("g2", "t", &[(7, 0)]).await;
        assert!(
            matches!(&bad, Err(Error::Partition { partition: 7, .. })),
            "{bad:?}"
        );
        let bad = admin.describe_group("").await;
        assert!(
            matches!(
                &bad,
                Err(Error::Broker {
                    code: ErrorCode::INVALID_GROUP_ID,
                    ..
                })
            ),
            "{bad:?}"
        );
        Ok(())
    })
    .await
}
