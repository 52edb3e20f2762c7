//! Group commit: concurrent appenders in `fsync` mode share `fdatasync` calls.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::atomic::Ordering;

use common::{all_batches, batch, small_config};
use warren_storage::{Durability, LogConfig, Offset, PartitionLog};

#[test]
fn eight_appenders_share_far_fewer_fsyncs_than_appends() {
    const APPENDERS: u64 = 8;
    const PER_APPENDER: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Fsync,
        ..small_config(1 << 24)
    };
    let log = PartitionLog::open(dir.path(), "gc-0", config).unwrap();
    std::thread::scope(|s| {
        for t in 0..APPENDERS {
            let log = log.clone();
            // Built up front: appending must be cheap next to an fsync, as it
            // is in a release build, or the appenders never queue up.
            let batches: Vec<_> = (0..PER_APPENDER)
                .map(|i| batch(t * 1000 + i, 2, 256, 0))
                .collect();
            s.spawn(move || {
                for b in batches {
                    let info = log.append_durable(&b).unwrap();
                    // Durable on return: the group commit covered this append.
                    assert!(log.durable_offset() > info.last_offset);
                }
            });
        }
    });
    let appends = log.stats().appends.load(Ordering::Relaxed);
    let fsyncs = log.stats().fsyncs.load(Ordering::Relaxed);
    assert_eq!(appends, APPENDERS * PER_APPENDER);
    eprintln!("group commit: {appends} appends, {fsyncs} fsyncs");
    assert!(fsyncs >= 1);
    // With 8 appenders waiting, each fsync covers several appends. A machine
    // with a very fast disk shares less, so ask only for a clear majority saved.
    assert!(
        fsyncs * 2 < appends,
        "{fsyncs} fsyncs for {appends} appends is not group commit"
    );
    assert_eq!(log.durable_offset(), Offset(APPENDERS * PER_APPENDER * 2));
    assert_eq!(all_batches(&log).len() as u64, APPENDERS * PER_APPENDER);
}

#[test]
fn none_and_interval_modes_do_not_fsync_on_append() {
    for durability in [Durability::None, Durability::Interval { ms: 60_000 }] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            durability,
            ..small_config(1 << 20)
        };
        let log = PartitionLog::open(dir.path(), "gc-0", config).unwrap();
        for i in 0..20 {
            log.append_durable(&batch(i, 1, 10, 0)).unwrap();
        }
        assert_eq!(
            log.stats().fsyncs.load(Ordering::Relaxed),
            0,
            "{durability}"
        );
        assert!(!log.sync_if_due().unwrap(), "interval not yet passed");
        log.sync_to(log.log_end_offset()).unwrap();
        assert_eq!(log.durable_offset(), Offset(20));
        assert_eq!(log.stats().fsyncs.load(Ordering::Relaxed), 1);
    }
}

#[test]
fn an_interval_log_syncs_once_the_interval_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Interval { ms: 30 },
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(dir.path(), "gc-0", config).unwrap();
    log.append(&batch(0, 3, 10, 0)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(40));
    assert!(log.sync_if_due().unwrap());
    assert_eq!(log.durable_offset(), Offset(3));
    assert!(!log.sync_if_due().unwrap(), "nothing new to sync");
}
