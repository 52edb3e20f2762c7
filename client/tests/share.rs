//! Share groups end to end: `ShareConsumer`s against the real broker,
//! started in-process on 127.0.0.1:0 with its data in a temporary directory.
//!
//! Every loop is bounded in count and every test in time; nothing asserts on
//! how long anything took. The tests that wait for time to pass run on
//! paused time (`start_paused`, a current-thread runtime): lock deadlines,
//! the client's polls (a 300 ms poll that must come back empty) and the
//! dead-letter retry are tokio timers, so the broker's minimum
//! `share.lock.timeout.ms` (1 s) and those polls pass on virtual time.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;
use warren_client::{
    Admin, ConnectionConfig, Consumer, ConsumerConfig, ConsumerRecord, Error, ErrorCode, Header,
    Producer, ProducerConfig, ProducerRecord, ShareConsumer, ShareConsumerConfig, ShareRecord,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

struct TestBroker {
    dir: TempDir,
    broker: Option<warren_broker::RunningBroker>,
    addr: SocketAddr,
}

async fn start_broker(
    dir: &TempDir,
    listen: SocketAddr,
) -> Result<warren_broker::RunningBroker, warren_broker::Error> {
    warren_broker::Broker::start(warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen,
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_timeout_ms: 2_000,
        ..Default::default()
    })
    .await
}

impl TestBroker {
    async fn start() -> Result<TestBroker, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let broker = start_broker(&dir, "127.0.0.1:0".parse()?).await?;
        let addr = broker.local_addr();
        Ok(TestBroker {
            dir,
            broker: Some(broker),
            addr,
        })
    }

    /// Shuts down gracefully and starts again on the same port and data.
    async fn restart(&mut self) -> TestResult {
        if let Some(b) = self.broker.take() {
            b.shutdown().await?;
        }
        let mut last = None;
        for _ in 0..50 {
            match start_broker(&self.dir, self.addr).await {
                Ok(b) => {
                    self.broker = Some(b);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("broker did not restart: {last:?}").into())
    }

    fn connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            reconnect_backoff: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
            ..ConnectionConfig::new(self.addr.to_string())
        }
    }

    async fn share_consumer(
        &self,
        group: &str,
        topic: &str,
        member: &str,
        max_records: u32,
    ) -> Result<ShareConsumer, Error> {
        ShareConsumer::new(
            ShareConsumerConfig {
                connection: self.connection(),
                max_records,
                member_id: Some(member.into()),
            },
            group,
            topic,
        )
        .await
    }

    /// Creates `topic` (1 partition, durability none, `configs`) and writes
    /// records `r0..r{n-1}`, each with a `seq` header.
    async fn topic_with_records(
        &self,
        topic: &str,
        n: u32,
        configs: &[(&str, &str)],
    ) -> TestResult {
        let admin = Admin::connect(self.connection()).await?;
        let mut all = vec![("durability", "none")];
        all.extend_from_slice(configs);
        admin.create_topic(topic, 1, &all).await?;
        let producer = Producer::connect(ProducerConfig {
            connection: self.connection(),
            ..Default::default()
        })
        .await?;
        let mut deliveries = Vec::new();
        for i in 0..n {
            let record = ProducerRecord::new(topic, format!("r{i}"))
                .key(format!("k{i}"))
                .header("seq", i.to_string());
            deliveries.push(producer.send_record(record).await?);
        }
        producer.flush().await?;
        for d in deliveries {
            d.await?;
        }
        producer.close().await?;
        Ok(())
    }

    /// Every record of partition 0 of `topic`, read with a plain consumer.
    async fn read_all(&self, topic: &str, n: usize) -> Result<Vec<ConsumerRecord>, Error> {
        let mut c = Consumer::connect(ConsumerConfig {
            connection: self.connection(),
            ..Default::default()
        })
        .await?;
        c.assign(topic, &[0]);
        let mut out = Vec::new();
        for _ in 0..100 {
            if out.len() >= n {
                break;
            }
            out.extend(c.poll(Duration::from_millis(200)).await?);
        }
        Ok(out)
    }
}

async fn bounded(body: impl Future<Output = TestResult>) -> TestResult {
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .map_err(|_| "test timed out")?
}

/// Polls (at most `polls` times, 200 ms each) until at least `n` records came.
async fn poll_n(c: &mut ShareConsumer, n: usize, polls: usize) -> Result<Vec<ShareRecord>, Error> {
    let mut out = Vec::new();
    for _ in 0..polls {
        if out.len() >= n {
            break;
        }
        out.extend(c.poll(Duration::from_millis(200)).await?);
    }
    Ok(out)
}

fn value(r: &ShareRecord) -> String {
    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
}

fn header<'a>(headers: &'a [Header], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_get_disjoint_records_and_together_all_of_them() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.topic_with_records("jobs", 500, &[]).await?;
        let mut a = broker.share_consumer("workers", "jobs", "a", 30).await?;
        let mut b = broker.share_consumer("workers", "jobs", "b", 30).await?;
        let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
        for _ in 0..200 {
            if seen.len() >= 500 {
                break;
            }
            for (name, c) in [("a", &mut a), ("b", &mut b)] {
                for r in c.poll(Duration::from_millis(100)).await? {
                    assert_eq!(r.delivery_count, 1);
                    assert_eq!(value(&r), format!("r{}", r.offset));
                    if let Some(first) = seen.insert(r.offset, name) {
                        panic!("offset {} delivered to {first} and to {name}", r.offset);
                    }
                    c.ack(&r)?;
                }
            }
        }
        assert_eq!(
            seen.keys().copied().collect::<Vec<_>>(),
            (0..500).collect::<Vec<_>>()
        );
        let per_member: BTreeSet<&str> = seen.values().copied().collect();
        assert_eq!(per_member.len(), 2, "both members got work");
        a.close().await?;
        b.close().await?;
        Ok(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_released_record_comes_back_with_delivery_count_2() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.topic_with_records("jobs", 10, &[]).await?;
        let mut c = broker.share_consumer("g", "jobs", "m", 100).await?;
        let first = poll_n(&mut c, 10, 20).await?;
        assert_eq!(first.len(), 10);
        for r in &first {
            if r.offset == 3 {
                c.release(r)?;
            } else {
                c.ack(r)?;
            }
        }
        // The release goes out with this poll, which then gets the record back.
        let again = poll_n(&mut c, 1, 20).await?;
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].offset, again[0].delivery_count), (3, 2));
        assert_eq!(value(&again[0]), "r3");
        assert_eq!(header(&again[0].headers, "seq"), Some("3"));
        c.ack(&again[0])?;
        c.commit().await?;
        assert!(c.poll(Duration::from_millis(300)).await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn an_expired_lock_redelivers_to_another_member() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker
            .topic_with_records("jobs", 5, &[("share.lock.timeout.ms", "1000")])
            .await?;
        let mut slow = broker.share_consumer("g", "jobs", "slow", 100).await?;
        let got = poll_n(&mut slow, 5, 20).await?;
        assert_eq!(got.len(), 5);
        // `slow` never acknowledges; `fast` gets the records once the locks end.
        let mut fast = broker.share_consumer("g", "jobs", "fast", 100).await?;
        let again = poll_n(&mut fast, 5, 50).await?;
        let offsets: Vec<(u64, u16)> = again.iter().map(|r| (r.offset, r.delivery_count)).collect();
        assert_eq!(offsets, (0..5).map(|o| (o, 2)).collect::<Vec<_>>());
        for r in &again {
            fast.ack(r)?;
        }
        fast.commit().await?;
        // The slow member's acknowledgements now fail: its locks are gone.
        for r in &got {
            slow.ack(r)?;
        }
        match slow.commit().await {
            Err(Error::Ack {
                code, partition: 0, ..
            }) => {
                assert_eq!(code, ErrorCode::INVALID_RECORD_STATE);
            }
            other => panic!("expected an Ack error, got {other:?}"),
        }
        Ok(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_record_released_five_times_lands_in_the_dead_letter_topic_with_its_origin() -> TestResult
{
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = Admin::connect(broker.connection()).await?;
        admin
            .create_topic("jobs.dlq", 1, &[("durability", "none")])
            .await?;
        broker
            .topic_with_records("jobs", 3, &[("dead.letter.topic", "jobs.dlq")])
            .await?;
        let mut c = broker.share_consumer("g", "jobs", "m", 100).await?;
        let mut counts = Vec::new();
        for _ in 0..100 {
            for r in c.poll(Duration::from_millis(100)).await? {
                match r.offset {
                    1 => {
                        counts.push(r.delivery_count);
                        c.release(&r)?;
                    }
                    2 => c.reject(&r)?,
                    _ => c.ack(&r)?,
                }
            }
            c.commit().await?;
            if counts.len() >= 5 {
                break;
            }
        }
        assert_eq!(counts, [1, 2, 3, 4, 5]);
        // Neither comes back.
        assert!(c.poll(Duration::from_millis(300)).await?.is_empty());
        let dead = broker.read_all("jobs.dlq", 2).await?;
        assert_eq!(dead.len(), 2, "{dead:?}");
        let by_origin: BTreeMap<String, &ConsumerRecord> = dead
            .iter()
            .map(|r| {
                (
                    header(&r.headers, "x-origin-offset")
                        .unwrap_or("?")
                        .to_string(),
                    r,
                )
            })
            .collect();
        let released = by_origin.get("1").ok_or("offset 1 not dead-lettered")?;
        assert_eq!(released.value.as_deref(), Some(&b"r1"[..]));
        assert_eq!(released.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(
            header(&released.headers, "seq"),
            Some("1"),
            "original headers kept"
        );
        assert_eq!(header(&released.headers, "x-origin-topic"), Some("jobs"));
        assert_eq!(header(&released.headers, "x-origin-partition"), Some("0"));
        assert_eq!(header(&released.headers, "x-delivery-count"), Some("5"));
        assert_eq!(
            header(&released.headers, "x-death-reason"),
            Some("max-delivery-attempts")
        );
        let rejected = by_origin.get("2").ok_or("offset 2 not dead-lettered")?;
        assert_eq!(rejected.value.as_deref(), Some(&b"r2"[..]));
        assert_eq!(
            header(&rejected.headers, "x-death-reason"),
            Some("rejected")
        );
        assert_eq!(header(&rejected.headers, "x-delivery-count"), Some("1"));
        Ok(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_lock_that_expires_on_the_last_attempt_dead_letters_the_record() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = Admin::connect(broker.connection()).await?;
        admin
            .create_topic("dlq", 1, &[("durability", "none")])
            .await?;
        broker
            .topic_with_records(
                "jobs",
                1,
                &[
                    ("dead.letter.topic", "dlq"),
                    ("max.delivery.attempts", "1"),
                    ("share.lock.timeout.ms", "1000"),
                ],
            )
            .await?;
        let mut c = broker.share_consumer("g", "jobs", "m", 10).await?;
        assert_eq!(poll_n(&mut c, 1, 20).await?.len(), 1);
        // Not acknowledged: the expiry sends it to the dead-letter topic.
        let dead = broker.read_all("dlq", 1).await?;
        assert_eq!(dead.len(), 1);
        assert_eq!(
            header(&dead[0].headers, "x-death-reason"),
            Some("max-delivery-attempts")
        );
        assert_eq!(header(&dead[0].headers, "x-delivery-count"), Some("1"));
        assert!(c.poll(Duration::from_millis(300)).await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn an_acked_record_is_never_redelivered_even_after_a_restart() -> TestResult {
    bounded(async {
        let mut broker = TestBroker::start().await?;
        broker.topic_with_records("jobs", 100, &[]).await?;
        let mut c = broker.share_consumer("g", "jobs", "m", 100).await?;
        let got = poll_n(&mut c, 100, 20).await?;
        assert_eq!(got.len(), 100);
        let mut acked = BTreeSet::new();
        for r in &got {
            if r.offset % 3 == 0 {
                c.release(r)?;
            } else {
                c.ack(r)?;
                acked.insert(r.offset);
            }
        }
        c.commit().await?;
        // The released ones come back, never an acknowledged one.
        let again = poll_n(&mut c, 34, 20).await?;
        let offsets: BTreeSet<u64> = again.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..100).filter(|o| o % 3 == 0).collect());
        assert!(again.iter().all(|r| r.delivery_count == 2));
        // Restart with the 34 still held: they come back, the acked ones do not.
        drop(c);
        broker.restart().await?;
        let mut c = broker.share_consumer("g", "jobs", "m2", 1000).await?;
        let after = poll_n(&mut c, 34, 20).await?;
        let offsets: BTreeSet<u64> = after.iter().map(|r| r.offset).collect();
        assert!(
            offsets.is_disjoint(&acked),
            "acknowledged records came back"
        );
        assert_eq!(offsets.len(), 34);
        assert!(
            after.iter().all(|r| r.delivery_count == 3),
            "counts survived the restart"
        );
        for r in &after {
            c.ack(r)?;
        }
        c.commit().await?;
        assert!(c.poll(Duration::from_millis(300)).await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_what_the_consumer_still_holds() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        broker.topic_with_records("jobs", 4, &[]).await?;
        let mut c = broker.share_consumer("g", "jobs", "a", 10).await?;
        let got = poll_n(&mut c, 4, 20).await?;
        c.ack(&got[0])?;
        assert_eq!(c.held(), 3);
        c.close().await?;
        let mut d = broker.share_consumer("g", "jobs", "b", 10).await?;
        let again = poll_n(&mut d, 3, 20).await?;
        let offsets: Vec<u64> = again.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
        // A bad group name is a typed broker error.
        let mut bad = broker.share_consumer("no spaces", "jobs", "c", 10).await?;
        match bad.poll(Duration::from_millis(10)).await {
            Err(Error::Broker { code, .. }) => assert_eq!(code, ErrorCode::INVALID_GROUP_ID),
            other => panic!("expected INVALID_GROUP_ID, got {other:?}"),
        }
        let mut nowhere = broker.share_consumer("g", "missing", "c", 10).await?;
        assert!(matches!(
            nowhere.poll(Duration::from_millis(10)).await,
            Err(Error::UnknownTopic(_))
        ));
        Ok(())
    })
    .await
}
