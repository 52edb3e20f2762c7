//! `warren bench produce|consume`: load generators over the real client, with
//! a progress bar while running and throughput plus latency percentiles after.
//!
//! Produce: `--producers` producers (one connection each) send `--messages`
//! messages of `--size` bytes in total (or until `--duration-secs`), optionally
//! throttled to `--rate` messages per second overall. A message's latency runs
//! from the `send` call to its acknowledgement; a per-producer task awaits the
//! deliveries in send order and records them in an HDR histogram (microsecond
//! resolution). Flat out, the clock is read once per 16 sends and once per
//! wake-up of the recording task rather than twice per message (that alone
//! took about a tenth of a core from the broker under test); stamps are only
//! ever early at the send end, so latency is never under-reported there.
//!
//! Consume: `--consumers` consumers share the topic's partitions (round-robin,
//! or assigned by the broker as members of a new consumer group with
//! `--group`), read from the beginning until `--messages` messages in total
//! (or `--duration-secs`), and report messages and value bytes per second.
//!
//! Rebalance (`bench_groups`): times consumer-group rebalances.
//!
//! Share: one share-group member (`--group`, by default a new group per run,
//! so the whole topic is the queue) acquires up to `--max-records` records per
//! poll and acknowledges every one; the acknowledgements go out with the next
//! poll, as a `ShareConsumer` sends them. Reports records and value bytes per
//! second until `--messages` records (or `--duration-secs`).
//!
//! MB is 10^6 bytes. `--json` prints one JSON object instead of the text lines,
//! for scripts (benches/broker.sh).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use futures_util::FutureExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use warren_client::{
    Acks, Admin, Consumer, ConsumerConfig, ConsumerRecord, Error as ClientError, GroupConfig,
    GroupConsumer, OffsetSpec, Producer, ProducerConfig, SeekTo, ShareConsumer,
    ShareConsumerConfig,
};

use crate::connect::BrokerArgs;

/// How many messages share one clock reading, at each end, when producing
/// flat out (see `produce_one`).
const STAMP_EVERY: u64 = 16;

/// Load generators for throughput and latency.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(subcommand)]
    kind: BenchKind,
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Send messages as fast as possible (or at --rate) and report throughput and latency.
    Produce(ProduceBench),
    /// Read a topic from the beginning and report throughput.
    Consume(ConsumeBench),
    /// Time consumer-group rebalances: a group of --members over
    /// --partitions, one extra member joining and leaving in turn.
    Rebalance(crate::bench_groups::RebalanceBench),
    /// Drain a topic as one share-group member acknowledging every record, and report throughput.
    Share(ShareBench),
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// Topic to use.
    #[arg(long)]
    topic: String,
    /// Messages in total (over all producers or consumers).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Stop after this many seconds even if --messages are not done.
    #[arg(long, value_name = "SECS")]
    duration_secs: Option<u64>,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Durability of the topic if it is created: fsync, none or interval:<ms>.
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ProduceBench {
    #[command(flatten)]
    common: Common,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Producer batch size in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: usize,
    /// Producer linger in milliseconds.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Concurrent producers, one connection each.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// 0 (no acknowledgement), 1 (appended) or -1 (durable per the topic's durability).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    acks: i16,
    /// Overall send rate in messages per second (default: as fast as possible).
    #[arg(long, value_name = "MSGS_PER_SEC")]
    rate: Option<u64>,
    /// Compress batches with zstd.
    #[arg(long)]
    zstd: bool,
}

#[derive(Debug, Args)]
struct ConsumeBench {
    #[command(flatten)]
    common: Common,
    /// Concurrent consumers, one connection each, sharing the partitions.
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// Accepted for symmetry with `bench produce`; unused.
    #[arg(long)]
    size: Option<usize>,
    /// Consume as members of a new consumer group (`bench-<time>`, auto-commit
    /// every 5 s): the broker assigns the partitions, as in production
    #[arg(long)]
    group: bool,
}

#[derive(Debug, Args)]
struct ShareBench {
    #[command(flatten)]
    common: Common,
    /// Share group [default: a new one per run, so the whole topic is the queue]
    #[arg(long)]
    group: Option<String>,
    /// Records acquired per poll.
    #[arg(long, default_value_t = 1000)]
    max_records: u32,
    /// Accepted for symmetry with `bench produce`; unused.
    #[arg(long)]
    size: Option<usize>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let broker = &args.broker;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.kind {
            BenchKind::Produce(p) => produce(broker, p).await,
            BenchKind::Consume(c) => consume(broker, c).await,
            BenchKind::Rebalance(r) => crate::bench_groups::rebalance(broker, r).await,
            BenchKind::Share(s) => share_group(broker, s).await,
        }
    })
}

pub(crate) async fn ensure_topic(broker: &BrokerArgs, c: &Common) -> Result<u32> {
    let admin = Admin::connect(broker.connection()).await?;
    match admin
        .create_topic(
            &c.topic,
            c.partitions,
            &[("durability", c.durability.as_str())],
        )
        .await
    {
        Ok(()) => {}
        Err(e) if e.code() == Some(warren_protocol::ErrorCode::TOPIC_ALREADY_EXISTS) => {}
        Err(e) => return Err(e).context(format!("creating topic {}", c.topic)),
    }
    let d = admin.describe_topic(&c.topic).await?;
    Ok(d.partitions.len() as u32)
}

fn progress(total: u64, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} msgs ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Splits `total` into `n` shares that add up to it.
fn share(total: u64, n: u32, i: u32) -> u64 {
    let n = u64::from(n.max(1));
    total / n + u64::from(u64::from(i) < total % n)
}

async fn produce(broker: &BrokerArgs, args: &ProduceBench) -> Result<()> {
    let c = &args.common;
    ensure_topic(broker, c).await?;
    let acks = Acks::try_from(args.acks)?;
    let bar = progress(c.messages, c.json);
    let deadline = c
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let stop = Arc::new(AtomicBool::new(false));
    let value = Bytes::from(
        (0..args.size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.producers.max(1) {
        let mut config = ProducerConfig {
            connection: broker.connection(),
            ..ProducerConfig::default()
        };
        config.acks = acks;
        config.batch_bytes = args.batch_bytes;
        config.max_request_bytes = config.max_request_bytes.max(args.batch_bytes);
        config.linger = Duration::from_millis(args.linger_ms);
        if args.zstd {
            config.compression = warren_protocol::Compression::Zstd;
        }
        let producer = Producer::connect(config).await?;
        let count = share(c.messages, args.producers, i);
        let rate = args.rate.map(|r| share(r, args.producers, i).max(1));
        let topic = c.topic.clone();
        let value = value.clone();
        let bar = bar.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            produce_one(producer, topic, value, count, rate, deadline, bar, stop).await
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut sent = 0u64;
    for t in tasks {
        let (h, n) = t.await.context("producer task failed")??;
        hist.add(h)?;
        sent += n;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    report(
        "produce",
        sent,
        sent * args.size as u64,
        elapsed,
        Some(&hist),
        c.json,
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn produce_one(
    producer: Producer,
    topic: String,
    value: Bytes,
    count: u64,
    rate: Option<u64>,
    deadline: Option<Instant>,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
) -> Result<(Histogram<u64>, u64)> {
    // Deliveries go to a task that awaits them in send order and records
    // their latency; the bounded channel keeps the queue of pending futures
    // (and the memory they hold) in check.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    let recorder = tokio::spawn(async move {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut acked = 0u64;
        // One clock read per wake-up rather than per message: the records of
        // a batch are acknowledged together, and reading the clock for each
        // would take CPU from the broker under test. A delivery found already
        // done is stamped with the last reading, refreshed every
        // STAMP_EVERY deliveries so it never goes stale.
        let mut now = Instant::now();
        while let Some((sent_at, delivery)) = rx.recv().await {
            let mut delivery: warren_client::DeliveryFuture = delivery;
            let sent_at: Instant = sent_at;
            match (&mut delivery).now_or_never() {
                Some(done) => {
                    done?;
                    if acked.is_multiple_of(STAMP_EVERY) {
                        now = Instant::now();
                    }
                }
                None => {
                    delivery.await?;
                    now = Instant::now();
                }
            }
            hist.saturating_record(now.saturating_duration_since(sent_at).as_micros() as u64);
            acked += 1;
        }
        anyhow::Ok((hist, acked))
    });
    let started = Instant::now();
    let mut sent = 0u64;
    let mut since_tick = 0u64;
    let mut sent_at = started;
    while sent < count {
        if let Some(rate) = rate {
            // Send in 1 ms ticks of rate/1000 messages.
            let due = started + Duration::from_micros(sent * 1_000_000 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        if sent.is_multiple_of(1024) {
            if deadline.is_some_and(|d| Instant::now() >= d) || stop.load(Ordering::Relaxed) {
                break;
            }
            bar.inc(since_tick);
            since_tick = 0;
        }
        let delivery = producer.send(&topic, None, &value).await?;
        // Under --rate every message is stamped (latency is the figure
        // sought); flat out, every STAMP_EVERY-th, so the clock reads do not
        // take CPU from the broker under test. A stamp is then at most
        // STAMP_EVERY sends old, which only ever adds to the latency.
        if rate.is_some() || sent.is_multiple_of(STAMP_EVERY) {
            sent_at = Instant::now();
        }
        if tx.send((sent_at, delivery)).await.is_err() {
            break;
        }
        sent += 1;
        since_tick += 1;
    }
    bar.inc(since_tick);
    drop(tx);
    producer.flush().await?;
    let (hist, acked) = recorder.await.context("latency recorder failed")??;
    if acked != sent {
        stop.store(true, Ordering::Relaxed);
        bail!("{sent} sent but {acked} acknowledged");
    }
    producer.close().await?;
    Ok((hist, acked))
}

async fn consume(broker: &BrokerArgs, args: &ConsumeBench) -> Result<()> {
    let c = &args.common;
    let partitions = ensure_topic(broker, c).await?;
    let bar = progress(c.messages, c.json);
    let deadline = c
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let consumed = Arc::new(AtomicU64::new(0));
    let value_bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let n = args.consumers.max(1).min(partitions.max(1));
    let group = format!(
        "bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    for i in 0..n {
        let config = ConsumerConfig {
            connection: broker.connection(),
            start_at: OffsetSpec::Earliest,
            ..ConsumerConfig::default()
        };
        let mut consumer = if args.group {
            BenchConsumer::Group(
                GroupConsumer::join(config, GroupConfig::new(group.as_str(), &[&c.topic])).await?,
            )
        } else {
            let mut consumer = Consumer::connect(config).await?;
            let mine: Vec<u32> = (0..partitions).filter(|p| p % n == i).collect();
            consumer.assign(&c.topic, &mine);
            BenchConsumer::Plain(consumer)
        };
        let (consumed, value_bytes, bar) =
            (Arc::clone(&consumed), Arc::clone(&value_bytes), bar.clone());
        let total = c.messages;
        tasks.push(tokio::spawn(async move {
            while consumed.load(Ordering::Relaxed) < total
                && deadline.is_none_or(|d| Instant::now() < d)
            {
                let records = match consumer.poll(Duration::from_millis(200)).await {
                    Ok(records) => records,
                    // Retention deleted what this consumer had not read yet
                    // (a flat-out run over a topic with a size limit): go on
                    // from the oldest record left, as a lagging consumer would.
                    Err(ClientError::OffsetOutOfRange {
                        topic, partition, ..
                    }) => {
                        consumer.seek_earliest(&topic, partition).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let bytes: u64 = records
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
                    .sum();
                consumed.fetch_add(records.len() as u64, Ordering::Relaxed);
                value_bytes.fetch_add(bytes, Ordering::Relaxed);
                bar.inc(records.len() as u64);
            }
            consumer.close().await
        }));
    }
    for t in tasks {
        t.await.context("consumer task failed")??;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    report(
        "consume",
        consumed.load(Ordering::Relaxed),
        value_bytes.load(Ordering::Relaxed),
        elapsed,
        None,
        c.json,
    );
    Ok(())
}

async fn share_group(broker: &BrokerArgs, args: &ShareBench) -> Result<()> {
    let c = &args.common;
    ensure_topic(broker, c).await?;
    let bar = progress(c.messages, c.json);
    let deadline = c
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let group = args.group.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("bench-share-{}-{ms}", std::process::id())
    });
    let config = ShareConsumerConfig {
        connection: broker.connection(),
        max_records: args.max_records,
        member_id: None,
    };
    let mut consumer = ShareConsumer::new(config, &group, &c.topic).await?;
    let started = Instant::now();
    let (mut consumed, mut value_bytes) = (0u64, 0u64);
    while consumed < c.messages && deadline.is_none_or(|d| Instant::now() < d) {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        for r in &records {
            value_bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
            consumer.ack(r)?;
        }
        consumed += records.len() as u64;
        bar.inc(records.len() as u64);
    }
    // The last acknowledgements count: the run ends once they are durable.
    consumer.commit().await?;
    let elapsed = started.elapsed();
    consumer.close().await?;
    bar.finish_and_clear();
    report("share", consumed, value_bytes, elapsed, None, c.json);
    Ok(())
}

/// A plain consumer of assigned partitions, or a group member.
enum BenchConsumer {
    Plain(Consumer),
    Group(GroupConsumer),
}

impl BenchConsumer {
    async fn poll(&mut self, wait: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        match self {
            BenchConsumer::Plain(c) => c.poll(wait).await,
            BenchConsumer::Group(c) => c.poll(wait).await,
        }
    }

    async fn seek_earliest(&mut self, topic: &str, partition: u32) -> Result<(), ClientError> {
        match self {
            BenchConsumer::Plain(c) => c.seek(topic, partition, SeekTo::Earliest).await,
            // A member restarts the partition from the committed offset; the
            // bench's topics have no retention racing the reader.
            BenchConsumer::Group(_) => Ok(()),
        }
    }

    async fn close(self) -> Result<(), ClientError> {
        match self {
            BenchConsumer::Plain(_) => Ok(()),
            BenchConsumer::Group(c) => c.close().await,
        }
    }
}

pub(crate) fn report(
    what: &str,
    msgs: u64,
    bytes: u64,
    elapsed: Duration,
    hist: Option<&Histogram<u64>>,
    json: bool,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let msgs_per_sec = msgs as f64 / secs;
    let mb_per_sec = bytes as f64 / secs / 1e6;
    let pct = |q: f64| hist.map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": what,
                "messages": msgs,
                "bytes": bytes,
                "seconds": secs,
                "msgs_per_sec": msgs_per_sec.round(),
                "mb_per_sec": (mb_per_sec * 10.0).round() / 10.0,
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
                "p999_ms": pct(0.999),
                "max_ms": hist.map_or(0.0, |h| h.max() as f64 / 1000.0),
            })
        );
        return;
    }
    println!(
        "{what}: {msgs} messages, {:.1} MB in {secs:.2} s: {msgs_per_sec:.0} msgs/s, {mb_per_sec:.1} MB/s",
        bytes as f64 / 1e6
    );
    if hist.is_some() {
        println!(
            "latency: p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
            pct(0.5),
            pct(0.99),
            pct(0.999),
            hist.map_or(0.0, |h| h.max() as f64 / 1000.0)
        );
    }
}
