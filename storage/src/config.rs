//! Per-log configuration: segment size, indexing, durability, retention.
//!
//! `Default` is the only place defaults live. [`LogConfig::validate`] checks the
//! cross-field rules at open/create time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest allowed `segment_bytes`: positions are `u32` and Kafka caps segments at
/// `i32::MAX`, which keeps our files readable by its tools.
pub const MAX_SEGMENT_BYTES: u32 = i32::MAX as u32;
/// Smallest allowed `segment_bytes` (one empty batch header plus change).
pub const MIN_SEGMENT_BYTES: u32 = 1024;

/// Default `max_message_bytes`: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1 << 20;

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after `fdatasync`; concurrent appenders share one (group
    /// commit). A single node never loses an acknowledged batch.
    #[default]
    Fsync,
    /// Acknowledge after the write to the page cache; `fdatasync` at most every
    /// `ms` milliseconds (the owner calls [`crate::PartitionLog::sync_if_due`]).
    Interval { ms: u64 },
    /// Acknowledge after the write to the page cache; the OS flushes when it likes.
    None,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Fsync => f.write_str("fsync"),
            Durability::Interval { ms } => write!(f, "interval:{ms}"),
            Durability::None => f.write_str("none"),
        }
    }
}

impl FromStr for Durability {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "none" => Ok(Durability::None),
            other => other
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse().ok())
                .filter(|ms| *ms > 0)
                .map(|ms| Durability::Interval { ms })
                .ok_or_else(|| {
                    Error::Config(format!(
                        "durability {other:?}: expected fsync, none or interval:<ms> with ms > 0"
                    ))
                }),
        }
    }
}

impl Serialize for Durability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Durability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Configuration of one partition log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Roll the active segment before it would exceed this many bytes.
    /// Default 1 GiB; at most `i32::MAX`.
    pub segment_bytes: u32,
    /// Roll the active segment once its first batch is older than this. Default 7 days.
    pub segment_ms: u64,
    /// Add an offset-index entry after this many bytes of batches. Default 4 KiB.
    pub index_interval_bytes: u32,
    /// Preallocated size of the active segment's indexes; a full index rolls the
    /// segment. Default 10 MiB (1.3 M offset-index entries).
    pub max_index_bytes: u32,
    /// When an append is durable. Default `fsync`.
    pub durability: Durability,
    /// Delete oldest segments while the log is larger than this. Default: no limit.
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older than this. Default 7 days.
    pub retention_ms: Option<u64>,
    /// Refuse batches larger than this many bytes (`MESSAGE_TOO_LARGE` at the
    /// broker). Default 1 MiB; the effective limit is also at most `segment_bytes`.
    pub max_message_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            max_index_bytes: 10 << 20,
            durability: Durability::Fsync,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl LogConfig {
    /// Config keys accepted by [`set`](Self::set), as topics spell them on the
    /// wire and in the CLI.
    pub const KEYS: &'static [&'static str] = &[
        "durability",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
        "max.message.bytes",
    ];

    /// The largest batch an append accepts: `max_message_bytes`, at most
    /// `segment_bytes`.
    pub fn batch_limit(&self) -> u32 {
        self.max_message_bytes.min(self.segment_bytes)
    }

    /// Sets one setting by its topic config key (see [`KEYS`](Self::KEYS)).
    /// `retention.bytes` and `retention.ms` take `-1` for "no limit". Does not
    /// run [`validate`](Self::validate).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown key or a value that does not parse.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        fn num<T: FromStr>(key: &str, value: &str) -> Result<T> {
            value
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("{key}: {value:?} is not a valid number")))
        }
        fn limit(key: &str, value: &str) -> Result<Option<u64>> {
            if value.trim() == "-1" {
                Ok(None)
            } else {
                num(key, value).map(Some)
            }
        }
        match key {
            "durability" => self.durability = value.trim().parse()?,
            "retention.bytes" => self.retention_bytes = limit(key, value)?,
            "retention.ms" => self.retention_ms = limit(key, value)?,
            "segment.bytes" => self.segment_bytes = num(key, value)?,
            "segment.ms" => self.segment_ms = num(key, value)?,
            "max.message.bytes" => self.max_message_bytes = num(key, value)?,
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
    /// would take it back.
    pub fn entries(&self) -> Vec<(String, String)> {
        let unlimited = |v: Option<u64>| v.map_or_else(|| "-1".to_string(), |v| v.to_string());
        vec![
            ("durability".into(), self.durability.to_string()),
            ("retention.bytes".into(), unlimited(self.retention_bytes)),
            ("retention.ms".into(), unlimited(self.retention_ms)),
            ("segment.bytes".into(), self.segment_bytes.to_string()),
            ("segment.ms".into(), self.segment_ms.to_string()),
            (
                "max.message.bytes".into(),
                self.max_message_bytes.to_string(),
            ),
        ]
    }

    /// Checks value ranges and cross-field rules.
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return bad(format!(
                "segment_bytes {} must be in {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if self.index_interval_bytes == 0 || self.index_interval_bytes > self.segment_bytes {
            return bad(format!(
                "index_interval_bytes {} must be in 1..=segment_bytes ({})",
                self.index_interval_bytes, self.segment_bytes
            ));
        }
        if self.max_index_bytes < 12 * 8 {
            return bad(format!(
                "max_index_bytes {} must hold at least 8 entries (96 bytes)",
                self.max_index_bytes
            ));
        }
        if self.segment_ms == 0 || self.segment_ms > i64::MAX as u64 {
            return bad(format!(
                "segment_ms {} must be in 1..=i64::MAX",
                self.segment_ms
            ));
        }
        if let Some(ms) = self.retention_ms
            && ms > i64::MAX as u64
        {
            return bad(format!(
                "retention_ms {ms} is above i64::MAX; leave it unset to keep data forever"
            ));
        }
        if self.max_message_bytes < 128 {
            return bad(format!(
                "max_message_bytes {} must be at least 128",
                self.max_message_bytes
            ));
        }
        if let Durability::Interval { ms: 0 } = self.durability {
            return bad("durability interval must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_and_prints() {
        for s in ["fsync", "none", "interval:250"] {
            let d: Durability = s.parse().unwrap_or_default();
            assert_eq!(d.to_string(), s);
        }
        assert!("interval:0".parse::<Durability>().is_err());
        assert!("interval:x".parse::<Durability>().is_err());
        assert!("always".parse::<Durability>().is_err());
    }

    #[test]
    fn defaults_validate_and_bad_combinations_do_not() {
        assert!(LogConfig::default().validate().is_ok());
        let small_segment = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        assert!(small_segment.validate().is_err());
        let interval_over_segment = LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 8192,
            ..LogConfig::default()
        };
        assert!(interval_over_segment.validate().is_err());
        // "Forever" must be spelled None: u64::MAX would wrap to -1 ms as i64.
        let forever = LogConfig {
            retention_ms: Some(u64::MAX),
            ..LogConfig::default()
        };
        assert!(forever.validate().is_err());
        let never_roll = LogConfig {
            segment_ms: u64::MAX,
            ..LogConfig::default()
        };
        assert!(never_roll.validate().is_err());
    }

    #[test]
    fn topic_config_keys_set_and_list_round_trip() {
        let mut c = LogConfig::default();
        c.set("durability", "interval:50").unwrap_or_default();
        c.set("retention.ms", "-1").unwrap_or_default();
        c.set("retention.bytes", "1000").unwrap_or_default();
        c.set("max.message.bytes", "2048").unwrap_or_default();
        assert_eq!(c.durability, Durability::Interval { ms: 50 });
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.retention_bytes, Some(1000));
        assert_eq!(c.batch_limit(), 2048);
        let mut back = LogConfig::default();
        for (k, v) in c.entries() {
            back.set(&k, &v).unwrap_or_default();
        }
        assert_eq!(back, c);
        assert!(c.set("retention.ms", "soon").is_err());
        assert!(c.set("compression", "zstd").is_err());
    }

    #[test]
    fn config_json_round_trips_with_defaults_for_missing_fields() {
        let json = r#"{"durability":"interval:100","retention_bytes":1000}"#;
        let c: LogConfig = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(c.durability, Durability::Interval { ms: 100 });
        assert_eq!(c.retention_bytes, Some(1000));
        assert_eq!(c.segment_bytes, LogConfig::default().segment_bytes);
        let back: LogConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(back, c);
    }
}
