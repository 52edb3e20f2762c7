//! Per-topic share-group settings: the dead-letter topic, the delivery limit
//! and the acquisition lock timeout. Stored with the topic (the `share` field
//! of [`TopicConfig`](super::TopicConfig), in the topic file); the broker's
//! share groups read them.
//!
//! `Default` is the only place defaults live. A topic file written before these
//! settings existed loads with the defaults (`#[serde(default)]`).

use serde::{Deserialize, Serialize};

use warren_storage::{Error, Result, validate_topic_name};

/// Default `max_delivery_attempts`: Kafka's `group.share.delivery.count.limit`.
pub const DEFAULT_MAX_DELIVERY_ATTEMPTS: u16 = 5;
/// Largest `max_delivery_attempts`.
pub const MAX_DELIVERY_ATTEMPTS_LIMIT: u16 = 100;
/// Default `lock_timeout_ms`: 30 s, Kafka's `group.share.record.lock.duration.ms`.
pub const DEFAULT_SHARE_LOCK_TIMEOUT_MS: u64 = 30_000;
/// Range of `lock_timeout_ms`: 1 s to 1 hour (Kafka's bounds).
pub const SHARE_LOCK_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;

/// Share-group settings of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShareConfig {
    /// Where records go that are rejected or exhaust their delivery attempts.
    /// `None`: they are archived (counted done) with a warning. Default none.
    pub dead_letter_topic: Option<String>,
    /// Deliveries a record gets before a release or lock expiry sends it to
    /// the dead-letter topic. Default 5; 1..=100.
    pub max_delivery_attempts: u16,
    /// How long a record acquired by a share-group member stays locked for
    /// it. Default 30 000 ms; 1 000..=3 600 000.
    pub lock_timeout_ms: u64,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            dead_letter_topic: None,
            max_delivery_attempts: DEFAULT_MAX_DELIVERY_ATTEMPTS,
            lock_timeout_ms: DEFAULT_SHARE_LOCK_TIMEOUT_MS,
        }
    }
}

impl ShareConfig {
    /// Topic config keys accepted by [`set`](Self::set).
    pub const KEYS: &'static [&'static str] = &[
        "dead.letter.topic",
        "max.delivery.attempts",
        "share.lock.timeout.ms",
    ];

    /// Whether `key` is one of [`KEYS`](Self::KEYS).
    pub fn is_key(key: &str) -> bool {
        Self::KEYS.contains(&key)
    }

    /// Sets one setting by its topic config key; an empty `dead.letter.topic`
    /// means none. Checks the value's range.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        match key {
            "dead.letter.topic" if value.is_empty() => self.dead_letter_topic = None,
            "dead.letter.topic" => {
                validate_topic_name(value)
                    .map_err(|_| Error::Config(format!("{key}: {value:?} is not a topic name")))?;
                self.dead_letter_topic = Some(value.to_string());
            }
            "max.delivery.attempts" => {
                self.max_delivery_attempts = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_DELIVERY_ATTEMPTS_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{key}: {value:?} must be an integer in 1..={MAX_DELIVERY_ATTEMPTS_LIMIT}"
                        ))
                    })?;
            }
            "share.lock.timeout.ms" => {
                self.lock_timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|n| SHARE_LOCK_TIMEOUT_MS_RANGE.contains(n))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{key}: {value:?} must be an integer in {}..={}",
                            SHARE_LOCK_TIMEOUT_MS_RANGE.start(),
                            SHARE_LOCK_TIMEOUT_MS_RANGE.end()
                        ))
                    })?;
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown share config {other:?} (known: {})",
                    Self::KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every key of [`KEYS`](Self::KEYS) with its value, as [`set`](Self::set)
    /// takes it back.
    pub fn entries(&self) -> Vec<(String, String)> {
        vec![
            (
                "dead.letter.topic".into(),
                self.dead_letter_topic.clone().unwrap_or_default(),
            ),
            (
                "max.delivery.attempts".into(),
                self.max_delivery_attempts.to_string(),
            ),
            (
                "share.lock.timeout.ms".into(),
                self.lock_timeout_ms.to_string(),
            ),
        ]
    }

    /// Checks ranges, and that the dead-letter topic is not `topic` itself
    /// (its dead letters would be delivered again, forever).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self, topic: &str) -> Result<()> {
        if !(1..=MAX_DELIVERY_ATTEMPTS_LIMIT).contains(&self.max_delivery_attempts) {
            return Err(Error::Config(format!(
                "max.delivery.attempts {} must be in 1..={MAX_DELIVERY_ATTEMPTS_LIMIT}",
                self.max_delivery_attempts
            )));
        }
        if !SHARE_LOCK_TIMEOUT_MS_RANGE.contains(&self.lock_timeout_ms) {
            return Err(Error::Config(format!(
                "share.lock.timeout.ms {} is out of range",
                self.lock_timeout_ms
            )));
        }
        if self.dead_letter_topic.as_deref() == Some(topic) {
            return Err(Error::Config(format!(
                "dead.letter.topic must not be the topic itself ({topic})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_set_list_and_round_trip() {
        let mut c = ShareConfig::default();
        c.set("dead.letter.topic", "orders.dlq").unwrap();
        c.set("max.delivery.attempts", "3").unwrap();
        c.set("share.lock.timeout.ms", "1000").unwrap();
        let mut back = ShareConfig::default();
        for (k, v) in c.entries() {
            back.set(&k, &v).unwrap();
        }
        assert_eq!(back, c);
        back.set("dead.letter.topic", "").unwrap();
        assert_eq!(back.dead_letter_topic, None);
        assert!(c.validate("orders").is_ok());
        assert!(c.validate("orders.dlq").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = ShareConfig::default();
        for (k, v) in [
            ("max.delivery.attempts", "0"),
            ("max.delivery.attempts", "101"),
            ("max.delivery.attempts", "x"),
            ("share.lock.timeout.ms", "999"),
            ("share.lock.timeout.ms", "3600001"),
            ("dead.letter.topic", "no spaces"),
            ("share.unknown", "1"),
        ] {
            assert!(c.set(k, v).is_err(), "{k}={v}");
        }
        assert_eq!(c, ShareConfig::default());
    }

    #[test]
    fn old_topic_files_load_with_defaults() {
        let c: ShareConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ShareConfig::default());
    }
}
