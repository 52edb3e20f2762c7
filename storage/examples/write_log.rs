//! Writes a small partition log, so there is a segment for `warren dump-log` to
//! read:
//!
//! ```sh
//! cargo run -p warren-storage --example write_log -- ./warren-data/demo-0
//! cargo run -p warren-tools -- dump-log ./warren-data/demo-0/00000000000000000000.log
//! ```
//!
//! Appends a few batches of JSON-ish order events (one zstd-compressed, one with a
//! binary value) with `fsync` durability, then closes the log cleanly.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use warren_protocol::{Compression, Header, RecordBatchBuilder};
use warren_storage::{LogConfig, PartitionLog};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "./warren-data/demo-0".into()),
    );
    let log = PartitionLog::open(&dir, "demo-0", LogConfig::default())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    for (batch_no, compression) in [Compression::None, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let mut builder = RecordBatchBuilder::new(compression);
        for i in 0..3 {
            let order = batch_no * 3 + i;
            let value = format!(r#"{{"order":{order},"item":"widget","qty":{}}}"#, i + 1);
            builder.append(
                now + order as i64,
                Some(format!("customer-{}", order % 2).as_bytes()),
                Some(value.as_bytes()),
                &[Header::new("source", "write_log example")],
            );
        }
        if batch_no == 2 {
            builder.append(now, None, Some(&[0x00, 0xff, 0x10, 0x80]), &[]);
        }
        let info = log.append_durable(&builder.build()?)?;
        println!(
            "appended offsets {}..={} at position {}",
            info.base_offset, info.last_offset, info.position
        );
    }
    log.close()?;
    println!(
        "wrote {} (log end offset {})",
        dir.join("00000000000000000000.log").display(),
        log.log_end_offset()
    );
    Ok(())
}
