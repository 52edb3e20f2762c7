//! RecordBatch codec: hand-built spec bytes, round trips, CRC coverage, hostile input.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use warren_protocol::record_batch::{self, BATCH_HEADER_LEN, CRC_START};
use warren_protocol::{BatchHeader, Compression, Error, Header, RecordBatch, RecordBatchBuilder};

/// A batch written byte by byte from the layout in Kafka's documentation
/// ("Record Batch" and "Record" in the protocol guide), not by our encoder.
fn kafka_doc_batch() -> Vec<u8> {
    // Record 0: key "k0", value "hello", one header ("trace" -> "x").
    let rec0: Vec<u8> = vec![
        0x00, // attributes
        0x00, // timestampDelta varlong 0
        0x00, // offsetDelta varint 0
        0x04, b'k', b'0', // keyLength 2 (zig-zag 4)
        0x0a, b'h', b'e', b'l', b'l', b'o', // valueLength 5 (zig-zag 10)
        0x02, // headers count 1
        0x0a, b't', b'r', b'a', b'c', b'e', // header key length 5
        0x02, b'x', // header value length 1
    ];
    // Record 1: null key, value "w", timestamp +100 ms, no headers.
    let rec1: Vec<u8> = vec![
        0x00, // attributes
        0xc8, 0x01, // timestampDelta 100 (zig-zag 200 = 0xc8 0x01)
        0x02, // offsetDelta 1
        0x01, // keyLength -1: null
        0x02, b'w', // valueLength 1
        0x00, // no headers
    ];
    let mut records = Vec::new();
    records.push((rec0.len() as u8) << 1); // length varint (small, positive)
    records.extend_from_slice(&rec0);
    records.push((rec1.len() as u8) << 1);
    records.extend_from_slice(&rec1);

    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression
    after_crc.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
    after_crc.extend_from_slice(&1_600_000_000_000i64.to_be_bytes()); // baseTimestamp
    after_crc.extend_from_slice(&1_600_000_000_100i64.to_be_bytes()); // maxTimestamp
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    after_crc.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    after_crc.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    after_crc.extend_from_slice(&2i32.to_be_bytes()); // records count
    after_crc.extend_from_slice(&records);

    let mut batch = Vec::new();
    batch.extend_from_slice(&42i64.to_be_bytes()); // baseOffset
    let batch_length = 4 + 1 + 4 + after_crc.len();
    batch.extend_from_slice(&(batch_length as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c::crc32c(&after_crc).to_be_bytes());
    batch.extend_from_slice(&after_crc);
    batch
}

#[test]
fn decodes_a_batch_built_from_the_kafka_spec() {
    let batch = RecordBatch::new(Bytes::from(kafka_doc_batch())).unwrap();
    batch.verify_crc().unwrap();
    let h = batch.header();
    assert_eq!(h.base_offset, 42);
    assert_eq!(h.last_offset(), 43);
    assert_eq!(h.records_count, 2);
    assert_eq!(h.compression().unwrap(), Compression::None);
    let records = batch.records().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].offset, 42);
    assert_eq!(records[0].timestamp, 1_600_000_000_000);
    assert_eq!(records[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"hello"[..]));
    assert_eq!(records[0].headers, vec![Header::new("trace", "x")]);
    assert_eq!(records[1].offset, 43);
    assert_eq!(records[1].timestamp, 1_600_000_000_100);
    assert_eq!(records[1].key, None);
    assert_eq!(records[1].value.as_deref(), Some(&b"w"[..]));
}

#[test]
fn our_encoder_writes_the_spec_bytes() {
    // Same records through the builder: identical bytes once base offset and
    // leader epoch (which the CRC does not cover) are aligned.
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.append(
        1_600_000_000_000,
        Some(b"k0"),
        Some(b"hello"),
        &[Header::new("trace", "x")],
    );
    b.append(1_600_000_000_100, None, Some(b"w"), &[]);
    let mut ours = b.build().unwrap().to_vec();
    record_batch::set_base_offset(&mut ours, 42).unwrap();
    ours[12..16].copy_from_slice(&0i32.to_be_bytes());
    assert_eq!(ours, kafka_doc_batch());
}

#[test]
fn each_malformation_has_its_own_error() {
    let good = kafka_doc_batch();

    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    assert!(matches!(
        BatchHeader::parse(&bad_magic),
        Err(Error::BadMagic(1))
    ));

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x01;
    let batch = RecordBatch::new(Bytes::from(bad_crc)).unwrap();
    assert!(matches!(
        batch.verify_crc(),
        Err(Error::ChecksumMismatch { .. })
    ));

    let mut codec = good.clone();
    codec[22] = 1; // gzip
    assert!(matches!(
        BatchHeader::parse(&codec),
        Err(Error::UnknownCodec(1))
    ));

    let mut negative_count = good.clone();
    negative_count[57..61].copy_from_slice(&(-3i32).to_be_bytes());
    assert!(matches!(
        BatchHeader::parse(&negative_count),
        Err(Error::InvalidField {
            field: "records_count",
            ..
        })
    ));

    let mut short_length = good.clone();
    short_length[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        BatchHeader::parse(&short_length),
        Err(Error::InvalidField {
            field: "batch_length",
            ..
        })
    ));

    assert!(matches!(
        RecordBatch::new(Bytes::copy_from_slice(&good[..good.len() - 3])),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        BatchHeader::parse(&good[..30]),
        Err(Error::Truncated { .. })
    ));

    // A key length pointing past the end of the records block.
    let mut long_key = good.clone();
    long_key[BATCH_HEADER_LEN + 4] = 0x7e; // key length 63
    let batch = RecordBatch::new(Bytes::from(long_key)).unwrap();
    assert!(matches!(
        batch.records(),
        Err(Error::LengthOutOfBounds { .. })
    ));

    // Count says 5, only 2 present.
    let mut count = good.clone();
    count[57..61].copy_from_slice(&5i32.to_be_bytes());
    let batch = RecordBatch::new(Bytes::from(count)).unwrap();
    assert!(matches!(
        batch.records(),
        Err(Error::RecordCountMismatch {
            expected: 5,
            found: 2
        })
    ));
}

#[test]
fn a_huge_records_count_does_not_allocate() {
    let mut bytes = kafka_doc_batch();
    bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let batch = RecordBatch::new(Bytes::from(bytes)).unwrap();
    assert!(matches!(
        batch.records(),
        Err(Error::RecordCountMismatch { .. })
    ));
}

#[test]
fn zstd_bomb_is_refused() {
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..4 {
        b.append(0, None, Some(&zeros), &[]);
    }
    let batch = RecordBatch::new(b.build().unwrap()).unwrap();
    assert!(batch.as_bytes().len() < 4096, "zeros compress well");
    assert!(matches!(
        batch.records_with_limit(1 << 20),
        Err(Error::DecompressedTooLarge { .. })
    ));
    assert_eq!(batch.records().unwrap().len(), 4);
}

#[derive(Debug, Clone)]
struct TestRecord {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn arb_record() -> impl Strategy<Value = TestRecord> {
    (
        1_500_000_000_000i64..1_900_000_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                "[a-z\u{e9}]{0,8}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            ),
            0..4,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| TestRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

fn build(records: &[TestRecord], compression: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression);
    for r in records {
        let headers: Vec<Header> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k.clone(),
                value: v.clone().map(Bytes::from),
            })
            .collect();
        b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    b.build().unwrap()
}

proptest! {
    #[test]
    fn encode_decode_round_trips(
        records in proptest::collection::vec(arb_record(), 1..20),
        zstd in any::<bool>(),
        base_offset in 0i64..1 << 40,
    ) {
        let compression = if zstd { Compression::Zstd } else { Compression::None };
        let mut bytes = BytesMut::from(&build(&records, compression)[..]);
        record_batch::set_base_offset(&mut bytes, base_offset).unwrap();
        let batch = RecordBatch::new(bytes.freeze()).unwrap();
        batch.verify_crc().unwrap();
        prop_assert_eq!(batch.header().records_count as usize, records.len());
        prop_assert_eq!(batch.header().last_offset(), base_offset + records.len() as i64 - 1);
        let max_ts = records.iter().map(|r| r.timestamp).max().unwrap();
        prop_assert_eq!(batch.header().max_timestamp, max_ts);
        let decoded = batch.records().unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (d, r)) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(d.offset, base_offset + i as i64);
            prop_assert_eq!(d.timestamp, r.timestamp);
            prop_assert_eq!(d.key.as_deref(), r.key.as_deref());
            prop_assert_eq!(d.value.as_deref(), r.value.as_deref());
            prop_assert_eq!(d.headers.len(), r.headers.len());
            for (dh, (k, v)) in d.headers.iter().zip(&r.headers) {
                prop_assert_eq!(&dh.key, k);
                prop_assert_eq!(dh.value.as_deref(), v.as_deref());
            }
        }
    }

    /// `records_in` returns exactly the records `records` returns inside the
    /// range, for any range, compressed or not.
    #[test]
    fn records_in_a_range_are_the_full_decode_filtered(
        records in proptest::collection::vec(arb_record(), 1..20),
        zstd in any::<bool>(),
        first in -2i64..25,
        len in 0i64..25,
    ) {
        let compression = if zstd { Compression::Zstd } else { Compression::None };
        let mut bytes = BytesMut::from(&build(&records, compression)[..]);
        record_batch::set_base_offset(&mut bytes, 100).unwrap();
        let batch = RecordBatch::new(bytes.freeze()).unwrap();
        let (first, last) = (100 + first, 100 + first + len);
        let all: Vec<_> = batch
            .records()
            .unwrap()
            .into_iter()
            .filter(|r| (first..=last).contains(&r.offset))
            .collect();
        prop_assert_eq!(batch.records_in(first, last).unwrap(), all);
    }

    #[test]
    fn any_flipped_byte_after_the_crc_field_is_caught(
        records in proptest::collection::vec(arb_record(), 1..8),
        zstd in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let compression = if zstd { Compression::Zstd } else { Compression::None };
        let mut bytes = build(&records, compression).to_vec();
        let at = CRC_START + pick.index(bytes.len() - CRC_START);
        bytes[at] ^= flip;
        // A flip may also break the header; either way it must not pass as valid.
        if let Ok(batch) = RecordBatch::new(Bytes::from(bytes)) {
            let caught = matches!(batch.verify_crc(), Err(Error::ChecksumMismatch { .. }));
            prop_assert!(caught, "flip at {} not caught", at);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = record_batch::peek_batch_len(&bytes);
        let _ = BatchHeader::parse(&bytes);
        if let Ok(batch) = RecordBatch::new(Bytes::from(bytes)) {
            let _ = batch.verify_crc();
            let _ = batch.records();
            let _ = batch.records_in(1, 3);
        }
    }

    #[test]
    fn arbitrary_records_block_never_panics(
        block in proptest::collection::vec(any::<u8>(), 0..256),
        count in any::<i32>(),
        zstd in any::<bool>(),
    ) {
        // A valid header around a hostile records block (with a correct CRC, so
        // decoding gets past the checksum and into the record parser).
        let mut buf = BytesMut::new();
        buf.put_i64(0);
        buf.put_i32((BATCH_HEADER_LEN - 12 + block.len()) as i32);
        buf.put_i32(0);
        buf.put_i8(2);
        buf.put_u32(0);
        buf.put_i16(if zstd { 4 } else { 0 });
        buf.put_i32(count.max(0));
        buf.put_i64(0);
        buf.put_i64(0);
        buf.put_i64(-1);
        buf.put_i16(-1);
        buf.put_i32(-1);
        buf.put_i32(count);
        buf.put_slice(&block);
        let crc = record_batch::compute_crc(&buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        if let Ok(batch) = RecordBatch::new(buf.freeze()) {
            batch.verify_crc().unwrap();
            let _ = batch.records();
            let _ = batch.records_in(0, 2);
        }
    }
}

#[test]
fn an_unbounded_decompression_limit_does_not_overflow() {
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    b.append(0, None, Some(b"v"), &[]);
    let batch = RecordBatch::new(b.build().unwrap()).unwrap();
    assert_eq!(batch.records_with_limit(usize::MAX).unwrap().len(), 1);
}
