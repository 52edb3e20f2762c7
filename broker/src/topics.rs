//! The broker's view of its topics: each partition's log plus the `Notify` that
//! wakes long-polling fetches when the partition's high watermark moves.
//!
//! [`Topics`] mirrors the [`LogManager`]'s topic set; create and delete go
//! through it (serialised by `admin`) so the two never disagree. Lookups take
//! a read lock on a `HashMap` and clone an `Arc`: cheap, and never held across
//! I/O. Thread-safe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use warren_storage::{
    Durability, LogConfig, LogManager, Offset, PartitionLog, ShareConfig, TopicConfig,
};

/// One partition as the request handlers see it.
pub struct Partition {
    pub topic: Arc<str>,
    pub index: u32,
    pub log: PartitionLog,
    /// Woken (`notify_waiters`) whenever the high watermark moves.
    pub hw_moved: Notify,
}

impl Partition {
    /// True when appends become visible only after an fsync.
    pub fn syncs_before_visible(&self) -> bool {
        self.log.config().durability == Durability::Fsync
    }

    /// Called after an append: wakes fetches at once unless the high watermark
    /// waits for an fsync (then [`sync_to`](Self::sync_to) wakes them).
    pub fn appended(&self) {
        if !self.syncs_before_visible() {
            self.hw_moved.notify_waiters();
        }
    }

    /// Makes every offset below `target` durable on a blocking thread (sharing
    /// fsyncs with concurrent callers), then wakes fetches.
    ///
    /// # Errors
    /// The storage error of a failed fsync (the partition then refuses writes
    /// until restart), or `Closed` if the blocking pool is gone.
    pub async fn sync_to(self: &Arc<Self>, target: Offset) -> warren_storage::Result<()> {
        let me = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || me.log.sync_to(target))
            .await
            .unwrap_or_else(|_| Err(warren_storage::Error::Closed(self.log.name().to_string())));
        self.hw_moved.notify_waiters();
        result
    }
}

/// A topic: its stored config and partitions.
pub struct Topic {
    pub config: TopicConfig,
    pub partitions: Vec<Arc<Partition>>,
    /// Round-robin cursor for produce entries with no partition and no key.
    next_partition: AtomicU32,
}

impl Topic {
    fn new(config: TopicConfig, manager: &LogManager) -> Topic {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let partitions = (0..config.partitions)
            .filter_map(|p| {
                manager.partition(&config.name, p).map(|log| {
                    Arc::new(Partition {
                        topic: Arc::clone(&name),
                        index: p,
                        log,
                        hw_moved: Notify::new(),
                    })
                })
            })
            .collect();
        Topic {
            config,
            partitions,
            next_partition: AtomicU32::new(0),
        }
    }

    /// The next partition for round-robin placement.
    pub fn round_robin(&self) -> u32 {
        let n = self.partitions.len().max(1) as u32;
        self.next_partition.fetch_add(1, Ordering::Relaxed) % n
    }
}

/// Every topic of the broker; see the module docs.
pub struct Topics {
    manager: Arc<LogManager>,
    map: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises create and delete so the map and the manager agree.
    admin: Mutex<()>,
}

impl Topics {
    /// The topics the manager opened.
    pub fn new(manager: Arc<LogManager>) -> Topics {
        let map = manager
            .topics()
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(Topic::new(c, &manager))))
            .collect();
        Topics {
            manager,
            map: RwLock::new(map),
            admin: Mutex::new(()),
        }
    }

    /// The log manager underneath.
    pub fn manager(&self) -> &Arc<LogManager> {
        &self.manager
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every topic, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        v
    }

    /// Creates a topic. Blocking (creates files and fsyncs): call it on a
    /// blocking thread.
    ///
    /// # Errors
    /// As [`LogManager::create_topic`].
    pub fn create(
        &self,
        name: &str,
        partitions: u32,
        log: LogConfig,
        share: ShareConfig,
    ) -> warren_storage::Result<()> {
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let config = self
            .manager
            .create_topic_with_share(name, partitions, log, share)?;
        let topic = Arc::new(Topic::new(config, &self.manager));
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), topic);
        Ok(())
    }

    /// Deletes a topic. Blocking: call it on a blocking thread. Fetches
    /// waiting on its partitions are woken and see `UNKNOWN_TOPIC`.
    ///
    /// # Errors
    /// As [`LogManager::delete_topic`].
    pub fn delete(&self, name: &str) -> warren_storage::Result<()> {
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.manager.delete_topic(name)?;
        let removed = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        for p in removed.iter().flat_map(|t| &t.partitions) {
            p.hw_moved.notify_waiters();
        }
        Ok(())
    }
}
