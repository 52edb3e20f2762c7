//! For random offsets, `read` returns the batch containing that offset, across
//! segment rolls and reopenings: "the index should give the same answer as the
//! sorted map" (Kafka's randomLookupTest).
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::collections::BTreeMap;

use common::{batch, open, small_config};
use proptest::prelude::*;
use warren_storage::{Error, Offset, PartitionLog};

/// Model: base offset -> (records, bytes after base_offset).
type Model = BTreeMap<u64, (u64, bytes::Bytes)>;

fn check_random_reads(log: &PartitionLog, model: &Model, targets: &[u64]) {
    let end = log.log_end_offset().0;
    for &t in targets {
        let t = t % end;
        let (base, (_, bytes)) = model.range(..=t).next_back().unwrap();
        let got = log.read_batches(Offset(t), 1).unwrap();
        assert_eq!(got.len(), 1, "offset {t}");
        let h = got[0].header();
        assert_eq!(
            h.base_offset as u64, *base,
            "offset {t} is in the batch at {base}"
        );
        assert!(h.base_offset as u64 <= t && t <= h.last_offset() as u64);
        assert_eq!(got[0].as_bytes().slice(8..), *bytes);
        // The zero-copy path agrees with the copy path.
        let slices = log.read(Offset(t), 1).unwrap().slices;
        assert_eq!(slices[0].first_offset, Offset(*base));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_offsets_read_the_batch_that_holds_them(
        sizes in proptest::collection::vec((1usize..12, 1usize..400), 20..160),
        targets in proptest::collection::vec(any::<u64>(), 64),
        segment_bytes in 6144u32..16384,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(segment_bytes);
        let log = open(dir.path(), config.clone());
        let mut model = Model::new();
        for (i, (records, value_bytes)) in sizes.iter().enumerate() {
            let b = batch(i as u64, *records, *value_bytes, 1_000);
            let info = log.append(&b).unwrap();
            model.insert(info.base_offset.0, (*records as u64, b.slice(8..)));
        }
        check_random_reads(&log, &model, &targets);
        // The same after a clean close (trimmed indexes) and after a crash
        // (rebuilt indexes).
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), config.clone());
        check_random_reads(&log, &model, &targets);
        drop(log);
        std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
        let log = open(dir.path(), config);
        prop_assert!(log.recovery_report().segments_recovered >= 1);
        check_random_reads(&log, &model, &targets);
    }
}

#[test]
fn reads_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    assert!(
        log.read(Offset(0), 10).unwrap().slices.is_empty(),
        "empty log"
    );
    assert!(matches!(
        log.read(Offset(1), 10),
        Err(Error::OffsetOutOfRange { .. })
    ));
    log.append(&batch(0, 5, 10, 0)).unwrap();
    assert!(matches!(
        log.read(Offset(6), 10),
        Err(Error::OffsetOutOfRange {
            requested: 6,
            log_start: 0,
            log_end: 5
        })
    ));
}
