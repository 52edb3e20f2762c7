//! `warren consume TOPIC`: prints the records of a topic, like Kafka's console
//! consumer.
//!
//! Reads one partition (`--partition`) or all of them, from the end (only new
//! records, the default), the beginning (`--from-beginning`) or an offset
//! (`--offset N`, with `--partition`). With `--group G` it is a member of
//! consumer group G instead: the broker assigns its partitions, it starts at
//! the group's committed offsets, and after each batch is written to stdout it
//! commits the offsets of the records printed (so a consumer killed mid-way
//! leaves at most that batch to be delivered again); it leaves the group when
//! it stops. Stops after `--max-messages`, after
//! `--timeout-ms` without a new record, or on SIGINT/SIGTERM; all three exit 0.
//! A summary goes to stderr (`consumed N messages from TOPIC`). Losing the
//! broker is an error (exit 1) once the client's one reconnect attempt per
//! poll has failed; there is no waiting for it to come back.
//!
//! Output, one record per line:
//!
//! ```text
//! --format text (default): the value's raw bytes, then '\n' (a null value is an empty line)
//! --format json: {"topic":"orders","partition":0,"offset":7,"timestamp":1700000000000,
//!                 "key":"k","headers":[{"key":"trace","value":"abc"}],"value":"hello"}
//! ```
//!
//! In JSON a key, value or header value is a string when it is valid UTF-8,
//! `{"hex":"00ff"}` otherwise, and `null` when absent.
//!
//! With `--share-group G` the command is a member of share group `G` (queue
//! semantics) instead of a reader of the log, for operators who drain or
//! inspect a queue; JSON lines then carry `"delivery_count"` after `offset`:
//!
//! ```text
//! --ack         acknowledge every printed record: it leaves the queue for good
//! --reject-all  reject every record: each goes to the topic's dead-letter topic
//! (neither)     inspect: records are held (locked) while the command runs, each
//!               printed once, and released when it ends, so the queue keeps them
//!               and only their delivery counts go up (one a record already on its
//!               last allowed delivery is dead-lettered by the release). A run sees
//!               at most 2000 unacknowledged records per partition (the broker's
//!               in-flight limit); a lock that expires during a long run brings
//!               its record back, which is not printed twice.
//! ```
//!
//! Records acquired beyond `--max-messages` are released unprinted. What is
//! pending is sent and the rest released on every exit (limit, timeout,
//! signal); a consumer killed without that leaves its records locked until
//! `share.lock.timeout.ms` passes.
//!
//! Stdout is flushed after each poll so a pipe sees records as they come. A
//! write to a closed pipe (as with `| head`) ends the command quietly with
//! exit 0: the reader has all it wanted. (Rust ignores SIGPIPE, so that write
//! fails with `EPIPE` rather than killing us.) A reader that goes away while
//! we wait for records is noticed too, without a write: every
//! [`STDOUT_CHECK`] stdout is polled for POLLERR/POLLHUP, so
//! `warren consume t --from-beginning | head -3` ends once `head` has its
//! lines even when no new record comes. Any other failed write to stdout (a
//! full disk) is an error, exit 1: records would be lost.
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use warren_client::{
    Admin, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, GroupConfig, GroupConsumer,
    OffsetSpec, SeekTo, ShareConsumer, ShareConsumerConfig, ShareRecord,
};

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};

/// Arguments of `warren consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic to read
    pub topic: String,
    /// Read only this partition [default: every partition]
    #[arg(long, value_name = "P", conflicts_with = "share_group")]
    pub partition: Option<u32>,
    /// Start at the oldest record kept instead of the end
    #[arg(long, conflicts_with_all = ["offset", "share_group"])]
    pub from_beginning: bool,
    /// Consume as a member of this share group (queue semantics). Without --ack
    /// or --reject-all the records are printed and released at exit: the queue
    /// keeps them, only their delivery counts go up (a record on its last
    /// allowed delivery then goes to the dead-letter topic)
    #[arg(long, value_name = "G")]
    pub share_group: Option<String>,
    /// With --share-group: acknowledge every printed record (drains the queue)
    #[arg(long, requires = "share_group", conflicts_with = "reject_all")]
    pub ack: bool,
    /// With --share-group: reject every record, sending it to the topic's dead-letter topic
    #[arg(long, requires = "share_group")]
    pub reject_all: bool,
    /// Start at this offset (requires --partition)
    #[arg(long, value_name = "N", requires = "partition")]
    pub offset: Option<u64>,
    /// Exit after printing this many records
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Output: text (each value's bytes and a newline) or json (one object per line)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit when no record arrives for this long [default: wait forever]
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Consume as a member of this consumer group: the broker assigns the
    /// partitions, reading starts at the group's committed offsets (partitions
    /// without one start as --from-beginning says), and the offsets of the
    /// records printed are committed after each batch is written out
    #[arg(long, value_name = "G", conflicts_with_all = ["partition", "offset", "share_group"])]
    pub group: Option<String>,
    /// With --group: the broker expels the member after this long without a
    /// heartbeat
    #[arg(long, value_name = "MS", default_value_t = 10_000, requires = "group")]
    pub session_timeout_ms: u64,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Bytes in JSON: a string when valid UTF-8, `{"hex": "..."}` otherwise,
/// `null` when absent.
struct JsonBytes<'a>(Option<&'a [u8]>);

impl Serialize for JsonBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            None => s.serialize_none(),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => s.serialize_str(text),
                Err(_) => {
                    let mut map = s.serialize_map(Some(1))?;
                    map.serialize_entry("hex", &hex(bytes))?;
                    map.end()
                }
            },
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[derive(Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: JsonBytes<'a>,
}

/// One record as a JSON line; fields in this order.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    /// Only for share groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_count: Option<u16>,
    timestamp: i64,
    key: JsonBytes<'a>,
    headers: Vec<JsonHeader<'a>>,
    value: JsonBytes<'a>,
}

/// Longest single fetch wait; bounded so `--timeout-ms` and the signal
/// handlers are checked at least this often even on a quiet topic.
const MAX_POLL_WAIT: Duration = Duration::from_secs(5);

/// How often an idle consumer checks whether stdout's reader has gone.
const STDOUT_CHECK: Duration = Duration::from_millis(200);

/// Runs `consume` until `--max-messages`, `--timeout-ms` of silence, or a
/// signal.
///
/// # Errors
/// The connection's errors, an unknown topic or partition, an offset out of
/// range, a corrupt batch, a failed write to stdout other than a closed pipe
/// (see the module docs).
pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(consume(args))
}

/// Why the loop ended.
enum End {
    /// `--max-messages`, `--timeout-ms` or a signal.
    Done,
    /// Stdout is gone: stop without a word.
    StdoutClosed,
}

/// A plain consumer of assigned partitions, or a group member.
enum Source {
    Plain(Consumer),
    Group(GroupConsumer),
}

impl Source {
    async fn poll(&mut self, wait: Duration) -> warren_client::Result<Vec<ConsumerRecord>> {
        match self {
            Source::Plain(c) => c.poll(wait).await,
            Source::Group(c) => c.poll(wait).await,
        }
    }

    /// With a group: commits the offset after each partition's last printed record.
    async fn commit_printed(&mut self, printed: &[ConsumerRecord]) -> anyhow::Result<()> {
        let Source::Group(c) = self else {
            return Ok(());
        };
        let mut next: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for r in printed {
            next.insert((r.topic.to_string(), r.partition), r.offset + 1);
        }
        let offsets: Vec<_> = next.into_iter().collect();
        match c.commit_offsets(&offsets).await {
            Ok(()) => Ok(()),
            // A rebalance overtook the commit: the partition's next owner
            // starts at the previous commit (at-least-once).
            Err(e)
                if e.code().is_some_and(|c| {
                    c == ErrorCode::STALE_GENERATION
                        || c == ErrorCode::PARTITION_NOT_ASSIGNED
                        || c == ErrorCode::UNKNOWN_MEMBER
                }) =>
            {
                tracing::debug!(error = %e, "commit overtaken by a rebalance");
                Ok(())
            }
            Err(e) => Err(anyhow::Error::new(e).context("committing offsets")),
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        if let Source::Group(c) = self {
            c.close().await.context("leaving the group")?;
        }
        Ok(())
    }
}

async fn consume(args: &ConsumeArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    if let Some(group) = &args.share_group {
        return consume_share(args, group).await;
    }
    let topic = args.topic.as_str();
    let start_at = if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    };
    let config = ConsumerConfig {
        connection: args.broker.connection(),
        start_at,
        ..ConsumerConfig::default()
    };
    let mut source = if let Some(group) = &args.group {
        let group_config = GroupConfig {
            session_timeout: Duration::from_millis(args.session_timeout_ms),
            auto_commit: None,
            ..GroupConfig::new(group.as_str(), &[topic])
        };
        Source::Group(
            GroupConsumer::join(config, group_config)
                .await
                .map_err(|e| connect_error(&args.broker, e))
                .with_context(|| format!("joining group {group}"))?,
        )
    } else {
        let partitions = partitions(args).await?;
        let mut consumer = Consumer::connect(config)
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        consumer.assign(topic, &partitions);
        if let (Some(offset), Some(partition)) = (args.offset, args.partition) {
            consumer
                .seek(topic, partition, SeekTo::Offset(offset))
                .await
                .doing(|| format!("consuming from {topic}"))?;
        }
        Source::Plain(consumer)
    };
    let signal_error = |e| anyhow::Error::new(e).context("installing signal handlers");
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let max = args.max_messages.unwrap_or(u64::MAX);
    let mut consumed = 0u64;
    let mut last_record = Instant::now();
    let end = 'poll: loop {
        if consumed >= max {
            break End::Done;
        }
        let wait = match idle_limit {
            Some(limit) => {
                let left = limit.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    break End::Done;
                }
                left.min(MAX_POLL_WAIT)
            }
            None => MAX_POLL_WAIT,
        };
        let records = tokio::select! {
            records = source.poll(wait) => records.doing(|| format!("consuming from {topic}"))?,
            _ = interrupt.recv() => break End::Done,
            _ = terminate.recv() => break End::Done,
            () = stdout_closed() => break End::StdoutClosed,
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let mut printed = 0;
        for record in &records {
            if consumed >= max {
                break;
            }
            if let Some(end) = stdout_gone(write_record(&mut out, args.format, record))? {
                break 'poll end;
            }
            consumed += 1;
            printed += 1;
        }
        if let Some(end) = stdout_gone(out.flush())? {
            break end;
        }
        source
            .commit_printed(records.get(..printed).unwrap_or_default())
            .await?;
    };
    source.close().await?;
    if let End::Done = end
        && stdout_gone(out.flush())?.is_none()
    {
        eprintln!("consumed {consumed} messages from {topic}");
    }
    Ok(())
}

/// Sorts out a write to stdout: `None` when it worked, [`End::StdoutClosed`]
/// when the reader has gone (EPIPE), an error otherwise (a full disk, say:
/// that loses records, so it is not quiet).
fn stdout_gone(written: io::Result<()>) -> anyhow::Result<Option<End>> {
    match written {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(End::StdoutClosed)),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Resolves once stdout is a pipe or socket whose reader has gone, checking
/// every [`STDOUT_CHECK`]; never resolves for a file or a terminal that stays.
async fn stdout_closed() {
    use std::os::fd::AsFd;

    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = io::stdout();
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        tokio::time::sleep(STDOUT_CHECK).await;
        // No events asked for: poll(2) reports only POLLERR, POLLHUP and
        // POLLNVAL, which it always may.
        let mut fds = [PollFd::from_borrowed_fd(stdout.as_fd(), PollFlags::empty())];
        if let Ok(n) = poll(&mut fds, Some(&now))
            && n > 0
            && fds
                .iter()
                .any(|f| f.revents().intersects(PollFlags::ERR | PollFlags::HUP))
        {
            return;
        }
    }
}

/// The partitions to read: `--partition`, checked against the topic, or all.
async fn partitions(args: &ConsumeArgs) -> anyhow::Result<Vec<u32>> {
    let topic = args.topic.as_str();
    let admin = Admin::connect(args.broker.connection())
        .await
        .map_err(|e| connect_error(&args.broker, e))?;
    let count = admin
        .describe_topic(topic)
        .await
        .doing(|| format!("consuming from {topic}"))?
        .partitions
        .len();
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    match args.partition {
        Some(p) if p >= count => {
            bail!("consuming from {topic}: the topic has no partition {p} (it has {count})")
        }
        Some(p) => Ok(vec![p]),
        None => Ok((0..count).collect()),
    }
}

/// Consumes as a member of share group `group`; see the module docs.
async fn consume_share(args: &ConsumeArgs, group: &str) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let topic = args.topic.as_str();
    let config = ShareConsumerConfig {
        connection: args.broker.connection(),
        ..ShareConsumerConfig::default()
    };
    let mut consumer = ShareConsumer::new(config, group, topic)
        .await
        .map_err(|e| connect_error(&args.broker, e))?;
    let signal_error = |e| anyhow::Error::new(e).context("installing signal handlers");
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let doing = || format!("consuming from {topic} as share group {group}");

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let max = args.max_messages.unwrap_or(u64::MAX);
    let mut consumed = 0u64;
    // Inspect mode holds what it printed; a record back after a lost lock is
    // not printed again.
    let mut printed: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut last_record = Instant::now();
    let outcome: anyhow::Result<End> = async {
        loop {
            if consumed >= max {
                return Ok(End::Done);
            }
            let wait = match idle_limit {
                Some(limit) => {
                    let left = limit.saturating_sub(last_record.elapsed());
                    if left.is_zero() {
                        return Ok(End::Done);
                    }
                    left.min(MAX_POLL_WAIT)
                }
                None => MAX_POLL_WAIT,
            };
            let records = tokio::select! {
                records = consumer.poll(wait) => records.doing(doing)?,
                _ = interrupt.recv() => return Ok(End::Done),
                _ = terminate.recv() => return Ok(End::Done),
                () = stdout_closed() => return Ok(End::StdoutClosed),
            };
            for record in &records {
                if consumed >= max {
                    consumer.release(record).doing(doing)?;
                    continue;
                }
                let first_time = printed.insert((record.partition, record.offset)) || args.ack;
                if first_time {
                    if let Some(end) =
                        stdout_gone(write_record(&mut out, args.format, share_view(record)))?
                    {
                        return Ok(end);
                    }
                    consumed += 1;
                    last_record = Instant::now();
                }
                if args.ack {
                    consumer.ack(record).doing(doing)?;
                } else if args.reject_all {
                    consumer.reject(record).doing(doing)?;
                }
            }
            if let Some(end) = stdout_gone(out.flush())? {
                return Ok(end);
            }
        }
    }
    .await;
    // Send what is pending and release the rest, whatever ended the loop.
    let closed = consumer.close().await.doing(doing);
    let end = outcome?;
    closed?;
    if let End::Done = end
        && stdout_gone(out.flush())?.is_none()
    {
        let what = if args.ack {
            "acknowledged"
        } else if args.reject_all {
            "rejected"
        } else {
            "released"
        };
        eprintln!("consumed {consumed} messages from {topic} (share group {group}, {what})");
    }
    Ok(())
}

/// A share-group record as the printer sees it.
fn share_view(r: &ShareRecord) -> RecordView<'_> {
    RecordView {
        topic: &r.topic,
        partition: r.partition,
        offset: r.offset,
        delivery_count: Some(r.delivery_count),
        timestamp: r.timestamp,
        key: r.key.as_deref(),
        value: r.value.as_deref(),
        headers: &r.headers,
    }
}

/// What [`write_record`] prints, from either kind of consumer.
struct RecordView<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    delivery_count: Option<u16>,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [warren_client::Header],
}

impl<'a> From<&'a ConsumerRecord> for RecordView<'a> {
    fn from(r: &'a ConsumerRecord) -> Self {
        RecordView {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            delivery_count: None,
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &r.headers,
        }
    }
}

/// Writes one record in `format`, newline included.
fn write_record<'a>(
    out: &mut impl Write,
    format: Format,
    r: impl Into<RecordView<'a>>,
) -> io::Result<()> {
    let r: RecordView<'a> = r.into();
    match format {
        Format::Text => {
            out.write_all(r.value.unwrap_or_default())?;
            out.write_all(b"\n")
        }
        Format::Json => {
            let json = JsonRecord {
                topic: r.topic,
                partition: r.partition,
                offset: r.offset,
                delivery_count: r.delivery_count,
                timestamp: r.timestamp,
                key: JsonBytes(r.key),
                headers: r
                    .headers
                    .iter()
                    .map(|h| JsonHeader {
                        key: &h.key,
                        value: JsonBytes(h.value.as_deref()),
                    })
                    .collect(),
                value: JsonBytes(r.value),
            };
            serde_json::to_writer(&mut *out, &json).map_err(io::Error::from)?;
            out.write_all(b"\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use warren_client::Header;

    use super::*;

    fn record(key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("orders"),
            partition: 2,
            offset: 7,
            timestamp: 1_700_000_000_000,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: vec![
                Header::new("trace", "abc"),
                Header::new("bin", vec![0xffu8, 0x00]),
                Header {
                    key: "none".into(),
                    value: None,
                },
            ],
        }
    }

    fn json(r: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        write_record(&mut out, Format::Json, r).ok();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn json_has_every_field_in_order_and_hex_for_non_utf8() {
        assert_eq!(
            json(&record(Some(b"k"), Some(&[0x00, 0xff, 0x10]))),
            "{\"topic\":\"orders\",\"partition\":2,\"offset\":7,\"timestamp\":1700000000000,\
             \"key\":\"k\",\"headers\":[{\"key\":\"trace\",\"value\":\"abc\"},\
             {\"key\":\"bin\",\"value\":{\"hex\":\"ff00\"}},{\"key\":\"none\",\"value\":null}],\
             \"value\":{\"hex\":\"00ff10\"}}\n"
        );
    }

    #[test]
    fn json_null_key_and_value_are_null_and_text_is_escaped() {
        let line = json(&record(None, None));
        assert!(line.contains("\"key\":null"), "{line}");
        assert!(line.ends_with("\"value\":null}\n"), "{line}");
        let line = json(&record(Some(b"\xc3\xbc"), Some(b"a \"quoted\"\nline")));
        assert!(line.contains("\"key\":\"\u{fc}\""), "{line}");
        assert!(
            line.contains("\"value\":\"a \\\"quoted\\\"\\nline\""),
            "{line}"
        );
    }

    #[test]
    fn text_is_the_raw_value_and_a_newline() {
        let mut out = Vec::new();
        write_record(
            &mut out,
            Format::Text,
            &record(None, Some(&[0xff, b' ', 0x00])),
        )
        .ok();
        write_record(&mut out, Format::Text, &record(None, None)).ok();
        assert_eq!(out, [0xff, b' ', 0x00, b'\n', b'\n']);
    }
}
