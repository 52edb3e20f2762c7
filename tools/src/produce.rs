//! `warren produce TOPIC`: sends one message per line of standard input, like
//! Kafka's console producer, and exits 0 only once the broker has acknowledged
//! every one of them.
//!
//! Lines are bytes, not text: a message is the line without its trailing
//! `\n` (a `\r` before it is kept), so any byte sequence without a newline
//! round-trips through `warren consume`. An empty line is an empty message, and
//! a last line without a newline is a message too.
//!
//! Batches are capped at what the topic accepts (`max.message.bytes`, looked
//! up with DescribeTopic before the first send), so many short lines never
//! make a batch the broker refuses whole.
//!
//! Every send's [`DeliveryFuture`] is kept until its result is known; the
//! first failed delivery (or refused send) ends the command with a one-line
//! error naming the message's line number. Futures are checked in send order
//! as they complete, so the queue holds only records not yet acknowledged
//! (bounded by the producer's `buffer_bytes`). A summary goes to stderr:
//!
//! ```text
//! produced 3 messages (17 bytes) to orders in 12 ms
//! ```
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use warren_client::{Acks, Admin, DeliveryFuture, Producer, ProducerConfig, ProducerRecord};

use crate::connect::{BrokerArgs, ClientContext, client_error, connect_error, runtime};

/// The smallest `batch_bytes` we give the client. Its config takes 1024, but
/// the accumulator panics (`clamp` with min > max) on a batch_bytes below its
/// 4 KiB initial batch reservation, so we stay at 4 KiB until that is fixed.
const MIN_BATCH_BYTES: usize = 4 << 10;

/// Read buffer for standard input.
const STDIN_BUFFER_BYTES: usize = 64 << 10;

/// Arguments of `warren produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic to produce to
    pub topic: String,
    /// Key of every message: picks the partition by hash, or on a direct or
    /// topic topic is the routing key its bindings match (unless --partition)
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// Partition of every message [default: by the topic's routing: key hash
    /// or spread without a key (hash), the key's bindings (direct, topic)]
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// When the broker acknowledges: 0 (never, fire and forget), 1 (appended),
    /// -1 (durable as the topic's durability says)
    #[arg(long, value_name = "ACKS", default_value = "-1", allow_hyphen_values = true,
          value_parser = parse_acks)]
    pub acks: Acks,
    /// How long a batch may wait for more messages before it is sent
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub linger_ms: u64,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    let n: i16 = s.parse().map_err(|_| format!("{s:?} is not 0, 1 or -1"))?;
    Acks::try_from(n).map_err(|_| format!("{s} is not 0, 1 or -1"))
}

/// Runs `produce`, reading standard input to its end.
///
/// # Errors
/// The connection's errors, an unknown topic or partition, the first failed
/// delivery, or an error reading standard input.
pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    runtime()?.block_on(produce(args))
}

async fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let topic = &args.topic;
    let defaults = ProducerConfig::default();
    let config = ProducerConfig {
        connection: args.broker.connection(),
        linger: Duration::from_millis(args.linger_ms),
        acks: args.acks,
        batch_bytes: batch_bytes(args, defaults.batch_bytes).await?,
        ..defaults
    };
    let producer = Producer::connect(config)
        .await
        .map_err(|e| connect_error(&args.broker, e))?;
    let key = args
        .key
        .as_ref()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()));
    let mut stdin = BufReader::with_capacity(STDIN_BUFFER_BYTES, tokio::io::stdin());
    // Line numbers (1-based) and deliveries of messages not yet acknowledged, in send order.
    let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stdin
            .read_until(b'\n', &mut line)
            .await
            .context("reading standard input")?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        messages += 1;
        bytes += line.len() as u64;
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: args.partition,
            key: key.clone(),
            value: Some(Bytes::copy_from_slice(&line)),
            ..ProducerRecord::default()
        };
        let delivery = producer
            .send_record(record)
            .await
            .map_err(|e| client_error(e).context(format!("producing to {topic}")))?;
        pending.push_back((messages, delivery));
        check_completed(&mut pending, topic)?;
    }
    // Send what lingers now; each delivery below then reports its own result.
    let _ = producer.flush().await;
    for (number, delivery) in pending {
        if let Err(e) = delivery.await {
            bail!("message {number} was not delivered to {topic}: {e}");
        }
    }
    producer
        .close()
        .await
        .doing(|| format!("producing to {topic}"))?;
    eprintln!(
        "produced {messages} messages ({bytes} bytes) to {topic} in {} ms",
        start.elapsed().as_millis()
    );
    Ok(())
}

/// The producer's `batch_bytes` for the topic: the default, lowered to the
/// largest batch the topic accepts (`max.message.bytes`, at most
/// `segment.bytes`). Otherwise many small lines would fill a batch the broker
/// refuses whole. The client takes no less than [`MIN_BATCH_BYTES`].
///
/// # Errors
/// The connection's errors; an unknown topic.
async fn batch_bytes(args: &ProduceArgs, default: usize) -> anyhow::Result<usize> {
    let topic = &args.topic;
    let admin = Admin::connect(args.broker.connection())
        .await
        .map_err(|e| connect_error(&args.broker, e))?;
    let description = admin
        .describe_topic(topic)
        .await
        .doing(|| format!("producing to {topic}"))?;
    let config = |key: &str| -> Option<usize> {
        let (_, value) = description.configs.iter().find(|(k, _)| k == key)?;
        value.parse().ok()
    };
    let limit = [config("max.message.bytes"), config("segment.bytes")]
        .into_iter()
        .flatten()
        .fold(default, usize::min);
    Ok(limit.max(MIN_BATCH_BYTES))
}

/// Drops the deliveries at the front of `pending` that succeeded; fails on the
/// first that did not.
fn check_completed(
    pending: &mut VecDeque<(u64, DeliveryFuture)>,
    topic: &str,
) -> anyhow::Result<()> {
    while let Some((number, delivery)) = pending.front() {
        match delivery.try_result() {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("message {number} was not delivered to {topic}: {e}"),
        }
        pending.pop_front();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_accepts_only_0_1_and_minus_1() {
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        assert_eq!(parse_acks("1"), Ok(Acks::Leader));
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert!(parse_acks("2").is_err());
        assert!(parse_acks("all").is_err());
    }
}
