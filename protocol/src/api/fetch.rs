//! Fetch (key 7): read record batches from partitions, as a long poll.
//!
//! ```text
//! request  = max_wait_ms: u32 | min_bytes: u32 | max_bytes: u32 |
//!            topics: array< topic: string |
//!                partitions: array< partition: u32 | fetch_offset: u64 |
//!                                   partition_max_bytes: u32 > >
//! response = topics: array< topic: string |
//!                partitions: array< partition: u32 | error_code: u16 |
//!                                   high_watermark: u64 | log_start_offset: u64 |
//!                                   records_len: u32 | records: records_len bytes > >
//! ```
//!
//! - The broker answers as soon as at least `min_bytes` of records are
//!   available over all partitions, or when `max_wait_ms` has passed (then with
//!   whatever there is, possibly nothing). `min_bytes = 0` never waits.
//! - `records` are whole RecordBatches back to back, exactly as stored, from the
//!   batch holding `fetch_offset` (so the first batch may start before it: skip
//!   records below `fetch_offset`). At most `partition_max_bytes` per partition
//!   and `max_bytes` in total, except that the first partition with data always
//!   gets at least one whole batch, however large, so a big record never wedges
//!   a consumer.
//! - `high_watermark` is the offset after the last record a consumer may read
//!   (the durable offset under `fsync`, the log end otherwise); fetching at the
//!   high watermark waits for new data. Outside `[log_start_offset,
//!   high_watermark]` the partition's error is `OFFSET_OUT_OF_RANGE`.
//! - On plaintext TCP the broker sends `records` with `sendfile(2)` straight
//!   from the segment files; the fields are laid out so every fixed part can be
//!   written before the record bytes that follow it.

use bytes::{BufMut, Bytes, BytesMut};

use super::{ApiKey, Body, Request};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array, put_array_len, put_string};

/// Bytes of a partition's fixed fields in a fetch response, before `records`.
pub const PARTITION_HEAD_BYTES: usize = 4 + 2 + 8 + 8 + 4;

/// Fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchRequest {
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub topics: Vec<FetchTopic>,
}

/// One topic's partitions in a fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopic {
    pub topic: String,
    pub partitions: Vec<FetchPartition>,
}

/// Where to read one partition from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchPartition {
    pub partition: u32,
    pub fetch_offset: u64,
    pub partition_max_bytes: u32,
}

impl Request for FetchRequest {
    const API_KEY: ApiKey = ApiKey::Fetch;
    type Response = FetchResponse;
}

impl Body for FetchRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        dst.put_u32(self.max_wait_ms);
        dst.put_u32(self.min_bytes);
        dst.put_u32(self.max_bytes);
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_u32(p.partition);
                dst.put_u64(p.fetch_offset);
                dst.put_u32(p.partition_max_bytes);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(FetchRequest {
            max_wait_ms: r.u32("max_wait_ms")?,
            min_bytes: r.u32("min_bytes")?,
            max_bytes: r.u32("max_bytes")?,
            topics: r.array("topics", 6, |r| {
                Ok(FetchTopic {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 16, |r| {
                        Ok(FetchPartition {
                            partition: r.u32("partition")?,
                            fetch_offset: r.u64("fetch_offset")?,
                            partition_max_bytes: r.u32("partition_max_bytes")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

/// Fetch response (the decoded form clients see).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    pub topics: Vec<FetchTopicResponse>,
}

/// One topic's partitions in a fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopicResponse {
    pub topic: String,
    pub partitions: Vec<FetchPartitionResponse>,
}

/// One partition's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    pub partition: u32,
    pub error_code: ErrorCode,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Whole batches back to back (a slice of the response frame).
    pub records: Bytes,
}

/// Writes a partition's fixed fields; `records_len` bytes of records must follow.
pub fn put_partition_head(
    dst: &mut BytesMut,
    partition: u32,
    error_code: ErrorCode,
    high_watermark: u64,
    log_start_offset: u64,
    records_len: u32,
) {
    dst.put_u32(partition);
    dst.put_u16(error_code.0);
    dst.put_u64(high_watermark);
    dst.put_u64(log_start_offset);
    dst.put_u32(records_len);
}

/// Writes a topic's fixed fields; `partitions` partition entries must follow.
pub fn put_topic_head(dst: &mut BytesMut, topic: &str, partitions: usize) {
    put_string(dst, topic);
    put_array_len(dst, partitions);
}

impl Body for FetchResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_topic_head(dst, &t.topic, t.partitions.len());
            t.partitions.iter().try_for_each(|p| {
                let len =
                    u32::try_from(p.records.len()).map_err(|_| crate::Error::BatchTooLarge {
                        bytes: p.records.len(),
                    })?;
                put_partition_head(
                    dst,
                    p.partition,
                    p.error_code,
                    p.high_watermark,
                    p.log_start_offset,
                    len,
                );
                dst.put_slice(&p.records);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(FetchResponse {
            topics: r.array("topics", 6, |r| {
                Ok(FetchTopicResponse {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", PARTITION_HEAD_BYTES, |r| {
                        Ok(FetchPartitionResponse {
                            partition: r.u32("partition")?,
                            error_code: ErrorCode(r.u16("error_code")?),
                            high_watermark: r.u64("high_watermark")?,
                            log_start_offset: r.u64("log_start_offset")?,
                            // `records` is `bytes`-shaped: a u32 length then the bytes.
                            records: r.bytes("records")?,
                        })
                    })?,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::round_trip;

    #[test]
    fn round_trips() {
        round_trip(&FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: "orders".into(),
                partitions: vec![FetchPartition {
                    partition: 2,
                    fetch_offset: 99,
                    partition_max_bytes: 65536,
                }],
            }],
        });
        round_trip(&FetchResponse {
            topics: vec![FetchTopicResponse {
                topic: "orders".into(),
                partitions: vec![
                    FetchPartitionResponse {
                        partition: 2,
                        error_code: ErrorCode::NONE,
                        high_watermark: 120,
                        log_start_offset: 0,
                        records: Bytes::from_static(b"batches"),
                    },
                    FetchPartitionResponse {
                        partition: 3,
                        error_code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        high_watermark: 5,
                        log_start_offset: 0,
                        records: Bytes::new(),
                    },
                ],
            }],
        });
    }
}
