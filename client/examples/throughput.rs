//! Producer and consumer throughput against an in-process broker.
//!
//! ```text
//! cargo run --release -p warren-client --example throughput
//! ```
//!
//! The broker runs on its own single-threaded runtime, the client on another,
//! so on a 2-core machine each gets about one core. Three figures:
//!
//! 1. `send` alone: records appended to batches with nothing else running
//!    (the client runtime is current-thread and the send loop never yields,
//!    so the sender cannot run until it ends), in timed rounds of 64 MiB
//!    with an untimed flush between them.
//! 2. produce end to end: sends, batching, requests and acks, then `flush`.
//! 3. consume: polls from offset 0 until every record is back.
//! 4. produce to a sink: like 2, against a stand-in broker that acknowledges
//!    produce requests without storing them: the client's own ceiling.
//!
//! Environment: `WARREN_BENCH_RECORDS` (default 1 000 000),
//! `WARREN_BENCH_VALUE_BYTES` (1024), `WARREN_BENCH_PARTITIONS` (4),
//! `WARREN_BENCH_ACKS` (-1), `WARREN_BENCH_ZSTD` (0), `WARREN_BENCH_CONSUME_ROUNDS` (1),
//! `WARREN_BENCH_DURABILITY` (`none`), `WARREN_BENCH_DIR` (the broker's data
//! dir parent; default the system temp dir), `WARREN_BENCH_PHASES`
//! (`send,produce,consume,sink`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use warren_client::{
    Acks, Admin, Compression, ConnectionConfig, Consumer, ConsumerConfig, Producer, ProducerConfig,
    SeekTo,
};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(what: &str, records: usize, bytes: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<22} {records:>9} records in {:>7.3} s: {:>6.2} M records/s, {:>6.2} GB/s",
        secs,
        records as f64 / secs / 1e6,
        bytes as f64 / secs / 1e9
    );
}

fn main() -> BenchResult<()> {
    let records: usize = env("WARREN_BENCH_RECORDS", 1_000_000);
    let value_bytes: usize = env("WARREN_BENCH_VALUE_BYTES", 1024);
    let partitions: u32 = env("WARREN_BENCH_PARTITIONS", 4);
    let acks = Acks::try_from(env("WARREN_BENCH_ACKS", -1i16))?;
    let zstd = env("WARREN_BENCH_ZSTD", 0u8) != 0;
    let durability: String = env("WARREN_BENCH_DURABILITY", "none".to_string());
    let rounds: usize = env("WARREN_BENCH_CONSUME_ROUNDS", 1);
    let phases: String = env(
        "WARREN_BENCH_PHASES",
        "send,produce,consume,sink".to_string(),
    );

    // WARREN_BENCH_DIR picks the filesystem (e.g. /dev/shm to take the disk out).
    let dir = match std::env::var_os("WARREN_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let broker = broker_rt.block_on(warren_broker::Broker::start(warren_broker::BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    }))?;
    let addr = broker.local_addr();
    let connection = ConnectionConfig::new(addr.to_string());
    let value = vec![0x5au8; value_bytes];
    let payload = records * value_bytes;
    println!(
        "{records} records of {value_bytes} B, {partitions} partitions, acks {acks:?}, zstd {zstd}, durability {durability}"
    );

    // 1. send alone, on a current-thread runtime: nothing else runs meanwhile.
    if phases.contains("send") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let admin = Admin::connect(connection.clone()).await?;
            admin
                .create_topic(
                    "send-only",
                    partitions,
                    &[("durability", durability.as_str())],
                )
                .await?;
            let producer = Producer::connect(ProducerConfig {
                connection: connection.clone(),
                buffer_bytes: 128 << 20,
                linger: Duration::from_secs(10),
                acks,
                ..Default::default()
            })
            .await?;
            // Topic metadata is loaded by the first send; keep it out of the timing.
            drop(producer.send("send-only", None, &value).await?);
            producer.flush().await?;
            // Rounds of 64 MiB, flushed between rounds (untimed), so batch
            // memory is recycled as in a steady state.
            let per_round = ((64 << 20) / value_bytes.max(1)).max(1);
            let mut timed = Duration::ZERO;
            let mut sent = 0;
            while sent < records {
                let n = per_round.min(records - sent);
                let start = Instant::now();
                for _ in 0..n {
                    drop(producer.send("send-only", None, &value).await?);
                }
                timed += start.elapsed();
                sent += n;
                producer.flush().await?;
            }
            rate("send() alone", sent, sent * value_bytes, timed);
            producer.close().await?;
            BenchResult::Ok(())
        })?;
    }

    // 2, 3 and 4 on a one-worker multi-thread runtime (the client's core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    if phases.contains("sink") {
        let sink = broker_rt.block_on(sink::start(partitions))?;
        rt.block_on(async {
            let producer = Producer::connect(ProducerConfig {
                connection: ConnectionConfig::new(sink.to_string()),
                acks,
                compression: if zstd {
                    Compression::Zstd
                } else {
                    Compression::None
                },
                ..Default::default()
            })
            .await?;
            drop(producer.send("sink", None, &value).await?);
            producer.flush().await?;
            let start = Instant::now();
            for _ in 1..records {
                drop(producer.send("sink", None, &value).await?);
            }
            producer.flush().await?;
            rate(
                "produce to a sink",
                records - 1,
                payload - value_bytes,
                start.elapsed(),
            );
            BenchResult::Ok(())
        })?;
    }
    if !phases.contains("produce") {
        broker_rt.block_on(broker.shutdown())?;
        return Ok(());
    }
    rt.block_on(async {
        let admin = Admin::connect(connection.clone()).await?;
        admin
            .create_topic("bench", partitions, &[("durability", durability.as_str())])
            .await?;
        let producer = Producer::connect(ProducerConfig {
            connection: connection.clone(),
            acks,
            compression: if zstd {
                Compression::Zstd
            } else {
                Compression::None
            },
            ..Default::default()
        })
        .await?;
        drop(producer.send("bench", None, &value).await?);
        producer.flush().await?;
        let start = Instant::now();
        for _ in 1..records {
            drop(producer.send("bench", None, &value).await?);
        }
        let sent = start.elapsed();
        producer.flush().await?;
        let flushed = start.elapsed();
        rate(
            "produce: send loop",
            records - 1,
            payload - value_bytes,
            sent,
        );
        rate(
            "produce: to flush",
            records - 1,
            payload - value_bytes,
            flushed,
        );
        if !phases.contains("consume") {
            return Ok(());
        }

        let mut consumer = Consumer::connect(ConsumerConfig {
            connection: connection.clone(),
            ..Default::default()
        })
        .await?;
        let all: Vec<u32> = (0..partitions).collect();
        consumer.assign("bench", &all);
        for _ in 0..rounds {
            for p in &all {
                consumer.seek("bench", *p, SeekTo::Earliest).await?;
            }
            let start = Instant::now();
            let mut got = 0usize;
            let mut bytes = 0usize;
            let mut polls = 0;
            while got < records && polls < 1_000_000 {
                polls += 1;
                for r in consumer.poll(Duration::from_millis(500)).await? {
                    bytes += r.value.as_ref().map_or(0, |v| v.len());
                    got += 1;
                }
            }
            rate("consume", got, bytes, start.elapsed());
        }
        BenchResult::Ok(())
    })?;
    broker_rt.block_on(broker.shutdown())?;
    Ok(())
}

/// A stand-in broker that answers ApiVersions, Metadata (every topic has the
/// given partitions) and Produce (offsets counted, records dropped).
mod sink {
    use std::collections::HashMap;
    use std::net::SocketAddr;

    use bytes::BytesMut;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio_util::codec::{Encoder, FramedRead};
    use warren_client::warren_protocol::api::api_versions::ApiVersionsResponse;
    use warren_client::warren_protocol::api::metadata::{
        MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
    };
    use warren_client::warren_protocol::api::produce::{
        ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
    };
    use warren_client::warren_protocol::api::{self, ApiKey};
    use warren_client::warren_protocol::frame::{RequestCodec, ResponseFrame, ResponseHeader};
    use warren_client::warren_protocol::{ErrorCode, RecordBatch};

    pub async fn start(partitions: u32) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, partitions));
            }
        });
        Ok(addr)
    }

    async fn serve(stream: tokio::net::TcpStream, partitions: u32) -> Option<()> {
        let (read, mut write) = stream.into_split();
        let mut frames = FramedRead::with_capacity(read, RequestCodec::default(), 1 << 20);
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        let mut out = BytesMut::new();
        while let Some(Ok(req)) = frames.next().await {
            let body = match ApiKey::try_from(req.header.api_key).ok()? {
                ApiKey::ApiVersions => api::encode(&ApiVersionsResponse::supported()).ok()?,
                ApiKey::Metadata => {
                    let asked: MetadataRequest = api::decode(req.body).ok()?;
                    let topics = asked
                        .topics
                        .into_iter()
                        .map(|name| TopicMetadata {
                            error_code: ErrorCode::NONE,
                            name,
                            routing: Default::default(),
                            partitions: (0..partitions)
                                .map(|partition| PartitionMetadata {
                                    partition,
                                    leader: 0,
                                })
                                .collect(),
                        })
                        .collect();
                    api::encode(&MetadataResponse {
                        brokers: vec![],
                        topics,
                    })
                    .ok()?
                }
                ApiKey::Produce => {
                    let produce: ProduceRequest = api::decode(req.body).ok()?;
                    let topics = produce
                        .topics
                        .into_iter()
                        .map(|t| ProduceTopicResponse {
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| {
                                    let count = RecordBatch::new(p.records.clone())
                                        .map_or(0, |b| i64::from(b.header().records_count));
                                    let at =
                                        next.entry((t.topic.clone(), p.partition)).or_default();
                                    let base = *at;
                                    *at += count;
                                    ProducePartitionResponse::new(
                                        p.partition,
                                        ErrorCode::NONE,
                                        base,
                                    )
                                })
                                .collect(),
                            topic: t.topic,
                        })
                        .collect();
                    if produce.acks == 0 {
                        continue;
                    }
                    api::encode(&ProduceResponse { topics }).ok()?
                }
                _ => return None,
            };
            let frame = ResponseFrame {
                header: ResponseHeader {
                    correlation_id: req.header.correlation_id,
                    error_code: 0,
                },
                body,
            };
            RequestCodec::default().encode(frame, &mut out).ok()?;
            write.write_all(&out).await.ok()?;
            out.clear();
        }
        Some(())
    }
}
