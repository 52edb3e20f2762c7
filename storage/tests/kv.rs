//! `KvStore` on real files: round trips, crashes (a dropped store, a torn last
//! batch, a real kill -9 of a child process), compaction in the foreground and
//! the background, corrupt and leftover snapshots, the directory lock, and
//! `PartitionLog::delete_segments_before`, which compaction relies on.
//!
//! Every check compares the store with a `BTreeMap` model that applies the same
//! ops. A "crash" in-process is a drop without `close`: the background threads
//! hold only weak references, so nothing is flushed or compacted on the way out.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{batch, small_config};
use warren_storage::checkpoint::Checkpoint;
use warren_storage::file_names::{KV_LOG_DIR, kv_snapshot_file, parse_kv_snapshot_file, tmp_path};
use warren_storage::{Error, KvConfig, KvOp, KvStore, Offset, PartitionLog};

/// What the store should hold.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// An owned op, so tests can build batches and keep them.
#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Op {
    Op::Put(key.as_ref().to_vec(), value.as_ref().to_vec())
}

fn delete(key: impl AsRef<[u8]>) -> Op {
    Op::Delete(key.as_ref().to_vec())
}

fn kv_ops(ops: &[Op]) -> Vec<KvOp<'_>> {
    ops.iter()
        .map(|op| match op {
            Op::Put(k, v) => KvOp::Put(k, v),
            Op::Delete(k) => KvOp::Delete(k),
        })
        .collect()
}

fn apply_to_model(model: &mut Model, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                model.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                model.remove(k);
            }
        }
    }
}

/// Applies `ops` durably to the store and, once that returned Ok, to the model.
fn apply(store: &KvStore, model: &mut Model, ops: &[Op]) {
    store.apply_durable(&kv_ops(ops)).unwrap();
    apply_to_model(model, ops);
}

/// The whole map, through the public read path.
fn contents(store: &KvStore) -> Model {
    store
        .scan_prefix(b"")
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// A store that never compacts on its own (only `compact` and `close` do).
fn manual_config(segment_bytes: u32) -> KvConfig {
    KvConfig {
        compact_after_bytes: 1 << 40,
        segment_bytes,
    }
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// "Crashes" the store: drops it without `close`. First waits (at most 10 s)
/// until the log's background flushes of rolled segments have written their
/// recovery point: those threads hold a clone of the log while they run and
/// would write its `recovery-point` file concurrently with the next open, which
/// no real crash leaves running. (With fsync durability the durable offset moves
/// with every `sync_to`, so it cannot tell us that they finished; the file can.)
fn crash(store: KvStore) {
    let log_dir = store.dir().join(KV_LOG_DIR);
    let active = store.log().segments().last().unwrap().base_offset();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cp = Checkpoint::read(&log_dir).unwrap();
        if cp.is_some_and(|cp| cp.recovery_offset >= active) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "roll flushes did not finish: {cp:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(store);
}

/// Opens the store after a [`crash`]. A background compaction that was running
/// at the drop keeps the store (and its directory lock) alive until it finishes,
/// so `DataDirLocked` is retried for at most 10 s.
fn reopen(dir: &Path, config: KvConfig) -> KvStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match KvStore::open(dir, config.clone()) {
            Err(Error::DataDirLocked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other.unwrap(),
        }
    }
}

/// The snapshot files in `dir`, oldest first.
fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| parse_kv_snapshot_file(e.file_name().to_str().unwrap()).is_some())
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Copies a store's directory, `log/` included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, position: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[position as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: u64) {
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

// ---------------------------------------------------------------------------
// 1. Round trip.

#[test]
fn puts_deletes_and_prefix_scans_round_trip_and_survive_a_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let config = KvConfig::default();
    let store = KvStore::open(&dir, config.clone()).unwrap();
    assert!(store.is_empty());
    assert_eq!(store.open_report().records_replayed, 0);
    let mut model = Model::new();

    apply(
        &store,
        &mut model,
        &[
            put("group/a/orders-0", "17"),
            put("group/a/orders-1", "4"),
            put("group/ab/orders-0", "9"),
            put("group/b/orders-0", "1"),
            put("other", "x"),
            put("empty-value", ""),
            put(b"\xff", "ff"),
            put(b"\xff\x00", "ff00"),
            put(b"\xff\xff\x01", "ffff01"),
        ],
    );
    // Updates, a delete of a key set in the same batch, and a delete of a key
    // that never existed (a no-op, still logged).
    apply(
        &store,
        &mut model,
        &[
            put("group/a/orders-0", "18"),
            put("temp", "t"),
            delete("temp"),
            delete("never-there"),
            delete("group/b/orders-0"),
        ],
    );
    assert_eq!(store.get(b"group/a/orders-0").as_deref(), Some(&b"18"[..]));
    assert_eq!(store.get(b"group/b/orders-0"), None);
    assert_eq!(store.get(b"temp"), None);
    assert_eq!(store.get(b"empty-value").as_deref(), Some(&b""[..]));
    assert_eq!(store.len(), model.len());
    assert_eq!(contents(&store), model);

    let scan = |prefix: &[u8]| -> Vec<Vec<u8>> {
        store
            .scan_prefix(prefix)
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect()
    };
    let expected = |prefix: &[u8]| -> Vec<Vec<u8>> {
        model
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    };
    for prefix in [
        &b""[..],
        b"group/",
        b"group/a",
        b"group/a/",
        b"group/b/",
        b"group/c",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\x01\x00",
        b"zzz",
    ] {
        assert_eq!(scan(prefix), expected(prefix), "prefix {prefix:?}");
    }
    assert_eq!(
        scan(b"group/a/").len(),
        2,
        "group/ab/ is not under group/a/"
    );

    // An empty apply writes nothing.
    let end = store.stats().log_end_offset;
    assert_eq!(store.apply(&[]).unwrap(), end);

    store.close().unwrap();
    store.close().unwrap();
    assert!(matches!(
        store.apply(&[KvOp::Put(b"late", b"1")]),
        Err(Error::Closed(_))
    ));
    assert_eq!(contents(&store), model, "reads still work after close");
    drop(store);

    let store = KvStore::open(&dir, config).unwrap();
    assert_eq!(contents(&store), model);
    let report = store.open_report();
    assert_eq!(report.records_replayed, 0, "{report:?}");
    assert_eq!(report.batches_replayed, 0, "{report:?}");
    assert!(report.log_recovery.clean_shutdown, "{report:?}");
    assert_eq!(report.snapshot_entries, model.len());
    assert_eq!(
        report.snapshot.as_deref(),
        Some(kv_snapshot_file(&dir, end).as_path()),
        "close wrote a snapshot as of the log end"
    );
    assert!(report.corrupt_snapshots.is_empty());
}

// ---------------------------------------------------------------------------
// 2. A dropped store loses no durable apply.

#[test]
fn every_durable_apply_survives_dropping_the_store_without_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    // Small enough that background compactions and segment deletions run
    // between (and during) the crashes.
    let config = KvConfig {
        compact_after_bytes: 8 << 10,
        segment_bytes: 4 << 10,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model = Model::new();
    let mut replayed_somewhere = false;
    for round in 0..4 {
        let store = reopen(&dir, config.clone());
        assert_eq!(contents(&store), model, "round {round}: after reopen");
        replayed_somewhere |= store.open_report().records_replayed > 0;
        for _ in 0..300 {
            let ops: Vec<Op> = (0..1 + rng.below(5))
                .map(|_| {
                    let key = format!("key/{:02}", rng.below(60));
                    if rng.below(4) == 0 {
                        delete(key)
                    } else {
                        let len = rng.below(40);
                        put(key, (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>())
                    }
                })
                .collect();
            apply(&store, &mut model, &ops);
        }
        assert_eq!(contents(&store), model, "round {round}: before the crash");
        crash(store);
    }
    let store = reopen(&dir, config);
    assert_eq!(contents(&store), model, "after the last crash");
    assert!(!store.open_report().log_recovery.clean_shutdown);
    assert!(
        replayed_somewhere || store.open_report().records_replayed > 0,
        "some open replayed records"
    );
}

// ---------------------------------------------------------------------------
// 3. A torn last batch.

/// Batch `b` of the torn-tail test: new keys, an overwrite, a delete of the
/// previous batch's key and a padding value, so a half-applied batch would show.
fn torn_tail_batch(b: usize) -> Vec<Op> {
    let mut ops = vec![
        put(format!("a/{b:02}"), format!("a{b}")),
        put(format!("b/{b:02}"), format!("b{b}")),
        put("shared", format!("{b}")),
        put(format!("pad/{b:02}"), vec![b as u8; 120]),
    ];
    if b > 0 {
        ops.push(delete(format!("a/{:02}", b - 1)));
    }
    ops
}

#[test]
fn a_torn_last_batch_is_dropped_whole_and_every_earlier_batch_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    // One segment, no compaction: the batches lie back to back in one file.
    let config = manual_config(1 << 20);
    let store = KvStore::open(&source, config.clone()).unwrap();
    let mut model = Model::new();
    const BATCHES: usize = 12;
    for b in 0..BATCHES - 1 {
        apply(&store, &mut model, &torn_tail_batch(b));
    }
    let before_last = model.clone();
    let end_before_last = store.stats().log_end_offset;
    let segment = store
        .log()
        .segments()
        .last()
        .unwrap()
        .log_path()
        .to_path_buf();
    assert_eq!(store.log().segments().len(), 1);
    let last_start = file_len(&segment);
    apply(&store, &mut model, &torn_tail_batch(BATCHES - 1));
    let last_end = file_len(&segment);
    assert!(
        last_end - last_start > 200,
        "the last batch is a real batch"
    );
    assert_eq!(store.stats().log_bytes, last_end);
    crash(store);
    let relative = segment.strip_prefix(&source).unwrap().to_path_buf();

    // Every 7th byte inside the last batch, and its last byte.
    let mut cuts: Vec<u64> = (last_start..last_end).step_by(7).collect();
    cuts.push(last_end - 1);
    for cut in cuts {
        let dir = tmp.path().join(format!("cut-{cut}"));
        copy_tree(&source, &dir);
        truncate(&dir.join(&relative), cut);
        let store = KvStore::open(&dir, config.clone()).unwrap();
        assert_eq!(contents(&store), before_last, "cut at {cut}");
        assert_eq!(store.get(b"shared").as_deref(), Some(b"10".as_slice()));
        assert_eq!(store.get(b"a/10").as_deref(), Some(b"a10".as_slice()));
        assert_eq!(store.get(b"a/11"), None);
        let report = store.open_report();
        assert_eq!(
            report.batches_replayed,
            (BATCHES - 1) as u64,
            "cut at {cut}"
        );
        assert_eq!(
            report.log_recovery.truncated_bytes,
            cut - last_start,
            "cut at {cut}"
        );
        assert_eq!(
            store.stats().log_end_offset,
            end_before_last,
            "cut at {cut}"
        );
        if cut == last_start + 1 {
            // Offsets continue from the cut, and the repaired log reopens.
            let mut model = before_last.clone();
            apply(&store, &mut model, &[put("after", "cut")]);
            assert_eq!(store.stats().log_end_offset, end_before_last.plus(1));
            crash(store);
            let store = KvStore::open(&dir, config.clone()).unwrap();
            assert_eq!(contents(&store), model, "after a write past the cut");
            store.close().unwrap();
        } else {
            drop(store);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // The uncut copy keeps every batch.
    let store = KvStore::open(&source, config).unwrap();
    assert_eq!(contents(&store), model);
    assert_eq!(store.open_report().batches_replayed, BATCHES as u64);
    assert_eq!(store.open_report().log_recovery.truncated_bytes, 0);
}

// ---------------------------------------------------------------------------
// 4. A real kill -9.

/// Names the directory the child writes to; without it the child test returns.
const KILL_DIR_ENV: &str = "WARREN_KV_KILL_TEST_DIR";
const KILL_CHILD_TEST: &str = "kill_child_applies_until_killed";
/// Slots overwritten round-robin, so compaction has updates to fold.
const KILL_SLOTS: u64 = 64;

fn kill_config() -> KvConfig {
    KvConfig {
        compact_after_bytes: 64 << 10,
        segment_bytes: 16 << 10,
    }
}

fn kill_key(i: u64) -> String {
    format!("k{i:08}")
}

fn kill_slot_key(i: u64) -> String {
    format!("slot/{:02}", i % KILL_SLOTS)
}

/// 200 bytes naming `i`.
fn kill_slot_value(i: u64) -> Vec<u8> {
    i.to_be_bytes().repeat(25)
}

/// Kills the child if the parent test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run by [`every_acknowledged_apply_survives_a_kill_9`] in a child process:
/// apply `i` puts `k{i}` = i and overwrites one slot; `ACK i` is printed only
/// after `apply_durable` returned Ok. Every 50 applies it prints `STATS
/// <compactions> <log_start_offset>`. Bounded: 200 000 applies or 20 s.
#[test]
#[ignore = "the child half of every_acknowledged_apply_survives_a_kill_9"]
fn kill_child_applies_until_killed() {
    let Some(dir) = std::env::var_os(KILL_DIR_ENV) else {
        return;
    };
    let store = KvStore::open(Path::new(&dir), kill_config()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = std::io::stdout().lock();
    // libtest has printed "test <name> ... " without a newline: end that line.
    writeln!(out).unwrap();
    for i in 0..200_000u64 {
        if Instant::now() > deadline {
            break;
        }
        let key = kill_key(i);
        let slot = kill_slot_key(i);
        let value = kill_slot_value(i);
        store
            .apply_durable(&[
                KvOp::Put(key.as_bytes(), &i.to_be_bytes()),
                KvOp::Put(slot.as_bytes(), &value),
            ])
            .unwrap();
        writeln!(out, "ACK {i:08}").unwrap();
        if i % 50 == 0 {
            let stats = store.stats();
            writeln!(
                out,
                "STATS {} {}",
                stats.compactions, stats.log_start_offset
            )
            .unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn every_acknowledged_apply_survives_a_kill_9() {
    use std::os::unix::process::ExitStatusExt;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                KILL_CHILD_TEST,
                "--nocapture",
                "--ignored",
                "--test-threads=1",
            ])
            .env(KILL_DIR_ENV, &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut acked: Vec<u64> = Vec::new();
    let (mut compactions, mut log_start) = (0u64, 0u64);
    // Reads one line; `None` at EOF. A line cut by the kill has no newline and
    // is ignored (its apply may or may not be on disk; either is allowed).
    let mut read_line = |acked: &mut Vec<u64>, compactions: &mut u64, log_start: &mut u64| {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        let Some(line) = line.strip_suffix('\n') else {
            return Some(());
        };
        if let Some(i) = line.strip_prefix("ACK ").filter(|i| i.len() == 8) {
            acked.push(i.parse().unwrap());
        } else if let Some(stats) = line.strip_prefix("STATS ") {
            let (c, s) = stats.split_once(' ').unwrap();
            *compactions = c.parse().unwrap();
            *log_start = s.parse().unwrap();
        }
        Some(())
    };
    // Kill once several hundred applies were acknowledged and background
    // compactions have written snapshots and deleted segments. Bounded by the
    // child's own limit: past it, EOF.
    while acked.len() < 500 || compactions < 3 || log_start == 0 {
        assert!(
            read_line(&mut acked, &mut compactions, &mut log_start).is_some(),
            "the child stopped before the kill: {} acks, {compactions} compactions, \
             log start {log_start}",
            acked.len()
        );
    }
    child.0.kill().unwrap();
    while read_line(&mut acked, &mut compactions, &mut log_start).is_some() {}
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not finished: {status:?}");

    let last_acked = *acked.last().unwrap();
    assert!(
        acked.iter().copied().eq(0..=last_acked),
        "acks are sequential: {} acks, last {last_acked}",
        acked.len()
    );
    let store = KvStore::open(&dir, kill_config()).unwrap();
    let report = store.open_report().clone();
    assert!(
        report.snapshot.is_some(),
        "started from a snapshot: {report:?}"
    );
    assert!(store.stats().log_start_offset > Offset(0));
    // Every acknowledged apply is there.
    for i in 0..=last_acked {
        assert_eq!(
            store.get(kill_key(i).as_bytes()).as_deref(),
            Some(&i.to_be_bytes()[..]),
            "acknowledged apply {i} (of {last_acked}) is lost; {report:?}"
        );
    }
    // And the map is exactly the fold of the first `applied` applies: no gap,
    // no half batch. At most two applies past the last complete ACK line can be
    // on disk: one whose line the kill cut, and the next one, in flight.
    let applied = (0..last_acked + 10)
        .take_while(|i| store.get(kill_key(*i).as_bytes()).is_some())
        .count() as u64;
    assert!(
        applied > last_acked && applied <= last_acked + 3,
        "{applied} applies on disk, last ack {last_acked}"
    );
    let mut expected = Model::new();
    for i in 0..applied {
        expected.insert(kill_key(i).into_bytes(), i.to_be_bytes().to_vec());
        expected.insert(kill_slot_key(i).into_bytes(), kill_slot_value(i));
    }
    assert!(
        contents(&store) == expected,
        "the map is not the fold of the first {applied} applies"
    );
    // The recovered store keeps working and closes cleanly.
    store
        .apply_durable(&[KvOp::Put(b"after", b"kill")])
        .unwrap();
    store.close().unwrap();
    drop(store);
    let store = KvStore::open(&dir, kill_config()).unwrap();
    assert_eq!(store.open_report().records_replayed, 0);
    assert_eq!(store.len(), expected.len() + 1);
}

// ---------------------------------------------------------------------------
// 5. Compaction.

#[test]
fn compaction_deletes_the_log_it_covers_and_open_replays_only_what_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let config = manual_config(64 << 10);
    let store = KvStore::open(&dir, config.clone()).unwrap();
    let mut model = Model::new();
    // 100 000 updates of 1 000 keys, 100 per apply, one sync at the end.
    const UPDATES: u64 = 100_000;
    let mut end = Offset(0);
    for first in (0..UPDATES).step_by(100) {
        let ops: Vec<Op> = (first..first + 100)
            .map(|j| put(format!("key/{:04}", j % 1000), j.to_be_bytes()))
            .collect();
        end = store.apply(&kv_ops(&ops)).unwrap();
        apply_to_model(&mut model, &ops);
    }
    store.sync_to(end).unwrap();
    assert_eq!(end, Offset(UPDATES));
    let before = store.stats();
    assert!(before.log_segments > 10, "{before:?}");
    let all_records_bytes = before.log_bytes;
    assert!(all_records_bytes > 2_000_000, "{before:?}");

    store.compact().unwrap();
    let after = store.stats();
    assert_eq!(after.compactions, 1);
    assert_eq!(after.snapshot_offset, end);
    assert_eq!(after.bytes_since_snapshot, 0);
    assert_eq!(after.log_segments, 1, "only the active segment is left");
    assert!(after.log_bytes <= 64 << 10, "{after:?}");
    assert_eq!(snapshot_files(&dir), vec![kv_snapshot_file(&dir, end)]);
    // A second compaction with nothing new writes nothing.
    store.compact().unwrap();
    assert_eq!(store.stats().compactions, 1);

    let mut records = 0;
    for a in 0..10u64 {
        let mut ops: Vec<Op> = (0..5)
            .map(|k| put(format!("key/{:04}", a * 7 + k), b"new"))
            .collect();
        ops.push(put(format!("fresh/{a}"), a.to_be_bytes()));
        ops.push(delete(format!("key/{:04}", 900 + a)));
        records += ops.len() as u64;
        apply(&store, &mut model, &ops);
    }
    crash(store);

    let store = KvStore::open(&dir, config).unwrap();
    assert_eq!(contents(&store), model);
    let report = store.open_report();
    assert_eq!(report.records_replayed, records, "{report:?}");
    assert_eq!(report.batches_replayed, 10, "{report:?}");
    assert_eq!(report.snapshot_offset, end);
    assert_eq!(report.snapshot_entries, 1000);
    assert_eq!(
        report.snapshot.as_deref(),
        Some(kv_snapshot_file(&dir, end).as_path())
    );
    let stats = store.stats();
    assert!(stats.log_segments <= 2, "{stats:?}");
    assert!(
        stats.log_bytes * 20 < all_records_bytes,
        "the log ({} bytes) is far below the {all_records_bytes} bytes of all records",
        stats.log_bytes
    );
    assert!(stats.log_start_offset > Offset(0));
}

// ---------------------------------------------------------------------------
// 6. Background compaction.

#[test]
fn background_compaction_keeps_the_log_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let config = KvConfig {
        compact_after_bytes: 16 << 10,
        segment_bytes: 4 << 10,
    };
    let store = KvStore::open(&dir, config.clone()).unwrap();
    let mut model = Model::new();
    // 100 live keys of about 30 bytes: the snapshot (~3 KiB) stays below a
    // quarter of `compact_after_bytes`, which is then the threshold.
    let mut i = 0u64;
    let mut next_ops = || {
        let ops: Vec<Op> = (0..10)
            .map(|_| {
                i += 1;
                put(format!("key/{:03}", i % 100), i.to_be_bytes())
            })
            .collect();
        ops
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..20_000 {
        apply(&store, &mut model, &next_ops());
        if store.stats().compactions >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", store.stats());
    }
    let stats = store.stats();
    assert!(stats.compactions >= 10, "{stats:?}");
    assert_eq!(stats.compaction_failures, 0);
    // Bound: a partial segment below the snapshot, plus what was appended since
    // it: at most about the threshold plus what arrived during one compaction.
    let threshold = (16u64 << 10).max(stats.snapshot_bytes * 4);
    let bound = 2 * threshold + u64::from(config.segment_bytes);
    // The last compaction may still be running or may just have been skipped
    // (one was running); a few more applies let it catch up. Bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..10_000 {
        if store.stats().log_bytes <= bound || Instant::now() > deadline {
            break;
        }
        apply(&store, &mut model, &next_ops());
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = store.stats();
    assert!(stats.log_bytes <= bound, "bound {bound}: {stats:?}");
    let appended = store
        .log()
        .stats()
        .bytes_appended
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(appended >= 4 * bound, "appended {appended}, bound {bound}");
    assert!(stats.log_start_offset > Offset(0));
    assert!(
        snapshot_files(&dir).len() <= 2,
        "{:?}",
        snapshot_files(&dir)
    );
    assert_eq!(contents(&store), model);
    store.close().unwrap();
    drop(store);
    let store = KvStore::open(&dir, config).unwrap();
    assert_eq!(contents(&store), model);
    assert_eq!(store.open_report().records_replayed, 0);
    assert_eq!(snapshot_files(&dir).len(), 1);
}

// ---------------------------------------------------------------------------
// 7. Corrupt, truncated and leftover snapshots.

/// A closed store whose log lost the segments below its snapshot: 4 KiB
/// segments, two compactions with rolls between. Returns the model, the older
/// snapshot's bytes (deleted by the second compaction) and both snapshot paths.
fn store_with_deleted_log(dir: &Path) -> (Model, Vec<u8>, PathBuf, PathBuf) {
    let store = KvStore::open(dir, manual_config(4 << 10)).unwrap();
    let mut model = Model::new();
    for b in 0..100u64 {
        apply(
            &store,
            &mut model,
            &[
                put(format!("k/{:02}", b % 40), b.to_be_bytes()),
                put("b", "x"),
            ],
        );
    }
    store.compact().unwrap();
    let older = kv_snapshot_file(dir, store.stats().snapshot_offset);
    let older_bytes = std::fs::read(&older).unwrap();
    for b in 100..200u64 {
        apply(
            &store,
            &mut model,
            &[
                put(format!("k/{:02}", b % 40), b.to_be_bytes()),
                delete("b"),
            ],
        );
    }
    store.close().unwrap();
    let stats = store.stats();
    let newest = kv_snapshot_file(dir, stats.snapshot_offset);
    assert!(
        stats.log_start_offset > Offset(0),
        "segments were deleted: {stats:?}"
    );
    assert_eq!(snapshot_files(dir), vec![newest.clone()]);
    (model, older_bytes, older, newest)
}

/// Damages the snapshot file at the path, which is `len` bytes long.
type Damage = fn(&Path, u64);

fn assert_open_fails_naming(dir: &Path, config: KvConfig, path: &Path) {
    match KvStore::open(dir, config) {
        Err(Error::CorruptFile { path: p, reason }) => {
            assert_eq!(p, path, "{reason}");
        }
        other => panic!("expected CorruptFile naming {}: {other:?}", path.display()),
    }
}

#[test]
fn a_corrupt_or_truncated_snapshot_whose_log_is_gone_fails_open_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let (model, older_bytes, older, newest) = store_with_deleted_log(&source);
    let config = manual_config(4 << 10);
    let len = file_len(&newest);

    let damages: [(&str, Damage); 4] = [
        ("flipped middle byte", |p, len| flip_byte(p, len / 2)),
        ("flipped magic", |p, _| flip_byte(p, 0)),
        ("flipped checksum", |p, len| flip_byte(p, len - 1)),
        ("truncated", |p, len| truncate(p, len / 2)),
    ];
    for (what, damage) in damages {
        let dir = tmp.path().join(what.replace(' ', "-"));
        copy_tree(&source, &dir);
        let newest = dir.join(newest.file_name().unwrap());
        damage(&newest, len);
        assert_open_fails_naming(&dir, config.clone(), &newest);
        // An older valid snapshot does not help: the log no longer reaches back
        // to it.
        let older = dir.join(older.file_name().unwrap());
        std::fs::write(&older, &older_bytes).unwrap();
        assert_open_fails_naming(&dir, config.clone(), &newest);
    }
    // The undamaged store opens.
    let store = KvStore::open(&source, config).unwrap();
    assert_eq!(contents(&store), model);
}

#[test]
fn a_corrupt_snapshot_falls_back_to_an_older_one_or_offset_0_while_the_log_holds_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    // 1 MiB segments: compaction deletes nothing, the log starts at offset 0.
    let config = manual_config(1 << 20);
    let store = KvStore::open(&source, config.clone()).unwrap();
    let mut model = Model::new();
    let step = |store: &KvStore, model: &mut Model, from: u64| {
        for b in from..from + 50 {
            apply(
                store,
                model,
                &[
                    put(format!("k/{:02}", b % 30), b.to_be_bytes()),
                    delete(format!("k/{:02}", (b + 7) % 30)),
                ],
            );
        }
    };
    step(&store, &mut model, 0);
    store.compact().unwrap();
    let older = kv_snapshot_file(&source, store.stats().snapshot_offset);
    let older_bytes = std::fs::read(&older).unwrap();
    step(&store, &mut model, 50);
    store.compact().unwrap();
    let newest = kv_snapshot_file(&source, store.stats().snapshot_offset);
    assert_eq!(snapshot_files(&source), vec![newest.clone()]);
    // More applies after the newest snapshot, then a crash.
    step(&store, &mut model, 100);
    assert_eq!(store.stats().log_start_offset, Offset(0));
    crash(store);

    for (case, restore_older) in [("to-zero", false), ("to-older", true)] {
        for truncated in [false, true] {
            let dir = tmp.path().join(format!("{case}-{truncated}"));
            copy_tree(&source, &dir);
            let newest = dir.join(newest.file_name().unwrap());
            let older = dir.join(older.file_name().unwrap());
            if truncated {
                truncate(&newest, file_len(&newest) - 3);
            } else {
                flip_byte(&newest, 30);
            }
            if restore_older {
                // As a crash between a snapshot's rename and the removal of the
                // one before it leaves them.
                std::fs::write(&older, &older_bytes).unwrap();
            }
            let store = KvStore::open(&dir, config.clone()).unwrap();
            assert_eq!(contents(&store), model, "{case} {truncated}");
            let report = store.open_report().clone();
            assert_eq!(report.corrupt_snapshots, vec![newest.clone()], "{report:?}");
            if restore_older {
                assert_eq!(report.snapshot.as_deref(), Some(older.as_path()));
                assert_eq!(report.records_replayed, 200, "{report:?}");
            } else {
                assert_eq!(report.snapshot, None);
                assert_eq!(report.snapshot_offset, Offset(0));
                assert_eq!(report.records_replayed, 300, "{report:?}");
            }
            // Closing writes a good snapshot and removes the bad one.
            store.close().unwrap();
            drop(store);
            assert_eq!(snapshot_files(&dir).len(), 1, "{:?}", snapshot_files(&dir));
            let store = KvStore::open(&dir, config.clone()).unwrap();
            assert_eq!(contents(&store), model);
            assert!(store.open_report().corrupt_snapshots.is_empty());
        }
    }
}

#[test]
fn a_leftover_snapshot_temp_file_is_removed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let config = manual_config(1 << 20);
    let store = KvStore::open(&dir, config.clone()).unwrap();
    let mut model = Model::new();
    for b in 0..20u64 {
        apply(
            &store,
            &mut model,
            &[put(format!("k/{b}"), b.to_be_bytes())],
        );
    }
    store.compact().unwrap();
    let snapshot_offset = store.stats().snapshot_offset;
    apply(&store, &mut model, &[put("k/after", "1")]);
    crash(store);
    // A compaction cut short: its temp file holds half a snapshot.
    let leftover = tmp_path(&kv_snapshot_file(&dir, Offset(21)));
    assert!(leftover.to_str().unwrap().ends_with(".kv.tmp"));
    std::fs::write(&leftover, b"WKVS\x01half a snapshot").unwrap();

    let store = KvStore::open(&dir, config).unwrap();
    assert!(!leftover.exists());
    assert_eq!(contents(&store), model);
    let report = store.open_report();
    assert!(report.corrupt_snapshots.is_empty(), "{report:?}");
    assert_eq!(report.snapshot_offset, snapshot_offset);
    assert_eq!(report.records_replayed, 1);
}

// ---------------------------------------------------------------------------
// 8. The directory lock.

#[test]
fn a_second_store_on_the_same_dir_gets_data_dir_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    let config = KvConfig::default();
    let first = KvStore::open(&dir, config.clone()).unwrap();
    first.apply_durable(&[KvOp::Put(b"k", b"v")]).unwrap();
    match KvStore::open(&dir, config.clone()) {
        Err(Error::DataDirLocked { path }) => assert_eq!(path, dir),
        other => panic!("expected DataDirLocked: {other:?}"),
    }
    // The failed open changed nothing.
    assert_eq!(first.get(b"k").as_deref(), Some(&b"v"[..]));
    first.apply_durable(&[KvOp::Put(b"k2", b"v2")]).unwrap();
    first.close().unwrap();
    drop(first);
    let second = KvStore::open(&dir, config).unwrap();
    assert_eq!(second.len(), 2);
}

// ---------------------------------------------------------------------------
// 9. PartitionLog::delete_segments_before.

#[test]
fn delete_segments_before_keeps_the_segment_holding_the_offset_and_the_active_one() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_config(4096);
    let log = PartitionLog::open(tmp.path(), "kvlog-0", config.clone()).unwrap();
    // 2 records of ~200 bytes per batch: about 8 batches per 4 KiB segment.
    for i in 0..120 {
        log.append(&batch(i, 2, 200, 0)).unwrap();
    }
    let segments = log.segments();
    assert!(segments.len() >= 10, "{} segments", segments.len());
    let base = |i: usize| segments[i].base_offset();
    let end = log.log_end_offset();
    let read_start = |log: &PartitionLog, at: Offset| {
        log.read_batches(at, 1).unwrap()[0].header().base_offset as u64
    };
    let out_of_range = |log: &PartitionLog, at: Offset| {
        matches!(log.read(at, 1000), Err(Error::OffsetOutOfRange { .. }))
    };

    // Offset 0, and an offset inside the first segment: nothing goes.
    for n in [
        Offset(0),
        base(0).plus(1),
        base(1).plus(u64::MAX).min(Offset(base(1).0 - 1)),
    ] {
        let outcome = log.delete_segments_before(n).unwrap();
        assert_eq!(outcome.segments_deleted, 0, "n = {n}");
        assert_eq!(outcome.log_start_offset, Offset(0));
        assert_eq!(log.segments().len(), segments.len());
    }

    // Inside segment 3: segments 0..3 go, segment 3 (holding n) stays.
    let n = base(3).plus(3);
    assert!(n < segments[3].next_offset());
    let outcome = log.delete_segments_before(n).unwrap();
    assert_eq!(outcome.segments_deleted, 3);
    assert_eq!(
        outcome.bytes_deleted,
        segments[..3]
            .iter()
            .map(|s| u64::from(s.size()))
            .sum::<u64>()
    );
    assert_eq!(outcome.log_start_offset, base(3));
    assert_eq!(log.log_start_offset(), base(3));
    for s in &segments[..3] {
        assert!(!s.log_path().exists(), "{}", s.log_path().display());
        assert!(!s.log_path().with_extension("index").exists());
        assert!(!s.log_path().with_extension("timeindex").exists());
    }
    assert!(segments[3].log_path().exists());
    assert!(out_of_range(&log, Offset(base(3).0 - 1)));
    assert!(out_of_range(&log, Offset(0)));
    assert_eq!(read_start(&log, base(3)), base(3).0);
    // n lies inside the batch starting at base(3) + 2 (two records per batch).
    assert_eq!(read_start(&log, n), n.0 - 1);
    // Repeating it deletes nothing more.
    assert_eq!(log.delete_segments_before(n).unwrap().segments_deleted, 0);

    // Exactly at a segment boundary: the segment ending there goes, the one
    // starting there stays.
    let outcome = log.delete_segments_before(base(5)).unwrap();
    assert_eq!(outcome.segments_deleted, 2);
    assert_eq!(log.log_start_offset(), base(5));
    assert_eq!(read_start(&log, base(5)), base(5).0);
    assert!(out_of_range(&log, Offset(base(5).0 - 1)));

    // Past the log end: everything but the active segment.
    let active = segments.last().unwrap().base_offset();
    let outcome = log.delete_segments_before(Offset(u64::MAX)).unwrap();
    assert_eq!(outcome.segments_deleted, segments.len() - 6);
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.log_start_offset(), active);
    assert!(segments.last().unwrap().log_path().exists());
    assert_eq!(read_start(&log, active), active.0);
    assert!(out_of_range(&log, Offset(active.0 - 1)));
    assert!(log.read(end, 1000).unwrap().slices.is_empty(), "at the end");
    // A lone active segment is never deleted.
    assert_eq!(
        log.delete_segments_before(Offset(u64::MAX))
            .unwrap()
            .segments_deleted,
        0
    );
    assert_eq!(log.segments().len(), 1);

    // Appends continue at the end, and the new start survives a reopen.
    let info = log.append(&batch(999, 2, 200, 0)).unwrap();
    assert_eq!(info.base_offset, end);
    log.close().unwrap();
    assert!(matches!(
        log.delete_segments_before(Offset(u64::MAX)),
        Err(Error::Closed(_))
    ));
    drop(log);
    let log = PartitionLog::open(tmp.path(), "kvlog-0", config).unwrap();
    assert_eq!(log.log_start_offset(), active);
    assert_eq!(log.log_end_offset(), end.plus(2));
    assert!(out_of_range(&log, Offset(active.0 - 1)));
    assert_eq!(read_start(&log, end), end.0);
}
