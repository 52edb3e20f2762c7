//! Throughput and open-time figures of the storage engine, each measured against the
//! machine's own reference in the same run.
//!
//! A plain `main` (`harness = false`): `cargo bench --bench storage_throughput` runs
//! every figure `WARREN_BENCH_RUNS` times and prints a Markdown table — figure, Warren
//! median, machine reference, its median, ratio, target, met? — then notes. Warren and
//! reference runs interleave (cache-bound figures after one untimed warm-up; the fsync
//! figure in a new random order per run). Progress and every run's value go to stderr.
//!
//! Figures:
//! 1. `append`: `PartitionLog::append` of one ~1 MiB batch (1000 x 1 KiB records, built
//!    once) over and over, durability `none`, vs a `write(2)` loop of the same bytes.
//! 2. `fsync`: `append_durable` (group commit), 8 appenders and 1 appender, each sending
//!    64 KiB batches (63 x 1 KiB records), vs `dd bs=1M count=1024 conv=fdatasync`, the
//!    same write + one `fdatasync` in Rust, 8 threads doing pwrite + an ideal group
//!    `fdatasync` (same shape, no Warren) and one thread doing write + `fdatasync` per
//!    batch. Two what-ifs built on the public API: a hand-rolled condvar group commit
//!    over `append` + `sync_to` (now the same design as `sync_to` itself), and one
//!    appender with 8 batches in flight.
//! 3. `read`: sequential read of a 1 GiB segment that is in the page cache, through
//!    `PartitionLog::read` + `FileSlice::read_into` into one reused `Vec` (and
//!    through `read_batches`), vs memcpy and a `pread` loop of the file.
//! 4. `lookup`: `OffsetIndex::lookup` and `PartitionLog::read(random, 1 KiB)` in a 1 GiB
//!    segment of ~4 KiB batches: one index entry per batch, the densest index the
//!    default 4 KiB `index_interval_bytes` gives.
//! 5. `open`: `PartitionLog::open` of a 10-segment (10 GiB) log after `close()`, and
//!    after a crash (drop without close, tail on disk) as a function of the active
//!    segment's size, warm and (largest size) cold page cache.
//!
//! Environment:
//! - `WARREN_BENCH_SCALE` (default 1): multiplies every size (segments, logs, totals);
//!   `0.05` is a quick run of a few seconds.
//! - `WARREN_BENCH_RUNS` (default 5): timed runs per figure; medians are reported.
//! - `WARREN_BENCH_ONLY`: comma-separated subset of `append,fsync,read,lookup,open`.
//! - `WARREN_BENCH_DIR`: parent of the temp dirs (default `target/bench-tmp` in the
//!   workspace). Must be the real disk: a tmpfs is refused.
//!
//! Without `--bench` on the command line (`cargo test --benches`) it exits at once, so
//! tests never pay for it.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use tempfile::TempDir;
use warren_protocol::{Compression, RecordBatchBuilder};
use warren_storage::checkpoint::Checkpoint;
use warren_storage::offset_index::OffsetIndex;
use warren_storage::{Durability, LogConfig, Offset, PartitionLog};
use warren_suite::{Rng, bench_root};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Longest any single timed run may take; a run that hits it reports what it did.
const RUN_TIME_CAP: Duration = Duration::from_secs(20);
/// Longest we wait for the background flush of rolled segments.
const FLUSH_WAIT_CAP: Duration = Duration::from_secs(300);
/// Kinds of run in the fsync figure (Warren, references, what-ifs).
const FSYNC_KINDS: usize = 8;
/// Random lookups per timed block; a block's mean is one sample.
const LOOKUP_BLOCK: usize = 1000;
/// Timed lookup blocks per run.
const LOOKUP_BLOCKS_PER_RUN: usize = 200;
/// `statfs` magic of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "storage_throughput: not run without --bench; use `cargo bench --bench storage_throughput`"
        );
        return Ok(());
    }
    let mut bench = Bench::from_env()?;
    eprintln!(
        "storage_throughput: scale {}, {} runs, temp dirs under {}",
        bench.scale,
        bench.runs,
        bench.root.display()
    );
    if bench.selected("append") {
        fig_append(&mut bench)?;
    }
    if bench.selected("fsync") {
        fig_fsync(&mut bench)?;
    }
    if bench.selected("read") || bench.selected("lookup") {
        let small = LogFixture::build(&bench, "read-4k", 4)?;
        if bench.selected("read") {
            let big = LogFixture::build(&bench, "read-1m", 1000)?;
            fig_read(&mut bench, &big, &small)?;
        }
        if bench.selected("lookup") {
            fig_lookup(&mut bench, &small)?;
        }
    }
    if bench.selected("open") {
        fig_open(&mut bench)?;
    }
    bench.print();
    Ok(())
}

// ---------------------------------------------------------------------------------
// Harness: settings, rows, medians, the table.
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Unit {
    /// Throughput, 10^9 bytes per second; higher is better.
    GBps,
    /// Latency in microseconds; lower is better.
    Micros,
    /// Time in milliseconds; lower is better.
    Millis,
}

impl Unit {
    fn show(self, v: f64) -> String {
        if !v.is_finite() {
            return "-".into();
        }
        match self {
            Unit::GBps => format!("{v:.2} GB/s"),
            Unit::Micros if v < 10.0 => format!("{v:.3} µs"),
            Unit::Micros => format!("{v:.1} µs"),
            Unit::Millis if v < 10.0 => format!("{v:.2} ms"),
            Unit::Millis => format!("{v:.0} ms"),
        }
    }
}

struct Row {
    figure: String,
    unit: Unit,
    warren: f64,
    reference_name: String,
    reference: f64,
    target: String,
    met: Option<bool>,
}

struct Bench {
    scale: f64,
    runs: usize,
    only: Option<Vec<String>>,
    root: PathBuf,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Bench {
    fn from_env() -> Result<Bench> {
        let scale = match std::env::var("WARREN_BENCH_SCALE") {
            Ok(s) => s.parse::<f64>().context("WARREN_BENCH_SCALE")?,
            Err(_) => 1.0,
        };
        ensure!(
            scale > 0.0 && scale <= 4.0,
            "WARREN_BENCH_SCALE must be in (0, 4]"
        );
        let runs = match std::env::var("WARREN_BENCH_RUNS") {
            Ok(s) => s.parse::<usize>().context("WARREN_BENCH_RUNS")?,
            Err(_) => 5,
        };
        ensure!((1..=50).contains(&runs), "WARREN_BENCH_RUNS must be 1..=50");
        let only = std::env::var("WARREN_BENCH_ONLY")
            .ok()
            .map(|s| s.split(',').map(|p| p.trim().to_string()).collect());
        let root = bench_root().context("create the bench temp root")?;
        let fs = rustix::fs::statfs(&root).with_context(|| format!("statfs {}", root.display()))?;
        // f_type is a C long (a type alias, so the cast is not flagged as unnecessary).
        let fs_type = fs.f_type as i64;
        ensure!(
            fs_type != TMPFS_MAGIC,
            "{} is a tmpfs; set WARREN_BENCH_DIR to a directory on a real disk",
            root.display()
        );
        Ok(Bench {
            scale,
            runs,
            only,
            root,
            rows: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn selected(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| o == name))
    }

    /// `full` bytes at the configured scale, at least `floor`.
    fn scaled(&self, full: u64, floor: u64) -> u64 {
        ((full as f64 * self.scale) as u64).max(floor)
    }

    /// The segment size every figure uses: 1 GiB at full scale.
    fn segment_bytes(&self) -> u32 {
        self.scaled(GIB, 16 * MIB).min(GIB) as u32
    }

    fn tempdir(&self, name: &str) -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("warren-{name}-"))
            .tempdir_in(&self.root)
            .with_context(|| format!("temp dir in {}", self.root.display()))
    }

    #[expect(clippy::too_many_arguments, reason = "one table row")]
    fn row(
        &mut self,
        figure: impl Into<String>,
        unit: Unit,
        warren: &[f64],
        reference_name: impl Into<String>,
        reference: &[f64],
        target: impl Into<String>,
        met: impl FnOnce(f64, f64) -> Option<bool>,
    ) {
        let (w, r) = (median(warren), median(reference));
        let row = Row {
            figure: figure.into(),
            unit,
            warren: w,
            reference_name: reference_name.into(),
            reference: r,
            target: target.into(),
            met: met(w, r),
        };
        eprintln!(
            "  {}: Warren {} (runs {}), {} {} (runs {})",
            row.figure,
            unit.show(w),
            show_all(unit, warren),
            row.reference_name,
            unit.show(r),
            show_all(unit, reference),
        );
        self.rows.push(row);
    }

    fn note(&mut self, note: String) {
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    fn print(&self) {
        println!();
        println!(
            "Storage figures: scale {}, median of {} runs; ratio = Warren / reference \
             (throughput: higher is better; times: lower is better).",
            self.scale, self.runs
        );
        println!();
        println!(
            "| Figure | Warren (median) | Machine reference | Reference (median) | Ratio | Target | Met? |"
        );
        println!("|---|---|---|---|---|---|---|");
        for r in &self.rows {
            let ratio = r.warren / r.reference;
            let ratio = if ratio.is_finite() {
                format!("{ratio:.2}x")
            } else {
                "-".into()
            };
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "-",
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.figure,
                r.unit.show(r.warren),
                r.reference_name,
                r.unit.show(r.reference),
                ratio,
                r.target,
                met
            );
        }
        if !self.notes.is_empty() {
            println!();
            for n in &self.notes {
                println!("- {n}");
            }
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn show_all(unit: Unit, values: &[f64]) -> String {
    let mut shown: Vec<String> = values.iter().take(12).map(|v| unit.show(*v)).collect();
    if values.len() > shown.len() {
        shown.push(format!("... {} in all", values.len()));
    }
    shown.join(", ")
}

fn gbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A batch of `records` records with 1 KiB random values and no key, built once.
fn build_batch(records: usize, seed: u64) -> Result<Bytes> {
    let mut rng = Rng(seed | 1);
    let mut value = vec![0u8; KIB as usize];
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder.reserve(records * (value.len() + 16));
    for i in 0..records {
        rng.fill(&mut value);
        builder.append(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    Ok(builder.build()?)
}

fn log_config(durability: Durability, segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        durability,
        ..LogConfig::default()
    }
}

/// Writes back all dirty pages (untimed) so one run's write-back does not land in
/// the next run's measurement.
fn settle() {
    rustix::fs::sync();
}

/// Drops `path`'s pages from the page cache (they must be clean: call [`settle`]).
fn evict(path: &Path) -> Result<()> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)
        .with_context(|| format!("fadvise {}", path.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// 1. Append, durability none.
// ---------------------------------------------------------------------------------

fn fig_append(b: &mut Bench) -> Result<()> {
    eprintln!("[append] 1000 x 1 KiB batches, durability none");
    let batch = build_batch(1000, 1)?;
    let segment_bytes = b.segment_bytes();
    let count = u64::from(segment_bytes) / batch.len() as u64;
    let (mut warren, mut plain) = (Vec::new(), Vec::new());
    for run in 0..=b.runs {
        for warren_first in [run % 2 == 0, run % 2 == 1] {
            settle();
            if warren_first {
                let v = append_run(b, &batch, count, segment_bytes)?;
                if run > 0 {
                    warren.push(v);
                }
            } else {
                let v = write_loop_run(b, &batch, count)?;
                if run > 0 {
                    plain.push(v);
                }
            }
        }
    }
    b.row(
        format!(
            "1. append, {} B batches (1000 x 1 KiB), durability none, {} MiB",
            batch.len(),
            count * batch.len() as u64 / MIB
        ),
        Unit::GBps,
        &warren,
        "write(2) loop, same bytes",
        &plain,
        "≥ 2 GB/s and ≥ 0.67x (within 1.5x)",
        |w, r| Some(w >= 2.0 && w / r >= 1.0 / 1.5),
    );
    Ok(())
}

fn append_run(b: &Bench, batch: &[u8], count: u64, segment_bytes: u32) -> Result<f64> {
    let dir = b.tempdir("append")?;
    let log = PartitionLog::open(
        dir.path(),
        "bench-0",
        log_config(Durability::None, segment_bytes),
    )?;
    let mut bytes = 0u64;
    let start = Instant::now();
    for _ in 0..count {
        log.append(batch)?;
        bytes += batch.len() as u64;
        if start.elapsed() > RUN_TIME_CAP {
            break;
        }
    }
    let elapsed = start.elapsed();
    // No close: it would fsync the segment, which is not part of this figure.
    drop(log);
    Ok(gbps(bytes, elapsed))
}

fn write_loop_run(b: &Bench, batch: &[u8], count: u64) -> Result<f64> {
    let dir = b.tempdir("write")?;
    let path = dir.path().join("plain.log");
    let mut file = File::create(&path)?;
    let mut bytes = 0u64;
    let start = Instant::now();
    for _ in 0..count {
        file.write_all(batch)?;
        bytes += batch.len() as u64;
        if start.elapsed() > RUN_TIME_CAP {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(file);
    Ok(gbps(bytes, elapsed))
}

// ---------------------------------------------------------------------------------
// 2. Append, durability fsync, group commit.
// ---------------------------------------------------------------------------------

fn fig_fsync(b: &mut Bench) -> Result<()> {
    let batch = build_batch(63, 2)?;
    ensure!(
        batch.len() as u64 <= 64 * KIB,
        "64 KiB batch is {}",
        batch.len()
    );
    // dd's 1 GiB for the 8-appender figure and the references; the single-writer
    // runs are steady after a few MiB, so they write a quarter of that.
    let total = b.scaled(GIB, 16 * MIB);
    let count = total / batch.len() as u64;
    let count_single = count / 4;
    let dd_mib = total / MIB;
    eprintln!(
        "[fsync] {} B batches (63 x 1 KiB), {} MiB per 8-appender run, {} MiB per 1-appender run",
        batch.len(),
        count * batch.len() as u64 / MIB,
        count_single * batch.len() as u64 / MIB
    );
    let (mut w8, mut w1, mut dd, mut rust_dd, mut sync_each) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut gc8, mut piped, mut per_fsync, mut gc_per_fsync) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut raw8, mut raw_per_fsync) = (Vec::new(), Vec::new());
    // No warm-up run: every run here is dominated by the disk, not by caches. The
    // kinds run in a new random order each run, because on a virtual disk the speed
    // of a large write depends on what the disk did just before (on the reference
    // machine, a 1 GiB dd right after a heavy fdatasync workload ran at 0.5 GB/s and
    // the one after it at 2.2 GB/s). Files are kept (out of the page cache) until the
    // end, so no deletion, and with an online-`discard` mount no discard, overlaps a
    // timed run.
    let mut kept = Vec::new();
    let mut rng = Rng(0x0dd5_eed5);
    for _ in 0..b.runs {
        let mut order: Vec<usize> = (0..FSYNC_KINDS).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for kind in order {
            let dir = b.tempdir("fsync")?;
            let path = dir.path();
            settle();
            match kind {
                0 => {
                    let (v, n) = fsync_run(path, &batch, count, 8, Sync::AppendDurable)?;
                    w8.push(v);
                    per_fsync.push(n);
                }
                1 => dd.push(dd_run(path, dd_mib)?),
                2 => rust_dd.push(write_then_fdatasync_run(path, dd_mib)?),
                3 => {
                    let (v, n) = fsync_run(path, &batch, count, 8, Sync::CondvarGroupCommit)?;
                    gc8.push(v);
                    gc_per_fsync.push(n);
                }
                4 => {
                    let (v, n) = raw_group_commit_run(path, &batch, count, 8)?;
                    raw8.push(v);
                    raw_per_fsync.push(n);
                }
                5 => w1.push(fsync_run(path, &batch, count_single, 1, Sync::AppendDurable)?.0),
                6 => sync_each.push(fdatasync_each_run(path, &batch, count_single)?),
                _ => piped.push(fsync_run(path, &batch, count_single, 1, Sync::Pipelined(8))?.0),
            }
            // Keep the files, but not their pages: the cache stays as empty as it began.
            settle();
            for entry in std::fs::read_dir(path)? {
                evict(&entry?.path())?;
            }
            kept.push(dir);
        }
    }
    drop(kept);
    let ddname = format!("dd bs=1M count={dd_mib} conv=fdatasync");
    let rustname = "write 1 MiB x N + fdatasync (Rust)";
    let len = batch.len();
    let fig8 = format!("2a. append_durable fsync, 8 appenders x {len} B batches");
    let fig1 = format!("2b. append_durable fsync, 1 appender x {len} B batches");
    let at_least = |x: f64| move |w: f64, r: f64| Some(w / r >= x);
    b.row(
        fig8.clone(),
        Unit::GBps,
        &w8,
        ddname.clone(),
        &dd,
        "≥ 0.70x dd",
        at_least(0.70),
    );
    b.row(
        fig8.clone(),
        Unit::GBps,
        &w8,
        rustname,
        &rust_dd,
        "≥ 0.70x",
        at_least(0.70),
    );
    b.row(
        fig8,
        Unit::GBps,
        &w8,
        format!("8 threads: pwrite {len} B + shared fdatasync (ideal group commit, Rust)"),
        &raw8,
        "(info) same shape, no Warren",
        |_, _| None,
    );
    b.row(
        "2a'. what-if: 8 appenders, append + condvar group commit over sync_to",
        Unit::GBps,
        &gc8,
        ddname.clone(),
        &dd,
        "(info) ≥ 0.70x dd",
        at_least(0.70),
    );
    b.row(
        fig1.clone(),
        Unit::GBps,
        &w1,
        ddname.clone(),
        &dd,
        "≥ 0.50x dd",
        at_least(0.50),
    );
    b.row(
        fig1.clone(),
        Unit::GBps,
        &w1,
        rustname,
        &rust_dd,
        "≥ 0.50x",
        at_least(0.50),
    );
    b.row(
        fig1,
        Unit::GBps,
        &w1,
        format!("write {len} B + fdatasync per batch, 1 thread"),
        &sync_each,
        "(info: the single-writer floor)",
        |_, _| None,
    );
    b.row(
        "2b'. what-if: 1 appender, 8 batches in flight (append x 8, then sync_to)",
        Unit::GBps,
        &piped,
        ddname,
        &dd,
        "(info) ≥ 0.50x dd",
        at_least(0.50),
    );
    b.note(format!(
        "2a: append_durable shared one fdatasync among {:.1} appends (median, 8 appenders); \
         the condvar group commit what-if among {:.1}; the raw Rust group commit among {:.1}",
        median(&per_fsync),
        median(&gc_per_fsync),
        median(&raw_per_fsync)
    ));
    Ok(())
}

/// How an fsync-mode appender makes its batch durable.
#[derive(Clone, Copy)]
enum Sync {
    /// `PartitionLog::append_durable`: group commit on the log's flush mutex.
    AppendDurable,
    /// What-if: `append`, then a condvar group commit over `sync_to`: one leader
    /// syncs everything appended so far and wakes every waiter it covered at once.
    CondvarGroupCommit,
    /// What-if: one appender with this many batches in flight (a pipelining producer):
    /// `append` each, then one `sync_to` for all of them.
    Pipelined(u64),
}

/// A condvar group commit: the first waiter with nothing running becomes the leader,
/// syncs everything written so far and wakes every waiter at once; waiters it did
/// not cover elect the next leader. Used by the what-if and by the raw reference.
#[derive(Default)]
struct GroupCommit {
    /// (a sync is running, position below which everything is durable)
    state: Mutex<(bool, u64)>,
    synced: Condvar,
    syncs: AtomicU64,
}

impl GroupCommit {
    /// Blocks until `target` is durable. `written` says how far writes have completed;
    /// `sync` makes at least that much durable.
    fn wait_durable(
        &self,
        target: u64,
        written: impl Fn() -> u64,
        sync: impl Fn(u64) -> Result<()>,
    ) -> Result<()> {
        let lock = || self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = lock();
        while state.1 < target {
            if state.0 {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.0 = true;
            drop(state);
            let end = written();
            let synced = sync(end);
            self.syncs.fetch_add(1, Ordering::Relaxed);
            state = lock();
            state.0 = false;
            if synced.is_ok() {
                state.1 = state.1.max(end);
            }
            self.synced.notify_all();
            synced?;
        }
        Ok(())
    }
}

/// The machine's figure for the 8-appender shape: `threads` writers append `batch` to
/// one file (a mutex hands out positions, as the log's writer lock does) and share
/// `fdatasync`s through [`GroupCommit`]. No CRC, no index. Returns GB/s and writes
/// per fsync.
fn raw_group_commit_run(dir: &Path, batch: &[u8], count: u64, threads: u64) -> Result<(f64, f64)> {
    let file = File::create(dir.join("raw.log"))?;
    let next = Mutex::new(0u64);
    let written = AtomicU64::new(0);
    let group = GroupCommit::default();
    let per_thread = count / threads;
    let barrier = Barrier::new(threads as usize + 1);
    let (bytes, elapsed) = std::thread::scope(|s| -> Result<(u64, Duration)> {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (file, next, written, group, barrier) =
                    (&file, &next, &written, &group, &barrier);
                s.spawn(move || -> Result<u64> {
                    barrier.wait();
                    let start = Instant::now();
                    let mut done = 0u64;
                    while done < per_thread && start.elapsed() < RUN_TIME_CAP {
                        let end = {
                            let mut pos = next.lock().unwrap_or_else(PoisonError::into_inner);
                            file.write_all_at(batch, *pos)?;
                            *pos += batch.len() as u64;
                            written.store(*pos, Ordering::Release);
                            *pos
                        };
                        group.wait_durable(
                            end,
                            || written.load(Ordering::Acquire),
                            |_| Ok(file.sync_data()?),
                        )?;
                        done += 1;
                    }
                    Ok(done * batch.len() as u64)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut bytes = 0;
        for h in handles {
            bytes += h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok((bytes, start.elapsed()))
    })?;
    let syncs = group.syncs.load(Ordering::Relaxed).max(1) as f64;
    Ok((
        gbps(bytes, elapsed),
        bytes as f64 / batch.len() as f64 / syncs,
    ))
}

/// `threads` appenders each make their share of `count` batches durable as `sync`
/// says; returns GB/s and appends per fsync.
fn fsync_run(
    dir: &Path,
    batch: &Bytes,
    count: u64,
    threads: u64,
    sync: Sync,
) -> Result<(f64, f64)> {
    let log = PartitionLog::open(dir, "bench-0", log_config(Durability::Fsync, GIB as u32))?;
    let per_thread = count / threads;
    let barrier = Barrier::new(threads as usize + 1);
    let group = GroupCommit::default();
    let (bytes, elapsed) = std::thread::scope(|s| -> Result<(u64, Duration)> {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (log, barrier, group) = (&log, &barrier, &group);
                s.spawn(move || -> Result<u64> {
                    barrier.wait();
                    let start = Instant::now();
                    let mut done = 0u64;
                    while done < per_thread && start.elapsed() < RUN_TIME_CAP {
                        match sync {
                            Sync::AppendDurable => {
                                log.append_durable(batch)?;
                                done += 1;
                            }
                            Sync::CondvarGroupCommit => {
                                let info = log.append(batch)?;
                                group.wait_durable(
                                    info.log_end_offset.0,
                                    || log.log_end_offset().0,
                                    |end| Ok(log.sync_to(Offset(end))?),
                                )?;
                                done += 1;
                            }
                            Sync::Pipelined(in_flight) => {
                                let mut end = log.log_end_offset();
                                for _ in 0..in_flight.min(per_thread - done) {
                                    end = log.append(batch)?.log_end_offset;
                                    done += 1;
                                }
                                log.sync_to(end)?;
                            }
                        }
                    }
                    Ok(done * batch.len() as u64)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut bytes = 0;
        for h in handles {
            bytes += h
                .join()
                .map_err(|_| anyhow::anyhow!("appender panicked"))??;
        }
        Ok((bytes, start.elapsed()))
    })?;
    let stats = log.stats();
    let appends = stats.appends.load(Ordering::Relaxed) as f64;
    let fsyncs = stats.fsyncs.load(Ordering::Relaxed).max(1) as f64;
    ensure!(
        log.durable_offset() == log.log_end_offset(),
        "durable offset {} behind log end {}",
        log.durable_offset(),
        log.log_end_offset()
    );
    log.close()?;
    Ok((gbps(bytes, elapsed), appends / fsyncs))
}

/// Runs `dd if=/dev/zero of=FILE bs=1M count=N conv=fdatasync` and parses its rate.
fn dd_run(dir: &Path, mib: u64) -> Result<f64> {
    let path = dir.join("dd.out");
    let out = Command::new("dd")
        .env("LC_ALL", "C")
        .arg("if=/dev/zero")
        .arg(format!("of={}", path.display()))
        .arg("bs=1M")
        .arg(format!("count={mib}"))
        .arg("conv=fdatasync")
        .output()
        .context("run dd")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "dd failed: {stderr}");
    parse_dd(&stderr).with_context(|| format!("parse dd output {stderr:?}"))
}

/// From `1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.53 s, 2.0 GB/s`, bytes / seconds
/// in GB/s (more precise than dd's rounded rate).
fn parse_dd(stderr: &str) -> Result<f64> {
    let Some(line) = stderr.lines().find(|l| l.contains(" copied, ")) else {
        bail!("no summary line");
    };
    let bytes: u64 = line.split_whitespace().next().context("bytes")?.parse()?;
    let secs: f64 = line
        .split(", ")
        .find_map(|p| p.strip_suffix(" s"))
        .context("seconds")?
        .parse()?;
    ensure!(secs > 0.0, "zero seconds");
    Ok(bytes as f64 / secs / 1e9)
}

/// dd's work in Rust: `mib` writes of 1 MiB of zeros, then one `fdatasync`.
fn write_then_fdatasync_run(dir: &Path, mib: u64) -> Result<f64> {
    let mut file = File::create(dir.join("dd.out"))?;
    let buf = vec![0u8; MIB as usize];
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..mib {
        file.write_all(&buf)?;
        bytes += MIB;
        if start.elapsed() > RUN_TIME_CAP {
            break;
        }
    }
    file.sync_data()?;
    Ok(gbps(bytes, start.elapsed()))
}

/// One writer that `fdatasync`s after every batch: what group commit must beat.
fn fdatasync_each_run(dir: &Path, batch: &[u8], count: u64) -> Result<f64> {
    let mut file = File::create(dir.join("sync.out"))?;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..count {
        file.write_all(batch)?;
        file.sync_data()?;
        bytes += batch.len() as u64;
        if start.elapsed() > RUN_TIME_CAP {
            break;
        }
    }
    Ok(gbps(bytes, start.elapsed()))
}

// ---------------------------------------------------------------------------------
// 3. Sequential read from the page cache, 4. random lookups.
// ---------------------------------------------------------------------------------

/// A closed (flushed, clean-in-cache) one-segment log filled with one batch shape.
struct LogFixture {
    _dir: TempDir,
    log: PartitionLog,
    batch_len: usize,
    segment_path: PathBuf,
}

impl LogFixture {
    fn build(b: &Bench, name: &str, records_per_batch: usize) -> Result<LogFixture> {
        let dir = b.tempdir(name)?;
        let batch = build_batch(records_per_batch, 3)?;
        let segment_bytes = b.segment_bytes();
        let count = u64::from(segment_bytes) / batch.len() as u64;
        let log = PartitionLog::open(
            dir.path(),
            "bench-0",
            log_config(Durability::None, segment_bytes),
        )?;
        let start = Instant::now();
        for _ in 0..count {
            log.append(&batch)?;
        }
        eprintln!(
            "[setup] {name}: {count} batches of {} B in {:.1} s",
            batch.len(),
            start.elapsed().as_secs_f64()
        );
        // Close: everything flushed and the index trimmed. Reads keep working.
        log.close()?;
        let segments = log.segments();
        ensure!(
            segments.len() == 1,
            "expected one segment, got {}",
            segments.len()
        );
        let segment_path = segments[0].log_path().to_path_buf();
        Ok(LogFixture {
            _dir: dir,
            log,
            batch_len: batch.len(),
            segment_path,
        })
    }

    fn size(&self) -> u64 {
        self.log.size_bytes()
    }
}

fn fig_read(b: &mut Bench, big: &LogFixture, small: &LogFixture) -> Result<()> {
    eprintln!("[read] sequential read from the page cache");
    let max_bytes = MIB as u32;
    let chunk = big.batch_len;
    // memcpy source: as large as the segment, every page touched so it is real memory.
    let src = vec![0x5au8; big.size() as usize];
    let mut dst = vec![0u8; chunk];
    let mut buf = Vec::with_capacity(2 * MIB as usize);
    let mut file_buf = vec![0u8; chunk];
    let big_file = File::open(&big.segment_path)?;
    let (mut w, mut wb, mut ws, mut pread, mut memcpy) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..=b.runs {
        let keep = run > 0;
        let v = read_copy_run(&big.log, max_bytes, &mut buf)?;
        if keep {
            w.push(v);
        }
        let v = pread_run(&big_file, big.size(), &mut file_buf)?;
        if keep {
            pread.push(v);
        }
        let v = memcpy_run(&src, &mut dst);
        if keep {
            memcpy.push(v);
        }
        let v = read_batches_run(&big.log, max_bytes)?;
        if keep {
            wb.push(v);
        }
        let v = read_copy_run(&small.log, max_bytes, &mut buf)?;
        if keep {
            ws.push(v);
        }
    }
    let fig = format!(
        "3. seq read {} MiB in cache, read + read_into, {} B batches, max_bytes 1 MiB",
        big.size() / MIB,
        big.batch_len
    );
    b.row(
        fig.clone(),
        Unit::GBps,
        &w,
        "memcpy, same size and chunks",
        &memcpy,
        "≥ 4 GB/s",
        |w, _| Some(w >= 4.0),
    );
    b.row(
        fig,
        Unit::GBps,
        &w,
        "pread loop of the file, same chunks",
        &pread,
        "≥ 4 GB/s",
        |w, _| Some(w >= 4.0),
    );
    b.row(
        format!(
            "3. seq read, read_batches (copy + CRC), {} B batches",
            big.batch_len
        ),
        Unit::GBps,
        &wb,
        "pread loop of the file, same chunks",
        &pread,
        "≥ 4 GB/s",
        |w, _| Some(w >= 4.0),
    );
    b.row(
        format!(
            "3. seq read, read + read_into, {} B batches, max_bytes 1 MiB",
            small.batch_len
        ),
        Unit::GBps,
        &ws,
        "pread loop of the file, same chunks",
        &pread,
        "(info) ≥ 4 GB/s",
        |w, _| Some(w >= 4.0),
    );
    Ok(())
}

/// Reads the whole log from its start with `read` + `read_into` into one reused buffer.
fn read_copy_run(log: &PartitionLog, max_bytes: u32, buf: &mut Vec<u8>) -> Result<f64> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut bytes = 0u64;
    let start = Instant::now();
    while offset < end && start.elapsed() < RUN_TIME_CAP {
        let info = log.read(offset, max_bytes)?;
        let Some(last) = info.slices.last() else {
            bail!("empty read at {offset}");
        };
        offset = last.next_offset;
        buf.clear();
        for slice in &info.slices {
            slice.read_into(buf)?;
        }
        bytes += buf.len() as u64;
        black_box(&buf[..]);
    }
    Ok(gbps(bytes, start.elapsed()))
}

/// Reads the whole log with `read_batches` (a new buffer per read, CRC per batch).
fn read_batches_run(log: &PartitionLog, max_bytes: u32) -> Result<f64> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut bytes = 0u64;
    let start = Instant::now();
    while offset < end && start.elapsed() < RUN_TIME_CAP {
        let batches = log.read_batches(offset, max_bytes)?;
        let Some(last) = batches.last() else {
            bail!("empty read at {offset}");
        };
        let h = last.header();
        offset = Offset(h.base_offset as u64 + u64::from(h.offset_count()));
        bytes += batches
            .iter()
            .map(|b| b.as_bytes().len() as u64)
            .sum::<u64>();
        black_box(&batches);
    }
    Ok(gbps(bytes, start.elapsed()))
}

fn pread_run(file: &File, size: u64, buf: &mut [u8]) -> Result<f64> {
    let mut pos = 0u64;
    let start = Instant::now();
    while pos < size && start.elapsed() < RUN_TIME_CAP {
        let n = (buf.len() as u64).min(size - pos) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        black_box(&buf[..n]);
        pos += n as u64;
    }
    Ok(gbps(pos, start.elapsed()))
}

fn memcpy_run(src: &[u8], dst: &mut [u8]) -> f64 {
    let start = Instant::now();
    for chunk in src.chunks(dst.len()) {
        dst[..chunk.len()].copy_from_slice(chunk);
        black_box(&dst[..]);
    }
    gbps(src.len() as u64, start.elapsed())
}

fn fig_lookup(b: &mut Bench, small: &LogFixture) -> Result<()> {
    eprintln!(
        "[lookup] random offsets in a {} MiB segment",
        small.size() / MIB
    );
    let base = small.log.log_start_offset();
    let end = small.log.log_end_offset();
    let index_path = small.segment_path.with_extension("index");
    let index = OffsetIndex::open(&index_path, base)?;
    // The machine's reference: the same entries as a sorted in-memory array.
    let entries: Vec<(u64, u32)> = (0..index.entries())
        .filter_map(|i| index.entry(i))
        .map(|(o, p)| (o.0, p.0))
        .collect();
    ensure!(entries.len() == index.entries(), "unreadable index entries");
    let file = File::open(&small.segment_path)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let targets: Vec<Offset> = (0..LOOKUP_BLOCK * LOOKUP_BLOCKS_PER_RUN)
        .map(|_| Offset(base.0 + rng.below(end.0 - base.0)))
        .collect();
    let mut header = [0u8; 61];
    let (mut wi, mut ri, mut we, mut re) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut re_hot = Vec::new();
    for run in 0..=b.runs {
        let keep = run > 0;
        let v = per_op_blocks(&targets, |t| {
            black_box(index.lookup(t));
            Ok(())
        })?;
        if keep {
            wi.push(median(&v));
        }
        let v = per_op_blocks(&targets, |t| {
            black_box(entries.partition_point(|(o, _)| *o <= t.0));
            Ok(())
        })?;
        if keep {
            ri.push(median(&v));
        }
        let v = per_op_blocks(&targets, |t| {
            black_box(small.log.read(t, KIB as u32)?);
            Ok(())
        })?;
        if keep {
            we.push(median(&v));
        }
        let v = per_op_blocks(&targets, |t| {
            let i = entries.partition_point(|(o, _)| *o <= t.0);
            let pos = i.checked_sub(1).map_or(0, |i| entries[i].1);
            file.read_exact_at(&mut header, u64::from(pos))?;
            black_box(&header);
            Ok(())
        })?;
        if keep {
            re.push(median(&v));
        }
        // The syscall alone: 61 B from one page that stays hot.
        let v = per_op_blocks(&targets, |_| {
            file.read_exact_at(&mut header, 0)?;
            black_box(&header);
            Ok(())
        })?;
        if keep {
            re_hot.push(median(&v));
        }
    }
    let fig = format!(
        "4. OffsetIndex::lookup, random offset, {} entries ({} MiB segment)",
        entries.len(),
        small.size() / MIB
    );
    b.row(
        fig,
        Unit::Micros,
        &wi,
        "partition_point on a Vec of the entries",
        &ri,
        "< 1 µs median",
        |w, _| Some(w < 1.0),
    );
    let e2e = format!(
        "4'. PartitionLog::read(random offset, 1 KiB), {} B batches, end to end",
        small.batch_len
    );
    b.row(
        e2e.clone(),
        Unit::Micros,
        &we,
        "binary search + pread of the 61 B header",
        &re,
        "(info) the target is the lookup above",
        |_, _| None,
    );
    b.row(
        e2e,
        Unit::Micros,
        &we,
        "pread of 61 B from one hot page (the syscall alone)",
        &re_hot,
        "(info)",
        |_, _| None,
    );
    // Per-call distribution, timer overhead subtracted.
    let timer = {
        let mut t: Vec<f64> = (0..10_000)
            .map(|_| {
                let s = Instant::now();
                black_box(s.elapsed()).as_nanos() as f64
            })
            .collect();
        t.sort_by(f64::total_cmp);
        percentile(&t, 0.5)
    };
    let calls = |f: &mut dyn FnMut(Offset) -> Result<()>| -> Result<(f64, f64)> {
        let mut t = Vec::with_capacity(targets.len());
        for &target in &targets {
            let s = Instant::now();
            f(target)?;
            t.push((s.elapsed().as_nanos() as f64 - timer).max(0.0) / 1e3);
        }
        t.sort_by(f64::total_cmp);
        Ok((percentile(&t, 0.5), percentile(&t, 0.99)))
    };
    let (lp50, lp99) = calls(&mut |t| {
        black_box(index.lookup(t));
        Ok(())
    })?;
    let (rp50, rp99) = calls(&mut |t| {
        black_box(small.log.read(t, KIB as u32)?);
        Ok(())
    })?;
    b.note(format!(
        "4: each run's figure is the median of {LOOKUP_BLOCKS_PER_RUN} block means of \
         {LOOKUP_BLOCK} random lookups; timed one by one \
         (timer overhead {timer:.0} ns subtracted): lookup p50 {lp50:.3} µs, p99 {lp99:.3} µs; \
         read p50 {rp50:.3} µs, p99 {rp99:.3} µs"
    ));
    Ok(())
}

/// Runs `op` on every target in blocks of [`LOOKUP_BLOCK`]; returns each block's mean
/// time per op in µs.
fn per_op_blocks(targets: &[Offset], mut op: impl FnMut(Offset) -> Result<()>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(targets.len() / LOOKUP_BLOCK);
    for block in targets.chunks(LOOKUP_BLOCK) {
        let start = Instant::now();
        for &t in block {
            op(t)?;
        }
        out.push(start.elapsed().as_secs_f64() * 1e6 / block.len() as f64);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// 5. Open after a clean close and after a crash.
// ---------------------------------------------------------------------------------

fn fig_open(b: &mut Bench) -> Result<()> {
    let batch = build_batch(1000, 4)?;
    let segment_bytes = b.segment_bytes();
    let per_segment = u64::from(segment_bytes) / batch.len() as u64;
    let config = log_config(Durability::None, segment_bytes);
    let dir = b.tempdir("open")?;
    let path = dir.path();
    eprintln!(
        "[open] 10 segments of {} MiB ({} batches of {} B each)",
        segment_bytes / MIB as u32,
        per_segment,
        batch.len()
    );
    let mut tails = vec![
        1,
        per_segment / 16,
        per_segment / 4,
        per_segment / 2,
        per_segment,
    ];
    tails.retain(|t| *t >= 1);
    tails.dedup();

    // Nine full segments plus the first tail; the rolled segments are flushed by the
    // log's background thread, which must finish before the "crash".
    let start = Instant::now();
    {
        let log = PartitionLog::open(path, "bench-0", config.clone())?;
        for _ in 0..9 * per_segment + tails[0] {
            log.append(&batch)?;
        }
        let active_base = log
            .segments()
            .last()
            .map(|s| s.base_offset())
            .context("no segment")?;
        wait_for_recovery_point(path, active_base)?;
    }
    eprintln!(
        "[setup] 9 segments + tail written in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut in_active = tails[0];

    let last_tail = *tails.last().unwrap_or(&1);
    // (active segment bytes, open ms, scan ms) per tail, for the slope note.
    let mut curve = Vec::new();
    for &tail in &tails {
        if tail > in_active {
            // An (untimed) crash open, then more appends to the active segment, then
            // another crash.
            let log = PartitionLog::open(path, "bench-0", config.clone())?;
            for _ in in_active..tail {
                log.append(&batch)?;
            }
            in_active = tail;
        }
        settle();
        let active = active_segment_path(path)?;
        let active_bytes = std::fs::metadata(&active)?.len();
        let total = dir_log_bytes(path)?;
        let cold_too = tail == last_tail;
        let (mut warm, mut warm_ref, mut cold, mut cold_ref) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..=b.runs {
            let keep = run > 0;
            let v = crash_open(path, &config, None)?;
            let r = scan_run(&active, false)?;
            if keep {
                warm.push(v);
                warm_ref.push(r);
            }
            if cold_too && keep {
                settle();
                cold.push(crash_open(path, &config, Some(&active))?);
                cold_ref.push(scan_run(&active, true)?);
            }
        }
        curve.push((active_bytes, median(&warm), median(&warm_ref)));
        let what = format!(
            "5b. open after crash, active segment {} MiB (log {:.1} GiB)",
            active_bytes / MIB,
            total as f64 / GIB as f64
        );
        b.row(
            what.clone(),
            Unit::Millis,
            &warm,
            "pread + CRC-32C of the active segment",
            &warm_ref,
            "∝ active segment only: ≤ 2x its scan + 10 ms",
            |w, r| Some(w <= 2.0 * r + 10.0),
        );
        if cold_too {
            b.row(
                format!("{what}, cold cache"),
                Unit::Millis,
                &cold,
                "same scan, cold cache",
                &cold_ref,
                "(info) ≤ 2x its scan + 10 ms",
                |w, r| Some(w <= 2.0 * r + 10.0),
            );
        }
    }

    if let (Some(first), Some(last)) = (curve.first(), curve.last())
        && last.0 > first.0
    {
        let gib = (last.0 - first.0) as f64 / GIB as f64;
        b.note(format!(
            "5b: open after a crash costs {:.1} ms with a {} KiB active segment and grows \
             {:.0} ms per GiB of active segment (the pread + CRC scan alone: {:.0} ms per GiB), \
             whatever the rest of the log",
            first.1,
            first.0 / KIB,
            (last.1 - first.1) / gib,
            (last.2 - first.2) / gib
        ));
    }

    // A clean close, then clean opens.
    {
        let log = PartitionLog::open(path, "bench-0", config.clone())?;
        log.close()?;
    }
    settle();
    let total = dir_log_bytes(path)?;
    let (mut clean, mut clean_ref) = (Vec::new(), Vec::new());
    for run in 0..=b.runs {
        let start = Instant::now();
        let log = PartitionLog::open(path, "bench-0", config.clone())?;
        let elapsed = start.elapsed();
        let report = log.recovery_report().clone();
        ensure!(
            report.clean_shutdown && report.segments_recovered == 0,
            "clean open recovered something: {report:?}"
        );
        log.close()?;
        let r = open_files_run(path)?;
        if run > 0 {
            clean.push(millis(elapsed));
            clean_ref.push(r);
        }
    }
    b.row(
        format!(
            "5a. open after clean close, {:.1} GiB log, {} segments",
            total as f64 / GIB as f64,
            count_segments(path)?
        ),
        Unit::Millis,
        &clean,
        "open + fstat every file in the directory",
        &clean_ref,
        "< 100 ms",
        |w, _| Some(w < 100.0),
    );
    Ok(())
}

/// One crash open: `PartitionLog::open` of a log that was dropped without `close`,
/// timed; dropped again without `close`. `evict` drops that file from the page cache
/// first. Returns ms.
fn crash_open(path: &Path, config: &LogConfig, evict_first: Option<&Path>) -> Result<f64> {
    if let Some(file) = evict_first {
        evict(file)?;
    }
    let start = Instant::now();
    let log = PartitionLog::open(path, "bench-0", config.clone())?;
    let elapsed = start.elapsed();
    let report = log.recovery_report();
    ensure!(
        !report.clean_shutdown && report.segments_recovered == 1 && report.truncated_bytes == 0,
        "unexpected crash recovery: {report:?}"
    );
    drop(log);
    Ok(millis(elapsed))
}

/// The minimum a recovery must do: read the active segment and CRC it (4 MiB preads).
fn scan_run(path: &Path, cold: bool) -> Result<f64> {
    if cold {
        evict(path)?;
    }
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; 4 * MIB as usize];
    let start = Instant::now();
    let mut pos = 0;
    let mut crc = 0u32;
    while pos < len {
        let n = (buf.len() as u64).min(len - pos) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        pos += n as u64;
    }
    black_box(crc);
    Ok(millis(start.elapsed()))
}

/// The syscall floor of any open: list the directory, open and stat every file.
fn open_files_run(path: &Path) -> Result<f64> {
    let start = Instant::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let f = OpenOptions::new().read(true).open(entry.path())?;
        black_box(f.metadata()?.len());
        files.push(f);
    }
    Ok(millis(start.elapsed()))
}

fn wait_for_recovery_point(path: &Path, at_least: Offset) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(cp) = Checkpoint::read(path)?
            && cp.recovery_offset >= at_least
        {
            return Ok(());
        }
        if start.elapsed() > FLUSH_WAIT_CAP {
            bail!("rolled segments not flushed after {FLUSH_WAIT_CAP:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn segment_logs(path: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "log") {
            logs.push((p, entry.metadata()?.len()));
        }
    }
    logs.sort();
    Ok(logs)
}

fn active_segment_path(path: &Path) -> Result<PathBuf> {
    segment_logs(path)?
        .pop()
        .map(|(p, _)| p)
        .context("no segment")
}

fn dir_log_bytes(path: &Path) -> Result<u64> {
    Ok(segment_logs(path)?.iter().map(|(_, n)| n).sum())
}

fn count_segments(path: &Path) -> Result<usize> {
    Ok(segment_logs(path)?.len())
}
