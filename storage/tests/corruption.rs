//! Damage on disk: garbage inside and after batches, broken, missing and zeroed
//! indexes, empty segments, stray and orphan files, a bad recovery point, and
//! overlapping segments. Every case opens without a panic and either repairs what
//! it can prove, or reports `CorruptLog` naming the partition, file and byte
//! position of the damage.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{all_batches, batch, crash, open, small_config};
use warren_storage::checkpoint::Checkpoint;
use warren_storage::file_names::{SegmentFile, segment_file};
use warren_storage::{Error, LogConfig, Offset, PartitionLog, Result};

const SEGMENT_BYTES: u32 = 4096;
const BATCHES: u64 = 60;

fn config() -> LogConfig {
    small_config(SEGMENT_BYTES)
}

/// One acknowledged batch and where the log put it.
#[derive(Debug, Clone)]
struct Written {
    offset: u64,
    next: u64,
    segment: u64,
    position: u64,
    /// The batch as stored, minus the 8-byte base offset the log assigns.
    bytes: Bytes,
}

/// Appends `n` batches of 1-3 records (about 190-430 bytes each, so a 4 KiB
/// segment holds 10-20 of them and the 256-byte index interval indexes most).
fn write_batches(log: &PartitionLog, n: u64) -> Vec<Written> {
    (0..n)
        .map(|i| {
            let b = batch(i, 1 + (i % 3) as usize, 100, 1_000_000 + 10 * i as i64);
            let info = log.append(&b).unwrap();
            Written {
                offset: info.base_offset.0,
                next: info.log_end_offset.0,
                segment: info.segment_base_offset.0,
                position: u64::from(info.position.0),
                bytes: b.slice(8..),
            }
        })
        .collect()
}

/// A closed log of [`BATCHES`] batches over at least four segments.
fn closed_log(dir: &Path) -> Vec<Written> {
    let log = open(dir, config());
    let written = write_batches(&log, BATCHES);
    assert!(
        log.segments().len() >= 4,
        "{} segments",
        log.segments().len()
    );
    log.close().unwrap();
    written
}

/// Stops the log without `close`, as a crash would. First waits (bounded) for
/// the background flushes of rolled segments: they hold a clone of the log and
/// would otherwise race the next open on the recovery-point file, which no real
/// crash leaves running.
fn expected(written: &[Written]) -> Vec<(u64, Bytes)> {
    written
        .iter()
        .map(|w| (w.offset, w.bytes.clone()))
        .collect()
}

/// Distinct segment base offsets, oldest first.
fn segment_bases(written: &[Written]) -> Vec<u64> {
    let mut bases: Vec<u64> = written.iter().map(|w| w.segment).collect();
    bases.dedup();
    bases
}

fn in_segment(written: &[Written], base: u64) -> Vec<Written> {
    written
        .iter()
        .filter(|w| w.segment == base)
        .cloned()
        .collect()
}

fn file(dir: &Path, base: u64, kind: SegmentFile) -> PathBuf {
    segment_file(dir, Offset(base), kind)
}

fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// The one batch holding `offset`, read with a budget of one byte so the read
/// touches no header after it.
fn read_one(log: &PartitionLog, offset: u64) -> Result<(u64, Bytes)> {
    let batches = log.read_batches(Offset(offset), 1)?;
    assert_eq!(batches.len(), 1, "one batch at {offset}");
    let b = &batches[0];
    Ok((b.header().base_offset as u64, b.as_bytes().slice(8..)))
}

/// Every offset of every batch in `written` reads back as its batch, one batch
/// at a time.
fn assert_reads_back(log: &PartitionLog, written: &[Written]) {
    for w in written {
        for offset in w.offset..w.next {
            assert_eq!(
                read_one(log, offset).unwrap(),
                (w.offset, w.bytes.clone()),
                "offset {offset}"
            );
        }
    }
}

fn assert_corrupt_at<T: std::fmt::Debug>(
    result: Result<T>,
    log: &PartitionLog,
    path: &Path,
    position: u64,
) {
    match result {
        Err(Error::CorruptLog {
            partition,
            path: p,
            position: at,
            ..
        }) => {
            assert_eq!(partition, log.name());
            assert_eq!(p, path);
            assert_eq!(at, position, "position of the damaged batch");
        }
        other => panic!("expected CorruptLog at {position} of {path:?}, got {other:?}"),
    }
}

/// Appends one more batch and checks it gets the next offset.
fn assert_appends_continue(log: &PartitionLog, expected_end: u64) {
    assert_eq!(log.log_end_offset(), Offset(expected_end));
    let b = batch(999, 2, 50, 2_000_000);
    let info = log.append(&b).unwrap();
    assert_eq!(info.base_offset, Offset(expected_end));
    assert_eq!(
        read_one(log, expected_end).unwrap(),
        (expected_end, b.slice(8..))
    );
}

// ---------------------------------------------------------------------------
// Damage inside a flushed segment: reported on read, never served silently.
// ---------------------------------------------------------------------------

/// Checks the reads around a damaged batch `victim` of the segment `base`.
/// `header_damaged`: `read` itself fails at the victim (it walks headers);
/// otherwise only the CRC-checking `read_batches` does.
fn check_damaged_reads(
    log: &PartitionLog,
    written: &[Written],
    base: u64,
    victim: &Written,
    header_damaged: bool,
) {
    let path = file(log.dir(), base, SegmentFile::Log);
    let seg = in_segment(written, base);
    let at_victim = log.read(Offset(victim.offset), 1 << 20);
    if header_damaged {
        assert_corrupt_at(
            at_victim.map(|r| r.slices.len()),
            log,
            &path,
            victim.position,
        );
    } else {
        let info = at_victim.unwrap();
        assert_eq!(info.slices[0].first_offset, Offset(victim.offset));
        assert_eq!(u64::from(info.slices[0].position.0), victim.position);
    }
    // Reading from the victim, or from anywhere before it that reaches it.
    for from in [
        victim.offset,
        victim.next - 1,
        seg[0].offset,
        seg[1].offset,
        0,
    ] {
        assert_corrupt_at(
            log.read_batches(Offset(from), 1 << 20).map(|b| b.len()),
            log,
            &path,
            victim.position,
        );
    }
    // A read that reaches the victim's header walking batch by batch.
    let budget = (victim.position - seg[1].position) as u32 + 1;
    let walked = log.read(Offset(seg[1].offset), budget);
    if header_damaged {
        assert_corrupt_at(walked.map(|r| r.slices.len()), log, &path, victim.position);
    } else {
        assert!(walked.is_ok());
    }
    // Every other batch, in this segment and the others, reads back intact.
    let intact: Vec<Written> = written
        .iter()
        .filter(|w| w.offset != victim.offset)
        .cloned()
        .collect();
    assert_reads_back(log, &intact);
    let after = written.iter().find(|w| w.segment > base).unwrap();
    let rest = log.read_batches(Offset(after.offset), u32::MAX).unwrap();
    assert_eq!(
        rest.len(),
        written.iter().filter(|w| w.segment > base).count()
    );
}

/// A closed log whose second segment's third batch has its header overwritten
/// with 0xAB (batch_length, partition_leader_epoch and magic); reopened. Returns
/// the log, what was written, the segment and the damaged batch.
fn log_with_damaged_header(dir: &Path) -> (PartitionLog, Vec<Written>, u64, Written) {
    let written = closed_log(dir);
    let base = segment_bases(&written)[1];
    let seg = in_segment(&written, base);
    assert!(seg.len() >= 6, "{} batches in the segment", seg.len());
    // The third batch: well before the segment's last index entry, so nothing
    // short of a full scan sees it (a clean reopen trusts the segment).
    let victim = seg[2].clone();
    let log = open(dir, config());
    overwrite(
        &file(dir, base, SegmentFile::Log),
        victim.position + 8,
        &[0xAB; 9],
    );
    (log, written, base, victim)
}

#[test]
fn a_damaged_batch_header_in_a_flushed_segment_is_reported_with_its_position_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written, base, victim) = log_with_damaged_header(dir.path());
    check_damaged_reads(&log, &written, base, &victim, true);
    log.close().unwrap();
    drop(log);

    let log = open(dir.path(), config());
    assert!(log.recovery_report().clean_shutdown);
    assert_eq!(log.log_end_offset(), Offset(written.last().unwrap().next));
    check_damaged_reads(&log, &written, base, &victim, true);
}

/// The zero-copy `read` walks headers only at the ends of its range (it jumps
/// with the index in between, so a fetch does not read the bytes it sends), and
/// consumers check CRCs, as Kafka's do. The copy path checks every batch: over
/// the same range it reports the damaged header with its position.
#[test]
fn a_damaged_header_inside_a_read_range_is_reported_by_the_checked_copy_path() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written, base, victim) = log_with_damaged_header(dir.path());
    let path = file(dir.path(), base, SegmentFile::Log);
    let seg_start = in_segment(&written, base)[0].offset;
    for from in [seg_start, 0] {
        assert_corrupt_at(
            log.read_batches(Offset(from), 1 << 20).map(|b| b.len()),
            &log,
            &path,
            victim.position,
        );
    }
}

#[test]
fn a_flipped_payload_byte_in_a_flushed_segment_fails_the_crc_check_with_its_position_and_survives_reopen()
 {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let base = segment_bases(&written)[1];
    let seg = in_segment(&written, base);
    let victim = seg[2].clone();
    let log = open(dir.path(), config());
    let path = file(dir.path(), base, SegmentFile::Log);
    let at = victim.position + 61 + 20;
    let mut byte = [0u8; 1];
    std::fs::File::open(&path)
        .unwrap()
        .read_exact_at(&mut byte, at)
        .unwrap();
    overwrite(&path, at, &[byte[0] ^ 0xFF]);
    check_damaged_reads(&log, &written, base, &victim, false);
    log.close().unwrap();
    drop(log);

    let log = open(dir.path(), config());
    assert!(log.recovery_report().clean_shutdown);
    assert_eq!(log.log_end_offset(), Offset(written.last().unwrap().next));
    check_damaged_reads(&log, &written, base, &victim, false);
}

// ---------------------------------------------------------------------------
// Files that do not belong.
// ---------------------------------------------------------------------------

#[test]
fn stray_files_in_the_partition_directory_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"operator notes").unwrap();
    let backup = dir.path().join("00000000000000000000.log.bak");
    std::fs::copy(file(dir.path(), 0, SegmentFile::Log), &backup).unwrap();
    let backup_bytes = std::fs::read(&backup).unwrap();

    let log = open(dir.path(), config());
    assert_eq!(all_batches(&log), expected(&written));
    assert_appends_continue(&log, written.last().unwrap().next);
    log.close().unwrap();
    drop(log);

    assert_eq!(std::fs::read(&notes).unwrap(), b"operator notes");
    assert_eq!(std::fs::read(&backup).unwrap(), backup_bytes);
    let log = open(dir.path(), config());
    assert_eq!(
        log.log_end_offset(),
        Offset(written.last().unwrap().next + 2)
    );
}

#[test]
fn an_index_without_a_segment_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let orphan = file(dir.path(), 1_000_000, SegmentFile::Index);
    let orphan_time = file(dir.path(), 1_000_000, SegmentFile::TimeIndex);
    std::fs::write(&orphan, [1u8; 64]).unwrap();
    std::fs::write(&orphan_time, [1u8; 96]).unwrap();

    let log = open(dir.path(), config());
    assert!(!orphan.exists());
    assert!(!orphan_time.exists());
    assert_eq!(log.segments().len(), segment_bases(&written).len());
    assert_eq!(all_batches(&log), expected(&written));
    assert_appends_continue(&log, written.last().unwrap().next);
}

// ---------------------------------------------------------------------------
// Indexes: cut, missing, zeroed. The log is the truth; indexes are rebuilt.
// ---------------------------------------------------------------------------

/// Damages an index of the flushed segment `base` with `damage`, reopens, and
/// checks the index is rebuilt byte for byte and every read is right.
fn check_index_rebuilt(kind: SegmentFile, damage: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let base = segment_bases(&written)[1];
    let path = file(dir.path(), base, kind);
    let original = std::fs::read(&path).unwrap();
    assert!(original.len() >= 24, "the index has entries to damage");
    damage(&path);

    let log = open(dir.path(), config());
    let report = log.recovery_report().clone();
    assert!(
        report.indexes_rebuilt > 0 || report.segments_recovered > 0,
        "{report:?}"
    );
    assert_eq!(report.truncated_bytes, 0, "{report:?}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "the rebuilt index equals the one append wrote"
    );
    assert_reads_back(&log, &written);
    assert_eq!(all_batches(&log), expected(&written));
    // The time index answers too: batch i's first record has the first
    // timestamp at or after 1_000_000 + 10 * i.
    for (i, w) in written.iter().enumerate() {
        let ts = 1_000_000 + 10 * i as i64;
        assert_eq!(
            log.offset_for_timestamp(ts).unwrap(),
            Some((Offset(w.offset), ts)),
            "timestamp {ts}"
        );
    }
    assert_appends_continue(&log, written.last().unwrap().next);
}

#[test]
fn an_offset_index_cut_to_a_partial_entry_is_rebuilt() {
    check_index_rebuilt(SegmentFile::Index, |path| {
        set_len(path, file_len(path) - 3);
    });
}

#[test]
fn a_time_index_cut_to_a_partial_entry_is_rebuilt() {
    check_index_rebuilt(SegmentFile::TimeIndex, |path| {
        set_len(path, file_len(path) - 5);
    });
}

#[test]
fn a_missing_offset_index_is_rebuilt() {
    check_index_rebuilt(SegmentFile::Index, |path| {
        std::fs::remove_file(path).unwrap();
    });
}

#[test]
fn a_missing_time_index_is_rebuilt() {
    check_index_rebuilt(SegmentFile::TimeIndex, |path| {
        std::fs::remove_file(path).unwrap();
    });
}

#[test]
fn a_zero_filled_offset_index_is_rebuilt() {
    check_index_rebuilt(SegmentFile::Index, |path| {
        overwrite(path, 0, &vec![0u8; file_len(path) as usize]);
    });
}

#[test]
fn a_zero_filled_time_index_is_rebuilt() {
    check_index_rebuilt(SegmentFile::TimeIndex, |path| {
        overwrite(path, 0, &vec![0u8; file_len(path) as usize]);
    });
}

#[test]
fn an_index_with_a_zeroed_preallocated_tail_is_rebuilt() {
    check_index_rebuilt(SegmentFile::Index, |path| {
        let len = file_len(path);
        set_len(path, len + 8 * 100);
    });
}

#[test]
fn an_offset_index_cut_to_half_its_entries_still_answers_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let base = segment_bases(&written)[1];
    let path = file(dir.path(), base, SegmentFile::Index);
    let entries = file_len(&path) / 8;
    assert!(entries >= 4);
    // Whole entries: a valid, sparser index. Rebuilding it is optional.
    set_len(&path, entries / 2 * 8);
    let time_path = file(dir.path(), base, SegmentFile::TimeIndex);
    set_len(&time_path, file_len(&time_path) / 12 / 2 * 12);

    let log = open(dir.path(), config());
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert_reads_back(&log, &written);
    for (i, w) in written.iter().enumerate() {
        let ts = 1_000_000 + 10 * i as i64;
        assert_eq!(
            log.offset_for_timestamp(ts).unwrap(),
            Some((Offset(w.offset), ts))
        );
    }
    assert_appends_continue(&log, written.last().unwrap().next);
}

#[test]
fn a_zero_filled_index_of_the_active_segment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let base = *segment_bases(&written).last().unwrap();
    let path = file(dir.path(), base, SegmentFile::Index);
    let original = std::fs::read(&path).unwrap();
    assert!(!original.is_empty());
    overwrite(&path, 0, &vec![0u8; original.len()]);

    let log = open(dir.path(), config());
    let report = log.recovery_report().clone();
    assert!(
        report.indexes_rebuilt > 0 || report.segments_recovered > 0,
        "{report:?}"
    );
    assert_reads_back(&log, &written);
    log.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), original);
    drop(log);
    let log = open(dir.path(), config());
    assert_appends_continue(&log, written.last().unwrap().next);
}

// ---------------------------------------------------------------------------
// Empty segment files.
// ---------------------------------------------------------------------------

#[test]
fn an_empty_active_segment_after_a_clean_close_takes_the_next_appends() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let end = written.last().unwrap().next;
    // A roll that created the file and stopped there.
    std::fs::File::create(file(dir.path(), end, SegmentFile::Log)).unwrap();

    let log = open(dir.path(), config());
    assert_eq!(log.segments().len(), segment_bases(&written).len() + 1);
    assert_eq!(log.segments().last().unwrap().base_offset(), Offset(end));
    assert_eq!(all_batches(&log), expected(&written));
    assert_reads_back(&log, &written);
    assert_appends_continue(&log, end);
    assert_eq!(log.segments().last().unwrap().base_offset(), Offset(end));
}

#[test]
fn an_empty_active_segment_after_a_crash_takes_the_next_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config());
    let written = write_batches(&log, BATCHES);
    crash(log);
    let end = written.last().unwrap().next;
    std::fs::File::create(file(dir.path(), end, SegmentFile::Log)).unwrap();

    let log = open(dir.path(), config());
    assert!(!log.recovery_report().clean_shutdown);
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert_eq!(all_batches(&log), expected(&written));
    assert_reads_back(&log, &written);
    assert_appends_continue(&log, end);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!(log.log_end_offset(), Offset(end + 2));
}

#[test]
fn an_emptied_middle_segment_loses_only_its_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let bases = segment_bases(&written);
    let (emptied, next) = (bases[1], bases[2]);
    // Its indexes stay, pointing into a file that is no longer there.
    set_len(&file(dir.path(), emptied, SegmentFile::Log), 0);

    let log = open(dir.path(), config());
    let kept: Vec<Written> = written
        .iter()
        .filter(|w| w.segment != emptied)
        .cloned()
        .collect();
    assert_eq!(all_batches(&log), expected(&kept));
    assert_reads_back(&log, &kept);
    // An offset that went with the segment reads from the next one that exists.
    let lost = log.read_batches(Offset(emptied + 1), 1).unwrap();
    assert_eq!(lost[0].header().base_offset as u64, next);
    assert_appends_continue(&log, written.last().unwrap().next);
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!(all_batches(&log).len(), kept.len() + 1);
}

// ---------------------------------------------------------------------------
// Garbage after the last batch.
// ---------------------------------------------------------------------------

fn garbage(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 37 + 11) as u8 | 0x80).collect()
}

#[test]
fn garbage_after_the_last_batch_after_a_crash_is_truncated() {
    for garbage in [garbage(777), vec![0u8; 4096], garbage(30)] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config());
        let written = write_batches(&log, BATCHES);
        let active = log.segments().last().unwrap().log_path().to_path_buf();
        crash(log);
        let len_before = file_len(&active);
        append_bytes(&active, &garbage);

        let log = open(dir.path(), config());
        let report = log.recovery_report();
        assert!(!report.clean_shutdown);
        assert_eq!(report.truncated_bytes, garbage.len() as u64, "{report:?}");
        assert_eq!(file_len(&active), len_before);
        assert_eq!(all_batches(&log), expected(&written));
        assert_appends_continue(&log, written.last().unwrap().next);
    }
}

#[test]
fn garbage_after_the_last_batch_after_a_clean_close_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let last = written.last().unwrap();
    let active = file(dir.path(), last.segment, SegmentFile::Log);
    let len_before = file_len(&active);
    let junk = garbage(300);
    append_bytes(&active, &junk);

    let log = open(dir.path(), config());
    let report = log.recovery_report();
    assert_eq!(report.truncated_bytes, junk.len() as u64, "{report:?}");
    assert_eq!(file_len(&active), len_before);
    assert_eq!(all_batches(&log), expected(&written));
    assert_appends_continue(&log, last.next);
}

#[test]
fn a_repeated_last_batch_after_a_clean_close_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let last = written.last().unwrap();
    let active = file(dir.path(), last.segment, SegmentFile::Log);
    let len_before = file_len(&active);
    // A whole, CRC-valid batch whose offsets go backwards.
    let mut copy = vec![0u8; (len_before - last.position) as usize];
    std::fs::File::open(&active)
        .unwrap()
        .read_exact_at(&mut copy, last.position)
        .unwrap();
    append_bytes(&active, &copy);

    let log = open(dir.path(), config());
    assert_eq!(log.recovery_report().truncated_bytes, copy.len() as u64);
    assert_eq!(file_len(&active), len_before);
    assert_eq!(all_batches(&log), expected(&written));
    assert_appends_continue(&log, last.next);
}

#[test]
fn garbage_after_the_last_batch_of_a_middle_segment_after_a_clean_close_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let base = segment_bases(&written)[1];
    let path = file(dir.path(), base, SegmentFile::Log);
    let len_before = file_len(&path);
    append_bytes(&path, &garbage(123));

    let log = open(dir.path(), config());
    assert_eq!(log.recovery_report().truncated_bytes, 123);
    assert_eq!(file_len(&path), len_before);
    assert_eq!(all_batches(&log), expected(&written));
    assert_reads_back(&log, &written);
    assert_appends_continue(&log, written.last().unwrap().next);
}

/// The recovery point promises "every batch below this offset is on disk". When
/// open cuts the log below it, the offsets between are reused by new appends that
/// are not yet on disk, so the recovery point must come down with the log end.
#[test]
fn open_that_truncates_below_a_clean_recovery_point_lowers_it() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let last = written.last().unwrap();
    // The last batch's header is damaged after the clean close: open cuts it.
    overwrite(
        &file(dir.path(), last.segment, SegmentFile::Log),
        last.position + 8,
        &[0xAB; 9],
    );
    let log = open(dir.path(), config());
    assert!(log.recovery_report().truncated_bytes > 0);
    assert_eq!(log.log_end_offset(), Offset(last.offset));
    let cp = Checkpoint::read(dir.path()).unwrap().unwrap();
    assert!(
        cp.recovery_offset <= log.log_end_offset(),
        "recovery point {cp:?} above the log end {}",
        log.log_end_offset()
    );
}

// ---------------------------------------------------------------------------
// The recovery point.
// ---------------------------------------------------------------------------

#[test]
fn an_unreadable_recovery_point_means_a_full_scan() {
    let junk: [&[u8]; 3] = [b"", b"WRPT", &garbage(18)];
    for bad in junk {
        let dir = tempfile::tempdir().unwrap();
        let written = closed_log(dir.path());
        let segments = segment_bases(&written).len();
        let cp_path = dir.path().join("recovery-point");
        std::fs::write(&cp_path, bad).unwrap();

        let log = open(dir.path(), config());
        let report = log.recovery_report();
        assert!(!report.clean_shutdown);
        assert_eq!(report.segments_recovered, segments, "{report:?}");
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(all_batches(&log), expected(&written));
        assert!(
            Checkpoint::read(dir.path()).is_ok(),
            "a readable recovery point is written again"
        );
        assert_appends_continue(&log, written.last().unwrap().next);
    }
}

// ---------------------------------------------------------------------------
// Overlapping segments.
// ---------------------------------------------------------------------------

#[test]
fn overlapping_segments_fail_the_open_without_changing_any_segment() {
    let dir = tempfile::tempdir().unwrap();
    let written = closed_log(dir.path());
    let bases = segment_bases(&written);
    let logs_before: Vec<Vec<u8>> = bases
        .iter()
        .map(|b| std::fs::read(file(dir.path(), *b, SegmentFile::Log)).unwrap())
        .collect();
    // A copy of the third segment named inside the second one's offsets.
    let rogue = file(dir.path(), bases[1] + 1, SegmentFile::Log);
    std::fs::copy(file(dir.path(), bases[2], SegmentFile::Log), &rogue).unwrap();

    match PartitionLog::open(dir.path(), "test-0", config()) {
        Err(Error::CorruptLog { partition, .. }) => assert_eq!(partition, "test-0"),
        other => panic!("expected CorruptLog, got {other:?}"),
    }
    for (base, before) in bases.iter().zip(&logs_before) {
        let now = std::fs::read(file(dir.path(), *base, SegmentFile::Log)).unwrap();
        assert!(now == *before, "segment {base} changed by the failed open");
    }
    std::fs::remove_file(&rogue).unwrap();
    let log = open(dir.path(), config());
    assert_eq!(all_batches(&log), expected(&written));
}

#[test]
fn a_segment_copied_below_the_log_start_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(u64::from(SEGMENT_BYTES) * 2),
        ..config()
    };
    let log = open(dir.path(), config.clone());
    let written = write_batches(&log, BATCHES);
    assert!(log.apply_retention(0).unwrap().segments_deleted > 0);
    let start = log.log_start_offset().0;
    log.close().unwrap();
    drop(log);
    let bases = segment_bases(&written);
    let next = *bases.iter().find(|b| **b > start).unwrap();
    std::fs::copy(
        file(dir.path(), next, SegmentFile::Log),
        file(dir.path(), start - 1, SegmentFile::Log),
    )
    .unwrap();
    assert!(matches!(
        PartitionLog::open(dir.path(), "test-0", config),
        Err(Error::CorruptLog { .. })
    ));
}
