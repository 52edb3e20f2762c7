//! Produce-time batch validation (`record_batch::validate`): what builders
//! make passes, forged and damaged batches are refused with the reason, and
//! nothing a producer sends makes it panic.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::ops::ControlFlow;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use warren_protocol::record_batch::{
    self, BATCH_HEADER_LEN, CRC_OFFSET, CRC_START, ValidationLimits, validate,
};
use warren_protocol::record_stream::ClipLimits;
use warren_protocol::varint::put_varint;
use warren_protocol::{Compression, Error, Header, RecordBatch, RecordBatchBuilder};

const NOW: i64 = 1_700_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn limits() -> ValidationLimits {
    ValidationLimits {
        max_batch_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
        now_ms: NOW,
        max_timestamp_ahead_ms: HOUR_MS,
    }
}

fn built(compression: Compression, values: &[&[u8]], timestamp: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression);
    for v in values {
        b.append(timestamp, Some(b"k"), Some(v), &[Header::new("h", "v")]);
    }
    b.build().unwrap()
}

/// Rewrites the CRC so that only the intended damage is seen.
fn fix_crc(batch: &mut [u8]) {
    let crc = record_batch::compute_crc(batch);
    batch[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

/// The 61-byte batch from the issue: records_count 0x7fffffff,
/// last_offset_delta 0x7ffffffe, no record bytes, a correct CRC.
fn forged_empty_batch() -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((BATCH_HEADER_LEN - 12) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(0x7fff_fffe);
    b.put_i64(NOW);
    b.put_i64(NOW);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(0x7fff_ffff);
    let mut v = b.to_vec();
    fix_crc(&mut v);
    v
}

/// A batch whose header is set by hand around `records` (uncompressed).
fn with_records(records: &[u8], count: i32, max_timestamp: i64) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((BATCH_HEADER_LEN - 12 + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(count - 1);
    b.put_i64(NOW);
    b.put_i64(max_timestamp);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.put_slice(records);
    let mut v = b.to_vec();
    fix_crc(&mut v);
    v
}

/// One encoded record with the given deltas and value (no key, no headers).
fn record(offset_delta: i32, timestamp_delta: i64, value: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i8(0);
    warren_protocol::varint::put_varlong(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, -1);
    put_varint(&mut body, value.len() as i32);
    body.put_slice(value);
    put_varint(&mut body, 0);
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

#[test]
fn builder_batches_validate_for_both_codecs() {
    for c in [Compression::None, Compression::Zstd] {
        let b = built(c, &[b"a", b"bb", b""], NOW);
        let v = validate(&b, &limits()).unwrap();
        assert_eq!(v.header().records_count, 3);
        assert_eq!(v.as_bytes().len(), b.len());
    }
}

#[test]
fn forged_count_without_records_is_refused() {
    let b = forged_empty_batch();
    assert_eq!(b.len(), 61);
    let e = validate(&b, &limits()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::RecordCountMismatch {
                expected: 0x7fff_ffff,
                found: 0
            }
        ),
        "{e}"
    );
}

#[test]
fn garbage_record_bytes_with_a_valid_crc_are_refused() {
    let mut b = built(Compression::None, &[b"hello world"], NOW).to_vec();
    for byte in &mut b[BATCH_HEADER_LEN..] {
        *byte = 0xff;
    }
    fix_crc(&mut b);
    assert!(validate(&b, &limits()).is_err());
}

#[test]
fn a_count_one_short_is_refused() {
    let records = [record(0, 0, b"a"), record(1, 0, b"b")].concat();
    // Header says 1 record (last_offset_delta 0) but two are there.
    let b = with_records(&records, 1, NOW);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::RecordCountMismatch {
            expected: 1,
            found: 2
        })
    ));
    // And the other way: says 3, holds 2.
    let b = with_records(&records, 3, NOW);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::RecordCountMismatch {
            expected: 3,
            found: 2
        })
    ));
}

#[test]
fn offset_deltas_must_run_in_order_from_zero() {
    let records = [record(0, 0, b"a"), record(0, 0, b"b")].concat();
    let b = with_records(&records, 2, NOW);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::OffsetDeltaMismatch {
            index: 1,
            offset_delta: 0
        })
    ));
    let records = [record(1, 0, b"a"), record(0, 0, b"b")].concat();
    let b = with_records(&records, 2, NOW);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::OffsetDeltaMismatch { index: 0, .. })
    ));
}

#[test]
fn a_record_longer_or_shorter_than_its_fields_is_refused() {
    let mut r = record(0, 0, b"abc");
    r[0] += 2; // declared length one more than the fields
    r.push(0);
    let b = with_records(&r, 1, NOW);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::RecordLengthMismatch { .. })
    ));
}

#[test]
fn a_timestamp_ten_years_ahead_is_refused_and_one_in_the_past_is_not() {
    let ten_years_ms = 10 * 365 * 24 * HOUR_MS as i64;
    let b = built(Compression::None, &[b"a"], NOW + ten_years_ms);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::TimestampTooFarAhead { .. })
    ));
    let b = built(Compression::None, &[b"a"], NOW - ten_years_ms);
    validate(&b, &limits()).unwrap();
    // Within the skew is fine; the check can be switched off.
    let b = built(Compression::None, &[b"a"], NOW + HOUR_MS as i64);
    validate(&b, &limits()).unwrap();
    let b = built(Compression::None, &[b"a"], NOW + ten_years_ms);
    let unbounded = ValidationLimits {
        max_timestamp_ahead_ms: u64::MAX,
        ..limits()
    };
    validate(&b, &unbounded).unwrap();
}

#[test]
fn a_max_timestamp_that_disagrees_with_the_records_is_refused() {
    let r = record(0, 5, b"a");
    let b = with_records(&r, 1, NOW + 1_000);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::MaxTimestampMismatch {
            declared: _,
            found: _
        })
    ));
    validate(&with_records(&r, 1, NOW + 5), &limits()).unwrap();
}

#[test]
fn control_transactional_and_reserved_bits_are_refused() {
    for bits in [0x10i16, 0x20, 0x08, 0x40, 0x4000] {
        let mut b = built(Compression::None, &[b"a"], NOW).to_vec();
        let attributes = i16::from_be_bytes([b[21], b[22]]) | bits;
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        fix_crc(&mut b);
        assert!(
            matches!(
                validate(&b, &limits()),
                Err(Error::ForbiddenAttributes { .. })
            ),
            "bits {bits:#x}"
        );
    }
}

#[test]
fn a_zstd_block_whose_records_disagree_is_refused() {
    // A zstd block holding one record, under a header that says two.
    let records = record(0, 0, b"a");
    let compressed = zstd::bulk::compress(&records, 3).unwrap();
    let mut b = with_records(&compressed, 2, NOW);
    let attributes: i16 = 4;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    fix_crc(&mut b);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::RecordCountMismatch { .. })
    ));
}

#[test]
fn a_zstd_block_past_the_decompression_limit_is_refused() {
    let big = vec![0u8; 2 << 20];
    let b = built(Compression::Zstd, &[&big], NOW);
    assert!(b.len() < 4096);
    assert!(matches!(
        validate(&b, &limits()),
        Err(Error::DecompressedTooLarge { limit }) if limit == 1 << 20
    ));
}

#[test]
fn size_crc_and_framing_are_checked() {
    let b = built(Compression::None, &[b"hello"], NOW);
    let small = ValidationLimits {
        max_batch_bytes: 64,
        ..limits()
    };
    assert!(matches!(
        validate(&b, &small),
        Err(Error::BatchOverLimit { .. })
    ));
    let mut bad_crc = b.to_vec();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    assert!(matches!(
        validate(&bad_crc, &limits()),
        Err(Error::ChecksumMismatch { .. })
    ));
    let mut longer = b.to_vec();
    longer.push(0);
    assert!(validate(&longer, &limits()).is_err());
    assert!(validate(&b[..b.len() - 1], &limits()).is_err());
}

/// A record to append: timestamp delta from `NOW`, key, value, headers.
type ArbRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<Header>);

fn arb_record() -> impl Strategy<Value = ArbRecord> {
    (
        -1_000_000i64..1_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::collection::vec(("[a-z]{0,5}", "[a-z]{0,5}"), 0..3),
    )
        .prop_map(|(dt, k, v, h)| {
            let headers = h.into_iter().map(|(k, v)| Header::new(k, v)).collect();
            (dt, k, v, headers)
        })
}

fn arb_batch() -> impl Strategy<Value = Bytes> {
    (any::<bool>(), proptest::collection::vec(arb_record(), 1..8)).prop_map(|(zstd, records)| {
        let c = if zstd {
            Compression::Zstd
        } else {
            Compression::None
        };
        let mut b = RecordBatchBuilder::new(c);
        for (dt, k, v, h) in &records {
            b.append(NOW + dt, k.as_deref(), v.as_deref(), h);
        }
        b.build().unwrap()
    })
}

proptest! {
    #[test]
    fn builder_made_batches_always_validate(b in arb_batch()) {
        let v = validate(&b, &limits());
        prop_assert!(v.is_ok(), "{:?}", v.err());
    }

    /// Damage anywhere (then a fixed-up CRC, so the damage is what is
    /// judged): no panic, and whatever passes decodes whole.
    #[test]
    fn mutated_batches_never_panic_and_what_passes_decodes(
        b in arb_batch(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        fix in any::<bool>(),
    ) {
        let mut bytes = b.to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if fix && bytes.len() >= CRC_START {
            fix_crc(&mut bytes);
        }
        if let Ok(v) = validate(&bytes, &limits()) {
            let count = v.header().records_count;
            let batch = RecordBatch::new(Bytes::from(bytes.clone())).unwrap();
            let records = batch.records_with_limit(1 << 20).unwrap();
            prop_assert_eq!(records.len(), count as usize);
            // The streaming reader agrees.
            let mut streamed = 0usize;
            let clip = ClipLimits {
                max_decompressed_bytes: 1 << 20,
                max_field_bytes: 8,
                max_headers: 1,
            };
            batch
                .visit_clipped(&clip, |_| {
                    streamed += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            prop_assert_eq!(streamed, count as usize);
        }
    }
}

/// A zstd batch of two records at `NOW` whose block is `block` (compressed
/// from `record(0,0,"a") ++ record(1,0,"b")` some way).
fn zstd_batch(block: &[u8]) -> Vec<u8> {
    let mut b = with_records(block, 2, NOW);
    let attributes: i16 = 4;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    fix_crc(&mut b);
    b
}

#[test]
fn zstd_blocks_without_a_declared_size_or_in_two_frames_validate_too() {
    let first = record(0, 0, b"a");
    let second = record(1, 0, b"b");
    let whole = [first.clone(), second.clone()].concat();
    // One frame with its size declared: the reused per-thread buffer, several
    // times in a row and interleaved with other sizes.
    let declared = zstd_batch(&zstd::bulk::compress(&whole, 3).unwrap());
    // A streamed frame declares no size: the allocating path.
    let mut streamed = Vec::new();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
        std::io::Write::write_all(&mut enc, &whole).unwrap();
        enc.finish().unwrap();
    }
    assert!(
        zstd::zstd_safe::get_frame_content_size(&streamed)
            .unwrap()
            .is_none()
    );
    let streamed = zstd_batch(&streamed);
    // Two frames back to back: the first declares only its own size.
    let two_frames = zstd_batch(
        &[
            zstd::bulk::compress(&first, 3).unwrap(),
            zstd::bulk::compress(&second, 3).unwrap(),
        ]
        .concat(),
    );
    let big = built(Compression::Zstd, &[&vec![7u8; 900 << 10]], NOW);
    for _ in 0..3 {
        for b in [&declared, &streamed, &two_frames, &big.to_vec()] {
            let v = validate(b, &limits()).unwrap();
            assert_eq!(
                v.header().records_count,
                if b == &big.to_vec() { 1 } else { 2 }
            );
        }
    }
    // What the reused buffer held before does not leak into the next batch:
    // a short block after a long one still has to hold its own records.
    let short = zstd_batch(&zstd::bulk::compress(&first, 3).unwrap());
    assert!(matches!(
        validate(&short, &limits()),
        Err(Error::RecordCountMismatch { .. })
    ));
}
