//! The broker's view of its topics: each partition's log plus the `Notify` that
//! wakes long-polling fetches when the partition's high watermark moves, and
//! each topic's routing bindings.
//!
//! [`Topics`] mirrors the [`LogManager`]'s topic set; create and delete go
//! through it (serialised by `admin`) so the two never disagree. Lookups take
//! a read lock on a `HashMap` and clone an `Arc`: cheap, and never held across
//! I/O. Thread-safe.
//!
//! # Bindings
//! A topic's bindings live in two places: the metadata store (`Shared::kv`,
//! keys in [`crate::metadata::bindings`]), which makes them durable, and [`Topic`]'s
//! in-memory [`Bindings`], which produce routes by. Every change goes through
//! [`Topics::change_bindings`], [`Topics::create`] or [`Topics::delete`] under
//! the `admin` mutex, store first, memory once the store has it durably, so
//! the two agree and a binding is never seen by produce before it would
//! survive a crash. Holding `admin` across the store's fsync serialises binds
//! with creates and deletes (they are rare admin operations); it is what
//! keeps a Bind racing a DeleteTopic from writing a binding for the topic
//! after its bindings were removed.
//!
//! Lock order: `admin`, then the topic map, then a topic's `bindings`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use warren_protocol::api::bindings::RoutingMode;
use warren_storage::{KvOp, KvStore, LogConfig, LogManager};

use crate::metadata::{ShareConfig, TopicConfig, TopicRouting, bindings};

use crate::partition::{Partition, PartitionMetrics};
use crate::routing::{BindingError, Bindings, validate_key};

/// A topic: its stored config, partitions and bindings.
pub struct Topic {
    pub config: TopicConfig,
    pub partitions: Vec<Arc<Partition>>,
    /// Round-robin cursor for produce entries with no partition and no key.
    next_partition: AtomicU32,
    /// The bindings produce routes by (see the module docs for who writes
    /// them). A std `RwLock` rather than an `Arc` swap: produce holds the read
    /// lock for one `route` call per routed batch (a hash lookup or a trie
    /// walk over at most 256 words, no I/O, no allocation beyond the matcher's
    /// two small `Vec`s), and binds are rare and take the write lock only for
    /// an in-memory insert, so readers hardly ever wait; a swap would copy
    /// the whole trie on every bind and needs a crate we do not have.
    bindings: RwLock<Bindings>,
}

impl Topic {
    fn new(config: TopicConfig, manager: &LogManager, metrics_enabled: bool) -> Topic {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let partitions = (0..config.partitions)
            .filter_map(|p| {
                manager.partition(&config.name, p).map(|log| {
                    Arc::new(Partition::new(
                        Arc::clone(&name),
                        p,
                        log,
                        PartitionMetrics::new(metrics_enabled),
                    ))
                })
            })
            .collect();
        let bindings = RwLock::new(Bindings::new(config.routing.mode));
        Topic {
            config,
            partitions,
            next_partition: AtomicU32::new(0),
            bindings,
        }
    }

    /// The next partition for round-robin placement.
    pub fn round_robin(&self) -> u32 {
        let n = self.partitions.len().max(1) as u32;
        self.next_partition.fetch_add(1, Ordering::Relaxed) % n
    }

    /// The topic's routing mode.
    pub fn routing(&self) -> RoutingMode {
        self.config.routing.mode
    }

    /// Replaces `out` with the partitions `routing_key` is bound to (sorted,
    /// no duplicates; always empty for a `hash` topic). Takes the bindings'
    /// read lock for the call.
    pub fn route(&self, routing_key: &str, out: &mut Vec<u32>) {
        self.read_bindings().route(routing_key, out);
    }

    /// The bindings grouped by key, keys sorted, partitions ascending.
    pub fn bindings(&self) -> Vec<(String, Vec<u32>)> {
        self.read_bindings().list()
    }

    fn read_bindings(&self) -> std::sync::RwLockReadGuard<'_, Bindings> {
        self.bindings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_bindings(&self) -> std::sync::RwLockWriteGuard<'_, Bindings> {
        self.bindings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks a Bind or Unbind against the topic: a mode with bindings, at
    /// least one partition, each below the partition count, a key of at most
    /// 255 bytes.
    ///
    /// # Errors
    /// The [`BindingError`] that refuses it.
    pub fn check_binding(&self, key: &str, partitions: &[u32]) -> Result<(), BindingError> {
        if !self.routing().uses_bindings() {
            return Err(BindingError::HashTopic);
        }
        if partitions.is_empty() {
            return Err(BindingError::NoPartitions);
        }
        if let Some(&partition) = partitions.iter().find(|&&p| p >= self.config.partitions) {
            return Err(BindingError::PartitionOutOfRange {
                partition,
                partitions: self.config.partitions,
            });
        }
        validate_key(key)?;
        Ok(())
    }
}

/// Whether [`Topics::change_bindings`] adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingChange {
    /// Bind: add the bindings (existing ones stay as they are).
    Bind,
    /// Unbind: remove the bindings (missing ones are ignored).
    Unbind,
}

/// What [`Topics::load_bindings`] found in the metadata store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadedBindings {
    /// Bindings loaded into their topics.
    pub loaded: usize,
    /// Entries removed: their topic no longer exists (a crash between a
    /// DeleteTopic's steps), cannot take bindings, or lacks the partition; or
    /// the key did not parse.
    pub removed: usize,
}

/// Every topic of the broker; see the module docs.
pub struct Topics {
    manager: Arc<LogManager>,
    map: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises create and delete so the map and the manager agree.
    admin: Mutex<()>,
    /// Whether partitions get live metrics handles ([`PartitionMetrics`]).
    metrics_enabled: bool,
}

impl Topics {
    /// The topics the manager opened, with metrics on.
    pub fn new(manager: Arc<LogManager>) -> Topics {
        Topics::with_metrics(manager, true)
    }

    /// The topics the manager opened; their partitions count produced and
    /// fetched records when `metrics_enabled` (and topics created later too).
    pub fn with_metrics(manager: Arc<LogManager>, metrics_enabled: bool) -> Topics {
        let map = manager
            .topics()
            .into_iter()
            .map(|stored| {
                let config = TopicConfig::from_stored(&stored).unwrap_or_else(|reason| {
                    // Only for a manager not opened with `metadata::check_stored`
                    // (the broker always passes it, so a bad file refuses the start).
                    tracing::error!(topic = %stored.name, %reason, "topic settings do not parse; using the defaults");
                    TopicConfig {
                        name: stored.name.clone(),
                        partitions: stored.partitions,
                        log: stored.log.clone(),
                        share: ShareConfig::default(),
                        routing: TopicRouting::default(),
                    }
                });
                let topic = Topic::new(config, &manager, metrics_enabled);
                (topic.config.name.clone(), Arc::new(topic))
            })
            .collect();
        Topics {
            manager,
            map: RwLock::new(map),
            admin: Mutex::new(()),
            metrics_enabled,
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

    fn admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates a topic with no bindings. Blocking (creates files and fsyncs):
    /// call it on a blocking thread.
    ///
    /// Bindings a failed cleanup left in `kv` under this name (see
    /// [`delete`](Self::delete)) are removed first, so the new topic starts
    /// with none, in memory and after a restart.
    ///
    /// The routing and share settings are checked here (storage stores them
    /// unread, in the topic file: see [`crate::metadata::topic`]), in the
    /// order storage checked them before they moved: name, log config,
    /// routing, share.
    ///
    /// # Errors
    /// As [`LogManager::create_topic_with`]; `Config` for bad routing or
    /// share settings; the store's errors removing leftover bindings.
    pub fn create(
        &self,
        kv: &KvStore,
        name: &str,
        partitions: u32,
        log: LogConfig,
        routing: TopicRouting,
        share: ShareConfig,
    ) -> warren_storage::Result<()> {
        let _admin = self.admin();
        if self.manager.topic(name).is_none() {
            remove_stored_bindings(kv, name)?;
        }
        warren_storage::validate_topic_name(name)?;
        log.validate()?;
        routing.validate(name)?;
        share.validate(name)?;
        let extra = TopicConfig::stored_extra(&routing, &share)?;
        let stored = self
            .manager
            .create_topic_with(name, partitions, log, extra)?;
        let config = TopicConfig {
            name: stored.name,
            partitions: stored.partitions,
            log: stored.log,
            share,
            routing,
        };
        let topic = Arc::new(Topic::new(config, &self.manager, self.metrics_enabled));
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), topic);
        Ok(())
    }

    /// Deletes a topic and its bindings. Blocking: call it on a blocking
    /// thread. Fetches waiting on its partitions are woken and see
    /// `UNKNOWN_TOPIC`.
    ///
    /// The topic file goes first (the commit point); then its bindings are
    /// removed from `kv`. If that fails (logged), the topic is still deleted:
    /// the leftovers are removed when a topic of that name is created again
    /// and at the next start ([`load_bindings`](Self::load_bindings)).
    ///
    /// # Errors
    /// As [`LogManager::delete_topic`].
    pub fn delete(&self, kv: &KvStore, name: &str) -> warren_storage::Result<()> {
        let _admin = self.admin();
        self.manager.delete_topic(name)?;
        if let Err(e) = remove_stored_bindings(kv, name) {
            tracing::error!(topic = name, error = %e, "removing a deleted topic's bindings failed; they are removed at the next start");
        }
        let removed = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        for p in removed.iter().flat_map(|t| &t.partitions) {
            p.removed();
        }
        Ok(())
    }

    /// Binds (or unbinds) `key` to each of `partitions` of topic `name`:
    /// checks the request, writes the change to `kv` as one batch, waits for
    /// it to be durable, then applies it to the topic's in-memory bindings.
    /// Blocking (an fsync): call it on a blocking thread.
    ///
    /// # Errors
    /// [`BindingError::UnknownTopic`], the checks of
    /// [`Topic::check_binding`], [`BindingError::Storage`]. On error nothing
    /// changed in memory; after a store error the change may or may not be
    /// durable (as with any failed fsync), and shows up, or not, at the next
    /// start.
    pub fn change_bindings(
        &self,
        kv: &KvStore,
        name: &str,
        key: &str,
        partitions: &[u32],
        change: BindingChange,
    ) -> Result<(), BindingError> {
        let _admin = self.admin();
        let topic = self
            .get(name)
            .ok_or_else(|| BindingError::UnknownTopic(name.to_owned()))?;
        topic.check_binding(key, partitions)?;
        // A partition named twice is bound once: one store key each, so a
        // request of n repeats writes at most the topic's partition count.
        let partitions: Vec<u32> = partitions
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect();
        let partitions = partitions.as_slice();
        let keys: Vec<Vec<u8>> = partitions
            .iter()
            .map(|p| bindings::key(name, key, *p))
            .collect();
        let ops: Vec<KvOp<'_>> = keys
            .iter()
            .map(|k| match change {
                BindingChange::Bind => KvOp::Put(k, &[]),
                BindingChange::Unbind => KvOp::Delete(k),
            })
            .collect();
        kv.apply_durable(&ops).map_err(BindingError::Storage)?;
        let mut bindings = topic.write_bindings();
        for &partition in partitions {
            match change {
                BindingChange::Bind => {
                    bindings.insert(key, partition)?;
                }
                BindingChange::Unbind => {
                    bindings.remove(key, partition);
                }
            }
        }
        Ok(())
    }

    /// Loads the bindings stored in `kv` into their topics, at broker start.
    /// Entries that no topic can take (see [`LoadedBindings::removed`]) are
    /// removed from the store, in one durable batch. Blocking.
    ///
    /// # Errors
    /// The store's errors removing the leftovers (nothing is loaded then).
    pub fn load_bindings(&self, kv: &KvStore) -> warren_storage::Result<LoadedBindings> {
        let _admin = self.admin();
        let mut report = LoadedBindings::default();
        let mut doomed = Vec::new();
        let mut valid = Vec::new();
        for (raw, _) in kv.scan_prefix(bindings::ALL) {
            let topic = bindings::parse(&raw).and_then(|b| {
                let topic = self.get(b.topic)?;
                topic
                    .check_binding(b.key, &[b.partition])
                    .is_ok()
                    .then_some((topic, b.key.to_owned(), b.partition))
            });
            match topic {
                Some(binding) => valid.push(binding),
                None => doomed.push(raw),
            }
        }
        if !doomed.is_empty() {
            let ops: Vec<KvOp<'_>> = doomed.iter().map(|k| KvOp::Delete(k)).collect();
            kv.apply_durable(&ops)?;
            report.removed = doomed.len();
            tracing::warn!(
                removed = report.removed,
                "removed stored bindings of deleted topics or missing partitions"
            );
        }
        for (topic, key, partition) in valid {
            // `check_binding` passed, so the insert cannot be refused.
            if topic.write_bindings().insert(&key, partition).is_ok() {
                report.loaded += 1;
            }
        }
        Ok(report)
    }
}

/// Removes every binding of topic `name` from `kv` (durably); nothing to do
/// when it has none.
fn remove_stored_bindings(kv: &KvStore, name: &str) -> warren_storage::Result<()> {
    let stored = kv.scan_prefix(&bindings::topic_prefix(name));
    if stored.is_empty() {
        return Ok(());
    }
    let ops: Vec<KvOp<'_>> = stored.iter().map(|(k, _)| KvOp::Delete(k)).collect();
    kv.apply_durable(&ops)?;
    tracing::info!(topic = name, removed = ops.len(), "removed stored bindings");
    Ok(())
}
