//! `PartitionLog::truncate_to`: inside a segment, at a segment boundary, across
//! segments; appends continue from the cut; a clean reopen and a crash reopen
//! both find exactly the truncated log; readers of the removed range get an
//! error, never a panic. Checked against a model: the list of batches the log
//! should hold.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use bytes::Bytes;
use common::{all_batches, batch, crash, open, small_config};
use warren_storage::{Error, Offset, PartitionLog};

/// The log as the test expects it: (base offset, bytes after the base offset)
/// of every batch, in order, as `common::all_batches` returns them.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<(u64, Bytes)>,
    next_tag: u64,
}

impl Model {
    /// Appends a batch of `records` records to `log` and to the model.
    fn append(&mut self, log: &PartitionLog, records: usize, value_bytes: usize) -> Offset {
        let tag = self.next_tag;
        self.next_tag += 1;
        let b = batch(tag, records, value_bytes, 1_700_000_000_000 + tag as i64);
        let info = log.append(&b).unwrap();
        assert_eq!(
            info.base_offset,
            self.end(),
            "offsets continue from the log end"
        );
        self.batches.push((info.base_offset.0, b.slice(8..)));
        info.log_end_offset
    }

    fn end(&self) -> Offset {
        Offset(self.batches.last().map_or(0, |(base, bytes)| {
            // records_count is the last field of the header (bytes 57..61 of
            // the batch, 49..53 after the base offset).
            let count = u32::from_be_bytes(bytes[49..53].try_into().unwrap());
            base + u64::from(count)
        }))
    }

    fn truncate(&mut self, offset: Offset) {
        self.batches.retain(|(base, _)| *base < offset.0);
    }

    /// Base offsets of the batches, for choosing a cut.
    fn bases(&self) -> Vec<Offset> {
        self.batches.iter().map(|(b, _)| Offset(*b)).collect()
    }

    fn check(&self, log: &PartitionLog) {
        assert_eq!(log.log_end_offset(), self.end());
        assert_eq!(all_batches(log), self.batches);
    }
}

/// 600-byte values in 1 KiB segments: one batch per segment.
const ONE_PER_SEGMENT: u32 = 1024;

#[test]
fn truncate_inside_a_segment_then_append_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(64 * 1024);
    let log = open(dir.path(), config.clone());
    let mut model = Model::default();
    for _ in 0..30 {
        model.append(&log, 3, 200);
    }
    assert_eq!(log.segments().len(), 1);
    let cut = model.bases()[17];
    let outcome = log.truncate_to(cut).unwrap();
    assert_eq!(outcome.segments_deleted, 0);
    model.truncate(cut);
    model.check(&log);
    for _ in 0..5 {
        model.append(&log, 2, 50);
    }
    model.check(&log);
    log.close().unwrap();
    drop(log);

    let log = open(dir.path(), config);
    assert!(log.recovery_report().clean_shutdown);
    model.check(&log);
    model.append(&log, 1, 10);
    model.check(&log);
}

#[test]
fn truncate_at_a_segment_boundary_keeps_an_empty_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(ONE_PER_SEGMENT);
    let log = open(dir.path(), config.clone());
    let mut model = Model::default();
    for _ in 0..6 {
        model.append(&log, 1, 600);
    }
    let bases: Vec<Offset> = log.segments().iter().map(|s| s.base_offset()).collect();
    assert_eq!(bases.len(), 6, "one batch per segment");
    let cut = bases[3];
    let outcome = log.truncate_to(cut).unwrap();
    assert_eq!(outcome.segments_deleted, 2);
    model.truncate(cut);
    model.check(&log);
    let segments = log.segments();
    assert_eq!(segments.len(), 4);
    let active = segments.last().unwrap();
    assert_eq!(active.base_offset(), cut);
    assert_eq!(active.size(), 0);
    // The deleted segments' files are gone; the cut one is empty on disk.
    let logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert_eq!(std::fs::metadata(active.log_path()).unwrap().len(), 0);

    let end = model.append(&log, 1, 600);
    assert_eq!(
        log.segments().len(),
        4,
        "the empty segment takes the append"
    );
    model.append(&log, 1, 600);
    model.check(&log);
    assert!(end > cut);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config);
    model.check(&log);
}

#[test]
fn truncate_across_several_segments_and_into_a_sealed_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(4096);
    let log = open(dir.path(), config.clone());
    let mut model = Model::default();
    for _ in 0..40 {
        model.append(&log, 2, 300);
    }
    let segments = log.segments();
    assert!(segments.len() >= 6, "{} segments", segments.len());
    // A batch in the middle of the third segment: not its first.
    let third = &segments[2];
    let cut = *model
        .bases()
        .iter()
        .find(|b| **b > third.base_offset() && **b < segments[3].base_offset())
        .unwrap();
    let outcome = log.truncate_to(cut).unwrap();
    assert_eq!(outcome.segments_deleted, segments.len() - 3);
    model.truncate(cut);
    model.check(&log);
    assert_eq!(log.segments().len(), 3);
    // The sealed segment became the active one: appends fill it, then roll.
    for _ in 0..20 {
        model.append(&log, 2, 300);
    }
    model.check(&log);
    assert!(log.segments().len() > 3);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config);
    assert!(log.recovery_report().clean_shutdown);
    model.check(&log);
}

#[test]
fn a_crash_after_truncate_recovers_the_truncated_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(4096);
    let log = open(dir.path(), config.clone());
    let mut model = Model::default();
    for _ in 0..30 {
        model.append(&log, 2, 300);
    }
    let cut = model.bases()[11];
    log.truncate_to(cut).unwrap();
    model.truncate(cut);
    crash(log);

    let log = open(dir.path(), config.clone());
    assert!(!log.recovery_report().clean_shutdown);
    model.check(&log);

    // Truncate again, append past the old end, crash again.
    let cut = model.bases()[4];
    log.truncate_to(cut).unwrap();
    model.truncate(cut);
    for _ in 0..30 {
        model.append(&log, 2, 300);
    }
    crash(log);
    let log = open(dir.path(), config);
    model.check(&log);
}

/// Segments that were flushed and trusted before the truncation lie above
/// the cut afterwards and are rewritten: the crash-reopen must CRC-check
/// them, not trust the old recovery point.
#[test]
fn a_crash_after_truncate_and_new_appends_over_a_flushed_range_keeps_only_the_new_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(ONE_PER_SEGMENT);
    let log = open(dir.path(), config.clone());
    let mut model = Model::default();
    for _ in 0..8 {
        model.append(&log, 1, 600);
    }
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config.clone());
    let cut = model.bases()[2];
    log.truncate_to(cut).unwrap();
    model.truncate(cut);
    // Different records at the same offsets as before.
    for _ in 0..8 {
        model.append(&log, 1, 500);
    }
    crash(log);
    let log = open(dir.path(), config);
    model.check(&log);
}

#[test]
fn reads_after_truncate_see_the_new_end_and_old_slices_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(64 * 1024));
    let mut model = Model::default();
    for _ in 0..20 {
        model.append(&log, 2, 100);
    }
    let held = log.read(Offset(0), 1 << 20).unwrap();
    assert_eq!(held.log_end_offset, Offset(40));
    let cut = model.bases()[5];
    log.truncate_to(cut).unwrap();
    model.truncate(cut);

    // The slice handed out before the cut now runs past the file's end.
    let mut buf = Vec::new();
    for slice in &held.slices {
        assert!(
            slice.read_into(&mut buf).is_err(),
            "a short read is an error"
        );
    }
    let read = log.read(Offset(0), 1 << 20).unwrap();
    assert_eq!(read.log_end_offset, cut);
    assert_eq!(read.slices.last().unwrap().next_offset, cut);
    assert!(matches!(
        log.read(Offset(cut.0 + 2), 1024),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(log.read(cut, 1024).unwrap().slices.is_empty());
    assert!(
        log.offset_for_timestamp(1_700_000_000_000 + 19)
            .unwrap()
            .is_none()
    );
    model.check(&log);
}

#[test]
fn truncate_on_a_closed_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(64 * 1024));
    let mut model = Model::default();
    model.append(&log, 2, 10);
    model.append(&log, 2, 10);
    log.close().unwrap();
    assert!(matches!(log.truncate_to(Offset(2)), Err(Error::Closed(_))));
    model.check(&log);
}

/// A seeded mix of appends, truncations, clean and crash reopens, checked
/// against the model after every step (bounded: 300 steps).
#[test]
fn random_appends_truncations_and_reopens_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(2048);
    let mut log = open(dir.path(), config.clone());
    let mut model = Model::default();
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move |n: u64| {
        // xorshift64*: deterministic, no dependency.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    for _ in 0..300 {
        match next(10) {
            0..=5 => {
                let records = 1 + next(4) as usize;
                let value = next(400) as usize;
                model.append(&log, records, value);
            }
            6 | 7 => {
                let bases = model.bases();
                if !bases.is_empty() {
                    let cut = bases[next(bases.len() as u64) as usize];
                    log.truncate_to(cut).unwrap();
                    model.truncate(cut);
                }
            }
            8 => {
                log.close().unwrap();
                drop(log);
                log = open(dir.path(), config.clone());
            }
            _ => {
                crash(log);
                log = open(dir.path(), config.clone());
            }
        }
        model.check(&log);
    }
}

/// Readers loop over the whole log while the writer truncates and appends:
/// every read returns whole batches or an error, never panics, and the log
/// ends as the model says.
#[test]
fn truncation_under_concurrent_readers_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    let mut model = Model::default();
    for _ in 0..40 {
        model.append(&log, 2, 100);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut reads = 0u32;
                // Bounded: at most 100_000 reads, however long the writer takes.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && reads < 100_000 {
                    reads += 1;
                    let Ok(info) = log.read(log.log_start_offset(), 16 * 1024) else {
                        continue;
                    };
                    for slice in &info.slices {
                        buf.clear();
                        let _ = slice.read_into(&mut buf);
                    }
                    let _ = log.read_batches(Offset(0), 8 * 1024);
                }
                reads
            })
        })
        .collect();
    for round in 0..20 {
        let bases = model.bases();
        let cut = bases[bases.len() / 2 + round % 3];
        log.truncate_to(cut).unwrap();
        model.truncate(cut);
        for _ in 0..10 {
            model.append(&log, 2, 100);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    model.check(&log);
}

/// Recovery can leave a gap: corruption in a flushed segment that is not the
/// last cuts that segment and keeps the later ones. A truncation to an offset
/// in the gap (or at its start) must still remove every later segment; it
/// cuts at the gap's start, since nothing lies between. (Found by review: it
/// used to return Ok and remove nothing.)
#[test]
fn truncate_into_a_gap_left_by_recovery_cuts_at_the_gap_start() {
    for into_gap in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(4096);
        let log = open(dir.path(), config.clone());
        for tag in 0..20u64 {
            log.append(&batch(tag, 3, 600, 1_700_000_000_000 + tag as i64))
                .unwrap();
        }
        let first = log.segments()[0].log_path().to_path_buf();
        log.close().unwrap();
        drop(log);
        // Damage the first segment's last batch; forget the recovery point,
        // so the next open checks every segment.
        let mut bytes = std::fs::read(&first).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0xff;
        std::fs::write(&first, &bytes).unwrap();
        std::fs::remove_file(dir.path().join("recovery-point")).unwrap();
        let log = open(dir.path(), config.clone());
        let segments = log.segments();
        let (gap_start, next_base) = (segments[0].next_offset(), segments[1].base_offset());
        assert!(gap_start < next_base, "recovery left no gap");
        assert!(log.log_end_offset() > next_base);
        let kept = all_batches(&log);

        let outcome = log.truncate_to(gap_start.plus(into_gap)).unwrap();
        assert_eq!(outcome.log_end_offset, gap_start);
        assert_eq!(log.log_end_offset(), gap_start);
        assert_eq!(log.segments().len(), 1, "the later segments are gone");
        let below: Vec<_> = kept
            .iter()
            .filter(|(base, _)| *base < gap_start.0)
            .cloned()
            .collect();
        assert_eq!(all_batches(&log), below);
        // Appends continue from the gap's start, and a reopen agrees.
        let info = log.append(&batch(99, 2, 10, 1_700_000_000_099)).unwrap();
        assert_eq!(info.base_offset, gap_start);
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), config);
        assert_eq!(log.log_end_offset(), gap_start.plus(2));
        log.close().unwrap();
    }
}
