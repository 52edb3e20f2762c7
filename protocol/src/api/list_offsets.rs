//! ListOffsets (key 8): the earliest or latest offset of partitions, or the
//! first offset at or after a timestamp.
//!
//! ```text
//! request  = topics: array< topic: string |
//!                partitions: array< partition: u32 | timestamp: i64 > >
//! response = topics: array< topic: string |
//!                partitions: array< partition: u32 | error_code: u16 |
//!                                   offset: i64 | timestamp: i64 > >
//! ```
//! `timestamp` is [`LATEST`] (-1: the high watermark), [`EARLIEST`] (-2: the log
//! start offset) or milliseconds since the epoch: the offset of the first batch
//! whose max timestamp is at or after it, with that timestamp, or offset `-1`
//! when no record is that new. The response's `timestamp` is -1 for LATEST and
//! EARLIEST.

use bytes::{BufMut, BytesMut};

use super::{ApiKey, Body, Request};
use crate::error::Result;
use crate::error_code::ErrorCode;
use crate::wire::{WireReader, put_array, put_string};

/// Ask for the high watermark.
pub const LATEST: i64 = -1;
/// Ask for the log start offset.
pub const EARLIEST: i64 = -2;

/// ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsRequest {
    pub topics: Vec<ListOffsetsTopic>,
}

/// One topic's partitions in a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopic {
    pub topic: String,
    /// `(partition, timestamp)` pairs.
    pub partitions: Vec<(u32, i64)>,
}

impl Request for ListOffsetsRequest {
    const API_KEY: ApiKey = ApiKey::ListOffsets;
    type Response = ListOffsetsResponse;
}

impl Body for ListOffsetsRequest {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, (p, ts)| {
                dst.put_u32(*p);
                dst.put_i64(*ts);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListOffsetsRequest {
            topics: r.array("topics", 6, |r| {
                Ok(ListOffsetsTopic {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 12, |r| {
                        Ok((r.u32("partition")?, r.i64("timestamp")?))
                    })?,
                })
            })?,
        })
    }
}

/// ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsResponse {
    pub topics: Vec<ListOffsetsTopicResponse>,
}

/// One topic's results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopicResponse {
    pub topic: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// One partition's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    pub partition: u32,
    pub error_code: ErrorCode,
    /// The offset, or -1 (no record at or after the timestamp, or an error).
    pub offset: i64,
    pub timestamp: i64,
}

impl Body for ListOffsetsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array(dst, &self.topics, |dst, t| {
            put_string(dst, &t.topic);
            put_array(dst, &t.partitions, |dst, p| {
                dst.put_u32(p.partition);
                dst.put_u16(p.error_code.0);
                dst.put_i64(p.offset);
                dst.put_i64(p.timestamp);
                Ok(())
            })
        })
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        Ok(ListOffsetsResponse {
            topics: r.array("topics", 6, |r| {
                Ok(ListOffsetsTopicResponse {
                    topic: r.string("topic")?,
                    partitions: r.array("partitions", 22, |r| {
                        Ok(ListOffsetsPartitionResponse {
                            partition: r.u32("partition")?,
                            error_code: ErrorCode(r.u16("error_code")?),
                            offset: r.i64("offset")?,
                            timestamp: r.i64("timestamp")?,
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
        round_trip(&ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: "t".into(),
                partitions: vec![(0, LATEST), (1, EARLIEST), (2, 1_700_000_000_000)],
            }],
        });
        round_trip(&ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                topic: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition: 0,
                    error_code: ErrorCode::NONE,
                    offset: 42,
                    timestamp: -1,
                }],
            }],
        });
    }
}
