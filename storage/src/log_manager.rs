//! A data directory: the topics, their partition logs, and the lock that keeps a
//! second process out.
//!
//! ```text
//! <data_dir>/
//!   .lock                      flock(2)-ed while a LogManager has the dir open
//!   meta/topics/<topic>.json   one TopicConfig per topic (with its owner's extra fields), written atomically
//!   meta/kv/                   the broker's KvStore (its metadata, keyed by the broker)
//!   <topic>-<partition>/       one PartitionLog each
//!   <topic>-<partition>.deleted/  a deletion in progress; removed on open
//! ```
//!
//! The topic's JSON file is the commit point: a topic exists exactly when its file
//! does. Creating writes the file, then the partition directories (missing ones are
//! created on open). Deleting renames the partition directories to `.deleted`,
//! removes the file, then removes the directories. A crash at any step leaves
//! either the topic or nothing, never half a topic. A partition directory that no
//! topic file names is reported and left alone (it is not ours to delete).
//!
//! Thread-safe: `LogManager` is `Send + Sync`; topic creation and deletion are
//! serialized by one mutex, lookups take a read lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{sync_dir, write_atomically};
use crate::config::{Durability, LogConfig};
use crate::error::{Error, IoContext, Result};
use crate::file_names::{parse_partition_dir, partition_dir_name};
use crate::log::PartitionLog;
use crate::metrics::StorageMetrics;

const META_DIR: &str = "meta";
const TOPICS_DIR: &str = "topics";
const LOCK_FILE: &str = ".lock";
const DELETED_SUFFIX: &str = ".deleted";
/// Most partitions a topic may have. Not configurable: bounds the work and files
/// one request can create.
pub const MAX_PARTITIONS: u32 = 10_000;

/// A topic as persisted in `meta/topics/<name>.json`:
///
/// ```text
/// { "name": "orders", "partitions": 3, "log": { ... }, <the owner's fields> }
/// ```
///
/// Storage reads `name`, `partitions` and `log` (missing: the defaults).
/// Every other field of the object belongs to whoever creates topics (the
/// broker keeps its own per-topic settings there): storage keeps them in
/// [`extra`](Self::extra), writes them in the same atomic write as its own
/// fields (so the file stays the one commit point of a create), and returns
/// them untouched. It checks only that they are JSON; their owner checks them
/// before creating a topic and, through [`LogManager::open_checked`], when the
/// directory is opened. (`extra` is a JSON map, so a file written now lists
/// those fields by name; JSON readers do not care about the order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub name: String,
    pub partitions: u32,
    #[serde(default)]
    pub log: LogConfig,
    /// The fields of the file storage does not read, by name.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The fields of a topic file storage reads itself; [`TopicConfig::extra`]
/// must not repeat them.
const OWN_FIELDS: [&str; 3] = ["name", "partitions", "log"];

/// A check of the fields a topic file holds beyond storage's own
/// ([`TopicConfig::extra`]), run on every topic file when a data directory is
/// opened ([`LogManager::open_checked`]). An `Err` is the reason of the
/// [`Error::CorruptFile`] that refuses the open.
pub type ExtraCheck<'a> = &'a dyn Fn(&TopicConfig) -> std::result::Result<(), String>;

struct Topic {
    config: TopicConfig,
    partitions: Vec<PartitionLog>,
}

/// Owns a data directory. See the module docs.
pub struct LogManager {
    data_dir: PathBuf,
    _lock: File,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    admin: Mutex<()>,
    background: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// Given to every partition log this manager opens.
    metrics: StorageMetrics,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// Longest topic name: every file name derived from it must fit NAME_MAX (255).
/// The longest are `<name>-<partition>.deleted` (partition < 10 000: 13 more
/// bytes) and `<name>.json.tmp` (9 more). Kafka allows 249.
pub const MAX_TOPIC_NAME_LEN: usize = 255 - "-9999.deleted".len();

/// Checks Kafka's topic-name rule, `[A-Za-z0-9._-]`, not `.` or `..`, with at
/// most [`MAX_TOPIC_NAME_LEN`] characters.
///
/// # Errors
/// `InvalidTopicName`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidTopicName(name.to_string()))
    }
}

impl LogManager {
    /// Opens (creating if needed) the data directory, locks it, and opens every
    /// topic's partitions, recovering them as needed.
    ///
    /// # Errors
    /// `DataDirLocked` if another process has it; I/O errors; `CorruptFile` for an
    /// unreadable topic file; any error opening a partition.
    pub fn open(data_dir: &Path) -> Result<LogManager> {
        LogManager::open_with_metrics(data_dir, StorageMetrics::default())
    }

    /// [`open`](Self::open), with every partition log (those opened now and
    /// those of topics created later) recording into `metrics`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_metrics(data_dir: &Path, metrics: StorageMetrics) -> Result<LogManager> {
        LogManager::open_checked(data_dir, metrics, &|_| Ok(()))
    }

    /// [`open_with_metrics`](Self::open_with_metrics), refusing the directory
    /// when `check_extra` refuses a topic file's [`extra`](TopicConfig::extra)
    /// fields. Runs before anything in the directory is changed, as the
    /// checks of storage's own fields do.
    ///
    /// # Errors
    /// As [`open`](Self::open); `CorruptFile` naming the topic file and the
    /// reason `check_extra` gave.
    pub fn open_checked(
        data_dir: &Path,
        metrics: StorageMetrics,
        check_extra: ExtraCheck<'_>,
    ) -> Result<LogManager> {
        std::fs::create_dir_all(data_dir.join(META_DIR).join(TOPICS_DIR))
            .ctx("create data directory", data_dir)?;
        let lock = crate::dir_lock::lock_exclusive(data_dir, LOCK_FILE, "lock data directory")?;
        let manager = LogManager {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            background: Mutex::new(None),
            metrics,
        };
        let configs = manager.read_topic_configs(check_extra)?;
        manager.sweep_data_dir(&configs)?;
        let mut topics = BTreeMap::new();
        for config in configs {
            let partitions = (0..config.partitions)
                .map(|p| manager.open_partition(&config, p))
                .collect::<Result<Vec<_>>>()?;
            topics.insert(config.name.clone(), Arc::new(Topic { config, partitions }));
        }
        *manager
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = topics;
        Ok(manager)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `<data_dir>/meta`, where the broker keeps its metadata: the topic configs
    /// and, in `meta/kv`, the broker's [`KvStore`](crate::KvStore).
    pub fn meta_dir(&self) -> PathBuf {
        self.data_dir.join(META_DIR)
    }

    fn topic_file(&self, name: &str) -> PathBuf {
        self.data_dir
            .join(META_DIR)
            .join(TOPICS_DIR)
            .join(format!("{name}.json"))
    }

    fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(partition_dir_name(topic, partition))
    }

    fn open_partition(&self, config: &TopicConfig, partition: u32) -> Result<PartitionLog> {
        PartitionLog::open_with_metrics(
            &self.partition_dir(&config.name, partition),
            &partition_dir_name(&config.name, partition),
            config.log.clone(),
            self.metrics.clone(),
        )
    }

    fn read_topic_configs(&self, check_extra: ExtraCheck<'_>) -> Result<Vec<TopicConfig>> {
        let dir = self.data_dir.join(META_DIR).join(TOPICS_DIR);
        let mut configs = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx("list topics", &dir)? {
            let path = entry.ctx("list topics", &dir)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                if path.to_string_lossy().ends_with(".tmp") {
                    std::fs::remove_file(&path).ctx("remove temp file", &path)?;
                } else {
                    tracing::warn!(path = %path.display(), "ignoring stray file in meta/topics");
                }
                continue;
            }
            let bytes = std::fs::read(&path).ctx("read topic config", &path)?;
            let config: TopicConfig =
                serde_json::from_slice(&bytes).map_err(|e| Error::CorruptFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != config.name || validate_topic_name(&config.name).is_err() {
                return Err(Error::CorruptFile {
                    path,
                    reason: format!("names topic {:?}", config.name),
                });
            }
            config.log.validate().map_err(|e| Error::CorruptFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            check_extra(&config).map_err(|reason| Error::CorruptFile {
                path: path.clone(),
                reason,
            })?;
            configs.push(config);
        }
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(configs)
    }

    /// Finishes interrupted deletions and reports directories no topic owns.
    fn sweep_data_dir(&self, configs: &[TopicConfig]) -> Result<()> {
        let mut restored = false;
        for entry in std::fs::read_dir(&self.data_dir).ctx("list data directory", &self.data_dir)? {
            let entry = entry.ctx("list data directory", &self.data_dir)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == META_DIR || name == LOCK_FILE {
                continue;
            }
            if let Some(stem) = name.strip_suffix(DELETED_SUFFIX) {
                let is_dir = entry
                    .file_type()
                    .ctx("list data directory", &self.data_dir)?
                    .is_dir();
                let Some((topic, partition)) = parse_partition_dir(stem).filter(|_| is_dir) else {
                    tracing::warn!(path = %path.display(), "ignoring stray entry in the data directory");
                    continue;
                };
                let live = self.data_dir.join(stem);
                let owned = configs
                    .iter()
                    .any(|c| c.name == topic && partition < c.partitions);
                if owned && !live.exists() {
                    // The topic file is still there: the delete stopped before its
                    // commit point. Undo it, so the topic stays whole.
                    tracing::info!(path = %path.display(), "undoing an interrupted topic deletion");
                    std::fs::rename(&path, &live).ctx("restore partition", &path)?;
                    restored = true;
                    continue;
                }
                tracing::info!(path = %path.display(), "finishing an interrupted topic deletion");
                std::fs::remove_dir_all(&path).ctx("remove deleted partition", &path)?;
                continue;
            }
            let owned = parse_partition_dir(&name).is_some_and(|(topic, partition)| {
                configs
                    .iter()
                    .any(|c| c.name == topic && partition < c.partitions)
            });
            if !owned {
                tracing::warn!(path = %path.display(), "ignoring stray entry in the data directory: no topic owns it");
            }
        }
        if restored {
            sync_dir(&self.data_dir)?;
        }
        Ok(())
    }

    /// Creates a topic with `partitions` empty partitions and no
    /// [`extra`](TopicConfig::extra) fields.
    ///
    /// # Errors
    /// As [`create_topic_with`](Self::create_topic_with).
    pub fn create_topic(&self, name: &str, partitions: u32, log: LogConfig) -> Result<TopicConfig> {
        self.create_topic_with(name, partitions, log, serde_json::Map::new())
    }

    /// Creates a topic with `partitions` empty partitions, storing `extra`
    /// in its topic file (the same atomic write; see [`TopicConfig`]).
    /// `extra` is not checked beyond not naming storage's own fields: its
    /// owner checks it first.
    ///
    /// # Errors
    /// `InvalidTopicName`, `TopicExists`, `Config` (bad config, partition
    /// count, or an `extra` field named like one of storage's), I/O errors,
    /// `DiskFull`.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: u32,
        log: LogConfig,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<TopicConfig> {
        validate_topic_name(name)?;
        log.validate()?;
        if let Some(field) = OWN_FIELDS.iter().find(|f| extra.contains_key(**f)) {
            return Err(Error::Config(format!(
                "topic field {field:?} is storage's own, not an extra setting"
            )));
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(Error::Config(format!(
                "partitions {partitions} must be in 1..={MAX_PARTITIONS}"
            )));
        }
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.topic(name).is_some() {
            return Err(Error::TopicExists(name.to_string()));
        }
        for p in 0..partitions {
            let dir = self.partition_dir(name, p);
            if dir.exists() {
                return Err(Error::Config(format!(
                    "{} already exists but belongs to no topic; move it away first",
                    dir.display()
                )));
            }
        }
        let config = TopicConfig {
            name: name.to_string(),
            partitions,
            log,
            extra,
        };
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::Config(e.to_string()))?;
        write_atomically(&self.topic_file(name), &json)?;
        let opened = (0..partitions)
            .map(|p| self.open_partition(&config, p))
            .collect::<Result<Vec<_>>>()
            .and_then(|logs| sync_dir(&self.data_dir).map(|()| logs));
        let logs = match opened {
            Ok(logs) => logs,
            Err(e) => {
                self.undo_create(name, partitions);
                return Err(e);
            }
        };
        self.topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                name.to_string(),
                Arc::new(Topic {
                    config: config.clone(),
                    partitions: logs,
                }),
            );
        tracing::info!(topic = name, partitions, "topic created");
        Ok(config)
    }

    /// Rolls back a create that failed after writing the topic file: the file
    /// first (the commit point), then the partition directories, which did not
    /// exist before (checked under the admin lock). Best effort: what is left is
    /// reported or swept on the next open.
    fn undo_create(&self, name: &str, partitions: u32) {
        let file = self.topic_file(name);
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::error!(path = %file.display(), error = %e, "cannot roll back a failed topic creation");
            return;
        }
        let _ = sync_dir(&self.data_dir.join(META_DIR).join(TOPICS_DIR));
        for p in 0..partitions {
            let _ = std::fs::remove_dir_all(self.partition_dir(name, p));
        }
        let _ = sync_dir(&self.data_dir);
    }

    /// Deletes a topic and all its data.
    ///
    /// # Errors
    /// `UnknownTopic`; I/O errors.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let topic = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic(name.to_string()))?;
        let mut doomed = Vec::new();
        for (p, log) in topic.partitions.iter().enumerate() {
            // Close first: stops appends and joins background flushes.
            if let Err(e) = log.close() {
                tracing::warn!(partition = log.name(), error = %e, "close before delete failed");
            }
            let dir = self.partition_dir(name, p as u32);
            let mut deleted = dir.clone().into_os_string();
            deleted.push(DELETED_SUFFIX);
            let deleted = PathBuf::from(deleted);
            std::fs::rename(&dir, &deleted).ctx("rename partition for deletion", &dir)?;
            doomed.push(deleted);
        }
        sync_dir(&self.data_dir)?;
        let file = self.topic_file(name);
        std::fs::remove_file(&file).ctx("remove topic config", &file)?;
        sync_dir(&self.data_dir.join(META_DIR).join(TOPICS_DIR))?;
        for dir in doomed {
            std::fs::remove_dir_all(&dir).ctx("remove deleted partition", &dir)?;
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// A topic's config.
    pub fn topic(&self, name: &str) -> Option<TopicConfig> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .map(|t| t.config.clone())
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<TopicConfig> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|t| t.config.clone())
            .collect()
    }

    /// One partition's log.
    pub fn partition(&self, topic: &str, partition: u32) -> Option<PartitionLog> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)?
            .partitions
            .get(partition as usize)
            .cloned()
    }

    fn all_partitions(&self) -> Vec<PartitionLog> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Runs retention on every partition; failures are logged and skipped.
    /// Returns the number of segments deleted.
    pub fn apply_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for log in self.all_partitions() {
            match log.apply_retention(now_ms) {
                Ok(o) => deleted += o.segments_deleted,
                Err(e) => tracing::error!(partition = log.name(), error = %e, "retention failed"),
            }
        }
        deleted
    }

    /// Syncs every `interval:<ms>` partition whose interval has passed.
    pub fn sync_due(&self) {
        for log in self.all_partitions() {
            if let Err(e) = log.sync_if_due() {
                tracing::error!(partition = log.name(), error = %e, "interval flush failed");
            }
        }
    }

    /// Starts the background thread that runs interval flushes (as often as the
    /// shortest interval asks, at most every 5 ms) and retention (every
    /// `retention_check`). Stopped by [`close`](Self::close) or drop.
    ///
    /// # Errors
    /// I/O error if the thread cannot be spawned.
    pub fn start_background(self: &Arc<Self>, retention_check: Duration) -> Result<()> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let weak: Weak<LogManager> = Arc::downgrade(self);
        let handle = std::thread::Builder::new()
            .name("warren-log-background".into())
            .spawn(move || {
                let mut last_retention = std::time::Instant::now();
                loop {
                    let Some(manager) = weak.upgrade() else {
                        return;
                    };
                    let tick = manager
                        .topics()
                        .iter()
                        .filter_map(|t| match t.log.durability {
                            Durability::Interval { ms } => Some(ms),
                            _ => None,
                        })
                        .min()
                        .unwrap_or(1000)
                        .clamp(5, 1000);
                    manager.sync_due();
                    if last_retention.elapsed() >= retention_check {
                        manager.apply_retention(now_ms());
                        last_retention = std::time::Instant::now();
                    }
                    drop(manager);
                    match stop_rx.recv_timeout(Duration::from_millis(tick)) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .ctx("spawn background thread", &self.data_dir)?;
        *self
            .background
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((stop_tx, handle));
        Ok(())
    }

    /// Stops the background thread and closes every partition cleanly, so the
    /// next open scans nothing. Reports the first error after trying them all.
    ///
    /// # Errors
    /// The first partition close error.
    pub fn close(&self) -> Result<()> {
        if let Some((stop, handle)) = self
            .background
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = stop.send(());
            let _ = handle.join();
        }
        let mut first_error = None;
        for log in self.all_partitions() {
            if let Err(e) = log.close() {
                tracing::error!(partition = log.name(), error = %e, "close failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
