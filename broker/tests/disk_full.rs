//! A full disk under a running broker: a 4 MiB tmpfs as the data dir. Produce
//! gets the retriable `DISK_FULL` and writes nothing; fetches, metadata and
//! topic admin keep working; once space is freed (here: deleting a topic),
//! the same produce succeeds and offsets continue without a gap.
//!
//! Mounting needs root (CI runs as root); elsewhere the test prints
//! `disk_full: skipped, cannot mount tmpfs: ...` and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use common::{Raw, batch, create, fetch, produce, values_of};
use warren_broker::{Broker, BrokerConfig};
use warren_protocol::ErrorCode;
use warren_protocol::api::topics::{DeleteTopicRequest, ListTopicsRequest};

struct Tmpfs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Option<Tmpfs>> {
        let dir = tempfile::tempdir()?;
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Some(Tmpfs { mount, _dir: dir })),
            Ok(o) => {
                eprintln!(
                    "disk_full: skipped, cannot mount tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("disk_full: skipped, cannot mount tmpfs: {e}");
                Ok(None)
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

#[tokio::test]
async fn produce_gets_disk_full_while_reads_and_admin_work_and_recovers_after_space_is_freed()
-> Result<()> {
    let Some(fs) = Tmpfs::mount("4m")? else {
        return Ok(());
    };
    let broker = Broker::start(BrokerConfig {
        data_dir: fs.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        // Small indexes, so their preallocation does not take the whole disk.
        log: warren_storage::LogConfig {
            max_index_bytes: 64 * 1024,
            ..warren_storage::LogConfig::default()
        },
        ..BrokerConfig::default()
    })
    .await?;
    let mut c = Raw::connect(broker.local_addr()).await?;
    create(&mut c, "main", 1, "fsync").await?;
    create(&mut c, "scratch", 1, "none").await?;
    // Fill the disk: 'scratch' takes about 2 MiB, then 'main' grows until ENOSPC.
    let value = "s".repeat(60_000);
    for _ in 0..34 {
        let r = c.call(&produce("scratch", 0, batch(&[&value])?, 1)).await?;
        assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
    }
    let mut acked = 0i64;
    let mut full = false;
    for i in 0..200 {
        let r = c
            .call(&produce("main", 0, batch(&[&format!("{i}:{value}")])?, -1))
            .await?;
        let p = &r.topics[0].partitions[0];
        if p.error_code == ErrorCode::DISK_FULL {
            assert!(p.error_code.is_retriable());
            assert_eq!(p.base_offset, -1);
            full = true;
            break;
        }
        assert_eq!(p.error_code, ErrorCode::NONE, "append {i}");
        assert_eq!(p.base_offset, acked);
        acked += 1;
    }
    assert!(full, "the 4 MiB disk never filled");
    // Reads and admin still work while full.
    let f = c.call(&fetch("main", 0, 0)).await?;
    let p = &f.topics[0].partitions[0];
    assert_eq!(p.high_watermark, acked as u64);
    assert!(!values_of(p.records.clone())?.is_empty());
    let topics = c.call(&ListTopicsRequest).await?;
    assert_eq!(topics.topics.len(), 2);
    // A second attempt is still refused, and changes nothing.
    let r = c
        .call(&produce(
            "main",
            0,
            batch(&[&format!("retry:{value}")])?,
            -1,
        ))
        .await?;
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::DISK_FULL);
    // Free space by deleting the scratch topic: the same produce now succeeds,
    // right after the last acknowledged offset.
    c.call(&DeleteTopicRequest {
        name: "scratch".into(),
    })
    .await?;
    let after = format!("after:{value}");
    let r = c.call(&produce("main", 0, batch(&[&after])?, -1)).await?;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, acked));
    let f = c.call(&fetch("main", acked as u64, 0)).await?;
    assert_eq!(
        values_of(f.topics[0].partitions[0].records.clone())?,
        [after]
    );
    broker.shutdown().await?;
    Ok(())
}
