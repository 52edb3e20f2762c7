//! End-to-end tests: the client against the real broker, started in-process
//! on 127.0.0.1:0 with its data in a temporary directory.
//!
//! Every loop is bounded in count and every test in time.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use warren_client::{
    Acks, Compression, Consumer, ConsumerRecord, DeliveryFuture, Error, ErrorCode, Header,
    OffsetSpec, Producer, ProducerConfig, ProducerRecord, SeekTo,
};

mod common;

use common::{TestBroker, TestResult, bounded};

/// Polls until `n` records arrived (at most 200 polls).
async fn consume(consumer: &mut Consumer, n: usize) -> Result<Vec<ConsumerRecord>, Error> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..200 {
        if out.len() >= n {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(200)).await?);
    }
    Ok(out)
}

async fn await_all(
    futures: Vec<DeliveryFuture>,
) -> Result<Vec<warren_client::RecordMetadata>, Error> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await?);
    }
    Ok(out)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_across_four_partitions_in_order() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic("orders", 4, &[("durability", "none")])
            .await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let mut sent = Vec::new();
        let mut futures = Vec::new();
        for i in 0..2000u32 {
            let key = format!("customer-{}", i % 16);
            let value = format!("order-{i}");
            let record = ProducerRecord::new("orders", value.clone())
                .key(key.clone())
                .header("seq", i.to_string());
            futures.push(producer.send_record(record).await?);
            sent.push((key, value, i));
        }
        producer.flush().await?;
        let metas = await_all(futures).await?;

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("orders", &[0, 1, 2, 3]);
        let records = consume(&mut consumer, 2000).await?;
        assert_eq!(records.len(), 2000);
        let by_position: HashMap<(u32, u64), &ConsumerRecord> = records
            .iter()
            .map(|r| ((r.partition, r.offset), r))
            .collect();
        for ((key, value, i), meta) in sent.iter().zip(&metas) {
            assert_eq!(
                meta.partition,
                warren_client::warren_protocol::partition_for_key(key.as_bytes(), 4)
            );
            let r = by_position[&(meta.partition, meta.offset.ok_or("no offset")?)];
            assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
            assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
            assert_eq!(r.headers, vec![Header::new("seq", i.to_string())]);
            assert_eq!(&*r.topic, "orders");
        }
        // Each partition's records come back in offset order, from 0 without gaps.
        for p in 0..4 {
            let offsets: Vec<u64> = records
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset)
                .collect();
            assert!(!offsets.is_empty());
            assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
            assert_eq!(consumer.position("orders", p), Some(offsets.len() as u64));
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acks_mode_delivers() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("acks", 2, &[]).await?;
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            let producer = Producer::connect(ProducerConfig {
                acks,
                ..broker.producer_config()
            })
            .await?;
            let mut futures = Vec::new();
            for i in 0..100u32 {
                futures.push(
                    producer
                        .send("acks", None, format!("{acks:?}-{i}").as_bytes())
                        .await?,
                );
            }
            producer.flush().await?;
            for meta in await_all(futures).await? {
                assert_eq!(meta.offset.is_some(), acks != Acks::None, "{acks:?}");
            }
            producer.close().await?;
        }
        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("acks", &[0, 1]);
        let records = consume(&mut consumer, 300).await?;
        assert_eq!(records.len(), 300);
        for acks in ["None", "Leader", "All"] {
            let n = records
                .iter()
                .filter(|r| {
                    r.value
                        .as_deref()
                        .is_some_and(|v| v.starts_with(format!("{acks}-").as_bytes()))
                })
                .count();
            assert_eq!(n, 100, "{acks}");
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_batches_round_trip_and_shrink_on_disk() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic("zstd", 1, &[("durability", "none")])
            .await?;
        let producer = Producer::connect(ProducerConfig {
            compression: Compression::Zstd,
            ..broker.producer_config()
        })
        .await?;
        let value = "the same words again and again ".repeat(30);
        let mut futures = Vec::new();
        for i in 0..1000u32 {
            let v = format!("{i}:{value}");
            futures.push(
                producer
                    .send("zstd", Some(&i.to_be_bytes()), v.as_bytes())
                    .await?,
            );
        }
        producer.flush().await?;
        await_all(futures).await?;
        let raw_bytes = 1000 * value.len() as u64;
        let described = admin.describe_topic("zstd").await?;
        let on_disk: u64 = described.partitions.iter().map(|p| p.size_bytes).sum();
        assert!(
            on_disk * 5 < raw_bytes,
            "{on_disk} on disk for {raw_bytes} raw"
        );

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("zstd", &[0]);
        let records = consume(&mut consumer, 1000).await?;
        assert_eq!(records.len(), 1000);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as u64);
            assert_eq!(r.value.as_deref(), Some(format!("{i}:{value}").as_bytes()));
            assert_eq!(r.key.as_deref(), Some(&(i as u32).to_be_bytes()[..]));
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_earliest_latest_and_timestamp() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("seek", 2, &[]).await?;
        let producer = Producer::connect(ProducerConfig {
            // One batch per record, so timestamps are per batch.
            linger: Duration::ZERO,
            ..broker.producer_config()
        })
        .await?;
        let t0 = now_ms() - 100_000;
        for i in 0..10i64 {
            let record = ProducerRecord::new("seek", format!("v{i}"))
                .partition(1)
                .timestamp(t0 + i * 1000);
            let f = producer.send_record(record).await?;
            f.await?;
        }

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("seek", &[1]);
        consumer
            .seek("seek", 1, SeekTo::Timestamp(t0 + 5000))
            .await?;
        assert_eq!(consumer.position("seek", 1), Some(5));
        let records = consume(&mut consumer, 5).await?;
        assert_eq!(records.first().map(|r| r.offset), Some(5));
        assert_eq!(records.first().map(|r| r.timestamp), Some(t0 + 5000));

        consumer.seek("seek", 1, SeekTo::Earliest).await?;
        assert_eq!(consumer.position("seek", 1), Some(0));
        let records = consume(&mut consumer, 10).await?;
        assert_eq!(records.len(), 10);
        assert_eq!(
            records.first().map(|r| r.value.clone()),
            Some(Some(Bytes::from("v0")))
        );

        consumer.seek("seek", 1, SeekTo::Latest).await?;
        assert_eq!(consumer.position("seek", 1), Some(10));
        assert!(consumer.poll(Duration::from_millis(100)).await?.is_empty());
        let f = producer
            .send_record(ProducerRecord::new("seek", "new").partition(1))
            .await?;
        assert_eq!(f.await?.offset, Some(10));
        let records = consume(&mut consumer, 1).await?;
        assert_eq!(records.len(), 1);
        assert_eq!(records.first().map(|r| r.offset), Some(10));

        // A timestamp newer than every record: the end of the log.
        consumer
            .seek("seek", 1, SeekTo::Timestamp(now_ms() + 3_600_000))
            .await?;
        assert_eq!(consumer.position("seek", 1), Some(11));
        let listed = admin.list_offsets("seek", 1, OffsetSpec::Latest).await?;
        assert_eq!(listed.offset, Some(11));
        let listed = admin
            .list_offsets("seek", 1, OffsetSpec::Timestamp(t0 + 2500))
            .await?;
        assert_eq!(listed.offset, Some(3));

        // Not assigned: a typed error.
        let err = consumer
            .seek("seek", 0, SeekTo::Earliest)
            .await
            .err()
            .ok_or("seek succeeded")?;
        assert!(
            matches!(err, Error::NotAssigned { partition: 0, .. }),
            "{err:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_offsets_are_a_typed_error_without_reset() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("range", 1, &[]).await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let mut futures = Vec::new();
        for i in 0..10u32 {
            futures.push(producer.send("range", None, &i.to_be_bytes()).await?);
        }
        producer.flush().await?;
        await_all(futures).await?;

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("range", &[0]);
        consumer.seek("range", 0, SeekTo::Offset(1000)).await?;
        let err = consumer
            .poll(Duration::from_millis(100))
            .await
            .err()
            .ok_or("poll succeeded")?;
        match err {
            Error::OffsetOutOfRange {
                ref topic,
                partition,
                offset,
                log_start,
                high_watermark,
            } => {
                assert_eq!((topic.as_str(), partition, offset), ("range", 0, 1000));
                assert_eq!((log_start, high_watermark), (0, 10));
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
        // Still there: no automatic reset.
        assert_eq!(consumer.position("range", 0), Some(1000));
        consumer.seek("range", 0, SeekTo::Earliest).await?;
        assert_eq!(consume(&mut consumer, 10).await?.len(), 10);
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_are_typed_errors_everywhere() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let err = producer
            .send("missing", None, b"v")
            .await
            .err()
            .ok_or("send succeeded")?;
        assert!(
            matches!(err, Error::UnknownTopic(ref t) if t == "missing"),
            "{err:?}"
        );

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("missing", &[0]);
        let err = consumer
            .poll(Duration::from_millis(100))
            .await
            .err()
            .ok_or("poll succeeded")?;
        assert!(
            matches!(err, Error::UnknownTopic(ref t) if t == "missing"),
            "{err:?}"
        );
        // With a position given, the fetch reports it.
        consumer.seek("missing", 0, SeekTo::Offset(0)).await?;
        let err = consumer
            .poll(Duration::from_millis(100))
            .await
            .err()
            .ok_or("poll succeeded")?;
        assert!(
            matches!(err, Error::UnknownTopic(ref t) if t == "missing"),
            "{err:?}"
        );

        let err = admin
            .describe_topic("missing")
            .await
            .err()
            .ok_or("describe succeeded")?;
        assert!(matches!(err, Error::UnknownTopic(_)), "{err:?}");
        let err = admin
            .delete_topic("missing")
            .await
            .err()
            .ok_or("delete succeeded")?;
        assert!(matches!(err, Error::UnknownTopic(_)), "{err:?}");
        let err = admin
            .list_offsets("missing", 0, OffsetSpec::Latest)
            .await
            .err()
            .ok_or("list succeeded")?;
        assert!(matches!(err, Error::UnknownTopic(_)), "{err:?}");
        let meta = admin.metadata(&["missing"]).await?;
        assert_eq!(
            meta.topics.first().map(|t| t.error_code),
            Some(ErrorCode::UNKNOWN_TOPIC)
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_lists_describes_and_deletes_topics() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic("b-topic", 3, &[("retention.ms", "60000")])
            .await?;
        admin.create_topic("a-topic", 1, &[]).await?;
        let err = admin
            .create_topic("a-topic", 1, &[])
            .await
            .err()
            .ok_or("created twice")?;
        assert_eq!(err.code(), Some(ErrorCode::TOPIC_ALREADY_EXISTS), "{err:?}");
        let err = admin
            .create_topic("bad", 1, &[("no.such.key", "1")])
            .await
            .err()
            .ok_or("bad config")?;
        assert_eq!(err.code(), Some(ErrorCode::INVALID_CONFIG), "{err:?}");
        let listed: Vec<(String, u32)> = admin
            .list_topics()
            .await?
            .into_iter()
            .map(|t| (t.name, t.partitions))
            .collect();
        assert_eq!(
            listed,
            [("a-topic".to_string(), 1), ("b-topic".to_string(), 3)]
        );
        let described = admin.describe_topic("b-topic").await?;
        assert_eq!(described.partitions.len(), 3);
        assert!(
            described
                .configs
                .iter()
                .any(|(k, v)| k == "retention.ms" && v == "60000")
        );
        let meta = admin.metadata(&[]).await?;
        assert_eq!(meta.topics.len(), 2);
        assert!(!meta.brokers.is_empty());
        admin.delete_topic("b-topic").await?;
        assert_eq!(admin.list_topics().await?.len(), 1);
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_max_message_bytes_are_refused_with_a_typed_error() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("small", 1, &[("max.message.bytes", "10000")]).await?;
        admin.create_topic("default", 1, &[]).await?;
        let producer = Producer::connect(broker.producer_config()).await?;

        let f = producer.send("small", None, &[0u8; 20_000]).await?;
        let err = f.await.err().ok_or("oversized record accepted")?;
        assert!(
            matches!(err, Error::MessageTooLarge { ref topic, partition: Some(0), .. } if topic == "small"),
            "{err:?}"
        );
        assert!(!err.is_retriable());
        // A record within the limit still goes through.
        let ok = producer.send("small", None, &[0u8; 1_000]).await?;
        assert_eq!(ok.await?.offset, Some(0));

        // The broker's default limit is 1 MiB.
        let f = producer.send("default", None, &vec![1u8; 2 << 20]).await?;
        let err = f.await.err().ok_or("2 MiB record accepted")?;
        assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_buffer_makes_sends_wait_but_all_complete() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("pressure", 2, &[]).await?;
        let producer = Producer::connect(ProducerConfig {
            buffer_bytes: 32 << 10,
            batch_bytes: 8 << 10,
            max_request_bytes: 16 << 10,
            acks: Acks::All,
            ..broker.producer_config()
        })
        .await?;
        let value = [3u8; 1000];
        let mut futures = Vec::new();
        for _ in 0..3000 {
            futures.push(producer.send("pressure", None, &value).await?);
        }
        producer.flush().await?;
        assert_eq!(await_all(futures).await?.len(), 3000);
        let described = admin.describe_topic("pressure").await?;
        let total: u64 = described.partitions.iter().map(|p| p.high_watermark).sum();
        assert_eq!(total, 3000);
        Ok(())
    })
    .await
}

/// On paused time: the clients' reconnect and retry backoffs and the 300 ms
/// outage are tokio timers, so the retries happen on virtual time.
#[tokio::test(start_paused = true)]
async fn clients_reconnect_after_the_broker_restarts() -> TestResult {
    bounded(async {
        let mut broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("restart", 2, &[]).await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("restart", &[0, 1]);

        let f = producer.send("restart", Some(b"k"), b"before").await?;
        let before = f.await?;
        assert_eq!(consume(&mut consumer, 1).await?.len(), 1);

        broker.stop().await?;
        // Sent while the broker is down: retried until it is back.
        let pending = producer.send("restart", Some(b"k"), b"during").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.restart().await?;
        let during = pending.await?;
        assert_eq!(during.partition, before.partition);
        assert_eq!(during.offset, before.offset.map(|o| o + 1));

        let f = producer.send("restart", Some(b"k"), b"after").await?;
        assert_eq!(f.await?.offset, before.offset.map(|o| o + 2));

        let records = consume(&mut consumer, 2).await?;
        let values: Vec<_> = records.iter().filter_map(|r| r.value.clone()).collect();
        assert_eq!(values, [Bytes::from("during"), Bytes::from("after")]);

        assert_eq!(admin.list_topics().await?.len(), 1);
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_does_not_wait_behind_a_prefetched_long_poll() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin.create_topic("prefetch", 1, &[]).await?;
        let producer = Producer::connect(broker.producer_config()).await?;
        let mut futures = Vec::new();
        for i in 0..10u32 {
            futures.push(producer.send("prefetch", None, &i.to_be_bytes()).await?);
        }
        producer.flush().await?;
        await_all(futures).await?;

        let mut consumer = Consumer::connect(broker.consumer_config()).await?;
        consumer.assign("prefetch", &[0]);
        // Returns the 10 records and leaves a fetch at offset 10 in flight,
        // which the broker holds for up to 5 s.
        let first = consumer.poll(Duration::from_secs(5)).await?;
        assert_eq!(first.len(), 10);
        let start = std::time::Instant::now();
        consumer.seek("prefetch", 0, SeekTo::Earliest).await?;
        let again = consumer.poll(Duration::from_secs(5)).await?;
        assert_eq!(again.len(), 10);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_smaller_than_the_reserve_size_work_with_a_small_message_limit() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic("small", 1, &[("max.message.bytes", "2048")])
            .await?;
        // batch_bytes below the accumulator's 4 KiB initial reservation once
        // made the first send panic.
        let producer = Producer::connect(ProducerConfig {
            batch_bytes: 2048,
            ..broker.producer_config()
        })
        .await?;
        let mut futures = Vec::new();
        for i in 0..3000u32 {
            futures.push(
                producer
                    .send("small", None, i.to_string().as_bytes())
                    .await?,
            );
        }
        producer.flush().await?;
        assert_eq!(await_all(futures).await?.len(), 3000);
        Ok(())
    })
    .await
}

/// Reads every record of `partitions` of `topic` (expecting `n` in all) and
/// returns `(partition, offset, value)` sorted.
async fn read_partitions(
    broker: &TestBroker,
    topic: &str,
    partitions: &[u32],
    n: usize,
) -> Result<Vec<(u32, u64, String)>, Box<dyn std::error::Error + Send + Sync>> {
    let mut consumer = Consumer::connect(broker.consumer_config()).await?;
    consumer.assign(topic, partitions);
    for p in partitions {
        consumer.seek(topic, *p, SeekTo::Earliest).await?;
    }
    let mut got: Vec<(u32, u64, String)> = consume(&mut consumer, n)
        .await?
        .into_iter()
        .map(|r| {
            let value =
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            (r.partition, r.offset, value)
        })
        .collect();
    got.sort();
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_routing_appends_to_every_bound_partition_and_the_producer_learns_each_offset()
-> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic(
                "orders",
                4,
                &[("routing", "direct"), ("durability", "none")],
            )
            .await?;
        admin.bind("orders", "eu", &[3, 1]).await?;
        admin.bind("orders", "us", &[2]).await?;
        let meta = admin.metadata(&["orders"]).await?;
        assert_eq!(meta.topics[0].routing, warren_client::RoutingMode::Direct);

        let producer = Producer::connect(broker.producer_config()).await?;
        let mut futures = Vec::new();
        for i in 0..5 {
            futures.push(
                producer
                    .send("orders", Some(b"eu"), format!("eu-{i}").as_bytes())
                    .await?,
            );
        }
        let us = producer.send("orders", Some(b"us"), b"us-0").await?;
        // An explicit partition is not routed.
        let explicit = producer
            .send_record(ProducerRecord::new("orders", "p0").key("eu").partition(0))
            .await?;
        producer.flush().await?;
        for (i, meta) in await_all(futures).await?.into_iter().enumerate() {
            assert_eq!((meta.partition, meta.offset), (1, Some(i as u64)));
            assert_eq!(
                meta.copies,
                [warren_client::RecordCopy {
                    partition: 3,
                    offset: i as u64
                }]
            );
            assert_eq!(meta.alternate_topic, None);
        }
        let us = us.await?;
        assert_eq!((us.partition, us.offset, us.copies.len()), (2, Some(0), 0));
        assert_eq!(explicit.await?.partition, 0);

        let got = read_partitions(&broker, "orders", &[0, 1, 2, 3], 12).await?;
        let in_partition = |p: u32| -> Vec<String> {
            got.iter()
                .filter(|r| r.0 == p)
                .map(|r| r.2.clone())
                .collect()
        };
        let eu: Vec<String> = (0..5).map(|i| format!("eu-{i}")).collect();
        assert_eq!(in_partition(0), ["p0"]);
        assert_eq!(in_partition(1), eu);
        assert_eq!(in_partition(2), ["us-0"]);
        assert_eq!(in_partition(3), eu);

        // Unbound keys and keyless records fail their delivery, typed.
        let stray = producer.send("orders", Some(b"asia"), b"x").await?;
        let keyless = producer.send("orders", None, b"y").await?;
        let _ = producer.flush().await;
        for (f, key) in [(stray, Some("asia")), (keyless, None)] {
            match f.await {
                Err(Error::Unroutable {
                    topic,
                    routing_key,
                    message,
                }) => {
                    assert_eq!(topic, "orders");
                    assert_eq!(routing_key.as_deref(), key);
                    assert!(message.contains("orders"), "{message}");
                }
                other => return Err(format!("expected Unroutable, got {other:?}").into()),
            }
        }
        // A key that is not UTF-8 cannot be a routing key: refused at send.
        let err = producer
            .send("orders", Some(&[0xff, 0xfe]), b"z")
            .await
            .err()
            .ok_or("a non-UTF-8 routing key was accepted")?;
        assert_eq!(err.code(), Some(ErrorCode::UNROUTABLE), "{err}");

        // Unbind: the key now reaches only partition 3.
        admin.unbind("orders", "eu", &[1]).await?;
        let f = producer.send("orders", Some(b"eu"), b"eu-after").await?;
        producer.flush().await?;
        let meta = f.await?;
        assert_eq!(
            (meta.partition, meta.offset, meta.copies.len()),
            (3, Some(5), 0)
        );
        let described = admin.describe_topic("orders").await?;
        let bindings: Vec<(String, Vec<u32>)> = described
            .bindings
            .into_iter()
            .map(|b| (b.key, b.partitions))
            .collect();
        assert_eq!(
            bindings,
            [("eu".to_string(), vec![3]), ("us".to_string(), vec![2])]
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_routing_with_patterns_and_an_alternate_topic() -> TestResult {
    bounded(async {
        let broker = TestBroker::start().await?;
        let admin = broker.admin().await?;
        admin
            .create_topic(
                "events",
                3,
                &[
                    ("routing", "topic"),
                    ("alternate.topic", "unrouted"),
                    ("durability", "none"),
                ],
            )
            .await?;
        admin
            .create_topic("unrouted", 1, &[("durability", "none")])
            .await?;
        admin.bind("events", "orders.*.eu", &[0]).await?;
        admin.bind("events", "orders.#", &[1]).await?;
        admin.bind("events", "#.refund", &[2]).await?;

        let producer = Producer::connect(broker.producer_config()).await?;
        let keys = ["orders.paid.eu", "orders", "payments.refund", "other.thing"];
        let mut futures = Vec::new();
        for key in keys {
            futures.push(
                producer
                    .send("events", Some(key.as_bytes()), key.as_bytes())
                    .await?,
            );
        }
        producer.flush().await?;
        let metas = await_all(futures).await?;
        let reached: Vec<(Option<&str>, Vec<u32>)> = metas
            .iter()
            .map(|m| {
                let mut ps = vec![m.partition];
                ps.extend(m.copies.iter().map(|c| c.partition));
                (m.alternate_topic.as_deref(), ps)
            })
            .collect();
        assert_eq!(
            reached,
            [
                (None, vec![0, 1]),
                (None, vec![1]),
                (None, vec![2]),
                (Some("unrouted"), vec![0]),
            ]
        );
        let got = read_partitions(&broker, "events", &[0, 1, 2], 4).await?;
        let values: Vec<(u32, &str)> = got.iter().map(|(p, _, v)| (*p, v.as_str())).collect();
        assert_eq!(
            values,
            [
                (0, "orders.paid.eu"),
                (1, "orders.paid.eu"),
                (1, "orders"),
                (2, "payments.refund"),
            ]
        );
        let spilled = read_partitions(&broker, "unrouted", &[0], 1).await?;
        assert_eq!(spilled, [(0, 0, "other.thing".to_string())]);

        // Invalid binds come back typed, with the broker's reason.
        for (topic, key, partitions) in [
            ("unrouted", "k", vec![0]),
            ("events", "k", vec![3]),
            ("events", &*"k".repeat(256), vec![0]),
        ] {
            let err = admin
                .bind(topic, key, &partitions)
                .await
                .err()
                .ok_or("bound")?;
            assert_eq!(err.code(), Some(ErrorCode::INVALID_BINDING), "{err}");
        }
        let err = admin.bind("nope", "k", &[0]).await.err().ok_or("bound")?;
        assert!(
            matches!(err, Error::UnknownTopic(ref t) if t == "nope"),
            "{err:?}"
        );
        Ok(())
    })
    .await
}
