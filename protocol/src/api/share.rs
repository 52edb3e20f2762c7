//! Share groups (queue semantics): ShareFetch (key 16) and ShareAck (key 17).
//!
//! Several consumers of one share group read the same partitions; the broker
//! hands each record to one of them at a time, under an acquisition lock that
//! lasts the topic's `share.lock.timeout.ms`. The consumer then acknowledges
//! each record: accept (done), release (deliver again now) or reject (straight
//! to the topic's dead-letter topic). A lock that expires releases the record.
//! Every delivery counts; a record released or expired after its
//! `max.delivery.attempts`-th delivery goes to the dead-letter topic.
//!
//! ```text
//! ShareFetch request  = group: string | member_id: string | topic: string |
//!                       max_records: u32 | max_wait_ms: u32 | partitions: array<u32>
//! ShareFetch response = acquisition_lock_timeout_ms: u32 |
//!                       partitions: array< partition: u32 | error_code: u16 |
//!                           acquired: array< first_offset: u64 | last_offset: u64 |
//!                                            delivery_count: u16 > |
//!                           records_len: u32 | records: records_len bytes >
//! ShareAck request    = group: string | member_id: string | topic: string |
//!                       partitions: array< partition: u32 |
//!                           batches: array< first_offset: u64 | last_offset: u64 | kind: u8 > >
//! ShareAck response   = partitions: array< partition: u32 | error_code: u16 >
//! ```
//!
//! - `member_id` is chosen by the client (any non-empty string of at most
//!   [`MAX_MEMBER_ID_LEN`] bytes, unique within the group); locks belong to it.
//! - ShareFetch acquires up to `max_records` records over the requested
//!   partitions (an empty `partitions` array means all of the topic's) and
//!   returns, per partition, the whole RecordBatches holding them, exactly as
//!   stored, plus the `acquired` ranges: a client delivers only the records
//!   whose offsets fall inside an `acquired` range, with that range's
//!   `delivery_count` (1 on the first delivery). Partitions where nothing was
//!   acquired and nothing failed are left out. Like Fetch it is a long poll:
//!   with nothing to acquire the broker waits up to `max_wait_ms` for records
//!   to arrive or be released.
//! - ShareAck `kind`: 1 accept, 2 release, 3 reject ([`AckKind`]); any other
//!   value makes the body malformed. Each offset is checked on its own: those
//!   acquired by this member change state, the others are left alone and make
//!   the partition's `error_code` `INVALID_RECORD_STATE`. The response comes
//!   once the new state is durable (and rejected records are in the
//!   dead-letter topic, when one is set and writable).
//! - `records` goes out by `sendfile(2)` on plaintext TCP: every fixed field
//!   of a partition comes before its record bytes.

use bytes::{BufMut, Bytes, BytesMut};

use super::{ApiKey, Body, Request};
use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array, put_array_len, put_string};

/// Longest member id, in bytes.
pub const MAX_MEMBER_ID_LEN: usize = 255;

/// Bytes of one `acquired` entry.
pub const ACQUIRED_BYTES: usize = 8 + 8 + 2;

/// Bytes of one ShareAck batch.
pub const ACK_BATCH_BYTES: usize = 8 + 8 + 1;

/// ShareFetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareFetchRequest {
    pub group: String,
    pub member_id: String,
    pub topic: String,
    /// Most records to acquire over all partitions; at least 1.
    pub max_records: u32,
    /// Longest wait when nothing can be acquired.
    pub max_wait_ms: u32,
    /// The partitions to acquire from; empty = every partition of the topic.
    pub partitions: Vec<u32>,
}

impl Request for ShareFetchRequest {
    const API_KEY: ApiKey = ApiKey::ShareFetch;
    type Response = ShareFetchResponse;
}

impl Body for ShareFetchRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        put_string(dst, &self.topic);
        dst.put_u32(self.max_records);
        dst.put_u32(self.max_wait_ms);
        put_array(dst, &self.partitions, |dst, p| {
            dst.put_u32(*p);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ShareFetchRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            topic: r.string("topic")?,
            max_records: r.u32("max_records")?,
            max_wait_ms: r.u32("max_wait_ms")?,
            partitions: r.array("partitions", 4, |r| r.u32("partition"))?,
        })
    }
}

/// Offsets `first_offset..=last_offset` acquired for the member, each
/// delivered `delivery_count` times so far (this delivery included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcquiredRecords {
    pub first_offset: u64,
    pub last_offset: u64,
    pub delivery_count: u16,
}

/// ShareFetch response (the decoded form clients see).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareFetchResponse {
    /// How long the acquired records stay locked for this member.
    pub acquisition_lock_timeout_ms: u32,
    pub partitions: Vec<ShareFetchPartition>,
}

/// One partition's acquired records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareFetchPartition {
    pub partition: u32,
    pub error_code: ErrorCode,
    /// Ascending, non-overlapping.
    pub acquired: Vec<AcquiredRecords>,
    /// Whole batches back to back (a slice of the response frame).
    pub records: Bytes,
}

/// Writes a partition's fields before its records; `records_len` bytes of
/// records must follow.
pub fn put_share_partition_head(
    dst: &mut BytesMut,
    partition: u32,
    error_code: ErrorCode,
    acquired: &[AcquiredRecords],
    records_len: u32,
) {
    dst.put_u32(partition);
    dst.put_u16(error_code.0);
    put_array_len(dst, acquired.len());
    for a in acquired {
        dst.put_u64(a.first_offset);
        dst.put_u64(a.last_offset);
        dst.put_u16(a.delivery_count);
    }
    dst.put_u32(records_len);
}

impl Body for ShareFetchResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        dst.put_u32(self.acquisition_lock_timeout_ms);
        put_array(dst, &self.partitions, |dst, p| {
            let len = u32::try_from(p.records.len()).map_err(|_| Error::BatchTooLarge {
                bytes: p.records.len(),
            })?;
            put_share_partition_head(dst, p.partition, p.error_code, &p.acquired, len);
            dst.put_slice(&p.records);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ShareFetchResponse {
            acquisition_lock_timeout_ms: r.u32("acquisition_lock_timeout_ms")?,
            partitions: r.array("partitions", 4 + 2 + 4 + 4, |r| {
                Ok(ShareFetchPartition {
                    partition: r.u32("partition")?,
                    error_code: ErrorCode(r.u16("error_code")?),
                    acquired: r.array("acquired", ACQUIRED_BYTES, |r| {
                        Ok(AcquiredRecords {
                            first_offset: r.u64("first_offset")?,
                            last_offset: r.u64("last_offset")?,
                            delivery_count: r.u16("delivery_count")?,
                        })
                    })?,
                    records: r.bytes("records")?,
                })
            })?,
        })
    }
}

/// What a consumer did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AckKind {
    /// Processed: never deliver it again.
    Accept = 1,
    /// Not processed: deliver it again now (to any member).
    Release = 2,
    /// Unprocessable: send it to the dead-letter topic, never deliver it again.
    Reject = 3,
}

impl TryFrom<u8> for AckKind {
    type Error = Error;

    fn try_from(v: u8) -> Result<AckKind> {
        match v {
            1 => Ok(AckKind::Accept),
            2 => Ok(AckKind::Release),
            3 => Ok(AckKind::Reject),
            other => Err(Error::InvalidField {
                field: "kind",
                value: i64::from(other),
            }),
        }
    }
}

/// Offsets `first_offset..=last_offset`, all acknowledged with `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBatch {
    pub first_offset: u64,
    pub last_offset: u64,
    pub kind: AckKind,
}

/// One partition's acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareAckPartition {
    pub partition: u32,
    pub batches: Vec<AckBatch>,
}

/// ShareAck request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareAckRequest {
    pub group: String,
    pub member_id: String,
    pub topic: String,
    pub partitions: Vec<ShareAckPartition>,
}

impl Request for ShareAckRequest {
    const API_KEY: ApiKey = ApiKey::ShareAck;
    type Response = ShareAckResponse;
}

impl Body for ShareAckRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_string(dst, &self.group);
        put_string(dst, &self.member_id);
        put_string(dst, &self.topic);
        put_array(dst, &self.partitions, |dst, p| {
            dst.put_u32(p.partition);
            put_array(dst, &p.batches, |dst, b| {
                dst.put_u64(b.first_offset);
                dst.put_u64(b.last_offset);
                dst.put_u8(b.kind as u8);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ShareAckRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            topic: r.string("topic")?,
            partitions: r.array("partitions", 8, |r| {
                Ok(ShareAckPartition {
                    partition: r.u32("partition")?,
                    batches: r.array("batches", ACK_BATCH_BYTES, |r| {
                        Ok(AckBatch {
                            first_offset: r.u64("first_offset")?,
                            last_offset: r.u64("last_offset")?,
                            kind: AckKind::try_from(r.u8("kind")?)?,
                        })
                    })?,
                })
            })?,
        })
    }
}

/// ShareAck response: one error code per request partition, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareAckResponse {
    pub partitions: Vec<(u32, ErrorCode)>,
}

impl Body for ShareAckResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.partitions, |dst, (p, code)| {
            dst.put_u32(*p);
            dst.put_u16(code.0);
            Ok(())
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ShareAckResponse {
            partitions: r.array("partitions", 6, |r| {
                Ok((r.u32("partition")?, ErrorCode(r.u16("error_code")?)))
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::api::tests::round_trip;
    use crate::api::{decode, encode};

    #[test]
    fn round_trips() {
        round_trip(&ShareFetchRequest {
            group: "billing".into(),
            member_id: "host-a-1".into(),
            topic: "orders".into(),
            max_records: 500,
            max_wait_ms: 1000,
            partitions: vec![0, 2],
        });
        round_trip(&ShareFetchResponse {
            acquisition_lock_timeout_ms: 30_000,
            partitions: vec![
                ShareFetchPartition {
                    partition: 0,
                    error_code: ErrorCode::NONE,
                    acquired: vec![
                        AcquiredRecords {
                            first_offset: 3,
                            last_offset: 9,
                            delivery_count: 1,
                        },
                        AcquiredRecords {
                            first_offset: 12,
                            last_offset: 12,
                            delivery_count: 4,
                        },
                    ],
                    records: Bytes::from_static(b"batches"),
                },
                ShareFetchPartition {
                    partition: 7,
                    error_code: ErrorCode::UNKNOWN_PARTITION,
                    acquired: Vec::new(),
                    records: Bytes::new(),
                },
            ],
        });
        round_trip(&ShareAckRequest {
            group: "billing".into(),
            member_id: "host-a-1".into(),
            topic: "orders".into(),
            partitions: vec![ShareAckPartition {
                partition: 0,
                batches: vec![
                    AckBatch {
                        first_offset: 3,
                        last_offset: 8,
                        kind: AckKind::Accept,
                    },
                    AckBatch {
                        first_offset: 9,
                        last_offset: 9,
                        kind: AckKind::Reject,
                    },
                ],
            }],
        });
        round_trip(&ShareAckResponse {
            partitions: vec![(0, ErrorCode::NONE), (1, ErrorCode::INVALID_RECORD_STATE)],
        });
    }

    #[test]
    fn an_unknown_ack_kind_is_malformed() {
        let mut bytes = BytesMut::from(
            &encode(&ShareAckRequest {
                group: "g".into(),
                member_id: "m".into(),
                topic: "t".into(),
                partitions: vec![ShareAckPartition {
                    partition: 0,
                    batches: vec![AckBatch {
                        first_offset: 0,
                        last_offset: 0,
                        kind: AckKind::Release,
                    }],
                }],
            })
            .unwrap()[..],
        );
        let last = bytes.len() - 1;
        for bad in [0u8, 4, 0xff] {
            bytes[last] = bad;
            assert!(matches!(
                decode::<ShareAckRequest>(bytes.clone().freeze()),
                Err(Error::InvalidField { field: "kind", .. })
            ));
        }
    }
}
