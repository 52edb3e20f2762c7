//! The broker issue's end-to-end test at full size: 100,000 records with keys,
//! values and headers through the real client to a real broker on
//! 127.0.0.1:0 (default `fsync` durability, acks=-1), across 4 partitions, and
//! back: every record arrives once, unchanged, in send order per partition.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use warren_broker::{Broker, BrokerConfig};
use warren_client::{
    Admin, ConnectionConfig, Consumer, ConsumerConfig, Header, Producer, ProducerConfig,
    ProducerRecord, SeekTo,
};

const RECORDS: u32 = 100_000;
const PARTITIONS: u32 = 4;
const KEYS: u32 = 97;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_thousand_records_across_four_partitions_come_back_unchanged_and_in_order()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        ..BrokerConfig::default()
    })
    .await?;
    let addr = broker.local_addr().to_string();
    let admin = Admin::connect(ConnectionConfig::new(addr.clone())).await?;
    admin.create_topic("events", PARTITIONS, &[]).await?;

    let producer = Producer::connect(ProducerConfig::new(addr.clone())).await?;
    let mut deliveries = Vec::with_capacity(RECORDS as usize);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        // Values vary in size (0..=300 bytes) so batches do not all look alike.
        let value = format!("{i}:{}", "v".repeat((i % 301) as usize));
        let record = ProducerRecord::new("events", value)
            .key(key)
            .header("seq", i.to_string())
            .header("parity", if i % 2 == 0 { "even" } else { "odd" });
        deliveries.push(producer.send_record(record).await?);
    }
    producer.flush().await?;
    let mut sent_at: HashMap<(u32, u64), u32> = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = d.await?;
        let offset = meta.offset.context("acks=-1 delivery without offset")?;
        ensure!(sent_at.insert((meta.partition, offset), i as u32).is_none());
    }
    producer.close().await?;

    let mut consumer = Consumer::connect(ConsumerConfig::new(addr)).await?;
    let all: Vec<u32> = (0..PARTITIONS).collect();
    consumer.assign("events", &all);
    for p in &all {
        consumer.seek("events", *p, SeekTo::Earliest).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut received = 0u32;
    let mut last_seq_per_key: HashMap<String, u32> = HashMap::new();
    let mut next_offset: HashMap<u32, u64> = HashMap::new();
    while received < RECORDS {
        if Instant::now() > deadline {
            bail!("only {received} of {RECORDS} records came back in 120 s");
        }
        for r in consumer.poll(Duration::from_millis(500)).await? {
            let i = *sent_at
                .get(&(r.partition, r.offset))
                .with_context(|| format!("unexpected record at {}@{}", r.partition, r.offset))?;
            let key = format!("key-{}", i % KEYS);
            let value = format!("{i}:{}", "v".repeat((i % 301) as usize));
            ensure!(
                r.key.as_deref() == Some(key.as_bytes()),
                "key of record {i}"
            );
            ensure!(
                r.value.as_deref() == Some(value.as_bytes()),
                "value of record {i}"
            );
            ensure!(
                r.headers
                    == vec![
                        Header::new("seq", i.to_string()),
                        Header::new("parity", if i % 2 == 0 { "even" } else { "odd" }),
                    ],
                "headers of record {i}"
            );
            ensure!(r.partition == warren_protocol::partition_for_key(key.as_bytes(), PARTITIONS));
            // Offsets within a partition come back contiguous, from 0...
            let expected = next_offset.entry(r.partition).or_insert(0);
            ensure!(
                r.offset == *expected,
                "partition {} skipped to {}",
                r.partition,
                r.offset
            );
            *expected += 1;
            // ...and one key's records in the order they were sent.
            if let Some(prev) = last_seq_per_key.insert(key, i) {
                ensure!(prev < i, "record {i} came back after {prev}");
            }
            received += 1;
        }
    }
    ensure!(next_offset.values().sum::<u64>() == u64::from(RECORDS));
    ensure!(
        next_offset.len() == PARTITIONS as usize,
        "every partition got records"
    );
    // Nothing more is there.
    ensure!(consumer.poll(Duration::from_millis(100)).await?.is_empty());
    broker.shutdown().await?;
    Ok(())
}
