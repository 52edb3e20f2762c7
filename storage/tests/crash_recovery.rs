//! The crash model: a kill -9 can leave the active segment cut at any byte. After
//! reopening, exactly the whole batches before the cut remain, offsets continue
//! from there, and new appends work.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use common::{all_batches, batch, copy_dir, open, small_config};
use warren_storage::{LogConfig, Offset};

const SEGMENT_BYTES: u32 = 8192;

fn active_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

/// Writes batches until the log has `segments` segments, then `tail` more
/// (which fit in the active segment), and "crashes" (drops the log unclosed).
fn crashed_log(
    dir: &Path,
    segments: usize,
    tail: u64,
    config: &LogConfig,
) -> Vec<(u64, bytes::Bytes)> {
    let log = open(dir, config.clone());
    let mut i = 0u64;
    let append = |i: &mut u64| {
        log.append(&batch(*i, 1 + (*i as usize % 4), 90, 1_000 + *i as i64))
            .unwrap();
        *i += 1;
    };
    while log.segments().len() < segments {
        append(&mut i);
    }
    for _ in 0..tail {
        append(&mut i);
    }
    assert_eq!(log.segments().len(), segments);
    let written = all_batches(&log);
    common::crash(log);
    written
}

fn cut_and_check(
    source: &Path,
    scratch: &Path,
    config: &LogConfig,
    cut_at: u64,
    keep: &[(u64, bytes::Bytes)],
) {
    let dir = scratch.join(format!("cut-{cut_at}"));
    copy_dir(source, &dir);
    let segment = active_segment(&dir);
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(cut_at)
        .unwrap();
    let log = open(&dir, config.clone());
    let got = all_batches(&log);
    assert_eq!(got.len(), keep.len(), "cut at {cut_at}: batches kept");
    assert_eq!(got, keep, "cut at {cut_at}: bytes kept");
    let end = keep
        .last()
        .map_or(0, |(base, _)| *base + batch_records(*base, keep));
    assert_eq!(log.log_end_offset(), Offset(end), "cut at {cut_at}");
    let info = log.append(&batch(777, 2, 10, 5)).unwrap();
    assert_eq!(
        info.base_offset,
        Offset(end),
        "offsets continue after the cut"
    );
    drop(log);
    let log = open(&dir, config.clone());
    assert_eq!(log.log_end_offset(), Offset(end + 2));
    assert_eq!(all_batches(&log).len(), keep.len() + 1);
    drop(log);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn batch_records(base: u64, batches: &[(u64, bytes::Bytes)]) -> u64 {
    // Records in the batch at `base`: the next batch's base minus this one's, or
    // for the last batch, read from the header (records_count is at byte 49 of
    // the bytes after base_offset).
    let i = batches.iter().position(|(b, _)| *b == base).unwrap();
    match batches.get(i + 1) {
        Some((next, _)) => next - base,
        None => {
            let bytes = &batches[i].1;
            u64::from(u32::from_be_bytes(bytes[49..53].try_into().unwrap()))
        }
    }
}

#[test]
fn cutting_the_active_segment_anywhere_in_the_last_batch_keeps_every_batch_before_it() {
    let config = small_config(SEGMENT_BYTES);
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let written = crashed_log(&source, 3, 8, &config);
    let segment = active_segment(&source);
    let len = std::fs::metadata(&segment).unwrap().len();
    let last_len = written.last().unwrap().1.len() as u64 + 8;
    let last_start = len - last_len;
    assert!(
        last_start > 0,
        "the active segment holds more than one batch"
    );
    let keep = &written[..written.len() - 1];
    // Every byte position inside the last batch, from its first byte to one short
    // of its end.
    for cut in last_start..len {
        cut_and_check(&source, tmp.path(), &config, cut, keep);
    }
    // And the uncut file keeps everything.
    cut_and_check(&source, tmp.path(), &config, len, &written);
}

#[test]
fn cutting_deep_into_the_active_segment_keeps_whole_batches_before_the_cut() {
    let config = small_config(SEGMENT_BYTES);
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let written = crashed_log(&source, 3, 8, &config);
    let segment = active_segment(&source);
    let segment_base: u64 = segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let in_active: Vec<_> = written.iter().filter(|(b, _)| *b >= segment_base).collect();
    assert!(in_active.len() >= 4);
    // A sample of cut points across the whole active segment (every 37th byte).
    let len = std::fs::metadata(&segment).unwrap().len();
    let mut cut = 0;
    while cut < len {
        let mut pos = 0u64;
        let mut keep: Vec<_> = written
            .iter()
            .filter(|(b, _)| *b < segment_base)
            .cloned()
            .collect();
        for (base, bytes) in &in_active {
            pos += bytes.len() as u64 + 8;
            if pos <= cut {
                keep.push((*base, bytes.clone()));
            }
        }
        cut_and_check(&source, tmp.path(), &config, cut, &keep);
        cut += 37;
    }
}

#[test]
fn a_crash_before_the_index_reaches_disk_rebuilds_it() {
    // The active segment's index is preallocated (zeros past the valid entries)
    // and was never trimmed: recovery must rebuild it rather than trust zeros.
    let config = small_config(1 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let written = crashed_log(tmp.path(), 1, 200, &config);
    let index = active_segment(tmp.path()).with_extension("index");
    assert_eq!(
        std::fs::metadata(&index).unwrap().len(),
        u64::from(config.max_index_bytes),
        "still preallocated after the crash"
    );
    let log = open(tmp.path(), config);
    assert_eq!(log.recovery_report().segments_recovered, 1);
    assert_eq!(all_batches(&log), written);
    for (base, bytes) in written.iter().step_by(7) {
        let got = log.read_batches(Offset(*base), 1).unwrap();
        assert_eq!(got[0].as_bytes().slice(8..), *bytes);
    }
}

#[test]
fn only_segments_after_the_recovery_point_are_scanned_after_a_crash() {
    let config = small_config(4096);
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), config.clone());
    for i in 0..200 {
        log.append(&batch(i, 1, 100, 0)).unwrap();
    }
    let segments = log.segments().len();
    assert!(segments > 5);
    // Rolled segments are flushed in the background and then checkpointed; close
    // would make the open clean, so wait for the checkpoint instead (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let last_rolled = log.segments()[segments - 1].base_offset();
    while std::time::Instant::now() < deadline
        && warren_storage::checkpoint::Checkpoint::read(tmp.path())
            .unwrap()
            .is_none_or(|c| c.recovery_offset < last_rolled)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(log);
    let log = open(tmp.path(), config);
    let report = log.recovery_report();
    assert!(!report.clean_shutdown);
    assert_eq!(
        report.segments_recovered, 1,
        "only the active segment: {report:?}"
    );
    assert_eq!(log.log_end_offset(), Offset(200));
}

#[test]
fn a_batch_with_a_forged_base_offset_is_cut_not_trusted() {
    // The CRC does not cover base_offset: recovery must check it against the
    // offsets before it, or a damaged header could move the log end to 2^33.
    let config = small_config(1 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let written = crashed_log(tmp.path(), 1, 30, &config);
    let segment = active_segment(tmp.path());
    let victim = 20;
    let position: u64 = written[..victim]
        .iter()
        .map(|(_, b)| b.len() as u64 + 8)
        .sum();
    let forged = (written[victim].0 + (1 << 33)) as i64;
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &forged.to_be_bytes(), position).unwrap();
    drop(file);
    let log = open(tmp.path(), config);
    assert_eq!(all_batches(&log), written[..victim].to_vec());
    assert_eq!(log.log_end_offset(), Offset(written[victim].0));
    assert!(log.recovery_report().truncated_bytes > 0);
}
