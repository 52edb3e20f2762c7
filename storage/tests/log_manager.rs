//! The data directory: topics and their configs (with their owner's extra fields,
//! stored untouched and checked by the owner at open) survive reopening, deletion is
//! complete and final, leftovers are swept or left alone as they should be, names
//! and partition counts are checked, the directory lock keeps a second owner out,
//! and the background thread flushes and enforces retention.
#![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{all_batches, batch, small_config};
use warren_storage::log_manager::MAX_PARTITIONS;
use warren_storage::{
    Durability, Error, LogConfig, LogManager, Offset, StorageMetrics, TopicConfig,
    validate_topic_name,
};

/// A config unlike the default in every persisted field.
fn orders_config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        segment_ms: 60_000,
        index_interval_bytes: 512,
        max_index_bytes: 4096,
        durability: Durability::Interval { ms: 250 },
        retention_bytes: Some(1 << 20),
        retention_ms: Some(3_600_000),
        max_message_bytes: 4096,
    }
}

fn audit_config() -> LogConfig {
    LogConfig {
        durability: Durability::None,
        retention_bytes: None,
        retention_ms: None,
        ..small_config(4096)
    }
}

/// Fields a topic file's owner adds (storage does not read them).
fn owner_fields() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(map) = serde_json::json!({
        "owner": { "mode": "whatever", "n": 3, "list": [1, "two", null] },
        "flag": true,
    }) else {
        unreachable!("an object literal")
    };
    map
}

fn topic_file(data: &Path, name: &str) -> std::path::PathBuf {
    data.join("meta")
        .join("topics")
        .join(format!("{name}.json"))
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits up to `limit` for `done`, polling every 5 ms.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn topics_and_their_configs_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    let orders = manager.create_topic("orders", 3, orders_config()).unwrap();
    assert_eq!(
        orders,
        TopicConfig {
            name: "orders".into(),
            partitions: 3,
            log: orders_config(),
            extra: serde_json::Map::new(),
        }
    );
    let audit = manager
        .create_topic_with("audit.v2_x-y", 1, audit_config(), owner_fields())
        .unwrap();
    assert_eq!(audit.extra, owner_fields());
    assert!(topic_file(data, "orders").exists());
    assert_eq!(manager.topics(), vec![audit.clone(), orders.clone()]);
    drop(manager);

    let manager = LogManager::open(data).unwrap();
    assert_eq!(manager.topics(), vec![audit.clone(), orders.clone()]);
    assert_eq!(manager.topic("orders"), Some(orders));
    for p in 0..3 {
        let log = manager.partition("orders", p).unwrap();
        assert_eq!(log.config(), &orders_config());
        assert_eq!(log.name(), format!("orders-{p}"));
        assert_eq!(log.dir(), data.join(format!("orders-{p}")));
    }
    assert!(manager.partition("orders", 3).is_none());
    assert_eq!(
        manager.partition("audit.v2_x-y", 0).unwrap().config(),
        &audit_config()
    );
    assert!(manager.topic("nope").is_none());
    assert!(manager.partition("nope", 0).is_none());
}

#[test]
fn appended_data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(dir.path()).unwrap();
    manager.create_topic("orders", 3, orders_config()).unwrap();
    let mut expected = Vec::new();
    for p in 0..3u32 {
        let log = manager.partition("orders", p).unwrap();
        for i in 0..(10 + 5 * u64::from(p)) {
            log.append(&batch(i + 100 * u64::from(p), 3, 300, 1_000))
                .unwrap();
        }
        assert!(log.segments().len() > 1, "8 KiB segments roll");
        expected.push(all_batches(&log));
    }
    manager.close().unwrap();
    let log = manager.partition("orders", 0).unwrap();
    assert!(matches!(
        log.append(&batch(0, 1, 1, 0)),
        Err(Error::Closed(_))
    ));
    drop(log);
    drop(manager);

    let manager = LogManager::open(dir.path()).unwrap();
    for p in 0..3u32 {
        let log = manager.partition("orders", p).unwrap();
        assert!(log.recovery_report().clean_shutdown);
        assert_eq!(all_batches(&log), expected[p as usize]);
        let end = log.log_end_offset();
        assert_eq!(log.append(&batch(7, 1, 10, 0)).unwrap().base_offset, end);
    }
    // Without a close (a crash), acknowledged appends are there too. (Wait for
    // the background flushes of any roll first: they outlive the manager and
    // would race the next open on the recovery-point file.)
    let before = all_batches(&manager.partition("orders", 1).unwrap());
    for p in 0..3u32 {
        let log = manager.partition("orders", p).unwrap();
        let active = log.segments().last().unwrap().base_offset();
        assert!(wait_for(Duration::from_secs(5), || log.durable_offset() >= active));
    }
    drop(manager);
    let manager = LogManager::open(dir.path()).unwrap();
    assert_eq!(
        all_batches(&manager.partition("orders", 1).unwrap()),
        before
    );
}

#[test]
fn a_deleted_topic_is_gone_with_its_files_and_stays_gone_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    manager.create_topic("doomed", 2, audit_config()).unwrap();
    manager.create_topic("kept", 1, audit_config()).unwrap();
    for p in 0..2 {
        let log = manager.partition("doomed", p).unwrap();
        for i in 0..30 {
            log.append(&batch(i, 1, 200, 0)).unwrap();
        }
    }
    let kept = manager.partition("kept", 0).unwrap();
    kept.append(&batch(1, 3, 10, 0)).unwrap();
    let kept_batches = all_batches(&kept);
    drop(kept);

    manager.delete_topic("doomed").unwrap();
    assert!(manager.topic("doomed").is_none());
    assert!(manager.partition("doomed", 0).is_none());
    assert!(!topic_file(data, "doomed").exists());
    assert_eq!(entries(data), vec![".lock", "kept-0", "meta"]);
    assert!(matches!(
        manager.delete_topic("doomed"),
        Err(Error::UnknownTopic(t)) if t == "doomed"
    ));
    drop(manager);

    let manager = LogManager::open(data).unwrap();
    assert!(manager.topic("doomed").is_none());
    assert_eq!(entries(data), vec![".lock", "kept-0", "meta"]);
    assert_eq!(
        all_batches(&manager.partition("kept", 0).unwrap()),
        kept_batches
    );
    // The name is free again, and the new topic starts empty.
    manager.create_topic("doomed", 1, audit_config()).unwrap();
    assert_eq!(
        manager.partition("doomed", 0).unwrap().log_end_offset(),
        Offset(0)
    );
}

#[test]
fn leftover_deleted_directories_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    manager.create_topic("live", 1, audit_config()).unwrap();
    manager
        .partition("live", 0)
        .unwrap()
        .append(&batch(1, 1, 10, 0))
        .unwrap();
    drop(manager);
    // A delete that removed the topic file, then stopped before the directories.
    for name in ["gone-0.deleted", "gone-1.deleted"] {
        std::fs::create_dir(data.join(name)).unwrap();
        std::fs::write(data.join(name).join("00000000000000000000.log"), b"x").unwrap();
    }

    let manager = LogManager::open(data).unwrap();
    assert_eq!(entries(data), vec![".lock", "live-0", "meta"]);
    assert!(manager.topic("gone").is_none());
    assert_eq!(
        manager.partition("live", 0).unwrap().log_end_offset(),
        Offset(1)
    );
}

#[test]
fn a_leftover_temp_topic_file_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    drop(LogManager::open(data).unwrap());
    // A create that stopped before its rename: the topic does not exist.
    let tmp = data.join("meta").join("topics").join("half.json.tmp");
    std::fs::write(&tmp, br#"{"name":"half","partitions":1}"#).unwrap();
    let manager = LogManager::open(data).unwrap();
    assert!(!tmp.exists());
    assert!(manager.topics().is_empty());
}

/// Only `<topic>-<partition>.deleted` directories are ours to remove.
#[test]
fn entries_named_deleted_that_are_not_deleted_partitions_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    drop(LogManager::open(data).unwrap());
    std::fs::write(data.join("notes.deleted"), b"a file").unwrap();
    std::fs::create_dir(data.join("backup.deleted")).unwrap();
    std::fs::write(data.join("backup.deleted").join("keep"), b"mine").unwrap();

    let opened = LogManager::open(data);
    assert!(opened.is_ok(), "open: {opened:?}");
    assert_eq!(
        std::fs::read(data.join("notes.deleted")).unwrap(),
        b"a file"
    );
    assert_eq!(
        std::fs::read(data.join("backup.deleted").join("keep")).unwrap(),
        b"mine"
    );
}

/// `delete_topic` renames every partition directory before it removes the topic
/// file (the commit point). A crash in between must not leave a topic with some
/// partitions emptied: open either finishes the delete or undoes it.
#[test]
fn a_delete_interrupted_before_its_commit_point_leaves_the_whole_topic_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    manager.create_topic("t", 2, audit_config()).unwrap();
    let mut expected = Vec::new();
    for p in 0..2 {
        let log = manager.partition("t", p).unwrap();
        log.append(&batch(u64::from(p), 2, 10, 0)).unwrap();
        expected.push(all_batches(&log));
    }
    manager.close().unwrap();
    drop(manager);
    // The crash: partition 0 renamed, partition 1 not yet, topic file in place.
    std::fs::rename(data.join("t-0"), data.join("t-0.deleted")).unwrap();

    let manager = LogManager::open(data).unwrap();
    match manager.topic("t") {
        None => {
            assert_eq!(entries(data), vec![".lock", "meta"], "the delete finished");
        }
        Some(_) => {
            for p in 0..2u32 {
                let log = manager.partition("t", p).unwrap();
                assert_eq!(all_batches(&log), expected[p as usize], "partition {p}");
            }
        }
    }
}

#[test]
fn a_partition_directory_no_topic_owns_is_left_alone_and_blocks_creating_that_topic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    manager.create_topic("orders", 2, audit_config()).unwrap();
    drop(manager);
    for name in ["ghost-0", "orders-7"] {
        std::fs::create_dir(data.join(name)).unwrap();
        std::fs::write(data.join(name).join("00000000000000000000.log"), b"keep me").unwrap();
    }
    std::fs::write(data.join("README"), b"operator notes").unwrap();

    let manager = LogManager::open(data).unwrap();
    assert!(manager.topic("ghost").is_none());
    assert!(manager.partition("orders", 7).is_none());
    let err = manager
        .create_topic("ghost", 1, audit_config())
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(manager.topic("ghost").is_none());
    assert!(!topic_file(data, "ghost").exists());
    drop(manager);

    let manager = LogManager::open(data).unwrap();
    assert!(manager.topic("ghost").is_none());
    for name in ["ghost-0", "orders-7"] {
        assert_eq!(entries(&data.join(name)), vec!["00000000000000000000.log"]);
        assert_eq!(
            std::fs::read(data.join(name).join("00000000000000000000.log")).unwrap(),
            b"keep me"
        );
    }
    assert_eq!(
        std::fs::read(data.join("README")).unwrap(),
        b"operator notes"
    );
    // A topic whose partitions do not collide is fine.
    manager.create_topic("ghost2", 1, audit_config()).unwrap();
}

#[test]
fn invalid_topic_names_are_rejected_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    let long = "x".repeat(250);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "/abs",
        "a b",
        " ",
        "tab\t",
        "nul\0",
        "caf\u{e9}",
        "star*",
        long.as_str(),
    ] {
        match manager.create_topic(name, 1, audit_config()) {
            Err(Error::InvalidTopicName(n)) => assert_eq!(n, name),
            other => panic!("{name:?}: expected InvalidTopicName, got {other:?}"),
        }
    }
    assert!(manager.topics().is_empty());
    assert_eq!(entries(data), vec![".lock", "meta"]);
    assert!(entries(&data.join("meta").join("topics")).is_empty());
    assert!(!dir.path().parent().unwrap().join("escape-0").exists());
}

#[test]
fn unusual_but_valid_topic_names_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    let names = ["a", "...", "-", "_", "a-1", "A.b_C-9", "x-0"];
    for name in names {
        manager.create_topic(name, 2, audit_config()).unwrap();
        for p in 0..2 {
            let log = manager.partition(name, p).unwrap();
            log.append(&batch(u64::from(p), 1, 10, 0)).unwrap();
        }
    }
    manager.close().unwrap();
    drop(manager);
    let manager = LogManager::open(data).unwrap();
    for name in names {
        assert_eq!(manager.topic(name).unwrap().partitions, 2, "{name}");
        for p in 0..2 {
            assert_eq!(
                manager.partition(name, p).unwrap().log_end_offset(),
                Offset(1),
                "{name}-{p}"
            );
        }
        manager.delete_topic(name).unwrap();
    }
    assert_eq!(entries(data), vec![".lock", "meta"]);
}

/// The longest name `validate_topic_name` accepts (Kafka's 249 today) must work
/// like any other: every file name derived from it has to fit NAME_MAX (255).
#[test]
fn the_longest_valid_topic_name_can_be_created_reopened_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let longest = (1..=255)
        .rev()
        .find(|n| validate_topic_name(&"y".repeat(*n)).is_ok())
        .unwrap();
    let name = "y".repeat(longest);
    let manager = LogManager::open(data).unwrap();
    let created = manager.create_topic(&name, 2, audit_config());
    assert!(created.is_ok(), "create: {created:?}");
    manager
        .partition(&name, 1)
        .unwrap()
        .append(&batch(1, 1, 10, 0))
        .unwrap();
    drop(manager);
    let manager = LogManager::open(data).unwrap();
    assert_eq!(
        manager.partition(&name, 1).unwrap().log_end_offset(),
        Offset(1)
    );
    let deleted = manager.delete_topic(&name);
    assert!(deleted.is_ok(), "delete: {deleted:?}");
    assert_eq!(entries(data), vec![".lock", "meta"]);
}

#[test]
fn creating_an_existing_topic_fails_with_topic_exists_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(dir.path()).unwrap();
    let original = manager.create_topic("t", 2, audit_config()).unwrap();
    manager
        .partition("t", 0)
        .unwrap()
        .append(&batch(1, 1, 10, 0))
        .unwrap();
    for partitions in [2, 5] {
        assert!(matches!(
            manager.create_topic("t", partitions, orders_config()),
            Err(Error::TopicExists(n)) if n == "t"
        ));
    }
    assert_eq!(manager.topic("t"), Some(original.clone()));
    drop(manager);
    let manager = LogManager::open(dir.path()).unwrap();
    assert!(matches!(
        manager.create_topic("t", 1, audit_config()),
        Err(Error::TopicExists(_))
    ));
    assert_eq!(manager.topic("t"), Some(original));
    assert_eq!(
        manager.partition("t", 0).unwrap().log_end_offset(),
        Offset(1)
    );
}

#[test]
fn bad_partition_counts_and_configs_are_rejected_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    for partitions in [0, MAX_PARTITIONS + 1, u32::MAX] {
        assert!(matches!(
            manager.create_topic("t", partitions, audit_config()),
            Err(Error::Config(_))
        ));
    }
    let bad = LogConfig {
        segment_bytes: 10,
        ..audit_config()
    };
    assert!(matches!(
        manager.create_topic("t", 1, bad),
        Err(Error::Config(_))
    ));
    assert!(manager.topic("t").is_none());
    assert_eq!(entries(data), vec![".lock", "meta"]);
    assert!(entries(&data.join("meta").join("topics")).is_empty());
}

#[test]
fn a_second_open_of_a_locked_data_dir_fails_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = LogManager::open(dir.path()).unwrap();
    first.create_topic("t", 1, audit_config()).unwrap();
    match LogManager::open(dir.path()) {
        Err(Error::DataDirLocked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected DataDirLocked, got {other:?}"),
    }
    // The failed open touched nothing the first one owns.
    first
        .partition("t", 0)
        .unwrap()
        .append(&batch(1, 1, 10, 0))
        .unwrap();
    first.close().unwrap();
    assert!(
        matches!(
            LogManager::open(dir.path()),
            Err(Error::DataDirLocked { .. })
        ),
        "close keeps the lock until drop"
    );
    drop(first);
    let second = LogManager::open(dir.path()).unwrap();
    assert_eq!(
        second.partition("t", 0).unwrap().log_end_offset(),
        Offset(1)
    );
}

#[test]
fn extra_fields_are_written_in_the_topic_file_and_returned_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    let created = manager
        .create_topic_with("t", 2, audit_config(), owner_fields())
        .unwrap();
    assert_eq!(created.extra, owner_fields());
    // One file, storage's fields and the owner's side by side.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(topic_file(data, "t")).unwrap()).unwrap();
    let mut expected = owner_fields();
    expected.insert("name".into(), "t".into());
    expected.insert("partitions".into(), 2.into());
    expected.insert("log".into(), serde_json::to_value(audit_config()).unwrap());
    assert_eq!(file, serde_json::Value::Object(expected));
    drop(manager);

    let manager = LogManager::open(data).unwrap();
    assert_eq!(manager.topic("t"), Some(created.clone()));
    drop(manager);

    // The owner's check sees them at open; its refusal names the file.
    let seen = std::sync::Mutex::new(Vec::new());
    let manager = LogManager::open_checked(data, StorageMetrics::default(), &|c| {
        seen.lock().unwrap().push(c.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), [created]);
    drop(manager);
    match LogManager::open_checked(data, StorageMetrics::default(), &|_| Err("no".into())) {
        Err(Error::CorruptFile { path, reason }) => {
            assert_eq!(path, topic_file(data, "t"));
            assert_eq!(reason, "no");
        }
        other => panic!("expected CorruptFile, got {other:?}"),
    }
    // A refused open changed nothing.
    assert_eq!(entries(data), vec![".lock", "meta", "t-0", "t-1"]);
    assert!(LogManager::open(data).unwrap().topic("t").is_some());
}

#[test]
fn extra_fields_cannot_shadow_storages_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let manager = LogManager::open(data).unwrap();
    for field in ["name", "partitions", "log"] {
        let mut extra = owner_fields();
        extra.insert(field.into(), serde_json::json!(7));
        assert!(
            matches!(
                manager.create_topic_with("t", 1, audit_config(), extra),
                Err(Error::Config(_))
            ),
            "{field}"
        );
    }
    assert!(manager.topic("t").is_none());
    assert_eq!(entries(data), vec![".lock", "meta"]);
}

#[test]
fn a_corrupt_topic_file_is_reported_with_its_path() {
    let cases: [(&str, &[u8]); 4] = [
        ("bad", b"{not json"),
        ("empty", b""),
        ("renamed", br#"{"name":"other","partitions":1,"log":{}}"#),
        (
            "badconfig",
            br#"{"name":"badconfig","partitions":1,"log":{"segment_bytes":10}}"#,
        ),
    ];
    for (name, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        drop(LogManager::open(dir.path()).unwrap());
        let path = topic_file(dir.path(), name);
        std::fs::write(&path, bytes).unwrap();
        match LogManager::open(dir.path()) {
            Err(Error::CorruptFile { path: p, .. }) => assert_eq!(p, path, "{name}"),
            other => panic!("{name}: expected CorruptFile, got {other:?}"),
        }
        // Once the operator moves it away, the directory opens.
        std::fs::remove_file(&path).unwrap();
        assert!(LogManager::open(dir.path()).unwrap().topics().is_empty());
    }
}

#[test]
fn background_interval_flushes_make_appends_durable() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(LogManager::open(dir.path()).unwrap());
    manager.start_background(Duration::from_secs(3600)).unwrap();
    let config = LogConfig {
        durability: Durability::Interval { ms: 20 },
        ..audit_config()
    };
    manager.create_topic("flushed", 2, config).unwrap();
    let logs: Vec<_> = (0..2)
        .map(|p| manager.partition("flushed", p).unwrap())
        .collect();
    for (p, log) in logs.iter().enumerate() {
        for i in 0..(5 + p as u64) {
            log.append_durable(&batch(i, 2, 100, 0)).unwrap();
        }
    }
    let durable = wait_for(Duration::from_secs(2), || {
        logs.iter()
            .all(|log| log.durable_offset() >= log.log_end_offset())
    });
    for log in &logs {
        assert!(
            durable,
            "{}: durable {} of {} after 2 s",
            log.name(),
            log.durable_offset(),
            log.log_end_offset()
        );
        assert!(
            log.stats()
                .fsyncs
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 1
        );
    }
    manager.close().unwrap();
}

#[test]
fn background_retention_deletes_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(LogManager::open(dir.path()).unwrap());
    manager.start_background(Duration::from_millis(10)).unwrap();
    let config = LogConfig {
        retention_ms: Some(1_000),
        ..audit_config()
    };
    manager.create_topic("expiring", 1, config).unwrap();
    let log = manager.partition("expiring", 0).unwrap();
    // Timestamps from 1970: every closed segment is long expired.
    for i in 0..40 {
        log.append(&batch(i, 2, 100, 1_000)).unwrap();
    }
    assert!(log.segments().len() > 2);
    let active = log.segments().last().unwrap().base_offset();
    let deleted = wait_for(Duration::from_secs(2), || {
        log.segments().len() == 1 && log.log_start_offset() == active
    });
    assert!(
        deleted,
        "{} segments, log start {} after 2 s",
        log.segments().len(),
        log.log_start_offset()
    );
    assert!(matches!(
        log.read(Offset(0), 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(80));
    manager.close().unwrap();
    drop(log);
    drop(manager);
    let manager = LogManager::open(dir.path()).unwrap();
    let log = manager.partition("expiring", 0).unwrap();
    assert_eq!(log.log_start_offset(), active);
    assert_eq!(log.log_end_offset(), Offset(80));
}

#[test]
fn a_stale_handle_of_a_deleted_topic_cannot_run_retention_on_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(dir.path()).unwrap();
    let config = LogConfig {
        retention_bytes: Some(0),
        ..small_config(4096)
    };
    manager.create_topic("t", 1, config.clone()).unwrap();
    let stale = manager.partition("t", 0).unwrap();
    for i in 0..40 {
        stale.append(&batch(i, 1, 200, 0)).unwrap();
    }
    manager.delete_topic("t").unwrap();
    manager.create_topic("t", 1, config).unwrap();
    let fresh = manager.partition("t", 0).unwrap();
    for i in 0..3 {
        fresh.append(&batch(i, 1, 10, 0)).unwrap();
    }
    assert!(matches!(
        stale.apply_retention(i64::MAX / 2),
        Err(Error::Closed(_))
    ));
    assert_eq!(all_batches(&fresh).len(), 3);
    manager.close().unwrap();
    drop(manager);
    let manager = LogManager::open(dir.path()).unwrap();
    assert_eq!(manager.partition("t", 0).unwrap().log_end_offset().0, 3);
}
