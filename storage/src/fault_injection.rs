//! Fault injection in the storage file layer, for tests only: make the n-th
//! `fdatasync` of a segment under a directory fail with `EIO`, or hold it until
//! the test lets it go.
//!
//! Compiled only with `cfg(test)` or the `fault-injection` feature (which the
//! broker's dev-dependencies turn on for its tests); a production build has
//! none of this module and [`Segment::sync_log`](crate::segment::Segment) calls
//! `fdatasync` directly, so the seam costs nothing there.
//!
//! A [`SyncFault`] names a directory (a partition directory, or a whole data
//! directory) and counts every segment sync whose log file lies under it
//! (`Path::starts_with`, component-wise, on the path the log was opened with).
//! The n-th one (1-based) either fails without syncing, as a disk that lost the
//! pages would, or blocks until [`SyncFaultGuard::release`], or both. Every other
//! sync runs for real, which is the hard case: Linux reports a writeback error
//! to one `fsync` and lets the next one succeed.
//!
//! Faults are keyed by directory so tests running in parallel in one process,
//! each with its own temporary directory, do not see each other's faults.
//! Dropping the guard removes the fault (and releases a held sync).
//!
//! Thread-safe: one global mutex guards the list; it is taken once per sync, only
//! in builds that have this module.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The faults in force, oldest first.
static FAULTS: Mutex<Vec<Arc<Fault>>> = Mutex::new(Vec::new());

fn faults() -> MutexGuard<'static, Vec<Arc<Fault>>> {
    FAULTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which sync under a directory misbehaves, and how. Build one, then
/// [`install`](Self::install) it.
#[derive(Debug, Clone)]
pub struct SyncFault {
    dir: PathBuf,
    nth: u64,
    fail: bool,
    hold: bool,
}

impl SyncFault {
    /// The `nth` (1-based) segment sync under `dir` fails with `EIO` without
    /// syncing; later ones succeed.
    pub fn fail_nth(dir: impl Into<PathBuf>, nth: u64) -> SyncFault {
        SyncFault {
            dir: dir.into(),
            nth,
            fail: true,
            hold: false,
        }
    }

    /// The `nth` (1-based) segment sync under `dir` blocks until
    /// [`SyncFaultGuard::release`], then runs for real.
    pub fn hold_nth(dir: impl Into<PathBuf>, nth: u64) -> SyncFault {
        SyncFault {
            dir: dir.into(),
            nth,
            fail: false,
            hold: true,
        }
    }

    /// Also blocks the failing sync until [`SyncFaultGuard::release`], so a
    /// test can line up waiters behind it.
    pub fn held(mut self) -> SyncFault {
        self.hold = true;
        self
    }

    /// Puts the fault in force until the guard is dropped.
    pub fn install(self) -> SyncFaultGuard {
        let fault = Arc::new(Fault {
            spec: self,
            seen: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            gate: Mutex::new(Gate::default()),
            changed: Condvar::new(),
        });
        faults().push(Arc::clone(&fault));
        SyncFaultGuard { fault }
    }
}

#[derive(Debug, Default)]
struct Gate {
    /// The n-th sync has started (and, if held, is blocked).
    reached: bool,
    /// The test let it go.
    released: bool,
}

#[derive(Debug)]
struct Fault {
    spec: SyncFault,
    /// Syncs seen under the directory so far.
    seen: AtomicU64,
    /// The n-th sync has happened (failed, or been held).
    fired: AtomicBool,
    gate: Mutex<Gate>,
    changed: Condvar,
}

impl Fault {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A fault in force; dropping it removes the fault and releases a held sync.
#[derive(Debug)]
pub struct SyncFaultGuard {
    fault: Arc<Fault>,
}

impl SyncFaultGuard {
    /// Segment syncs seen under the directory since the fault was installed.
    pub fn syncs(&self) -> u64 {
        self.fault.seen.load(Ordering::Acquire)
    }

    /// Whether the n-th sync has happened.
    pub fn fired(&self) -> bool {
        self.fault.fired.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for the n-th sync to start; true once it has.
    /// (A held sync is then blocked until [`release`](Self::release).)
    pub fn wait_reached(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut gate = self.fault.gate();
        while !gate.reached {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            gate = self
                .fault
                .changed
                .wait_timeout(gate, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Lets a held sync go on (to fail or to sync, as the fault says).
    pub fn release(&self) {
        self.fault.gate().released = true;
        self.fault.changed.notify_all();
    }
}

impl Drop for SyncFaultGuard {
    fn drop(&mut self) {
        self.release();
        faults().retain(|f| !Arc::ptr_eq(f, &self.fault));
    }
}

/// Called by the segment before each `fdatasync` of its log file at `path`:
/// `Err` means "report this error instead of syncing".
///
/// # Errors
/// `EIO` when a fault says this sync fails.
pub(crate) fn before_sync(path: &Path) -> io::Result<()> {
    let matching: Vec<Arc<Fault>> = faults()
        .iter()
        .filter(|f| path.starts_with(&f.spec.dir))
        .cloned()
        .collect();
    let mut result = Ok(());
    for fault in matching {
        let n = fault.seen.fetch_add(1, Ordering::AcqRel) + 1;
        if n != fault.spec.nth {
            continue;
        }
        fault.fired.store(true, Ordering::Release);
        let mut gate = fault.gate();
        gate.reached = true;
        fault.changed.notify_all();
        while fault.spec.hold && !gate.released {
            gate = fault
                .changed
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(gate);
        if fault.spec.fail {
            tracing::warn!(path = %path.display(), sync = n, "fault injection: fdatasync fails with EIO");
            result = Err(io::Error::from_raw_os_error(5 /* EIO */));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nth_sync_under_the_directory_fails() {
        let guard = SyncFault::fail_nth("/fault-test/a", 2).install();
        assert!(before_sync(Path::new("/fault-test/a/t-0/0.log")).is_ok());
        assert!(before_sync(Path::new("/fault-test/ab/t-0/0.log")).is_ok());
        assert!(before_sync(Path::new("/fault-test/a/t-1/0.log")).is_err());
        assert!(before_sync(Path::new("/fault-test/a/t-0/0.log")).is_ok());
        assert_eq!(guard.syncs(), 3);
        assert!(guard.fired());
        drop(guard);
        assert!(before_sync(Path::new("/fault-test/a/t-0/0.log")).is_ok());
    }

    #[test]
    fn a_held_sync_waits_for_release() {
        let guard = SyncFault::hold_nth("/fault-test/held", 1).install();
        let syncing = std::thread::spawn(|| before_sync(Path::new("/fault-test/held/x.log")));
        assert!(guard.wait_reached(Duration::from_secs(10)));
        assert!(!syncing.is_finished());
        guard.release();
        assert!(syncing.join().is_ok_and(|r| r.is_ok()));
    }
}
