//! A topic's configuration as the broker sees it: storage's part (name,
//! partition count, [`LogConfig`]) plus the broker's settings, routing
//! ([`TopicRouting`]) and share groups ([`ShareConfig`]).
//!
//! All of it lives in one file, `meta/topics/<name>.json`, written by
//! storage's [`LogManager`](warren_storage::LogManager) in one atomic write
//! (the commit point of a create). Storage reads its own fields and keeps the
//! broker's as [`extra`](warren_storage::TopicConfig::extra), untouched; this
//! module turns them into typed settings and back:
//!
//! ```text
//! { "name": "orders", "partitions": 3, "log": { ... },          <- storage
//!   "share": { "dead_letter_topic": "orders.dlq",               <- broker: ShareConfig
//!              "max_delivery_attempts": 3, "lock_timeout_ms": 5000 },
//!   "routing": { "mode": "direct", "alternate_topic": "orders-unrouted" } }   <- TopicRouting
//! ```
//!
//! `share` and `routing` (and each of their fields) may be missing: files
//! written before they existed load with the defaults (`hash`, no alternate
//! topic; [`ShareConfig::default`]).
//!
//! The broker checks these settings before it asks storage to create a topic
//! ([`Topics::create`](crate::topics::Topics::create)) and when it opens the
//! data directory ([`check_stored`], given to
//! [`LogManager::open_checked`](warren_storage::LogManager::open_checked)).
//!
//! Plain values: thread-safe.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warren_protocol::api::bindings::{RoutingMode, UnknownRoutingMode};
use warren_storage::{Error, LogConfig, Result, validate_topic_name};

use super::share_config::ShareConfig;

/// A topic as the broker sees it: storage's fields and the broker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub name: String,
    pub partitions: u32,
    pub log: LogConfig,
    /// Share-group settings (dead-letter topic, delivery limit, lock timeout).
    pub share: ShareConfig,
    /// Routing mode and alternate topic.
    pub routing: TopicRouting,
}

/// The broker's fields of a topic file (storage's
/// [`extra`](warren_storage::TopicConfig::extra)). Unknown fields are ignored,
/// as they were when storage read the whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BrokerFields {
    #[serde(default)]
    share: ShareConfig,
    #[serde(default)]
    routing: TopicRouting,
}

impl TopicConfig {
    /// The broker's view of a topic storage opened or created: parses and
    /// checks the broker's fields of its file.
    ///
    /// # Errors
    /// The reason, when those fields do not parse or fail
    /// [`TopicRouting::validate`] or [`ShareConfig::validate`].
    pub fn from_stored(stored: &warren_storage::TopicConfig) -> std::result::Result<Self, String> {
        let fields: BrokerFields = serde_json::from_value(Value::Object(stored.extra.clone()))
            .map_err(|e| e.to_string())?;
        fields
            .routing
            .validate(&stored.name)
            .and_then(|()| fields.share.validate(&stored.name))
            .map_err(|e| e.to_string())?;
        Ok(TopicConfig {
            name: stored.name.clone(),
            partitions: stored.partitions,
            log: stored.log.clone(),
            share: fields.share,
            routing: fields.routing,
        })
    }

    /// The fields `routing` and `share` add to a topic file, for
    /// [`LogManager::create_topic_with`](warren_storage::LogManager::create_topic_with).
    /// Does not validate them.
    ///
    /// # Errors
    /// [`Error::Config`] if they cannot be serialized (they always can).
    pub fn stored_extra(routing: &TopicRouting, share: &ShareConfig) -> Result<Map<String, Value>> {
        let fields = BrokerFields {
            share: share.clone(),
            routing: routing.clone(),
        };
        match serde_json::to_value(fields).map_err(|e| Error::Config(e.to_string()))? {
            Value::Object(map) => Ok(map),
            other => Err(Error::Config(format!(
                "topic settings serialized as {other}, not an object"
            ))),
        }
    }
}

/// Checks the broker's fields of a topic file, for
/// [`LogManager::open_checked`](warren_storage::LogManager::open_checked): the
/// data directory is refused, naming the file, when one does not parse or
/// fails its checks.
///
/// # Errors
/// As [`TopicConfig::from_stored`].
pub fn check_stored(stored: &warren_storage::TopicConfig) -> std::result::Result<(), String> {
    TopicConfig::from_stored(stored).map(drop)
}

/// A topic's routing settings, the topic configs `routing` and
/// `alternate.topic` (DESIGN.md, "Routing"). Fixed at creation. The bindings
/// themselves are not here: the broker keeps them in its metadata store
/// ([`super::bindings`]).
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use warren_storage::{Durability, KvConfig, KvStore, LogManager, StorageMetrics};

    use super::*;
    use crate::topics::Topics;

    /// A topic file exactly as the broker wrote it before these settings
    /// moved out of storage (storage's `TopicConfig` serialized them then).
    const ORDERS_FILE_BEFORE_THE_MOVE: &str = r#"{
  "name": "orders",
  "partitions": 3,
  "log": {
    "segment_bytes": 1073741824,
    "segment_ms": 604800000,
    "index_interval_bytes": 4096,
    "max_index_bytes": 10485760,
    "durability": "interval:250",
    "retention_bytes": 1048576,
    "retention_ms": 604800000,
    "max_message_bytes": 1048576
  },
  "share": {
    "dead_letter_topic": "orders.dlq",
    "max_delivery_attempts": 3,
    "lock_timeout_ms": 5000
  },
  "routing": {
    "mode": "direct",
    "alternate_topic": "orders.unrouted"
  }
}"#;

    /// The same, for a topic created with every default.
    const PLAIN_FILE_BEFORE_THE_MOVE: &str = r#"{
  "name": "plain",
  "partitions": 1,
  "log": {
    "segment_bytes": 1073741824,
    "segment_ms": 604800000,
    "index_interval_bytes": 4096,
    "max_index_bytes": 10485760,
    "durability": "fsync",
    "retention_bytes": null,
    "retention_ms": 604800000,
    "max_message_bytes": 1048576
  },
  "share": {
    "dead_letter_topic": null,
    "max_delivery_attempts": 5,
    "lock_timeout_ms": 30000
  },
  "routing": {
    "mode": "hash"
  }
}"#;

    /// What [`ORDERS_FILE_BEFORE_THE_MOVE`] holds.
    fn orders() -> TopicConfig {
        TopicConfig {
            name: "orders".into(),
            partitions: 3,
            log: LogConfig {
                durability: Durability::Interval { ms: 250 },
                retention_bytes: Some(1 << 20),
                ..LogConfig::default()
            },
            share: ShareConfig {
                dead_letter_topic: Some("orders.dlq".into()),
                max_delivery_attempts: 3,
                lock_timeout_ms: 5_000,
            },
            routing: TopicRouting {
                mode: RoutingMode::Direct,
                alternate_topic: Some("orders.unrouted".into()),
            },
        }
    }

    fn plain() -> TopicConfig {
        TopicConfig {
            name: "plain".into(),
            partitions: 1,
            log: LogConfig::default(),
            share: ShareConfig::default(),
            routing: TopicRouting::default(),
        }
    }

    fn audit_config() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 256,
            max_index_bytes: 64 * 1024,
            durability: Durability::None,
            retention_bytes: None,
            retention_ms: None,
            ..LogConfig::default()
        }
    }

    /// A data directory (`data`) and a metadata store beside it.
    struct Dirs {
        _tmp: tempfile::TempDir,
        data: PathBuf,
        kv: KvStore,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let kv = KvStore::open(&tmp.path().join("kv"), KvConfig::default()).unwrap();
        Dirs {
            _tmp: tmp,
            data,
            kv,
        }
    }

    /// Opens the data directory as the broker does.
    fn open(data: &Path) -> Result<Topics> {
        let manager = LogManager::open_checked(data, StorageMetrics::default(), &check_stored)?;
        Ok(Topics::with_metrics(Arc::new(manager), false))
    }

    fn topic_file(data: &Path, name: &str) -> PathBuf {
        data.join("meta")
            .join("topics")
            .join(format!("{name}.json"))
    }

    fn config(topics: &Topics, name: &str) -> TopicConfig {
        topics.get(name).unwrap().config.clone()
    }

    fn create(topics: &Topics, kv: &KvStore, c: &TopicConfig) -> Result<()> {
        topics.create(
            kv,
            &c.name,
            c.partitions,
            c.log.clone(),
            c.routing.clone(),
            c.share.clone(),
        )
    }

    #[test]
    fn a_topic_file_written_before_the_move_loads_with_its_settings() {
        let d = dirs();
        drop(open(&d.data).unwrap());
        std::fs::write(topic_file(&d.data, "orders"), ORDERS_FILE_BEFORE_THE_MOVE).unwrap();
        std::fs::write(topic_file(&d.data, "plain"), PLAIN_FILE_BEFORE_THE_MOVE).unwrap();
        let topics = open(&d.data).unwrap();
        assert_eq!(config(&topics, "orders"), orders());
        assert_eq!(config(&topics, "plain"), plain());
        assert_eq!(topics.get("orders").unwrap().partitions.len(), 3);
    }

    #[test]
    fn a_topic_file_written_now_has_the_fields_it_had_before_the_move() {
        let d = dirs();
        let topics = open(&d.data).unwrap();
        for (c, before) in [
            (orders(), ORDERS_FILE_BEFORE_THE_MOVE),
            (plain(), PLAIN_FILE_BEFORE_THE_MOVE),
        ] {
            create(&topics, &d.kv, &c).unwrap();
            assert_eq!(config(&topics, &c.name), c);
            let now: Value =
                serde_json::from_slice(&std::fs::read(topic_file(&d.data, &c.name)).unwrap())
                    .unwrap();
            let before: Value = serde_json::from_str(before).unwrap();
            assert_eq!(now, before, "{}", c.name);
        }
        drop(topics);
        let topics = open(&d.data).unwrap();
        assert_eq!(config(&topics, "orders"), orders());
        assert_eq!(config(&topics, "plain"), plain());
    }

    #[test]
    fn routing_settings_survive_reopen_and_old_topic_files_load_as_hash() {
        let d = dirs();
        let data = &d.data;
        let topics = open(data).unwrap();
        let routing = TopicRouting {
            mode: RoutingMode::Topic,
            alternate_topic: Some("unrouted".into()),
        };
        topics
            .create(
                &d.kv,
                "events",
                2,
                audit_config(),
                routing.clone(),
                ShareConfig::default(),
            )
            .unwrap();
        assert_eq!(config(&topics, "events").routing, routing);
        let json = std::fs::read_to_string(topic_file(data, "events")).unwrap();
        assert!(json.contains("\"mode\": \"topic\""), "{json}");
        assert!(json.contains("\"alternate_topic\": \"unrouted\""), "{json}");
        drop(topics);

        // A topic file from before routing existed: no `routing` at all.
        let old = serde_json::json!({ "name": "legacy", "partitions": 1, "log": audit_config() });
        std::fs::write(topic_file(data, "legacy"), old.to_string()).unwrap();
        // One with a routing mode but no alternate topic.
        let direct = serde_json::json!({
            "name": "direct", "partitions": 1, "log": audit_config(), "routing": { "mode": "direct" }
        });
        std::fs::write(topic_file(data, "direct"), direct.to_string()).unwrap();

        let topics = open(data).unwrap();
        assert_eq!(config(&topics, "events").routing, routing);
        assert_eq!(config(&topics, "legacy").routing, TopicRouting::default());
        assert_eq!(
            config(&topics, "direct").routing,
            TopicRouting {
                mode: RoutingMode::Direct,
                alternate_topic: None
            }
        );
        drop(topics);

        // An unknown mode is a corrupt file, named.
        let bad = serde_json::json!({
            "name": "bad", "partitions": 1, "log": audit_config(), "routing": { "mode": "fanout" }
        });
        std::fs::write(topic_file(data, "bad"), bad.to_string()).unwrap();
        match open(data) {
            Err(Error::CorruptFile { path, reason }) => {
                assert_eq!(path, topic_file(data, "bad"));
                assert!(reason.contains("fanout"), "{reason}");
            }
            Err(other) => panic!("expected CorruptFile, got {other:?}"),
            Ok(_) => panic!("expected CorruptFile, the directory opened"),
        }
    }

    #[test]
    fn routing_settings_are_checked_at_creation() {
        let d = dirs();
        let topics = open(&d.data).unwrap();
        let refused = [
            // A hash topic always routes: an alternate would never be used.
            (RoutingMode::Hash, "other"),
            (RoutingMode::Direct, "not a name"),
            (RoutingMode::Topic, "t"),
        ];
        for (mode, alternate) in refused {
            let routing = TopicRouting {
                mode,
                alternate_topic: Some(alternate.into()),
            };
            let err = topics
                .create(
                    &d.kv,
                    "t",
                    1,
                    audit_config(),
                    routing,
                    ShareConfig::default(),
                )
                .unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{mode} {alternate}: {err}");
        }
        assert!(topics.list().is_empty());
        assert!(topics.manager().topics().is_empty());

        let mut routing = TopicRouting::default();
        routing.set("routing", "direct").unwrap();
        routing.set("alternate.topic", "elsewhere").unwrap();
        assert_eq!(
            routing.entries(),
            [
                ("routing".to_string(), "direct".to_string()),
                ("alternate.topic".to_string(), "elsewhere".to_string())
            ]
        );
        routing.set("alternate.topic", "").unwrap();
        assert_eq!(routing.alternate_topic, None);
        assert!(routing.set("routing", "fanout").is_err());
        assert!(routing.set("exchange", "x").is_err());
    }

    #[test]
    fn share_settings_are_checked_at_creation_after_the_name_and_log_config() {
        let d = dirs();
        let topics = open(&d.data).unwrap();
        let refused = [
            ShareConfig {
                dead_letter_topic: Some("t".into()),
                ..ShareConfig::default()
            },
            ShareConfig {
                max_delivery_attempts: 0,
                ..ShareConfig::default()
            },
            ShareConfig {
                lock_timeout_ms: 10,
                ..ShareConfig::default()
            },
        ];
        for share in refused {
            let err = topics
                .create(
                    &d.kv,
                    "t",
                    1,
                    audit_config(),
                    TopicRouting::default(),
                    share.clone(),
                )
                .unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{share:?}: {err}");
        }
        // Storage's checks come first, as when storage made all of them.
        let bad_routing = TopicRouting {
            mode: RoutingMode::Hash,
            alternate_topic: Some("other".into()),
        };
        let err = topics
            .create(
                &d.kv,
                "no spaces",
                1,
                audit_config(),
                bad_routing.clone(),
                ShareConfig::default(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTopicName(_)), "{err}");
        let bad_log = LogConfig {
            segment_bytes: 10,
            ..audit_config()
        };
        let err = topics
            .create(&d.kv, "t", 1, bad_log, bad_routing, ShareConfig::default())
            .unwrap_err();
        assert!(err.to_string().contains("segment"), "{err}");
        assert!(topics.list().is_empty());
        assert!(topics.manager().topics().is_empty());
        assert!(!topic_file(&d.data, "t").exists());
    }

    #[test]
    fn share_settings_survive_reopen_and_old_topic_files_load_with_their_defaults() {
        let d = dirs();
        let topics = open(&d.data).unwrap();
        let share = ShareConfig {
            dead_letter_topic: Some("audit.dlq".into()),
            max_delivery_attempts: 3,
            lock_timeout_ms: 5_000,
        };
        topics
            .create(
                &d.kv,
                "audit.v2_x-y",
                1,
                audit_config(),
                TopicRouting::default(),
                share.clone(),
            )
            .unwrap();
        let audit = config(&topics, "audit.v2_x-y");
        assert_eq!(audit.share, share);
        drop(topics);

        // A topic file from before share configs existed.
        std::fs::write(
            topic_file(&d.data, "old"),
            br#"{"name":"old","partitions":1,"log":{}}"#,
        )
        .unwrap();
        let topics = open(&d.data).unwrap();
        assert_eq!(config(&topics, "audit.v2_x-y"), audit);
        assert_eq!(config(&topics, "old").share, ShareConfig::default());
    }

    #[test]
    fn a_topic_file_with_settings_the_broker_refuses_is_corrupt_and_named() {
        let cases = [
            (
                "zero",
                serde_json::json!({ "max_delivery_attempts": 0 }),
                None,
            ),
            ("unknown", serde_json::json!({ "bogus": 1 }), None),
            (
                "self",
                serde_json::json!({ "dead_letter_topic": "self" }),
                None,
            ),
            (
                "alias",
                serde_json::json!({}),
                Some(serde_json::json!({ "mode": "topic", "alternate_topic": "alias" })),
            ),
            (
                "hashalt",
                serde_json::json!({}),
                Some(serde_json::json!({ "mode": "hash", "alternate_topic": "x" })),
            ),
        ];
        for (name, share, routing) in cases {
            let d = dirs();
            drop(open(&d.data).unwrap());
            let mut file =
                serde_json::json!({ "name": name, "partitions": 1, "log": {}, "share": share });
            if let (Some(routing), Value::Object(map)) = (routing, &mut file) {
                map.insert("routing".into(), routing);
            }
            let path = topic_file(&d.data, name);
            std::fs::write(&path, file.to_string()).unwrap();
            match open(&d.data) {
                Err(Error::CorruptFile { path: p, .. }) => assert_eq!(p, path, "{name}"),
                Err(other) => panic!("{name}: expected CorruptFile, got {other:?}"),
                Ok(_) => panic!("{name}: expected CorruptFile, the directory opened"),
            }
            // Refused before the partitions were created.
            assert!(!d.data.join(format!("{name}-0")).exists(), "{name}");
        }
    }
}
