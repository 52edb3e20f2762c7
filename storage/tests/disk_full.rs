//! A full disk, for real: a tmpfs of 4 MiB filled with 4 KiB filler files. An
//! append that hits ENOSPC fails with the retriable `DiskFull`, leaves the log
//! exactly as before (no half batch, indexes consistent), and succeeds again once
//! space is freed; reads and retention keep working meanwhile.
//!
//! Mounting needs root (CI runs as root); elsewhere each test prints
//! `disk_full: skipped, cannot mount tmpfs: ...` and passes.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::{all_batches, batch};
use warren_storage::{Durability, Error, LogConfig, LogManager, Offset, PartitionLog};

const FS_SIZE: &str = "4m";
const SEGMENT_BYTES: u32 = 1 << 20;
const PAGE: usize = 4096;

/// A tmpfs mounted on a fresh temp dir; unmounted on drop, also when a test fails.
struct Tmpfs {
    mount: PathBuf,
    // Dropped after `Drop::drop` has unmounted.
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts, or prints why not and returns `None` (the test then skips).
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={FS_SIZE}"), "tmpfs"])
            .arg(&mount)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { mount, _dir: dir }),
            Ok(o) => {
                eprintln!(
                    "disk_full: skipped, cannot mount tmpfs: {} {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("disk_full: skipped, cannot mount tmpfs: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still has a file open (a failed test's leftovers): detach.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// 4 KiB files that take up whatever space is left, freed a page at a time.
struct Filler {
    dir: PathBuf,
    files: Vec<PathBuf>,
    created: usize,
}

impl Filler {
    fn new(fs: &Tmpfs) -> Filler {
        let dir = fs.path().join("filler");
        std::fs::create_dir(&dir).unwrap();
        Filler {
            dir,
            files: Vec::new(),
            created: 0,
        }
    }

    /// Writes filler files until the filesystem is full.
    fn fill(&mut self) {
        loop {
            let path = self.dir.join(format!("f{}", self.created));
            self.created += 1;
            match std::fs::write(&path, [0x5A; PAGE]) {
                Ok(()) => self.files.push(path),
                Err(e) if e.raw_os_error() == Some(28) => {
                    let _ = std::fs::remove_file(&path);
                    return;
                }
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }

    /// Frees `pages` pages.
    fn free(&mut self, pages: usize) {
        for _ in 0..pages {
            std::fs::remove_file(self.files.pop().unwrap()).unwrap();
        }
    }

    fn free_all(&mut self) {
        let n = self.files.len();
        self.free(n);
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        index_interval_bytes: 4096,
        max_index_bytes: 64 << 10,
        durability: Durability::None,
        retention_bytes: Some(u64::from(SEGMENT_BYTES)),
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the log acknowledged.
#[derive(Default)]
struct Acked {
    /// (base offset, segment base offset, bytes after the base offset field).
    batches: Vec<(u64, u64, Bytes)>,
    end: u64,
}

impl Acked {
    fn append(&mut self, log: &PartitionLog, b: &Bytes) -> Result<(), Error> {
        let info = log.append(b)?;
        assert_eq!(info.base_offset, Offset(self.end), "offsets continue");
        self.batches
            .push((info.base_offset.0, info.segment_base_offset.0, b.slice(8..)));
        self.end = info.log_end_offset.0;
        Ok(())
    }

    fn expected(&self) -> Vec<(u64, Bytes)> {
        self.batches
            .iter()
            .map(|(o, _, b)| (*o, b.clone()))
            .collect()
    }

    /// The log holds exactly the acknowledged batches: offsets, every segment
    /// file's length (whole batches only), and index lookups.
    fn assert_log_matches(&self, log: &PartitionLog) {
        assert_eq!(log.log_end_offset(), Offset(self.end));
        for segment in log.segments() {
            let acked: u64 = self
                .batches
                .iter()
                .filter(|(_, s, _)| *s == segment.base_offset().0)
                .map(|(_, _, b)| b.len() as u64 + 8)
                .sum();
            let on_disk = std::fs::metadata(segment.log_path()).unwrap().len();
            assert_eq!(
                u64::from(segment.size()),
                acked,
                "segment {}",
                segment.base_offset()
            );
            assert_eq!(on_disk, acked, "file of segment {}", segment.base_offset());
        }
        assert_eq!(all_batches(log), self.expected());
        // One batch at a time, through the offset index.
        for (offset, _, bytes) in self.batches.iter().step_by(5) {
            let got = log.read_batches(Offset(*offset), 1).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].header().base_offset as u64, *offset);
            assert_eq!(got[0].as_bytes().slice(8..), *bytes);
        }
    }
}

fn big(tag: u64) -> Bytes {
    batch(tag, 1, 16_000, 1_000_000 + tag as i64)
}

fn assert_disk_full(result: Result<(), Error>) -> PathBuf {
    match result {
        Err(e @ Error::DiskFull { .. }) => {
            assert!(e.is_retriable());
            let Error::DiskFull { path, .. } = e else {
                unreachable!()
            };
            path
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
}

fn files_named(dir: &Path, base: u64) -> Vec<String> {
    let prefix = format!("{base:020}.");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn appends_on_a_full_disk_fail_retriably_and_leave_the_log_as_it_was() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let dir = fs.path().join("p-0");
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    let mut acked = Acked::default();
    let mut tag = 0u64;
    let big_len = big(0).len() as u32;

    // Two full segments and a few batches in a third: about 2.2 MiB of 4.
    while log.segments().len() < 3 || log.segments().last().unwrap().size() < 4 * big_len {
        acked.append(&log, &big(tag)).unwrap();
        tag += 1;
    }

    // The rolls' background flushes write the recovery point: let them finish
    // before the disk fills, so that nothing else takes the space measured below.
    common::wait_for_roll_flushes(&log);

    // 1. Two free pages, a four-page batch: the write runs out part way.
    filler.fill();
    filler.free(2);
    let active = log.segments().last().unwrap().clone();
    let path = assert_disk_full(acked.append(&log, &big(tag)));
    assert_eq!(path, active.log_path(), "the segment write failed");
    acked.assert_log_matches(&log);
    assert!(
        acked.append(&log, &big(tag)).is_err(),
        "still full: fails again"
    );
    acked.assert_log_matches(&log);
    // The failed write gave its pages back: a batch that fits them goes in.
    acked.append(&log, &batch(tag, 1, 3_000, 0)).unwrap();
    tag += 1;
    acked.assert_log_matches(&log);

    // 2. Reads keep working on the full disk.
    let mid = acked.batches[acked.batches.len() / 2].0;
    let read = log.read(Offset(mid), 1 << 20).unwrap();
    assert_eq!(read.slices[0].first_offset, Offset(mid));
    assert!(read.bytes() > (1 << 20) - u64::from(big_len) && read.bytes() <= 1 << 20);
    assert!(log.offset_for_timestamp(1_000_000).unwrap().is_some());

    // 3. A roll on a full disk: the new segment's indexes cannot be preallocated.
    filler.free_all();
    while log.segments().last().unwrap().size() + big_len <= SEGMENT_BYTES {
        acked.append(&log, &big(tag)).unwrap();
        tag += 1;
    }
    filler.fill();
    let segments_before = log.segments().len();
    let path = assert_disk_full(acked.append(&log, &big(tag)));
    assert!(
        path.extension()
            .is_some_and(|e| e == "index" || e == "timeindex"),
        "the roll's index preallocation failed: {}",
        path.display()
    );
    assert_eq!(log.segments().len(), segments_before, "no segment added");
    assert!(
        files_named(&dir, acked.end).is_empty(),
        "the failed roll left {:?}",
        files_named(&dir, acked.end)
    );
    acked.assert_log_matches(&log);

    // 4. Retention frees space on the full disk.
    let outcome = log.apply_retention(now_ms()).unwrap();
    assert!(outcome.segments_deleted >= 1, "{outcome:?}");
    let start = log.log_start_offset();
    assert_eq!(outcome.log_start_offset, start);
    assert!(matches!(
        log.read(Offset(0), 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    acked.batches.retain(|(o, _, _)| *o >= start.0);
    assert_eq!(acked.batches[0].0, start.0);
    acked.assert_log_matches(&log);

    // 5. With the space retention freed, the roll and the append go through.
    acked.append(&log, &big(tag)).unwrap();
    tag += 1;
    assert_eq!(
        log.segments().len(),
        segments_before - outcome.segments_deleted + 1
    );
    acked.append(&log, &big(tag)).unwrap();
    acked.assert_log_matches(&log);

    // 6. Everything acknowledged is there after a reopen, and the indexes pass.
    log.close().unwrap();
    drop(log);
    filler.free_all();
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    let report = log.recovery_report();
    assert!(report.clean_shutdown);
    assert_eq!(report.segments_recovered, 0, "{report:?}");
    assert_eq!(report.indexes_rebuilt, 0, "{report:?}");
    acked.assert_log_matches(&log);
    acked.append(&log, &big(tag + 1)).unwrap();
    drop(log);
    drop(fs);
}

#[test]
fn a_crash_after_a_disk_full_append_recovers_every_acknowledged_batch() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let dir = fs.path().join("p-0");
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    let mut acked = Acked::default();
    for tag in 0..20 {
        acked.append(&log, &big(tag)).unwrap();
    }
    filler.fill();
    filler.free(1);
    assert_disk_full(acked.append(&log, &big(20)));
    // A crash: no close.
    drop(log);
    filler.free_all();
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    acked.assert_log_matches(&log);
    acked.append(&log, &big(21)).unwrap();
    drop(log);
    drop(fs);
}

#[test]
fn the_first_append_after_a_clean_open_fails_retriably_when_the_recovery_point_cannot_be_written() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let dir = fs.path().join("p-0");
    let mut acked = Acked::default();
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    for tag in 0..5 {
        acked.append(&log, &big(tag)).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    filler.fill();
    // The append must first mark the log dirty in the recovery-point file.
    let path = assert_disk_full(acked.append(&log, &batch(5, 1, 10, 0)));
    assert!(
        path.to_string_lossy().contains("recovery-point"),
        "{}",
        path.display()
    );
    acked.assert_log_matches(&log);
    filler.free(1);
    acked.append(&log, &batch(5, 1, 10, 0)).unwrap();
    acked.assert_log_matches(&log);
    // A crash now is recovered, not trusted.
    drop(log);
    filler.free_all();
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    assert!(!log.recovery_report().clean_shutdown);
    acked.assert_log_matches(&log);
    drop(log);
    drop(fs);
}

/// A broker restarted on a full disk must still serve reads and run retention,
/// which is how space comes back.
#[test]
fn a_cleanly_closed_log_opens_on_a_full_disk_for_reads_and_retention() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let dir = fs.path().join("p-0");
    let mut acked = Acked::default();
    let log = PartitionLog::open(&dir, "p-0", config()).unwrap();
    let mut tag = 0;
    while log.segments().len() < 3 {
        acked.append(&log, &big(tag)).unwrap();
        tag += 1;
    }
    log.close().unwrap();
    drop(log);
    filler.fill();

    let opened = PartitionLog::open(&dir, "p-0", config());
    let log = match opened {
        Ok(log) => log,
        Err(e) => panic!("open on a full disk: {e:?}"),
    };
    acked.assert_log_matches(&log);
    assert!(log.apply_retention(now_ms()).unwrap().segments_deleted >= 1);
    acked.append(&log, &big(tag)).unwrap();
    drop(log);
    drop(fs);
}

// ---------------------------------------------------------------------------
// Topic creation on a full disk.
// ---------------------------------------------------------------------------

fn topic_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 4096,
        max_index_bytes: 64 << 10,
        durability: Durability::None,
        ..LogConfig::default()
    }
}

/// After a reopen, `name` is either a whole, working topic or not there at all.
fn assert_whole_or_absent(manager: &LogManager, name: &str, partitions: u32) {
    let data = manager.data_dir();
    let dirs: Vec<u32> = (0..partitions)
        .filter(|p| data.join(format!("{name}-{p}")).exists())
        .collect();
    match manager.topic(name) {
        None => {
            assert!(
                dirs.is_empty(),
                "no topic {name}, but partition dirs {dirs:?}"
            );
            assert!(!data.join(format!("meta/topics/{name}.json")).exists());
        }
        Some(t) => {
            assert_eq!(t.partitions, partitions);
            assert_eq!(t.log, topic_config());
            for p in 0..partitions {
                let log = manager.partition(name, p).unwrap();
                assert_eq!(
                    log.append(&batch(1, 1, 10, 0)).unwrap().base_offset,
                    Offset(0)
                );
            }
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(data.join("meta/topics"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn create_topic_on_a_full_disk_fails_retriably_and_leaves_no_half_topic() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let data = fs.path().join("data");
    let manager = LogManager::open(&data).unwrap();
    manager.create_topic("before", 1, topic_config()).unwrap();
    filler.fill();

    // No space at all: the topic file cannot be written.
    let err = manager
        .create_topic("nothing", 2, topic_config())
        .unwrap_err();
    assert!(err.is_retriable(), "{err:?}");
    assert!(manager.topic("nothing").is_none());
    // One page: the topic file fits, the partitions' indexes do not.
    filler.free(1);
    let err = manager
        .create_topic("onepage", 2, topic_config())
        .unwrap_err();
    assert!(err.is_retriable(), "{err:?}");
    assert!(manager.topic("onepage").is_none());
    // The existing topic still works.
    let before = manager.partition("before", 0).unwrap();
    assert!(before.read(Offset(0), 100).is_ok());
    drop(before);
    drop(manager);

    filler.free_all();
    let manager = LogManager::open(&data).unwrap();
    assert!(manager.topic("before").is_some());
    assert_whole_or_absent(&manager, "nothing", 2);
    assert_whole_or_absent(&manager, "onepage", 2);
    manager.close().unwrap();
    drop(manager);
    drop(fs);
}

/// `DiskFull` is documented as "retrying the same call later may succeed".
#[test]
fn create_topic_that_failed_on_a_full_disk_succeeds_when_retried_after_space_is_freed() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let data = fs.path().join("data");
    let manager = LogManager::open(&data).unwrap();
    filler.fill();
    filler.free(1);
    let err = manager.create_topic("t", 2, topic_config()).unwrap_err();
    assert!(err.is_retriable(), "{err:?}");
    assert!(manager.topic("t").is_none());

    filler.free_all();
    let created = manager.create_topic("t", 2, topic_config());
    assert!(created.is_ok(), "retry: {created:?}");
    for p in 0..2 {
        let log = manager.partition("t", p).unwrap();
        log.append(&batch(p.into(), 1, 10, 0)).unwrap();
    }
    manager.close().unwrap();
    drop(manager);
    let manager = LogManager::open(&data).unwrap();
    assert_eq!(manager.topic("t").unwrap().partitions, 2);
    drop(manager);
    drop(fs);
}

/// A failed create must not come back as a topic after a restart.
#[test]
fn create_topic_that_failed_on_a_full_disk_is_not_there_after_reopen() {
    let Some(fs) = Tmpfs::mount() else { return };
    let mut filler = Filler::new(&fs);
    let data = fs.path().join("data");
    let manager = LogManager::open(&data).unwrap();
    filler.fill();
    filler.free(1);
    assert!(manager.create_topic("t", 2, topic_config()).is_err());
    drop(manager);
    filler.free_all();
    let manager = LogManager::open(&data).unwrap();
    assert!(
        manager.topic("t").is_none(),
        "create failed, yet the topic exists"
    );
    assert!(!data.join("t-0").exists());
    drop(manager);
    drop(fs);
}
