//! Producer tests against the scripted mock broker: batching, partitioning,
//! acks, retries, timeouts and back-pressure.

#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warren_protocol::api::metadata::{MetadataResponse, PartitionMetadata, TopicMetadata};
use warren_protocol::api::produce::{
    ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
};
use warren_protocol::frame::RequestFrame;
use warren_protocol::{Compression, Record, RecordBatch};

use super::*;
use crate::config::{Acks, ConnectionConfig};
use crate::test_broker::{MockBroker, Reaction};

/// Records the mock stored, per (topic, partition), in offset order.
type Log = Arc<Mutex<HashMap<(String, u32), Vec<Record>>>>;

fn metadata(req: &RequestFrame, topics: &[(&str, u32)]) -> Reaction {
    let asked: MetadataRequest = warren_protocol::api::decode(req.body.clone()).unwrap();
    let topics = asked
        .topics
        .iter()
        .map(|name| match topics.iter().find(|(t, _)| t == name) {
            Some((_, n)) => TopicMetadata {
                error_code: ErrorCode::NONE,
                name: name.clone(),
                routing: Default::default(),
                partitions: (0..*n)
                    .map(|p| PartitionMetadata {
                        partition: p,
                        leader: 0,
                    })
                    .collect(),
            },
            None => TopicMetadata {
                error_code: ErrorCode::UNKNOWN_TOPIC,
                name: name.clone(),
                routing: Default::default(),
                partitions: vec![],
            },
        })
        .collect();
    Reaction::respond(&MetadataResponse {
        brokers: vec![],
        topics,
    })
}

/// Appends every batch of a produce request to `log` (or answers every entry
/// with `code` if it is not NONE) and builds the response.
fn produce(log: &Log, req: &RequestFrame, code: ErrorCode) -> (i16, ProduceResponse) {
    let produce: ProduceRequest = warren_protocol::api::decode(req.body.clone()).unwrap();
    let mut log = log.lock().unwrap();
    let topics = produce
        .topics
        .iter()
        .map(|t| ProduceTopicResponse {
            topic: t.topic.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    if code != ErrorCode::NONE {
                        return ProducePartitionResponse::new(p.partition, code, -1);
                    }
                    let batch = RecordBatch::new(p.records.clone()).unwrap();
                    batch.verify_crc().unwrap();
                    let stored = log
                        .entry((t.topic.clone(), p.partition as u32))
                        .or_default();
                    let base = stored.len() as i64;
                    for mut r in batch.records().unwrap() {
                        r.offset += base;
                        stored.push(r);
                    }
                    ProducePartitionResponse::new(p.partition, ErrorCode::NONE, base)
                })
                .collect(),
        })
        .collect();
    (produce.acks, ProduceResponse { topics })
}

/// A mock with topic "t" of 4 partitions that stores what it is sent.
async fn storing_broker(log: Log) -> MockBroker {
    MockBroker::start(move |req| {
        if req.header.api_key == ApiKey::Metadata as u16 {
            return metadata(req, &[("t", 4)]);
        }
        let (acks, resp) = produce(&log, req, ErrorCode::NONE);
        if acks == 0 {
            Reaction::Silent
        } else {
            Reaction::respond(&resp)
        }
    })
    .await
}

fn config(broker: &MockBroker) -> ProducerConfig {
    ProducerConfig {
        connection: ConnectionConfig {
            request_timeout: Duration::from_secs(5),
            reconnect_backoff: Duration::from_millis(5),
            reconnect_backoff_max: Duration::from_millis(20),
            ..ConnectionConfig::new(broker.addr().to_string())
        },
        linger: Duration::from_millis(2),
        retry_backoff: Duration::from_millis(5),
        retry_backoff_max: Duration::from_millis(20),
        delivery_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

#[tokio::test]
async fn records_arrive_in_order_with_the_offsets_their_futures_report() {
    let log = Log::default();
    let broker = storing_broker(log.clone()).await;
    let producer = Producer::connect(ProducerConfig {
        batch_bytes: 4096,
        ..config(&broker)
    })
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..500u32 {
        let key = format!("key-{}", i % 10);
        let value = format!("value-{i}");
        let f = producer
            .send("t", Some(key.as_bytes()), value.as_bytes())
            .await
            .unwrap();
        futures.push((key, value, f));
    }
    producer.flush().await.unwrap();
    let log = log.lock().unwrap().clone();
    for (key, value, f) in futures {
        let meta = f.try_result().expect("flushed").unwrap();
        assert_eq!(
            meta.partition,
            warren_protocol::partition_for_key(key.as_bytes(), 4)
        );
        let stored = &log[&("t".to_string(), meta.partition)][meta.offset.unwrap() as usize];
        assert_eq!(stored.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(stored.value.as_deref(), Some(value.as_bytes()));
    }
    // Per key, values are stored in send order.
    for records in log.values() {
        let mut last: HashMap<Vec<u8>, u32> = HashMap::new();
        for r in records {
            let v: u32 = std::str::from_utf8(&r.value.as_ref().unwrap()[6..])
                .unwrap()
                .parse()
                .unwrap();
            let k = r.key.as_ref().unwrap().to_vec();
            if let Some(prev) = last.insert(k, v) {
                assert!(prev < v);
            }
        }
    }
}

#[tokio::test]
async fn send_record_keeps_headers_timestamps_and_explicit_partitions() {
    let log = Log::default();
    let broker = storing_broker(log.clone()).await;
    let producer = Producer::connect(ProducerConfig {
        compression: Compression::Zstd,
        ..config(&broker)
    })
    .await
    .unwrap();
    let record = ProducerRecord::new("t", "payload")
        .partition(3)
        .header("trace", "abc")
        .timestamp(1_700_000_000_123);
    let f = producer.send_record(record).await.unwrap();
    let tombstone = ProducerRecord {
        topic: "t".into(),
        partition: Some(3),
        key: Some(Bytes::from_static(b"gone")),
        ..Default::default()
    };
    let g = producer.send_record(tombstone).await.unwrap();
    assert_eq!(f.await.unwrap().offset, Some(0));
    assert_eq!(g.await.unwrap().offset, Some(1));
    let stored = log.lock().unwrap()[&("t".to_string(), 3)].clone();
    assert_eq!(stored[0].timestamp, 1_700_000_000_123);
    assert_eq!(stored[0].headers, vec![Header::new("trace", "abc")]);
    assert_eq!(stored[1].value, None);
    let err = producer
        .send_record(ProducerRecord::new("t", "x").partition(4))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Partition {
            partition: 4,
            code: ErrorCode::UNKNOWN_PARTITION,
            ..
        }
    ));
}

#[tokio::test]
async fn keyless_records_fill_one_partition_at_a_time() {
    let log = Log::default();
    let broker = storing_broker(log.clone()).await;
    let producer = Producer::connect(ProducerConfig {
        batch_bytes: 8192,
        linger: Duration::from_secs(5),
        ..config(&broker)
    })
    .await
    .unwrap();
    let value = [7u8; 1000];
    for _ in 0..32 {
        drop(producer.send("t", None, &value).await.unwrap());
    }
    producer.flush().await.unwrap();
    let log = log.lock().unwrap();
    let counts: Vec<usize> = (0..4)
        .map(|p| log.get(&("t".to_string(), p)).map_or(0, Vec::len))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 32);
    assert!(counts.iter().filter(|c| **c > 0).count() >= 3, "{counts:?}");
}

#[tokio::test]
async fn acks_zero_completes_without_offsets() {
    let log = Log::default();
    let broker = storing_broker(log.clone()).await;
    let producer = Producer::connect(ProducerConfig {
        acks: Acks::None,
        ..config(&broker)
    })
    .await
    .unwrap();
    let f = producer.send("t", Some(b"k"), b"v").await.unwrap();
    let meta = f.await.unwrap();
    assert_eq!(meta.offset, None);
    // A later request on the same connection still matches its response.
    assert_eq!(producer.partition_count("t").await.unwrap(), 4);
    producer.close().await.unwrap();
    for _ in 0..100 {
        if !log.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.lock().unwrap().values().map(Vec::len).sum::<usize>(), 1);
}

#[tokio::test]
async fn retriable_errors_are_retried_and_lost_connections_reconnect() {
    let log = Log::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (l, c) = (log.clone(), calls.clone());
    let broker = MockBroker::start(move |req| {
        if req.header.api_key == ApiKey::Metadata as u16 {
            return metadata(req, &[("t", 4)]);
        }
        match c.fetch_add(1, Ordering::SeqCst) {
            0 => Reaction::error(ErrorCode::BROKER_SHUTTING_DOWN, "restarting"),
            1 => Reaction::Close,
            2 => Reaction::respond(&produce(&l, req, ErrorCode::REQUEST_TIMED_OUT).1),
            _ => Reaction::respond(&produce(&l, req, ErrorCode::NONE).1),
        }
    })
    .await;
    let producer = Producer::connect(config(&broker)).await.unwrap();
    let f = producer.send("t", Some(b"k"), b"v").await.unwrap();
    let meta = f.await.unwrap();
    assert_eq!(meta.offset, Some(0));
    assert!(calls.load(Ordering::SeqCst) >= 4);
    assert_eq!(log.lock().unwrap().values().map(Vec::len).sum::<usize>(), 1);
}

#[tokio::test]
async fn non_retriable_errors_fail_every_record_of_the_batch() {
    let log = Log::default();
    let broker = MockBroker::start(move |req| {
        if req.header.api_key == ApiKey::Metadata as u16 {
            return metadata(req, &[("t", 1)]);
        }
        Reaction::respond(&produce(&log, req, ErrorCode::MESSAGE_TOO_LARGE).1)
    })
    .await;
    let producer = Producer::connect(ProducerConfig {
        linger: Duration::from_millis(50),
        ..config(&broker)
    })
    .await
    .unwrap();
    let a = producer.send("t", None, b"a").await.unwrap();
    let b = producer.send("t", None, b"b").await.unwrap();
    assert!(matches!(
        producer.flush().await,
        Err(Error::MessageTooLarge { .. })
    ));
    for f in [a, b] {
        let err = f.await.unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { partition: Some(0), ref topic, .. } if topic == "t"),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn unknown_topics_and_oversized_records_are_refused_at_send() {
    let broker = storing_broker(Log::default()).await;
    let producer = Producer::connect(ProducerConfig {
        buffer_bytes: 64 << 10,
        ..config(&broker)
    })
    .await
    .unwrap();
    let err = producer.send("nope", None, b"v").await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownTopic(ref t) if t == "nope"),
        "{err:?}"
    );
    let err = producer
        .send("t", None, &vec![0u8; 65 << 10])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MessageTooLarge {
                partition: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_full_buffer_makes_send_wait_until_batches_complete() {
    let log = Log::default();
    let l = log.clone();
    let broker = MockBroker::start(move |req| {
        if req.header.api_key == ApiKey::Metadata as u16 {
            return metadata(req, &[("t", 4)]);
        }
        let (_, resp) = produce(&l, req, ErrorCode::NONE);
        Reaction::RespondAfter(
            Duration::from_millis(20),
            warren_protocol::api::encode(&resp).unwrap(),
        )
    })
    .await;
    let producer = Producer::connect(ProducerConfig {
        buffer_bytes: 16 << 10,
        batch_bytes: 4 << 10,
        linger: Duration::from_millis(1),
        ..config(&broker)
    })
    .await
    .unwrap();
    let value = [1u8; 1000];
    let start = std::time::Instant::now();
    let mut futures = Vec::new();
    let mut max_reserved = 0;
    for _ in 0..200 {
        futures.push(producer.send("t", None, &value).await.unwrap());
        let acc = &producer.inner.shared.accumulator;
        max_reserved = max_reserved.max((16 << 10) - acc.available_memory());
    }
    assert!(max_reserved <= 16 << 10);
    producer.flush().await.unwrap();
    for f in futures {
        f.await.unwrap();
    }
    // 200 KB through a 16 KiB buffer at one response per 20 ms: sends had to wait.
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        log.lock().unwrap().values().map(Vec::len).sum::<usize>(),
        200
    );
    assert_eq!(
        producer.inner.shared.accumulator.available_memory(),
        16 << 10
    );
}

/// On paused time: the request and delivery timeouts are tokio timers.
#[tokio::test(start_paused = true)]
async fn undeliverable_batches_time_out() {
    let broker = MockBroker::start(|req| {
        if req.header.api_key == ApiKey::Metadata as u16 {
            return metadata(req, &[("t", 1)]);
        }
        Reaction::Hang
    })
    .await;
    let mut cfg = config(&broker);
    cfg.connection.request_timeout = Duration::from_millis(50);
    cfg.delivery_timeout = Duration::from_millis(300);
    let producer = Producer::connect(cfg).await.unwrap();
    let f = producer.send("t", None, b"v").await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                what: "delivery",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_closed_producer_refuses_sends() {
    let broker = storing_broker(Log::default()).await;
    let producer = Producer::connect(config(&broker)).await.unwrap();
    let other = producer.clone();
    let f = producer.send("t", None, b"v").await.unwrap();
    producer.close().await.unwrap();
    assert!(f.await.is_ok());
    assert!(matches!(
        other.send("t", None, b"v").await,
        Err(Error::Closed)
    ));
}
