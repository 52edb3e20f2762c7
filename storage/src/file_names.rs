//! The only place that builds or parses the names of files the engine owns.
//!
//! ```text
//! <data_dir>/<topic>-<partition>/
//!     00000000000000368769.log         batches; named by the segment's base offset,
//!     00000000000000368769.index       20 digits zero-padded so that `ls` sorts
//!     00000000000000368769.timeindex   the files numerically (as Kafka does)
//!     recovery-point
//!
//! <kv_dir>/                            a key-value store (see `kv/mod.rs`)
//!     .lock                            flock(2)-ed while a KvStore has it open
//!     snapshot-00000000000000368769.kv the map as of offset 368769
//!     log/                             its partition log, laid out as above
//! ```

use std::path::{Path, PathBuf};

use crate::offset::Offset;

/// Suffix of segment data files.
pub const LOG_SUFFIX: &str = "log";
/// Suffix of sparse offset index files.
pub const INDEX_SUFFIX: &str = "index";
/// Suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Name of a partition's recovery-point checkpoint.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Suffix of a file being written before its atomic rename.
pub const TMP_SUFFIX: &str = "tmp";

/// Prefix of a key-value store's snapshot files.
pub const KV_SNAPSHOT_PREFIX: &str = "snapshot-";
/// Suffix of a key-value store's snapshot files.
pub const KV_SNAPSHOT_SUFFIX: &str = "kv";
/// The subdirectory of a key-value store that holds its log.
pub const KV_LOG_DIR: &str = "log";
/// The lock file of a key-value store's directory.
pub const KV_LOCK_FILE: &str = ".lock";

/// `dir/snapshot-<20-digit offset>.kv`: a key-value snapshot as of `offset`,
/// zero-padded so that `ls` sorts snapshots by offset.
pub fn kv_snapshot_file(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!(
        "{KV_SNAPSHOT_PREFIX}{:020}.{KV_SNAPSHOT_SUFFIX}",
        offset.0
    ))
}

/// Parses a snapshot file name into its offset; `None` for anything else
/// (including the `.tmp` file of a snapshot being written).
pub fn parse_kv_snapshot_file(name: &str) -> Option<Offset> {
    let stem = name
        .strip_prefix(KV_SNAPSHOT_PREFIX)?
        .strip_suffix(KV_SNAPSHOT_SUFFIX)?
        .strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Offset(stem.parse().ok()?))
}

/// The kinds of per-segment files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFile {
    Log,
    Index,
    TimeIndex,
}

impl SegmentFile {
    fn suffix(self) -> &'static str {
        match self {
            SegmentFile::Log => LOG_SUFFIX,
            SegmentFile::Index => INDEX_SUFFIX,
            SegmentFile::TimeIndex => TIME_INDEX_SUFFIX,
        }
    }
}

/// `dir/<20-digit base offset>.<suffix>`.
pub fn segment_file(dir: &Path, base_offset: Offset, kind: SegmentFile) -> PathBuf {
    dir.join(format!("{:020}.{}", base_offset.0, kind.suffix()))
}

/// Parses a segment file name; `None` for anything else.
pub fn parse_segment_file(name: &str) -> Option<(Offset, SegmentFile)> {
    let (stem, suffix) = name.split_once('.')?;
    let kind = match suffix {
        LOG_SUFFIX => SegmentFile::Log,
        INDEX_SUFFIX => SegmentFile::Index,
        TIME_INDEX_SUFFIX => SegmentFile::TimeIndex,
        _ => return None,
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((Offset(stem.parse().ok()?), kind))
}

/// `<topic>-<partition>`, the directory of one partition.
pub fn partition_dir_name(topic: &str, partition: u32) -> String {
    format!("{topic}-{partition}")
}

/// Splits `<topic>-<partition>` at the last dash.
pub fn parse_partition_dir(name: &str) -> Option<(&str, u32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?))
}

/// `path` with `.tmp` appended, for write-then-rename.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort_numerically() {
        let dir = Path::new("/d");
        let p = segment_file(dir, Offset(368_769), SegmentFile::Log);
        assert_eq!(p, Path::new("/d/00000000000000368769.log"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(
            parse_segment_file(name),
            Some((Offset(368_769), SegmentFile::Log))
        );
        assert_eq!(
            parse_segment_file("00000000000000000000.timeindex"),
            Some((Offset(0), SegmentFile::TimeIndex))
        );
        assert_eq!(parse_segment_file("0000000000000000000.log"), None);
        assert_eq!(parse_segment_file("0000000000000000000x.log"), None);
        assert_eq!(parse_segment_file("00000000000000000000.log.tmp"), None);
        assert_eq!(
            parse_segment_file("99999999999999999999.log"),
            None,
            "overflows u64"
        );
    }

    #[test]
    fn kv_snapshot_names_round_trip() {
        let p = kv_snapshot_file(Path::new("/kv"), Offset(42));
        assert_eq!(p, Path::new("/kv/snapshot-00000000000000000042.kv"));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_kv_snapshot_file(name), Some(Offset(42)));
        let tmp = tmp_path(&p);
        let tmp_name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_kv_snapshot_file(tmp_name), None);
        assert_eq!(parse_kv_snapshot_file("snapshot-42.kv"), None);
        assert_eq!(
            parse_kv_snapshot_file("snapshot-0000000000000000004x.kv"),
            None
        );
        assert_eq!(parse_kv_snapshot_file("00000000000000000042.log"), None);
    }

    #[test]
    fn partition_dirs_split_at_the_last_dash() {
        assert_eq!(parse_partition_dir("orders-eu-12"), Some(("orders-eu", 12)));
        assert_eq!(
            parse_partition_dir(&partition_dir_name("a", 0)),
            Some(("a", 0))
        );
        assert_eq!(parse_partition_dir("nodash"), None);
        assert_eq!(parse_partition_dir("-3"), None);
        assert_eq!(parse_partition_dir("t-"), None);
        assert_eq!(parse_partition_dir("t-x"), None);
    }
}
