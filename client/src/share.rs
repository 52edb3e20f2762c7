//! The [`ShareConsumer`]: a member of a share group (queue semantics).
//!
//! Every member of a share group reads the same topic; the broker hands each
//! record to one member at a time, locked for the topic's
//! `share.lock.timeout.ms` (default 30 s). The member then acknowledges each
//! record it got:
//!
//! - [`ack`](ShareConsumer::ack): processed, never delivered again;
//! - [`release`](ShareConsumer::release): not processed, delivered again at
//!   once (to any member) with its delivery count one higher;
//! - [`reject`](ShareConsumer::reject): unprocessable, sent to the topic's
//!   dead-letter topic.
//!
//! A record not acknowledged before its lock expires is delivered again; a
//! record released or expired after `max.delivery.attempts` deliveries (default
//! 5) goes to the dead-letter topic. [`ShareRecord::delivery_count`] says
//! which delivery this is (1 the first time).
//!
//! Acknowledgements are only recorded by `ack`, `release` and `reject`; they
//! go to the broker in one ShareAck request (offset ranges per partition) on
//! [`commit`](ShareConsumer::commit), or automatically with the next
//! [`poll`](ShareConsumer::poll), which sends the ShareAck and the next
//! ShareFetch back to back on its connection. The broker answers a ShareAck
//! once the new state is durable.
//!
//! Errors: a poll's records are returned even when the acknowledgements sent
//! with it were refused for a partition; that [`Error::Ack`] comes from the
//! next poll or commit. An acknowledgement whose request was lost with the
//! connection is not resent (whether the broker applied it is unknown): its
//! records are delivered again once their locks expire. Delivery is
//! at-least-once.
//!
//! [`close`](ShareConsumer::close) releases every record still held and sends
//! what is pending. A consumer dropped without `close` leaves its records
//! locked until their locks expire.
//!
//! Not thread-safe by design: every method takes `&mut self`; use one share
//! consumer per task (several in one group share the work).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;
use warren_protocol::api::share::{
    AckBatch, AckKind, AcquiredRecords, ShareAckPartition, ShareAckRequest, ShareAckResponse,
    ShareFetchRequest, ShareFetchResponse,
};
use warren_protocol::api::{self, ApiKey};
use warren_protocol::record_batch::peek_batch_len;
use warren_protocol::{ErrorCode, Header, RecordBatch};

use crate::config::ShareConsumerConfig;
use crate::connection::{Connection, Connector, Reply, decode_response};
use crate::error::{Error, Result};

/// The apis a share consumer needs from the broker.
const SHARE_APIS: &[ApiKey] = &[ApiKey::ShareFetch, ApiKey::ShareAck];

/// Makes default member ids unique within a process.
static NEXT_MEMBER: AtomicU64 = AtomicU64::new(0);

/// One record delivered to a share consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: u32,
    /// The record's offset in the partition.
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// The record's headers, in order.
    pub headers: Vec<Header>,
    /// Which delivery of the record this is: 1 the first time, one more after
    /// each release or lock expiry.
    pub delivery_count: u16,
}

/// A share-group member; see the module docs.
///
/// ```no_run
/// # async fn run() -> warren_client::Result<()> {
/// use std::time::Duration;
/// use warren_client::{ShareConsumer, ShareConsumerConfig};
/// let config = ShareConsumerConfig::new("127.0.0.1:7171");
/// let mut consumer = ShareConsumer::new(config, "billing", "orders").await?;
/// for record in consumer.poll(Duration::from_secs(1)).await? {
///     println!("{}@{} (delivery {})", record.partition, record.offset, record.delivery_count);
///     consumer.ack(&record)?;
/// }
/// consumer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShareConsumer {
    connector: Connector,
    config: ShareConsumerConfig,
    group: String,
    topic: Arc<str>,
    member_id: String,
    /// Delivered and not yet acknowledged by the caller, per partition.
    held: BTreeMap<u32, BTreeSet<u64>>,
    /// Acknowledged by the caller, not yet sent.
    pending: Vec<(u32, u64, AckKind)>,
    /// An acknowledgement error from a poll, reported by the next call.
    stashed: Option<Error>,
}

/// A request written and not yet answered.
struct Sent {
    conn: Arc<Connection>,
    rx: oneshot::Receiver<Reply>,
}

impl ShareConsumer {
    /// Validates `config` and connects (ApiVersions included) as a member of
    /// share group `group` reading `topic`. Nothing is acquired until the
    /// first poll.
    ///
    /// # Errors
    /// [`Error::Config`]; the connection's errors ([`Error::UnsupportedApi`]
    /// from a broker without share groups).
    pub async fn new(config: ShareConsumerConfig, group: &str, topic: &str) -> Result<Self> {
        config.validate()?;
        if group.is_empty() {
            return Err(Error::Config("the share group name is empty".into()));
        }
        let connector = Connector::new(config.connection.clone(), SHARE_APIS);
        connector.get().await?;
        let member_id = config.member_id.clone().unwrap_or_else(default_member_id);
        Ok(ShareConsumer {
            connector,
            config,
            group: group.to_owned(),
            topic: Arc::from(topic),
            member_id,
            held: BTreeMap::new(),
            pending: Vec::new(),
            stashed: None,
        })
    }

    /// The member id records are locked for.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The share group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Records delivered and not yet acknowledged.
    pub fn held(&self) -> usize {
        self.held.values().map(BTreeSet::len).sum()
    }

    /// Acknowledgements recorded and not yet sent.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Marks `record` processed (sent with the next commit or poll).
    ///
    /// # Errors
    /// [`Error::NotHeld`] if this consumer does not hold it.
    pub fn ack(&mut self, record: &ShareRecord) -> Result<()> {
        self.acknowledge(record, AckKind::Accept)
    }

    /// Gives `record` back for delivery again (sent with the next commit or
    /// poll).
    ///
    /// # Errors
    /// [`Error::NotHeld`] if this consumer does not hold it.
    pub fn release(&mut self, record: &ShareRecord) -> Result<()> {
        self.acknowledge(record, AckKind::Release)
    }

    /// Sends `record` to the dead-letter topic (with the next commit or poll).
    ///
    /// # Errors
    /// [`Error::NotHeld`] if this consumer does not hold it.
    pub fn reject(&mut self, record: &ShareRecord) -> Result<()> {
        self.acknowledge(record, AckKind::Reject)
    }

    /// Records `kind` for `record`; see [`ack`](Self::ack).
    ///
    /// # Errors
    /// [`Error::NotHeld`] if this consumer does not hold it.
    pub fn acknowledge(&mut self, record: &ShareRecord, kind: AckKind) -> Result<()> {
        let removed = *record.topic == *self.topic
            && self
                .held
                .get_mut(&record.partition)
                .is_some_and(|offsets| offsets.remove(&record.offset));
        if !removed {
            return Err(Error::NotHeld {
                topic: record.topic.to_string(),
                partition: record.partition,
                offset: record.offset,
            });
        }
        self.pending.push((record.partition, record.offset, kind));
        Ok(())
    }

    /// Sends the pending acknowledgements and waits until the broker has
    /// made them durable.
    ///
    /// # Errors
    /// [`Error::Ack`] for the first partition the broker refused (an error
    /// stashed by an earlier poll comes first); [`Error::UnknownTopic`],
    /// [`Error::Broker`]; connection errors (the acknowledgements are then
    /// not resent).
    pub async fn commit(&mut self) -> Result<()> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let Some(request) = self.take_ack_request() else {
            return Ok(());
        };
        let conn = self.connector.get().await?;
        let sent = send(&conn, &request).await?;
        let timeout = self.connector.config().request_timeout;
        let response: ShareAckResponse = self.receive(sent, timeout).await?;
        match self.ack_error(&response) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends the pending acknowledgements, then acquires records, waiting up
    /// to about `timeout` for some (a long poll). An empty vector means none
    /// were available in time.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::Partition`] for a partition the
    /// broker could not read; [`Error::Ack`] stashed from the previous poll;
    /// [`Error::Broker`] (`INVALID_GROUP_ID`, ...); connection errors.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ShareRecord>> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let conn = self.connector.get().await?;
        let ack = match self.take_ack_request() {
            Some(request) => Some(send(&conn, &request).await?),
            None => None,
        };
        let fetch = ShareFetchRequest {
            group: self.group.clone(),
            member_id: self.member_id.clone(),
            topic: self.topic.to_string(),
            max_records: self.config.max_records,
            max_wait_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            partitions: Vec::new(),
        };
        let fetch = send(&conn, &fetch).await?;
        let request_timeout = self.connector.config().request_timeout;
        if let Some(ack) = ack {
            let response: ShareAckResponse = self.receive(ack, request_timeout).await?;
            self.stashed = self.ack_error(&response);
        }
        let response: ShareFetchResponse = self.receive(fetch, request_timeout + timeout).await?;
        let mut records = Vec::new();
        let mut first_error = None;
        for p in response.partitions {
            if p.error_code != ErrorCode::NONE {
                first_error.get_or_insert_with(|| {
                    Error::from_partition_code(&self.topic, p.partition, p.error_code)
                });
                continue;
            }
            let before = records.len();
            if let Some(e) = decode_acquired(
                &self.topic,
                p.partition,
                p.records,
                &p.acquired,
                &mut records,
            ) {
                // The acquired records of the bad batch are not delivered;
                // their locks expire and the broker tries again.
                first_error.get_or_insert(e);
            }
            let held = self.held.entry(p.partition).or_default();
            held.extend(records.iter().skip(before).map(|r| r.offset));
        }
        match first_error {
            Some(e) if records.is_empty() => Err(e),
            Some(e) => {
                self.stashed.get_or_insert(e);
                Ok(records)
            }
            None => Ok(records),
        }
    }

    /// Releases every record still held, sends what is pending, and closes
    /// the connection.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub async fn close(mut self) -> Result<()> {
        let held = std::mem::take(&mut self.held);
        for (partition, offsets) in held {
            self.pending.extend(
                offsets
                    .into_iter()
                    .map(|o| (partition, o, AckKind::Release)),
            );
        }
        self.commit().await
    }

    /// The pending acknowledgements as one request of coalesced ranges.
    fn take_ack_request(&mut self) -> Option<ShareAckRequest> {
        if self.pending.is_empty() {
            return None;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        let mut partitions: Vec<ShareAckPartition> = Vec::new();
        for (partition, offset, kind) in pending {
            let entry = match partitions.last_mut() {
                Some(p) if p.partition == partition => p,
                _ => {
                    partitions.push(ShareAckPartition {
                        partition,
                        batches: Vec::new(),
                    });
                    match partitions.last_mut() {
                        Some(p) => p,
                        None => continue,
                    }
                }
            };
            match entry.batches.last_mut() {
                Some(b) if b.kind == kind && b.last_offset + 1 == offset => b.last_offset = offset,
                _ => entry.batches.push(AckBatch {
                    first_offset: offset,
                    last_offset: offset,
                    kind,
                }),
            }
        }
        Some(ShareAckRequest {
            group: self.group.clone(),
            member_id: self.member_id.clone(),
            topic: self.topic.to_string(),
            partitions,
        })
    }

    /// The first partition error of an ack response.
    fn ack_error(&self, response: &ShareAckResponse) -> Option<Error> {
        response
            .partitions
            .iter()
            .find(|(_, code)| *code != ErrorCode::NONE)
            .map(|(partition, code)| Error::Ack {
                topic: self.topic.to_string(),
                partition: *partition,
                code: *code,
            })
    }

    /// Waits for and decodes the response to `sent`, mapping a header
    /// `UNKNOWN_TOPIC` to [`Error::UnknownTopic`].
    async fn receive<T: api::Body>(&self, sent: Sent, timeout: Duration) -> Result<T> {
        let frame =
            sent.conn
                .wait(sent.rx, timeout)
                .await?
                .ok_or_else(|| Error::ConnectionLost {
                    addr: sent.conn.addr(),
                    reason: "no response frame".into(),
                })?;
        decode_response(frame).map_err(|e| match e {
            Error::Broker {
                code: ErrorCode::UNKNOWN_TOPIC,
                ..
            } => Error::UnknownTopic(self.topic.to_string()),
            other => other,
        })
    }
}

/// Appends to `out` the records of `data` (whole batches, as a ShareFetch
/// partition carries them) whose offsets lie in an `acquired` range, with that
/// range's delivery count. Batches holding no acquired record are skipped
/// unchecked; the others are CRC-checked and only their acquired span is
/// decoded ([`RecordBatch::records_in`]). Returns the error of the first
/// batch that is cut short, fails its CRC or does not decode (decoding stops
/// there).
fn decode_acquired(
    topic: &Arc<str>,
    partition: u32,
    mut data: Bytes,
    acquired: &[AcquiredRecords],
    out: &mut Vec<ShareRecord>,
) -> Option<Error> {
    let corrupt = |offset: u64, source: warren_protocol::Error| Error::Corrupt {
        topic: topic.to_string(),
        partition,
        offset,
        source: Arc::new(source),
    };
    let first_acquired = acquired.first().map_or(0, |a| a.first_offset);
    while !data.is_empty() {
        let len = match peek_batch_len(&data) {
            Ok(Some(len)) if len <= data.len() => len,
            Ok(_) => {
                let e = warren_protocol::Error::Truncated {
                    what: "record batch",
                    needed: warren_protocol::record_batch::LOG_OVERHEAD,
                    available: data.len(),
                };
                return Some(corrupt(first_acquired, e));
            }
            Err(e) => return Some(corrupt(first_acquired, e)),
        };
        let batch = match RecordBatch::new(data.split_to(len)) {
            Ok(b) => b,
            Err(e) => return Some(corrupt(first_acquired, e)),
        };
        let header = *batch.header();
        let (base, last) = (
            u64::try_from(header.base_offset).unwrap_or(0),
            u64::try_from(header.last_offset()).unwrap_or(0),
        );
        let mut overlapping = acquired
            .iter()
            .filter(|a| a.last_offset >= base && a.first_offset <= last);
        let Some(lo) = overlapping.next() else {
            continue;
        };
        let hi = overlapping.next_back().unwrap_or(lo);
        if header.is_control() {
            continue;
        }
        if let Err(e) = batch.verify_crc() {
            return Some(corrupt(base, e));
        }
        let span = (
            i64::try_from(lo.first_offset.max(base)).unwrap_or(i64::MAX),
            i64::try_from(hi.last_offset.min(last)).unwrap_or(i64::MAX),
        );
        let records = match batch.records_in(span.0, span.1) {
            Ok(r) => r,
            Err(e) => return Some(corrupt(base, e)),
        };
        let mut ranges = acquired.iter().peekable();
        out.reserve(records.len());
        for r in records {
            let Ok(offset) = u64::try_from(r.offset) else {
                continue;
            };
            while ranges.next_if(|a| a.last_offset < offset).is_some() {}
            let Some(range) = ranges.peek() else {
                break;
            };
            if offset < range.first_offset {
                continue;
            }
            out.push(ShareRecord {
                topic: Arc::clone(topic),
                partition,
                offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
                delivery_count: range.delivery_count,
            });
        }
    }
    None
}

/// Writes `request` on `conn` without waiting for its response (only for an
/// in-flight slot, which the response to an earlier request frees).
async fn send<R: api::Request>(conn: &Arc<Connection>, request: &R) -> Result<Sent> {
    let permit = conn.slot().await?;
    let body = api::encode(request)?;
    let rx = conn.send(permit, R::API_KEY, vec![body], true)?;
    Ok(Sent {
        conn: Arc::clone(conn),
        rx,
    })
}

/// `<pid>-<ms since the epoch, hex>-<counter>`: unique enough within a group.
fn default_member_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{}-{ms:x}-{}",
        std::process::id(),
        NEXT_MEMBER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn default_member_ids_differ() {
        assert_ne!(default_member_id(), default_member_id());
    }

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = warren_protocol::RecordBatchBuilder::new(warren_protocol::Compression::None);
        for i in 0..n {
            b.append(
                1000,
                None,
                Some(format!("v{}", base + i as i64).as_bytes()),
                &[],
            );
        }
        let mut bytes = bytes::BytesMut::from(&b.build().unwrap()[..]);
        warren_protocol::record_batch::set_base_offset(&mut bytes, base).unwrap();
        bytes.freeze()
    }

    fn acquired(first: u64, last: u64, count: u16) -> AcquiredRecords {
        AcquiredRecords {
            first_offset: first,
            last_offset: last,
            delivery_count: count,
        }
    }

    #[test]
    fn only_acquired_records_are_delivered_with_their_range_count() {
        let topic: Arc<str> = Arc::from("t");
        // A batch with no acquired record is skipped without a CRC check.
        let mut skipped = bytes::BytesMut::from(&batch(0, 5)[..]);
        let last = skipped.len() - 1;
        skipped[last] ^= 0xff;
        let mut data = bytes::BytesMut::new();
        data.extend_from_slice(&skipped);
        data.extend_from_slice(&batch(10, 10));
        data.extend_from_slice(&batch(20, 3));
        let ranges = [
            acquired(12, 13, 2),
            acquired(15, 15, 1),
            acquired(21, 21, 3),
        ];
        let mut out = Vec::new();
        let err = decode_acquired(&topic, 4, data.freeze(), &ranges, &mut out);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(u64, u16, Bytes)> = out
            .iter()
            .map(|r| (r.offset, r.delivery_count, r.value.clone().unwrap()))
            .collect();
        let want: Vec<(u64, u16, Bytes)> = [(12, 2), (13, 2), (15, 1), (21, 3)]
            .iter()
            .map(|(o, c)| (*o, *c, Bytes::from(format!("v{o}"))))
            .collect();
        assert_eq!(got, want);
        assert!(out.iter().all(|r| r.partition == 4));
        // A corrupt batch holding acquired records is an error at its offset.
        let mut out = Vec::new();
        let err = decode_acquired(&topic, 4, skipped.freeze(), &[acquired(1, 1, 1)], &mut out);
        assert!(
            matches!(err, Some(Error::Corrupt { offset: 0, .. })),
            "{err:?}"
        );
        assert!(out.is_empty());
    }

    fn record(partition: u32, offset: u64) -> ShareRecord {
        ShareRecord {
            topic: Arc::from("t"),
            partition,
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers: Vec::new(),
            delivery_count: 1,
        }
    }

    #[test]
    fn acknowledgements_coalesce_into_ranges_and_need_a_held_record() {
        let config = ShareConsumerConfig::default();
        let mut c = ShareConsumer {
            connector: Connector::new(config.connection.clone(), SHARE_APIS),
            config,
            group: "g".into(),
            topic: Arc::from("t"),
            member_id: "m".into(),
            held: BTreeMap::new(),
            pending: Vec::new(),
            stashed: None,
        };
        for (p, o) in [(0, 1), (0, 2), (0, 3), (0, 4), (0, 7), (1, 5)] {
            c.held.entry(p).or_default().insert(o);
        }
        c.ack(&record(0, 3)).unwrap();
        c.ack(&record(0, 1)).unwrap();
        c.ack(&record(0, 2)).unwrap();
        c.release(&record(0, 4)).unwrap();
        c.reject(&record(1, 5)).unwrap();
        assert!(matches!(
            c.ack(&record(0, 3)),
            Err(Error::NotHeld { offset: 3, .. })
        ));
        assert!(matches!(c.ack(&record(0, 9)), Err(Error::NotHeld { .. })));
        assert_eq!((c.held(), c.pending()), (1, 5));
        let req = c.take_ack_request().unwrap();
        type Ranges = Vec<(u64, u64, AckKind)>;
        let got: Vec<(u32, Ranges)> = req
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition,
                    p.batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.kind))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, vec![(1, 3, AckKind::Accept), (4, 4, AckKind::Release)]),
                (1, vec![(5, 5, AckKind::Reject)]),
            ]
        );
        assert_eq!(req.member_id, "m");
        assert!(c.take_ack_request().is_none());
        assert_eq!(got[0].1.len(), 2);
    }
}
