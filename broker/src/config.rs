//! The broker's configuration: [`BrokerConfig`], its defaults, and how flags, a
//! TOML file and `WARREN_*` environment variables combine.
//!
//! Precedence, highest first: command-line flags, the TOML file, `WARREN_*`
//! environment variables, the defaults in [`BrokerConfig::default`] (the only
//! place defaults live). Environment variables are the upper-cased key with a
//! `WARREN_` prefix (`WARREN_DATA_DIR`, `WARREN_LISTEN`, ...); keys of the
//! `[log]` table take `WARREN_LOG_` (`WARREN_LOG_DURABILITY=none`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warren_storage::LogConfig;

use crate::error::{Error, Result};

/// Most connections a broker accepts at once by default; beyond it, accepting
/// waits. Configurable (`max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Everything `warren serve` can be told. See the module docs for precedence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Where topics live. Default `./warren-data`.
    pub data_dir: PathBuf,
    /// Native protocol listener. Default `127.0.0.1:7171`; binding a public
    /// address is an explicit choice.
    pub listen: SocketAddr,
    /// HTTP listener: probes, `/metrics`, the admin API and the management
    /// page. Default `127.0.0.1:7180`.
    pub http: SocketAddr,
    /// Connections served at once. Default 1024.
    pub max_connections: usize,
    /// Largest request frame in bytes (length field excluded); larger frames
    /// close the connection before anything is allocated. Default 16 MiB.
    pub max_frame_bytes: usize,
    /// Requests one connection may have in flight (read, not yet answered);
    /// beyond it the broker stops reading that socket. Default 128.
    pub max_inflight_requests: usize,
    /// Request bytes one connection may hold in flight; beyond it the broker
    /// stops reading that socket (a single frame larger than this still goes
    /// through alone). Default 32 MiB.
    pub max_inflight_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests before
    /// closing connections anyway. Default 10 000 ms.
    pub shutdown_timeout_ms: u64,
    /// How often retention runs. Default 300 000 ms (5 minutes).
    pub retention_check_ms: u64,
    /// How often group members are told to heartbeat. A partition that moves
    /// between members waits up to about two intervals (the old owner learns
    /// to give it up, then the new owner learns it may take it), so this
    /// bounds rebalance latency. Default 250 ms.
    pub group_heartbeat_interval_ms: u32,
    /// Shortest session timeout a member may ask for. Default 1 000 ms.
    pub group_min_session_timeout_ms: u32,
    /// Longest session timeout a member may ask for. Default 300 000 ms.
    pub group_max_session_timeout_ms: u32,
    /// Settings for topics created without them (each topic's own settings are
    /// stored with it).
    pub log: LogConfig,
    /// Prometheus metrics at `GET /metrics` on the HTTP port. Off, every
    /// metric handle is a no-op and `/metrics` answers 404 (for measuring
    /// what metrics cost). Default true.
    pub metrics: bool,
    /// PEM certificate chain (leaf first) for TLS. With `tls_key` set too,
    /// both listeners (native and HTTP) speak only TLS; set both or neither.
    /// Default none (plain TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// How far ahead of the broker's clock a produced record's timestamp may
    /// be, in ms (Kafka's `message.timestamp.after.max.ms`; behind is
    /// unbounded, as in Kafka). A batch with a record further ahead is
    /// refused with `CORRUPT_MESSAGE`, so a far-future timestamp cannot keep
    /// a segment from time-based retention. Default 3 600 000 (1 hour, as in
    /// Kafka 4.0); 9223372036854775807 accepts any timestamp.
    pub message_timestamp_max_skew_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            data_dir: PathBuf::from("warren-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7171)),
            http: SocketAddr::from(([127, 0, 0, 1], 7180)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_frame_bytes: warren_protocol::frame::DEFAULT_MAX_FRAME_BYTES,
            max_inflight_requests: 128,
            max_inflight_bytes: 32 << 20,
            shutdown_timeout_ms: 10_000,
            retention_check_ms: 300_000,
            group_heartbeat_interval_ms: 250,
            group_min_session_timeout_ms: 1_000,
            group_max_session_timeout_ms: 300_000,
            log: LogConfig::default(),
            metrics: true,
            tls_cert: None,
            tls_key: None,
            message_timestamp_max_skew_ms: 3_600_000,
        }
    }
}

impl BrokerConfig {
    /// Builds the configuration from its sources (see the module docs):
    /// `overrides` are the command-line flags as a TOML table, `file` the
    /// optional TOML file, `env` the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable or malformed file, an unknown key,
    /// a value of the wrong type, or a failed [`validate`](Self::validate).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: toml::Table,
    ) -> Result<BrokerConfig> {
        let mut merged = env_table(env)?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            merge(&mut merged, table);
        }
        merge(&mut merged, overrides);
        let config: BrokerConfig = merged
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and cross-field rules.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        if !(1024..=u32::MAX as usize).contains(&self.max_frame_bytes) {
            return Err(Error::Config(format!(
                "max_frame_bytes {} must be in 1024..=4294967295",
                self.max_frame_bytes
            )));
        }
        if self.max_inflight_requests == 0 || self.max_inflight_bytes == 0 {
            return Err(Error::Config(
                "max_inflight_requests and max_inflight_bytes must be at least 1".into(),
            ));
        }
        if self.retention_check_ms == 0 {
            return Err(Error::Config(
                "retention_check_ms must be at least 1".into(),
            ));
        }
        if self.group_heartbeat_interval_ms == 0
            || self.group_min_session_timeout_ms <= self.group_heartbeat_interval_ms
            || self.group_max_session_timeout_ms < self.group_min_session_timeout_ms
        {
            return Err(Error::Config(format!(
                "need 0 < group_heartbeat_interval_ms ({}) < group_min_session_timeout_ms ({}) \
                 <= group_max_session_timeout_ms ({})",
                self.group_heartbeat_interval_ms,
                self.group_min_session_timeout_ms,
                self.group_max_session_timeout_ms
            )));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) | (None, None) => {}
            (Some(cert), None) => {
                return Err(Error::Config(format!(
                    "tls_cert is set ({}) but tls_key is not: TLS needs both",
                    cert.display()
                )));
            }
            (None, Some(key)) => {
                return Err(Error::Config(format!(
                    "tls_key is set ({}) but tls_cert is not: TLS needs both",
                    key.display()
                )));
            }
        }
        self.log
            .validate()
            .map_err(|e| Error::Config(format!("log: {e}")))
    }
}

/// Overlays `top` onto `base`, recursing into tables.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The `WARREN_*` variables as a TOML table. Values are read as TOML scalars
/// when they parse as one (`1024`, `true`) and as strings otherwise.
fn env_table(env: impl IntoIterator<Item = (String, String)>) -> Result<toml::Table> {
    const TOP: &[&str] = &[
        "data_dir",
        "listen",
        "http",
        "max_connections",
        "max_frame_bytes",
        "max_inflight_requests",
        "max_inflight_bytes",
        "shutdown_timeout_ms",
        "retention_check_ms",
        "group_heartbeat_interval_ms",
        "group_min_session_timeout_ms",
        "group_max_session_timeout_ms",
        "metrics",
        "tls_cert",
        "tls_key",
        "message_timestamp_max_skew_ms",
    ];
    const LOG: &[&str] = &[
        "segment_bytes",
        "segment_ms",
        "index_interval_bytes",
        "max_index_bytes",
        "durability",
        "retention_bytes",
        "retention_ms",
        "max_message_bytes",
    ];
    let mut table = toml::Table::new();
    let mut log = toml::Table::new();
    for (name, value) in env {
        let Some(key) = name.strip_prefix("WARREN_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        // Paths stay strings even when they look like a number.
        let value = if key.starts_with("tls_") {
            toml::Value::String(value)
        } else {
            scalar(&value)
        };
        if let Some(log_key) = key.strip_prefix("log_")
            && LOG.contains(&log_key)
        {
            log.insert(log_key.to_string(), value);
            continue;
        }
        if TOP.contains(&key.as_str()) {
            table.insert(key, value);
        } else if !matches!(
            key.as_str(),
            "broker" | "log" | "bench_dir" | "tls_ca" | "tls_server_name"
        ) {
            // WARREN_BROKER and WARREN_TLS_CA/_SERVER_NAME are the CLI's; other
            // WARREN_* names are likely typos.
            return Err(Error::Config(format!(
                "unknown environment variable {name} (known: WARREN_{}, WARREN_LOG_{})",
                TOP.join("|").to_ascii_uppercase(),
                LOG.join("|").to_ascii_uppercase()
            )));
        }
    }
    if !log.is_empty() {
        table.insert("log".into(), toml::Value::Table(log));
    }
    Ok(table)
}

fn scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = s.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;
    use warren_storage::Durability;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_loopback_and_validate() {
        let c = BrokerConfig::load(None, env(&[]), toml::Table::new()).unwrap();
        assert_eq!(c, BrokerConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:7171");
        assert_eq!(c.http.to_string(), "127.0.0.1:7180");
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warren.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nmax_connections = 7\n[log]\ndurability = \"none\"\n",
        )
        .unwrap();
        let e = env(&[
            ("WARREN_DATA_DIR", "/from/env"),
            ("WARREN_MAX_CONNECTIONS", "9"),
            ("WARREN_LISTEN", "127.0.0.1:9000"),
            ("WARREN_LOG_MAX_MESSAGE_BYTES", "4096"),
            ("PATH", "/usr/bin"),
        ]);
        let mut flags = toml::Table::new();
        flags.insert("data_dir".into(), "/from/flag".into());
        let c = BrokerConfig::load(Some(&file), e, flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.max_connections, 7, "file over env");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000", "env over default");
        assert_eq!(c.log.durability, Durability::None);
        assert_eq!(c.log.max_message_bytes, 4096);
    }

    #[test]
    fn metrics_are_on_by_default_and_switched_off_by_env_file_or_flag() {
        let on = BrokerConfig::load(None, env(&[]), toml::Table::new()).unwrap();
        assert!(on.metrics);
        let off = BrokerConfig::load(
            None,
            env(&[("WARREN_METRICS", "false")]),
            toml::Table::new(),
        )
        .unwrap();
        assert!(!off.metrics);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warren.toml");
        std::fs::write(&file, "metrics = false\n").unwrap();
        assert!(
            !BrokerConfig::load(Some(&file), env(&[]), toml::Table::new())
                .unwrap()
                .metrics
        );
        let mut flags = toml::Table::new();
        flags.insert("metrics".into(), true.into());
        let c = BrokerConfig::load(Some(&file), env(&[]), flags).unwrap();
        assert!(c.metrics, "the flag beats the file");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warren.toml");
        std::fs::write(&file, "listen_addr = \"x\"\n").unwrap();
        let err = BrokerConfig::load(Some(&file), env(&[]), toml::Table::new()).unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err = BrokerConfig::load(None, env(&[("WARREN_LISTN", "x")]), toml::Table::new())
            .unwrap_err();
        assert!(err.to_string().contains("WARREN_LISTN"), "{err}");
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_LISTEN", "not an address")]),
            toml::Table::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("address"), "{err}");
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_LOG_DURABILITY", "sometimes")]),
            toml::Table::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("durability"), "{err}");
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_TLS_CERT", "/etc/warren/cert.pem")]),
            toml::Table::new(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tls_key is not"), "{msg}");
        assert!(msg.contains("/etc/warren/cert.pem"), "{msg}");
        let mut flags = toml::Table::new();
        flags.insert("tls_key".into(), "k.pem".into());
        let err = BrokerConfig::load(None, env(&[]), flags).unwrap_err();
        assert!(err.to_string().contains("tls_cert is not"), "{err}");
        let c = BrokerConfig::load(
            None,
            env(&[("WARREN_TLS_CERT", "c.pem"), ("WARREN_TLS_KEY", "1234")]),
            toml::Table::new(),
        )
        .unwrap();
        assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(
            c.tls_key,
            Some(PathBuf::from("1234")),
            "a path stays a string"
        );
    }
}
