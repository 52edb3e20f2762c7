//! One topic's bindings in the form its routing mode needs ([`Bindings`]), the
//! `direct` mode's exact-key map ([`DirectBindings`]), and the reasons a Bind
//! or Unbind is refused ([`BindingError`]).
//!
//! # Invariants
//! - A [`DirectBindings`] key maps to a sorted, duplicate-free, non-empty list
//!   of partitions: `remove` drops a key with its last partition, so
//!   bind/unbind churn leaves nothing behind.
//! - Every key held is at most [`MAX_KEY_BYTES`](super::MAX_KEY_BYTES): both
//!   `insert`s check it.
//!
//! # Thread safety
//! Plain data (`Send + Sync`), no lock of its own: the owner (the broker's
//! `Topic`) keeps it behind an `RwLock`.

use std::collections::HashMap;

use crate::error::ErrorKind;
use warren_protocol::api::bindings::RoutingMode;

use super::{KeyError, TopicBindings, validate_key};

/// The `direct` mode's bindings: exact routing key -> partitions.
#[derive(Debug, Default, Clone)]
pub struct DirectBindings {
    /// Key -> partitions, sorted, no duplicates, never empty.
    map: HashMap<Box<str>, Vec<u32>>,
    /// Number of (key, partition) pairs.
    len: usize,
}

impl DirectBindings {
    /// No bindings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `key` to `partition`. Returns `Ok(false)` if that binding was
    /// already there.
    ///
    /// # Errors
    /// [`KeyError`] if `validate_key(key)` fails; nothing changes.
    pub fn insert(&mut self, key: &str, partition: u32) -> Result<bool, KeyError> {
        validate_key(key)?;
        let partitions = self.map.entry(key.into()).or_default();
        match partitions.binary_search(&partition) {
            Ok(_) => Ok(false),
            Err(at) => {
                partitions.insert(at, partition);
                self.len += 1;
                Ok(true)
            }
        }
    }

    /// Unbinds `key` from `partition`. Returns false if it was not bound.
    pub fn remove(&mut self, key: &str, partition: u32) -> bool {
        let Some(partitions) = self.map.get_mut(key) else {
            return false;
        };
        let Ok(at) = partitions.binary_search(&partition) else {
            return false;
        };
        partitions.remove(at);
        if partitions.is_empty() {
            self.map.remove(key);
        }
        self.len -= 1;
        true
    }

    /// Replaces the contents of `out` with the partitions bound to exactly
    /// `routing_key`, sorted; empty if none. One hash lookup.
    pub fn route(&self, routing_key: &str, out: &mut Vec<u32>) {
        out.clear();
        if let Some(partitions) = self.map.get(routing_key) {
            out.extend_from_slice(partitions);
        }
    }

    /// Every (key, partition) pair, sorted.
    pub fn bindings(&self) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = self
            .map
            .iter()
            .flat_map(|(key, ps)| ps.iter().map(move |p| (key.to_string(), *p)))
            .collect();
        all.sort_unstable();
        all
    }

    /// Number of (key, partition) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A topic's bindings, shaped by its routing mode (fixed at creation).
#[derive(Debug, Clone)]
pub enum Bindings {
    /// A `hash` topic: no bindings; routing is the partitioner's.
    Hash,
    /// A `direct` topic: exact routing keys.
    Direct(DirectBindings),
    /// A `topic` topic: patterns, by RabbitMQ's rules.
    Topic(TopicBindings),
}

impl Bindings {
    /// No bindings, for a topic of `mode`.
    pub fn new(mode: RoutingMode) -> Self {
        match mode {
            RoutingMode::Hash => Bindings::Hash,
            RoutingMode::Direct => Bindings::Direct(DirectBindings::new()),
            RoutingMode::Topic => Bindings::Topic(TopicBindings::new()),
        }
    }

    /// The routing mode these bindings serve.
    pub fn mode(&self) -> RoutingMode {
        match self {
            Bindings::Hash => RoutingMode::Hash,
            Bindings::Direct(_) => RoutingMode::Direct,
            Bindings::Topic(_) => RoutingMode::Topic,
        }
    }

    /// Binds `key` to `partition`; `Ok(false)` if it was already bound.
    ///
    /// # Errors
    /// [`BindingError::HashTopic`] for a `hash` topic; [`BindingError::Key`]
    /// for a key over [`MAX_KEY_BYTES`](super::MAX_KEY_BYTES). Nothing changes.
    pub fn insert(&mut self, key: &str, partition: u32) -> Result<bool, BindingError> {
        match self {
            Bindings::Hash => Err(BindingError::HashTopic),
            Bindings::Direct(d) => Ok(d.insert(key, partition)?),
            Bindings::Topic(t) => Ok(t.insert(key, partition)?),
        }
    }

    /// Unbinds `key` from `partition`; false if it was not bound (always for
    /// a `hash` topic).
    pub fn remove(&mut self, key: &str, partition: u32) -> bool {
        match self {
            Bindings::Hash => false,
            Bindings::Direct(d) => d.remove(key, partition),
            Bindings::Topic(t) => t.remove(key, partition),
        }
    }

    /// Replaces the contents of `out` with the partitions `routing_key`
    /// reaches, sorted and without duplicates. Always empty for `hash` (the
    /// caller uses the partitioner there).
    pub fn route(&self, routing_key: &str, out: &mut Vec<u32>) {
        match self {
            Bindings::Hash => out.clear(),
            Bindings::Direct(d) => d.route(routing_key, out),
            Bindings::Topic(t) => t.route(routing_key, out),
        }
    }

    /// The bindings grouped by key: `(key, partitions)`, keys sorted
    /// bytewise, partitions ascending.
    pub fn list(&self) -> Vec<(String, Vec<u32>)> {
        let pairs = match self {
            Bindings::Hash => Vec::new(),
            Bindings::Direct(d) => d.bindings(),
            Bindings::Topic(t) => t.bindings(),
        };
        let mut grouped: Vec<(String, Vec<u32>)> = Vec::new();
        for (key, partition) in pairs {
            match grouped.last_mut() {
                Some((last, partitions)) if *last == key => partitions.push(partition),
                _ => grouped.push((key, vec![partition])),
            }
        }
        grouped
    }

    /// Number of (key, partition) pairs.
    pub fn len(&self) -> usize {
        match self {
            Bindings::Hash => 0,
            Bindings::Direct(d) => d.len(),
            Bindings::Topic(t) => t.len(),
        }
    }

    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a Bind or Unbind was refused (or failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// No topic of that name.
    #[error("no topic named {0:?}")]
    UnknownTopic(String),
    /// The topic routes by `hash`, which has no bindings.
    #[error("the topic routes by hash: bindings need routing direct or topic")]
    HashTopic,
    /// The request listed no partitions.
    #[error("no partitions given")]
    NoPartitions,
    /// A partition the topic does not have.
    #[error("partition {partition} does not exist: the topic has {partitions} partitions")]
    PartitionOutOfRange {
        /// The partition asked for.
        partition: u32,
        /// The topic's partition count.
        partitions: u32,
    },
    /// The binding key is too long.
    #[error("binding key: {0}")]
    Key(#[from] KeyError),
    /// The metadata store could not make the change durable.
    #[error("storing the binding: {0}")]
    Storage(#[source] warren_storage::Error),
}

impl BindingError {
    /// What kind of refusal it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BindingError::UnknownTopic(_) => ErrorKind::UnknownTopic,
            BindingError::HashTopic
            | BindingError::NoPartitions
            | BindingError::PartitionOutOfRange { .. }
            | BindingError::Key(_) => ErrorKind::InvalidBinding,
            BindingError::Storage(e) => ErrorKind::of_storage(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn route(b: &Bindings, key: &str) -> Vec<u32> {
        let mut out = vec![99];
        b.route(key, &mut out);
        out
    }

    #[test]
    fn direct_matches_the_exact_key_only() {
        let mut b = Bindings::new(RoutingMode::Direct);
        assert!(b.insert("eu", 2).unwrap());
        assert!(b.insert("eu", 0).unwrap());
        assert!(!b.insert("eu", 2).unwrap());
        assert!(b.insert("us", 1).unwrap());
        assert!(b.insert("", 3).unwrap());
        assert_eq!(route(&b, "eu"), [0, 2]);
        assert_eq!(route(&b, "us"), [1]);
        assert_eq!(route(&b, ""), [3]);
        // No patterns in direct mode: `*` and `#` are plain characters.
        assert!(b.insert("#", 4).unwrap());
        assert_eq!(route(&b, "eu.x"), [] as [u32; 0]);
        assert_eq!(route(&b, "#"), [4]);
        assert_eq!(route(&b, "EU"), [] as [u32; 0]);
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn direct_remove_drops_empty_keys() {
        let mut d = DirectBindings::new();
        d.insert("k", 1).unwrap();
        d.insert("k", 2).unwrap();
        assert!(!d.remove("k", 3));
        assert!(!d.remove("other", 1));
        assert!(d.remove("k", 1));
        assert!(d.remove("k", 2));
        assert!(!d.remove("k", 2));
        assert!(d.is_empty());
        assert!(d.map.is_empty());
    }

    #[test]
    fn keys_over_255_bytes_are_refused() {
        for mode in [RoutingMode::Direct, RoutingMode::Topic] {
            let mut b = Bindings::new(mode);
            assert!(b.insert(&"a".repeat(255), 0).unwrap());
            assert!(matches!(
                b.insert(&"a".repeat(256), 0),
                Err(BindingError::Key(KeyError::TooLong { len_bytes: 256, .. }))
            ));
            assert_eq!(b.len(), 1);
        }
    }

    #[test]
    fn hash_topics_take_no_bindings() {
        let mut b = Bindings::new(RoutingMode::Hash);
        assert!(matches!(b.insert("k", 0), Err(BindingError::HashTopic)));
        assert!(!b.remove("k", 0));
        assert_eq!(route(&b, "k"), [] as [u32; 0]);
        assert!(b.list().is_empty());
        assert_eq!(BindingError::HashTopic.kind(), ErrorKind::InvalidBinding);
    }

    #[test]
    fn list_groups_partitions_by_key_in_key_order() {
        for mode in [RoutingMode::Direct, RoutingMode::Topic] {
            let mut b = Bindings::new(mode);
            for (key, p) in [("b", 3), ("a.#", 1), ("b", 0), ("", 2), ("a.#", 0)] {
                b.insert(key, p).unwrap();
            }
            assert_eq!(b.mode(), mode);
            assert_eq!(
                b.list(),
                [
                    (String::new(), vec![2]),
                    ("a.#".to_string(), vec![0, 1]),
                    ("b".to_string(), vec![0, 3]),
                ]
            );
        }
    }

    #[test]
    fn topic_mode_routes_by_pattern() {
        let mut b = Bindings::new(RoutingMode::Topic);
        b.insert("orders.*.eu", 0).unwrap();
        b.insert("orders.#", 1).unwrap();
        assert_eq!(route(&b, "orders.paid.eu"), [0, 1]);
        assert_eq!(route(&b, "orders"), [1]);
        assert_eq!(route(&b, "payments"), [] as [u32; 0]);
    }
}
