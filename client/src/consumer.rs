//! The [`Consumer`]: reads assigned partitions with long-poll fetches.
//!
//! No consumer groups yet: the caller [`assign`](Consumer::assign)s
//! partitions and the consumer keeps one *position* per partition (the offset
//! of the next record to return), starting at
//! [`ConsumerConfig::start_at`] unless [`seek`](Consumer::seek) sets it.
//!
//! A [`poll`](Consumer::poll) sends one Fetch for every assigned partition
//! (`max_wait_ms` = the poll timeout) and decodes what comes back: each batch
//! is CRC-checked and decoded (zstd too), records below the position are
//! skipped (a fetch starts at the batch holding the position), and the
//! position moves past the last batch returned. With `prefetch`, the next
//! fetch is sent as soon as a response's batch headers have been read, before
//! its records are CRC-checked and decoded, so the broker reads and sends
//! while the consumer decodes and the caller processes. A partition whose
//! data then proves corrupt has its position put back at the bad batch, and
//! the prefetched data for it is dropped.
//!
//! Errors are per partition and keep that partition's position:
//! - `OFFSET_OUT_OF_RANGE` is [`Error::OffsetOutOfRange`] with the log's
//!   range. The consumer does **not** reset by itself: seek (for example to
//!   [`SeekTo::Earliest`]) and poll again.
//! - A batch that fails its CRC or does not decode is [`Error::Corrupt`]; the
//!   records before it are returned first and the position stops at it, so
//!   every later poll reports it again until the caller seeks past it.
//! - When one poll yields both records and an error, the records are returned
//!   and the error comes from the next poll.
//! - A lost connection is retried once per poll on a new connection (fetches
//!   are reads).
//!
//! Responses come back in request order on the consumer's one connection, so
//! a `seek` or `assign` that abandons a fetch still in flight (a prefetch
//! long-polling at the end of a partition) closes that connection rather than
//! queue behind the long poll; the next request reconnects.
//!
//! Cancellation: a `poll` future dropped while it waits leaves its fetch in
//! flight for the next poll; records are never taken from a response unless
//! they are returned.
//!
//! Not thread-safe by design: `poll`, `seek` and `assign` take `&mut self`.
//! Use one consumer per task.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use tracing::debug;
use warren_protocol::api::ApiKey;
use warren_protocol::api::fetch::{
    FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic,
};
use warren_protocol::record_batch::peek_batch_len;
use warren_protocol::{BatchHeader, ErrorCode, Header, RecordBatch, api};

use crate::admin::list_offsets;
use crate::config::{ConsumerConfig, OffsetSpec};
use crate::connection::{Connection, Connector, Reply, decode_response};
use crate::error::{Error, Result};

/// The apis a consumer needs from the broker.
const CONSUMER_APIS: &[ApiKey] = &[ApiKey::Fetch, ApiKey::ListOffsets];

/// How long `poll` waits past its timeout for a fetch the broker is about
/// to answer (it answers at `max_wait_ms`, plus the trip back).
const POLL_GRACE: Duration = Duration::from_millis(100);

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by every record of a poll: no allocation per record).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: u32,
    /// The record's offset in the partition.
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key, if any (a slice of the fetched batch: no copy).
    pub key: Option<Bytes>,
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// The record's headers, in order.
    pub headers: Vec<Header>,
}

/// Where [`Consumer::seek`] moves a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset (checked by the broker at the next fetch).
    Offset(u64),
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced from now on.
    Latest,
    /// The first batch with a timestamp at or after this many ms since the
    /// Unix epoch; the high watermark if no record is that new.
    Timestamp(i64),
}

#[derive(Debug)]
struct Assigned {
    topic: Arc<str>,
    partition: u32,
    /// The next offset to return; `None` until resolved from `start_at`.
    position: Option<u64>,
    high_watermark: Option<u64>,
}

/// A fetch sent and not yet answered.
#[derive(Debug)]
struct InFlight {
    conn: Arc<Connection>,
    rx: oneshot::Receiver<Reply>,
    /// (topic, partition, fetch_offset) as sent.
    offsets: Vec<(Arc<str>, u32, u64)>,
    sent_at: Instant,
    max_wait: Duration,
}

/// Reads records from assigned partitions; see the module docs.
///
/// ```no_run
/// # async fn run() -> warren_client::Result<()> {
/// use std::time::Duration;
/// use warren_client::{Consumer, ConsumerConfig, SeekTo};
/// let mut consumer = Consumer::connect(ConsumerConfig::new("127.0.0.1:7171")).await?;
/// consumer.assign("orders", &[0, 1, 2, 3]);
/// consumer.seek("orders", 0, SeekTo::Earliest).await?;
/// for record in consumer.poll(Duration::from_millis(500)).await? {
///     println!("{}/{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Consumer {
    connector: Connector,
    config: ConsumerConfig,
    /// Sorted by (topic, partition).
    assigned: Vec<Assigned>,
    in_flight: Option<InFlight>,
    /// An error found while returning records, reported by the next poll.
    stashed: Option<Error>,
}

impl Consumer {
    /// Validates `config` and connects (ApiVersions included).
    ///
    /// # Errors
    /// [`Error::Config`]; the connection's errors.
    pub async fn connect(config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let connector = Connector::new(config.connection.clone(), CONSUMER_APIS);
        connector.get().await?;
        Ok(Consumer {
            connector,
            config,
            assigned: Vec::new(),
            in_flight: None,
            stashed: None,
        })
    }

    /// The consumer's configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Reads `partitions` of `topic` from now on, instead of the partitions
    /// of `topic` assigned before (positions of partitions kept are kept).
    /// An empty list unassigns the topic. Nothing is checked with the broker
    /// here: an unknown topic or partition is reported by the next poll.
    pub fn assign(&mut self, topic: &str, partitions: &[u32]) {
        self.abandon_fetch("assignment changed");
        let mut kept = Vec::new();
        self.assigned.retain_mut(|a| {
            if &*a.topic != topic {
                return true;
            }
            if partitions.contains(&a.partition) {
                kept.push((a.partition, a.position));
            }
            false
        });
        let name: Arc<str> = Arc::from(topic);
        for p in partitions {
            if self
                .assigned
                .iter()
                .any(|a| &*a.topic == topic && a.partition == *p)
            {
                continue;
            }
            let position = kept.iter().find(|(k, _)| k == p).and_then(|(_, pos)| *pos);
            self.assigned.push(Assigned {
                topic: name.clone(),
                partition: *p,
                position,
                high_watermark: None,
            });
        }
        self.assigned
            .sort_by(|a, b| a.topic.cmp(&b.topic).then(a.partition.cmp(&b.partition)));
    }

    /// Every assigned (topic, partition), sorted.
    pub fn assignment(&self) -> Vec<(String, u32)> {
        self.assigned
            .iter()
            .map(|a| (a.topic.to_string(), a.partition))
            .collect()
    }

    fn find(&self, topic: &str, partition: u32) -> Option<usize> {
        self.assigned
            .iter()
            .position(|a| &*a.topic == topic && a.partition == partition)
    }

    /// The offset of the next record `poll` returns for the partition;
    /// `None` if it is not assigned or its start is not resolved yet (the
    /// first poll resolves it).
    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.find(topic, partition)
            .and_then(|i| self.assigned.get(i))
            .and_then(|a| a.position)
    }

    /// The partition's high watermark as of the last fetch that returned it.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Option<u64> {
        self.find(topic, partition)
            .and_then(|i| self.assigned.get(i))
            .and_then(|a| a.high_watermark)
    }

    /// Moves the partition's position. `Earliest`, `Latest` and `Timestamp`
    /// ask the broker (ListOffsets); `Offset` is taken as given. A fetch in
    /// flight is abandoned (its answer would be from the old position).
    ///
    /// # Errors
    /// [`Error::NotAssigned`]; the ListOffsets errors ([`Error::UnknownTopic`],
    /// [`Error::Partition`], connection errors).
    pub async fn seek(&mut self, topic: &str, partition: u32, to: SeekTo) -> Result<()> {
        let index = self
            .find(topic, partition)
            .ok_or_else(|| Error::NotAssigned {
                topic: topic.to_owned(),
                partition,
            })?;
        self.abandon_fetch("seek");
        let offset = match to {
            SeekTo::Offset(o) => o,
            SeekTo::Earliest => self.resolve(topic, partition, OffsetSpec::Earliest).await?,
            SeekTo::Latest => self.resolve(topic, partition, OffsetSpec::Latest).await?,
            SeekTo::Timestamp(ts) => {
                self.resolve(topic, partition, OffsetSpec::Timestamp(ts))
                    .await?
            }
        };
        self.stashed = None;
        if let Some(a) = self.assigned.get_mut(index) {
            a.position = Some(offset);
        }
        Ok(())
    }

    /// Drops the fetch in flight, if any. Its connection is closed unless the
    /// answer is already in: responses come back in request order, so the
    /// next request would otherwise queue behind a long poll that can last
    /// the whole `max_wait_ms`. Nothing else is pending on the consumer's
    /// connection (its methods take `&mut self`); the next request reconnects.
    fn abandon_fetch(&mut self, why: &str) {
        if let Some(mut f) = self.in_flight.take()
            && f.rx.try_recv().is_err()
        {
            f.conn.close(format!("fetch abandoned: {why}"));
        }
    }

    /// One partition's offset for `spec`; a timestamp past every record
    /// resolves to the high watermark.
    async fn resolve(&self, topic: &str, partition: u32, spec: OffsetSpec) -> Result<u64> {
        let found = list_offsets(&self.connector, topic, &[partition], spec).await?;
        if let Some(offset) = found.first().and_then(|f| f.offset) {
            return Ok(offset);
        }
        let latest = list_offsets(&self.connector, topic, &[partition], OffsetSpec::Latest).await?;
        latest
            .first()
            .and_then(|f| f.offset)
            .ok_or_else(|| Error::Partition {
                topic: topic.to_owned(),
                partition,
                code: ErrorCode::OFFSET_OUT_OF_RANGE,
            })
    }

    /// Resolves the start of every partition without a position, one
    /// ListOffsets request per topic.
    async fn resolve_positions(&mut self) -> Result<()> {
        let mut missing: Vec<(Arc<str>, Vec<u32>)> = Vec::new();
        for a in self.assigned.iter().filter(|a| a.position.is_none()) {
            match missing.last_mut() {
                Some((t, ps)) if *t == a.topic => ps.push(a.partition),
                _ => missing.push((a.topic.clone(), vec![a.partition])),
            }
        }
        for (topic, partitions) in missing {
            let found =
                list_offsets(&self.connector, &topic, &partitions, self.config.start_at).await?;
            for (p, listed) in partitions.iter().zip(found) {
                let offset = match listed.offset {
                    Some(o) => o,
                    None => self.resolve(&topic, *p, OffsetSpec::Latest).await?,
                };
                let index = self.find(&topic, *p);
                if let Some(a) = index.and_then(|i| self.assigned.get_mut(i)) {
                    a.position = Some(offset);
                }
            }
        }
        Ok(())
    }

    /// Sends a fetch from the current positions, connecting if needed.
    async fn send_fetch(&self, max_wait: Duration) -> Result<InFlight> {
        let conn = self.connector.get().await?;
        let permit = conn.slot().await?;
        self.fetch_on(conn, permit, max_wait)
    }

    /// Sends a fetch from the current positions on `conn`, without waiting.
    fn fetch_on(
        &self,
        conn: Arc<Connection>,
        permit: OwnedSemaphorePermit,
        max_wait: Duration,
    ) -> Result<InFlight> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut offsets = Vec::with_capacity(self.assigned.len());
        for a in &self.assigned {
            let Some(position) = a.position else {
                continue;
            };
            let entry = FetchPartition {
                partition: a.partition,
                fetch_offset: position,
                partition_max_bytes: self.config.partition_max_bytes,
            };
            match topics.last_mut() {
                Some(t) if *t.topic == *a.topic => t.partitions.push(entry),
                _ => topics.push(FetchTopic {
                    topic: a.topic.to_string(),
                    partitions: vec![entry],
                }),
            }
            offsets.push((a.topic.clone(), a.partition, position));
        }
        let request = FetchRequest {
            max_wait_ms: u32::try_from(max_wait.as_millis()).unwrap_or(u32::MAX),
            min_bytes: self.config.min_bytes,
            max_bytes: self.config.max_bytes,
            topics,
        };
        let body = api::encode(&request)?;
        let rx = conn.send(permit, ApiKey::Fetch, vec![body], true)?;
        Ok(InFlight {
            conn,
            rx,
            offsets,
            sent_at: Instant::now(),
            max_wait,
        })
    }

    /// Sends the next fetch on the connection the last one used, if it is
    /// alive and has a free slot. Never waits, so a `poll` cancelled after
    /// its records were taken cannot lose them here.
    fn prefetch(&mut self, conn: &Arc<Connection>, max_wait: Duration) {
        if conn.is_dead() {
            return;
        }
        let Some(permit) = conn.try_slot() else {
            return;
        };
        match self.fetch_on(conn.clone(), permit, max_wait) {
            Ok(f) => self.in_flight = Some(f),
            // Best effort: the next poll sends a fetch.
            Err(e) => debug!(error = %e, "prefetch not sent"),
        }
    }

    /// Fetches records from every assigned partition, waiting up to about
    /// `timeout` for some to arrive (see the module docs). An empty vector
    /// means none arrived in time.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`], [`Error::Corrupt`], [`Error::UnknownTopic`],
    /// [`Error::Partition`] for a partition's error; [`Error::Config`] when
    /// nothing is assigned; connection errors after one retry.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        if self.assigned.is_empty() {
            return Err(Error::Config("poll with no partition assigned".into()));
        }
        self.resolve_positions().await?;
        let deadline = Instant::now() + timeout;
        let mut retried = false;
        loop {
            if self.in_flight.is_none() {
                self.in_flight = Some(self.send_fetch(timeout).await?);
            }
            // The fetch stays in `self` while we wait: a poll cancelled here
            // leaves it for the next poll.
            let Some(waiting) = self.in_flight.as_mut() else {
                continue;
            };
            let waited = tokio::time::timeout_at(deadline + POLL_GRACE, &mut waiting.rx).await;
            let Some(in_flight) = self.in_flight.take() else {
                continue;
            };
            let reply = match waited {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Err(Error::ConnectionLost {
                    addr: in_flight.conn.addr(),
                    reason: "connection closed with a fetch in flight".into(),
                }),
                Err(_) => {
                    let limit = in_flight.max_wait + self.connector.config().request_timeout;
                    if in_flight.sent_at.elapsed() > limit {
                        in_flight
                            .conn
                            .close(format!("no fetch response within {limit:?}"));
                        return Err(Error::Timeout {
                            what: "request",
                            after: limit,
                        });
                    }
                    // Keep waiting for it at the next poll.
                    self.in_flight = Some(in_flight);
                    return Ok(Vec::new());
                }
            };
            let frame = match reply {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return Err(Error::ConnectionLost {
                        addr: in_flight.conn.addr(),
                        reason: "no response frame".into(),
                    });
                }
                Err(Error::ConnectionLost { .. }) if !retried => {
                    retried = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let response: FetchResponse = decode_response(frame)?;
            let (work, advanced) = self.advance(response, &in_flight.offsets);
            if work.is_empty() && self.is_stale(&in_flight.offsets) {
                // A prefetch overtaken by a position put back after a
                // corrupt batch: fetch again rather than return nothing.
                continue;
            }
            // The next fetch goes out before this one's records are checked
            // and decoded, so the broker sends while we decode.
            if self.config.prefetch && advanced {
                self.prefetch(&in_flight.conn, timeout);
            }
            let (records, error) = self.decode(work);
            match error {
                Some(e) if records.is_empty() => return Err(e),
                Some(e) => self.stashed = Some(e),
                None => {}
            }
            return Ok(records);
        }
    }

    /// Whether a fetch sent from `offsets` no longer matches any position.
    fn is_stale(&self, offsets: &[(Arc<str>, u32, u64)]) -> bool {
        offsets
            .iter()
            .any(|(topic, partition, offset)| self.position(topic, *partition) != Some(*offset))
    }

    /// First half of applying a fetch response: keeps the partitions whose
    /// position is still the offset they were fetched from (a seek since
    /// moves it), records their high watermarks, and moves each position
    /// past the last whole batch by reading batch headers only. Returns the
    /// partitions to decode and whether any position moved.
    fn advance(
        &mut self,
        response: FetchResponse,
        offsets: &[(Arc<str>, u32, u64)],
    ) -> (Vec<Fetched>, bool) {
        let mut work = Vec::new();
        let mut advanced = false;
        for t in response.topics {
            for p in t.partitions {
                let Some((topic, _, fetch_offset)) = offsets
                    .iter()
                    .find(|(topic, partition, _)| **topic == *t.topic && *partition == p.partition)
                else {
                    continue;
                };
                let Some(index) = self.find(topic, p.partition) else {
                    continue;
                };
                let Some(assigned) = self.assigned.get_mut(index) else {
                    continue;
                };
                if assigned.position != Some(*fetch_offset) {
                    // Moved by a seek since this fetch was sent.
                    continue;
                }
                let mut scanned = *fetch_offset;
                if p.error_code == ErrorCode::NONE {
                    assigned.high_watermark = Some(p.high_watermark);
                    scanned = scan_batches(*fetch_offset, &p.records);
                    assigned.position = Some(scanned);
                    advanced |= scanned > *fetch_offset;
                }
                work.push(Fetched {
                    index,
                    topic: topic.clone(),
                    fetch_offset: *fetch_offset,
                    scanned,
                    data: p,
                });
            }
        }
        (work, advanced)
    }

    /// Second half: CRC-checks and decodes what [`advance`](Self::advance)
    /// kept. A partition whose data stops short of the scanned position (a
    /// corrupt batch) has its position put back where decoding stopped, so a
    /// prefetch sent from the scanned position is ignored for it. Returns the
    /// records and the first partition error.
    fn decode(&mut self, work: Vec<Fetched>) -> (Vec<ConsumerRecord>, Option<Error>) {
        let mut records = Vec::new();
        let mut first_error = None;
        for f in work {
            let partition = f.data.partition;
            let error = match f.data.error_code {
                ErrorCode::NONE => {
                    let (next, error) = decode_records(
                        &f.topic,
                        partition,
                        f.fetch_offset,
                        f.data.records,
                        &mut records,
                    );
                    if next != f.scanned
                        && let Some(assigned) = self.assigned.get_mut(f.index)
                    {
                        assigned.position = Some(next);
                    }
                    error
                }
                ErrorCode::OFFSET_OUT_OF_RANGE => Some(Error::OffsetOutOfRange {
                    topic: f.topic.to_string(),
                    partition,
                    offset: f.fetch_offset,
                    log_start: f.data.log_start_offset,
                    high_watermark: f.data.high_watermark,
                }),
                code if code.is_retriable() => {
                    debug!(topic = %f.topic, partition, ?code, "fetch will retry the partition");
                    None
                }
                code => Some(Error::from_partition_code(&f.topic, partition, code)),
            };
            if let Some(e) = error {
                first_error.get_or_insert(e);
            }
        }
        (records, first_error)
    }
}

/// One partition of a fetch response, between [`Consumer::advance`] and
/// [`Consumer::decode`].
#[derive(Debug)]
struct Fetched {
    /// Index into `Consumer::assigned`.
    index: usize,
    topic: Arc<str>,
    fetch_offset: u64,
    /// The position past the last whole batch, from the headers alone.
    scanned: u64,
    data: FetchPartitionResponse,
}

/// Where [`decode_records`] leaves the position when every batch in `data`
/// is sound: past the last whole batch. Reads batch headers only.
fn scan_batches(fetch_offset: u64, data: &[u8]) -> u64 {
    let mut next = fetch_offset;
    let mut rest = data;
    while let Ok(Some(len)) = peek_batch_len(rest) {
        let (Some(batch), Some(tail)) = (rest.get(..len), rest.get(len..)) else {
            break;
        };
        let Ok(header) = BatchHeader::parse(batch) else {
            break;
        };
        next = next.max(u64::try_from(header.next_offset()).unwrap_or(0));
        rest = tail;
    }
    next
}

/// Decodes the batches of one partition's fetch data from `fetch_offset` on,
/// appending records to `out`. Returns the new position (past the last whole
/// batch decoded) and the error that stopped decoding, if any.
///
/// A batch cut short at the end of the data is ignored (the next fetch
/// starts at it) unless it is the first batch, which the broker always sends
/// whole.
pub(crate) fn decode_records(
    topic: &Arc<str>,
    partition: u32,
    fetch_offset: u64,
    mut data: Bytes,
    out: &mut Vec<ConsumerRecord>,
) -> (u64, Option<Error>) {
    let mut next = fetch_offset;
    let mut first = true;
    let corrupt = |offset: u64, source: warren_protocol::Error| Error::Corrupt {
        topic: topic.to_string(),
        partition,
        offset,
        source: Arc::new(source),
    };
    while !data.is_empty() {
        let len = match peek_batch_len(&data) {
            Ok(Some(len)) if len <= data.len() => len,
            Ok(Some(len)) if !first => {
                debug!(%topic, partition, len, left = data.len(), "partial batch at the end of a fetch");
                break;
            }
            Ok(Some(len)) => {
                let e = warren_protocol::Error::Truncated {
                    what: "record batch",
                    needed: len,
                    available: data.len(),
                };
                return (next, Some(corrupt(next, e)));
            }
            Ok(None) if !first => break,
            Ok(None) => {
                let e = warren_protocol::Error::Truncated {
                    what: "record batch",
                    needed: warren_protocol::record_batch::LOG_OVERHEAD,
                    available: data.len(),
                };
                return (next, Some(corrupt(next, e)));
            }
            Err(e) => return (next, Some(corrupt(next, e))),
        };
        first = false;
        let bytes = data.split_to(len);
        let batch = match RecordBatch::new(bytes).and_then(|b| b.verify_crc().map(|()| b)) {
            Ok(b) => b,
            Err(e) => return (next, Some(corrupt(next, e))),
        };
        let header = *batch.header();
        let batch_end = u64::try_from(header.next_offset()).unwrap_or(0);
        if batch_end <= next {
            continue; // wholly below the position
        }
        if !header.is_control() {
            let decoded = match batch.records() {
                Ok(r) => r,
                Err(e) => return (next, Some(corrupt(next, e))),
            };
            out.reserve(decoded.len());
            for r in decoded {
                let Ok(offset) = u64::try_from(r.offset) else {
                    continue;
                };
                if offset < next {
                    continue;
                }
                out.push(ConsumerRecord {
                    topic: topic.clone(),
                    partition,
                    offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
        next = batch_end;
    }
    (next, None)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use bytes::BytesMut;
    use warren_protocol::record_batch::set_base_offset;
    use warren_protocol::{Compression, RecordBatchBuilder};

    fn batch(base: i64, values: &[&str], compression: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            b.append(
                1000 + i as i64,
                Some(b"k"),
                Some(v.as_bytes()),
                &[Header::new("h", v.to_string())],
            );
        }
        let mut bytes = BytesMut::from(&b.build().unwrap()[..]);
        set_base_offset(&mut bytes, base).unwrap();
        bytes.freeze()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut out = BytesMut::new();
        for p in parts {
            out.extend_from_slice(p);
        }
        out.freeze()
    }

    #[test]
    fn records_below_the_fetch_offset_are_skipped() {
        let topic: Arc<str> = Arc::from("t");
        let data = concat(&[
            batch(10, &["a", "b", "c"], Compression::None),
            batch(13, &["d", "e"], Compression::Zstd),
        ]);
        let mut out = Vec::new();
        let (next, err) = decode_records(&topic, 2, 11, data, &mut out);
        assert!(err.is_none());
        assert_eq!(next, 15);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.offset, r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            got,
            [(11, "b"), (12, "c"), (13, "d"), (14, "e")]
                .map(|(o, v)| (o, Bytes::from_static(v.as_bytes())))
        );
        assert_eq!(out[0].headers, vec![Header::new("h", "b")]);
        assert_eq!(out[0].timestamp, 1001);
        assert_eq!(out[0].partition, 2);
    }

    #[test]
    fn a_corrupt_batch_stops_decoding_at_its_offset() {
        let topic: Arc<str> = Arc::from("t");
        let good = batch(0, &["a", "b"], Compression::None);
        let mut bad = BytesMut::from(&batch(2, &["c"], Compression::None)[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let data = concat(&[good, bad.freeze(), batch(3, &["d"], Compression::None)]);
        let mut out = Vec::new();
        let (next, err) = decode_records(&topic, 0, 0, data, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(next, 2);
        match err {
            Some(Error::Corrupt {
                offset: 2,
                partition: 0,
                ref source,
                ..
            }) => {
                assert!(matches!(
                    **source,
                    warren_protocol::Error::ChecksumMismatch { .. }
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_partial_last_batch_is_left_for_the_next_fetch() {
        let topic: Arc<str> = Arc::from("t");
        let second = batch(1, &["b"], Compression::None);
        let data = concat(&[
            batch(0, &["a"], Compression::None),
            second.slice(..second.len() - 3),
        ]);
        let mut out = Vec::new();
        let (next, err) = decode_records(&topic, 0, 0, data, &mut out);
        assert!(err.is_none());
        assert_eq!((out.len(), next), (1, 1));
        // Cut short as the first batch, it is an error rather than a stall.
        let mut out = Vec::new();
        let (next, err) = decode_records(&topic, 0, 1, second.slice(..second.len() - 3), &mut out);
        assert!(matches!(err, Some(Error::Corrupt { offset: 1, .. })));
        assert_eq!(next, 1);
        // Garbage shorter than a batch length field, likewise.
        let (_, err) = decode_records(&topic, 0, 1, Bytes::from_static(b"xyz"), &mut out);
        assert!(matches!(err, Some(Error::Corrupt { .. })));
    }

    #[test]
    fn random_bytes_never_panic() {
        let topic: Arc<str> = Arc::from("t");
        let good = batch(0, &["a", "b", "c"], Compression::Zstd);
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = BytesMut::from(&good[..]);
                bytes[i] ^= flip;
                let mut out = Vec::new();
                let _ = decode_records(&topic, 0, 0, bytes.freeze(), &mut out);
            }
            let mut out = Vec::new();
            let _ = decode_records(&topic, 0, 0, good.slice(..i), &mut out);
        }
    }

    mod with_mock_broker {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use warren_protocol::api::fetch::{FetchPartitionResponse, FetchTopicResponse};

        use super::*;
        use crate::config::ConnectionConfig;
        use crate::test_broker::{MockBroker, Reaction};

        /// A fetch response with records `from..from + 3` of partition 0 of "t".
        fn fetch_response(req: &warren_protocol::frame::RequestFrame) -> FetchResponse {
            let fetch: FetchRequest = api::decode(req.body.clone()).unwrap();
            let from = fetch.topics[0].partitions[0].fetch_offset;
            FetchResponse {
                topics: vec![FetchTopicResponse {
                    topic: "t".into(),
                    partitions: vec![FetchPartitionResponse {
                        partition: 0,
                        error_code: ErrorCode::NONE,
                        high_watermark: from + 3,
                        log_start_offset: 0,
                        records: batch(from as i64, &["a", "b", "c"], Compression::None),
                    }],
                }],
            }
        }

        async fn consumer(broker: &MockBroker, prefetch: bool) -> Consumer {
            let mut c = Consumer::connect(ConsumerConfig {
                connection: ConnectionConfig {
                    reconnect_backoff: Duration::from_millis(5),
                    ..ConnectionConfig::new(broker.addr().to_string())
                },
                prefetch,
                ..Default::default()
            })
            .await
            .unwrap();
            c.assign("t", &[0]);
            c.seek("t", 0, SeekTo::Offset(0)).await.unwrap();
            c
        }

        /// On paused time: the mock's 300 ms delay and the 50 ms cancel are
        /// tokio timers, so their order is exact rather than a race.
        #[tokio::test(start_paused = true)]
        async fn a_cancelled_poll_leaves_its_fetch_for_the_next_one() {
            let broker = MockBroker::start(|req| {
                Reaction::RespondAfter(
                    Duration::from_millis(300),
                    api::encode(&fetch_response(req)).unwrap(),
                )
            })
            .await;
            let mut c = consumer(&broker, false).await;
            let cancelled =
                tokio::time::timeout(Duration::from_millis(50), c.poll(Duration::from_secs(2)))
                    .await;
            assert!(cancelled.is_err());
            let records = c.poll(Duration::from_secs(2)).await.unwrap();
            assert_eq!(records.len(), 3);
            assert_eq!(c.position("t", 0), Some(3));
            assert_eq!(broker.requests().len(), 1);
        }

        #[tokio::test]
        async fn a_lost_connection_is_retried_once_and_prefetch_continues() {
            let calls = Arc::new(AtomicUsize::new(0));
            let seen = calls.clone();
            let broker = MockBroker::start(move |req| {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reaction::Close
                } else {
                    Reaction::respond(&fetch_response(req))
                }
            })
            .await;
            let mut c = consumer(&broker, true).await;
            let records = c.poll(Duration::from_secs(2)).await.unwrap();
            let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [0, 1, 2]);
            // The prefetch went out before poll returned; the next poll takes it.
            let records = c.poll(Duration::from_secs(2)).await.unwrap();
            assert_eq!(records.first().map(|r| r.offset), Some(3));
            assert!(calls.load(Ordering::SeqCst) >= 3);
        }

        #[tokio::test]
        async fn a_prefetch_sent_past_a_corrupt_batch_is_dropped_and_the_error_repeats() {
            fn corrupt(base: i64) -> Bytes {
                let mut bad = BytesMut::from(&batch(base, &["c"], Compression::None)[..]);
                let last = bad.len() - 1;
                bad[last] ^= 0xff;
                bad.freeze()
            }
            let broker = MockBroker::start(|req| {
                let fetch: FetchRequest = api::decode(req.body.clone()).unwrap();
                let from = fetch.topics[0].partitions[0].fetch_offset;
                let records = match from {
                    0 => concat(&[
                        batch(0, &["a", "b"], Compression::None),
                        corrupt(2),
                        batch(3, &["d"], Compression::None),
                    ]),
                    2 => concat(&[corrupt(2), batch(3, &["d"], Compression::None)]),
                    _ => batch(from as i64, &["past the corruption"], Compression::None),
                };
                Reaction::respond(&FetchResponse {
                    topics: vec![FetchTopicResponse {
                        topic: "t".into(),
                        partitions: vec![FetchPartitionResponse {
                            partition: 0,
                            error_code: ErrorCode::NONE,
                            high_watermark: 9,
                            log_start_offset: 0,
                            records,
                        }],
                    }],
                })
            })
            .await;
            let mut c = consumer(&broker, true).await;
            let records = c.poll(Duration::from_secs(2)).await.unwrap();
            assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1]);
            assert_eq!(c.position("t", 0), Some(2));
            for _ in 0..3 {
                let err = c.poll(Duration::from_secs(2)).await.unwrap_err();
                assert!(matches!(err, Error::Corrupt { offset: 2, .. }), "{err:?}");
                assert_eq!(c.position("t", 0), Some(2));
            }
            // The prefetch went out from the headers' position (4) before the
            // CRC check found batch 2 bad; its records were never returned.
            let offsets: Vec<u64> = broker
                .requests()
                .iter()
                .filter(|r| r.header.api_key == ApiKey::Fetch as u16)
                .map(|r| {
                    let f: FetchRequest = api::decode(r.body.clone()).unwrap();
                    f.topics[0].partitions[0].fetch_offset
                })
                .collect();
            assert_eq!(offsets.first(), Some(&0));
            assert!(offsets.contains(&4), "{offsets:?}");
        }

        #[tokio::test]
        async fn out_of_range_is_reported_with_the_log_range() {
            let broker = MockBroker::start(|_| {
                Reaction::respond(&FetchResponse {
                    topics: vec![FetchTopicResponse {
                        topic: "t".into(),
                        partitions: vec![FetchPartitionResponse {
                            partition: 0,
                            error_code: ErrorCode::OFFSET_OUT_OF_RANGE,
                            high_watermark: 9,
                            log_start_offset: 4,
                            records: Bytes::new(),
                        }],
                    }],
                })
            })
            .await;
            let mut c = consumer(&broker, true).await;
            let err = c.poll(Duration::from_secs(1)).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::OffsetOutOfRange {
                        offset: 0,
                        log_start: 4,
                        high_watermark: 9,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(c.position("t", 0), Some(0));
        }
    }
}
