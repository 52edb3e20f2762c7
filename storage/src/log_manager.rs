//! A data directory: the topics, their partition logs, and the lock that keeps a
//! second process out.
//!
//! ```text
//! <data_dir>/
//!   .lock                      flock(2)-ed while a LogManager has the dir open
//!   meta/topics/<topic>.json   one TopicConfig per topic, written atomically
//!   meta/kv/                   the broker's KvStore (group offsets, bindings, share-group state)
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
use warren_protocol::api::bindings::{RoutingMode, UnknownRoutingMode};

use crate::checkpoint::{sync_dir, write_atomically};
use crate::config::{Durability, LogConfig};
use crate::error::{Error, IoContext, Result};
use crate::file_names::{parse_partition_dir, partition_dir_name};
use crate::log::PartitionLog;
use crate::metrics::StorageMetrics;
use crate::share_config::ShareConfig;

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
/// { "name": "orders", "partitions": 3, "log": { ... },
///   "routing": { "mode": "direct", "alternate_topic": "orders-unrouted" } }
/// ```
///
/// `routing` (and each of its fields) may be missing: files written before
/// routing existed load as `hash` with no alternate topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub name: String,
    pub partitions: u32,
    #[serde(default)]
    pub log: LogConfig,
    /// Share-group settings (dead-letter topic, delivery limit, lock timeout);
    /// defaults for topic files written before they existed.
    #[serde(default)]
    pub share: ShareConfig,
    #[serde(default)]
    pub routing: TopicRouting,
}

/// A topic's routing settings, the topic configs `routing` and
/// `alternate.topic` (DESIGN.md, "Routing"). Fixed at creation. The bindings
/// themselves are not here: the broker keeps them in its metadata store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRouting {
    /// How a batch produced with `partition = -1` is placed. Default `hash`.
    #[serde(default, with = "routing_mode_name")]
    pub mode: RoutingMode,
    /// Where a routed batch that matches no binding goes (`direct` and
    /// `topic` only). Need not exist. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_topic: Option<String>,
}

impl TopicRouting {
    /// The topic config keys [`set`](Self::set) takes.
    pub const KEYS: &'static [&'static str] = &["routing", "alternate.topic"];

    /// Sets one setting by its topic config key: `routing` (`hash`, `direct`,
    /// `topic`) or `alternate.topic` (a topic name; empty = none). Does not run
    /// [`validate`](Self::validate).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown key or mode.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "routing" => {
                self.mode = value
                    .trim()
                    .parse()
                    .map_err(|e: UnknownRoutingMode| Error::Config(format!("routing: {e}")))?;
            }
            "alternate.topic" => {
                let value = value.trim();
                self.alternate_topic = (!value.is_empty()).then(|| value.to_owned());
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown topic config {other:?} (known: {})",
                    Self::KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every key of [`KEYS`](Self::KEYS) with its value, as [`set`](Self::set)
    /// would take it back (`alternate.topic` is empty when there is none).
    pub fn entries(&self) -> Vec<(String, String)> {
        vec![
            ("routing".into(), self.mode.name().into()),
            (
                "alternate.topic".into(),
                self.alternate_topic.clone().unwrap_or_default(),
            ),
        ]
    }

    /// Checks the settings of topic `topic`: an alternate topic needs a mode
    /// that routes by bindings (a `hash` topic never fails to route), a valid
    /// name, and must be another topic.
    ///
    /// # Errors
    /// [`Error::Config`] naming the problem.
    pub fn validate(&self, topic: &str) -> Result<()> {
        let Some(alternate) = &self.alternate_topic else {
            return Ok(());
        };
        if !self.mode.uses_bindings() {
            return Err(Error::Config(format!(
                "alternate.topic needs routing direct or topic (a {} topic always routes)",
                self.mode
            )));
        }
        if validate_topic_name(alternate).is_err() {
            return Err(Error::Config(format!(
                "alternate.topic {alternate:?} is not a valid topic name"
            )));
        }
        if alternate == topic {
            return Err(Error::Config(format!(
                "alternate.topic of {topic:?} cannot be the topic itself"
            )));
        }
        Ok(())
    }
}

/// Serde for [`RoutingMode`] by name (`"hash"`), which the protocol crate
/// leaves to its users (it has no serde).
mod routing_mode_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use warren_protocol::api::bindings::RoutingMode;

    pub fn serialize<S: Serializer>(mode: &RoutingMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoutingMode, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

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
        let configs = manager.read_topic_configs()?;
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

    fn read_topic_configs(&self) -> Result<Vec<TopicConfig>> {
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
            config
                .routing
                .validate(&config.name)
                .and_then(|()| config.share.validate(&config.name))
                .map_err(|e| Error::CorruptFile {
                    path: path.clone(),
                    reason: e.to_string(),
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

    /// Creates a topic with `partitions` empty partitions, routed by `hash`.
    ///
    /// # Errors
    /// As [`create_topic_with`](Self::create_topic_with).
    pub fn create_topic(&self, name: &str, partitions: u32, log: LogConfig) -> Result<TopicConfig> {
        self.create_topic_with(
            name,
            partitions,
            log,
            TopicRouting::default(),
            ShareConfig::default(),
        )
    }

    /// Creates a topic with `partitions` empty partitions and the given
    /// routing and share-group settings.
    ///
    /// # Errors
    /// `InvalidTopicName`, `TopicExists`, `Config` (bad config, routing or
    /// partition count), I/O errors, `DiskFull`.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: u32,
        log: LogConfig,
        routing: TopicRouting,
        share: ShareConfig,
    ) -> Result<TopicConfig> {
        validate_topic_name(name)?;
        log.validate()?;
        routing.validate(name)?;
        share.validate(name)?;
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
            routing,
            share,
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
