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

/// Largest `fetch_max_bytes` (2 GiB): a Fetch response carries at most this
/// plus one batch, far below the u32 frame length. Not configurable.
pub const MAX_FETCH_MAX_BYTES: u32 = 1 << 31;
/// The value of `http_allowed_hosts` that turns the HTTP `Host` check off.
pub const ANY_HOST: &str = "*";

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
    /// Most record bytes in one Fetch response, whatever the request's
    /// `max_bytes` (Kafka's `fetch.max.bytes`; the first batch still goes
    /// whole). Default 57 671 680 (55 MiB); at most 2 GiB, so a response
    /// frame's u32 length never wraps.
    pub fetch_max_bytes: u32,
    /// Most members one consumer group may have (Kafka's `group.max.size`);
    /// a JoinGroup of a new member beyond it gets `LIMIT_REACHED`. Default 1000.
    pub group_max_size: u32,
    /// Most consumer groups the broker keeps (groups with members or
    /// committed offsets); a JoinGroup or commit that would add one more gets
    /// `LIMIT_REACHED`. Default 10 000.
    pub group_max_groups: u32,
    /// Most share groups the broker keeps (groups with share-partition
    /// state); a ShareFetch that would add one more gets `LIMIT_REACHED`.
    /// Default 1000.
    pub group_share_max_groups: u32,
    /// How long a consumer group with no members keeps its committed offsets
    /// after its last commit, and a share group its state after its last
    /// fetch or acknowledgement, in minutes (Kafka's
    /// `offsets.retention.minutes`). Default 10 080 (7 days).
    pub offsets_retention_minutes: u64,
    /// How often expired group offsets and share-group state are looked for
    /// (Kafka's `offsets.retention.check.interval.ms`). Default 600 000 ms
    /// (10 minutes).
    pub offsets_retention_check_ms: u64,
    /// Most live HTTP bearer tokens (`POST /api/auth/token`) one user may
    /// hold; beyond it the request gets 429 `TOO_MANY_TOKENS`. Default 64.
    pub http_max_tokens_per_user: u32,
    /// Most per-group series (`warren_group_lag`,
    /// `warren_share_inflight_records`, `warren_dead_lettered_records_total`)
    /// one scrape of `/metrics` renders per family; the rest are counted in
    /// `warren_metrics_series_dropped`. Default 10 000.
    pub metrics_max_group_series: u32,
    /// Serve with no users defined (everyone is anonymous with full access)
    /// even on a non-loopback `listen` or `http` address. Without it such a
    /// broker refuses to start until a user exists. Default false.
    pub allow_anonymous: bool,
    /// Extra `Host` names the HTTP listener answers to, besides its own
    /// address (and `localhost` and loopback IPs when it listens on loopback
    /// or on every interface): `name` (any port) or `name:port`. `"*"` turns
    /// the check off (DNS rebinding is then possible). In the environment, a
    /// comma-separated list. Default empty.
    pub http_allowed_hosts: Vec<String>,
    /// Extra `Origin`s (`scheme://host[:port]`) allowed to send requests to
    /// the HTTP listener, besides its own (the origin matching the request's
    /// `Host`). In the environment, a comma-separated list. Default empty.
    pub http_allowed_origins: Vec<String>,
    /// HTTP connections served at once; beyond it a new connection gets
    /// `503` and is closed. Default 256.
    pub http_max_connections: usize,
    /// Longest an HTTP connection may take to send a request's headers,
    /// counted from when the broker is ready for it, so it is also how long
    /// an idle keep-alive connection stays open. Default 30 000 ms.
    pub http_header_timeout_ms: u64,
    /// Longest an HTTP request may take from its headers to its response
    /// (reading its body included); then `408`. Default 60 000 ms.
    pub http_request_timeout_ms: u64,
    /// A native connection with no request in flight that has sent nothing
    /// for this long is closed (Kafka's `connections.max.idle.ms`). Default
    /// 600 000 ms (10 minutes).
    pub connections_max_idle_ms: u64,
    /// Longest a native connection may take to send the rest of a request
    /// frame once its first byte arrived; then it is closed. Default
    /// 30 000 ms.
    pub frame_read_timeout_ms: u64,
    /// A new native connection must send a whole first request within this,
    /// and, when users exist, finish authenticating within it; otherwise it
    /// is closed. Counted from the end of the TLS handshake, if any. Default
    /// 10 000 ms.
    pub connection_setup_timeout_ms: u64,
    /// How far ahead of the broker's clock a produced record's timestamp may
    /// be, in ms (Kafka's `message.timestamp.after.max.ms`; behind is
    /// unbounded, as in Kafka). A batch with a record further ahead is
    /// refused with `CORRUPT_MESSAGE`, so a far-future timestamp cannot keep
    /// a segment from time-based retention. Default 3 600 000 (1 hour, as in
    /// Kafka 4.0); 9223372036854775807 accepts any timestamp.
    pub message_timestamp_max_skew_ms: u64,
    /// A native connection whose peer acknowledges none of the bytes sent
    /// to it (or keeps its receive window shut) for this long is closed,
    /// freeing its `max_connections` slot: the socket's `TCP_USER_TIMEOUT`.
    /// A client that reads, however slowly, is not closed. Values above
    /// 2 147 483 647 ms (the kernel's limit) mean that. Default 30 000 ms.
    pub connection_write_timeout_ms: u64,
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
            fetch_max_bytes: 55 << 20,
            group_max_size: 1000,
            group_max_groups: 10_000,
            group_share_max_groups: 1000,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_ms: 600_000,
            http_max_tokens_per_user: 64,
            metrics_max_group_series: 10_000,
            allow_anonymous: false,
            http_allowed_hosts: Vec::new(),
            http_allowed_origins: Vec::new(),
            http_max_connections: 256,
            http_header_timeout_ms: 30_000,
            http_request_timeout_ms: 60_000,
            connections_max_idle_ms: 600_000,
            frame_read_timeout_ms: 30_000,
            connection_setup_timeout_ms: 10_000,
            message_timestamp_max_skew_ms: 3_600_000,
            connection_write_timeout_ms: 30_000,
        }
    }
}

impl BrokerConfig {
    /// Refuses a broker that would give anonymous full access beyond this
    /// machine: no users, a non-loopback `listen` or `http` address, and no
    /// `allow_anonymous`.
    ///
    /// # Errors
    /// [`Error::AnonymousNotLoopback`] naming the address and the two ways out.
    pub fn check_anonymous_exposure(&self, has_users: bool) -> Result<()> {
        if has_users || self.allow_anonymous {
            return Ok(());
        }
        match [self.listen, self.http]
            .into_iter()
            .find(|a| !a.ip().to_canonical().is_loopback())
        {
            Some(addr) => Err(Error::AnonymousNotLoopback { addr }),
            None => Ok(()),
        }
    }

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
        if !(1024..=MAX_FETCH_MAX_BYTES).contains(&self.fetch_max_bytes) {
            return Err(Error::Config(format!(
                "fetch_max_bytes {} must be in 1024..={MAX_FETCH_MAX_BYTES}",
                self.fetch_max_bytes
            )));
        }
        for (name, value) in [
            ("group_max_size", u64::from(self.group_max_size)),
            ("group_max_groups", u64::from(self.group_max_groups)),
            (
                "group_share_max_groups",
                u64::from(self.group_share_max_groups),
            ),
            ("offsets_retention_minutes", self.offsets_retention_minutes),
            (
                "offsets_retention_check_ms",
                self.offsets_retention_check_ms,
            ),
            (
                "http_max_tokens_per_user",
                u64::from(self.http_max_tokens_per_user),
            ),
            ("http_max_connections", self.http_max_connections as u64),
            ("http_header_timeout_ms", self.http_header_timeout_ms),
            ("http_request_timeout_ms", self.http_request_timeout_ms),
            ("connections_max_idle_ms", self.connections_max_idle_ms),
            ("frame_read_timeout_ms", self.frame_read_timeout_ms),
            (
                "connection_setup_timeout_ms",
                self.connection_setup_timeout_ms,
            ),
            (
                "connection_write_timeout_ms",
                self.connection_write_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(Error::Config(format!("{name} must be at least 1")));
            }
        }
        for origin in &self.http_allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "http_allowed_origins: {origin:?} is not an origin (scheme://host[:port])"
                )));
            }
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
        "fetch_max_bytes",
        "group_max_size",
        "group_max_groups",
        "group_share_max_groups",
        "offsets_retention_minutes",
        "offsets_retention_check_ms",
        "http_max_tokens_per_user",
        "metrics_max_group_series",
        "allow_anonymous",
        "http_allowed_hosts",
        "http_allowed_origins",
        "http_max_connections",
        "http_header_timeout_ms",
        "http_request_timeout_ms",
        "connections_max_idle_ms",
        "frame_read_timeout_ms",
        "connection_setup_timeout_ms",
        "message_timestamp_max_skew_ms",
        "connection_write_timeout_ms",
    ];
    /// Keys whose value is a list: comma-separated in the environment.
    const LISTS: &[&str] = &["http_allowed_hosts", "http_allowed_origins"];
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
        } else if LISTS.contains(&key.as_str()) {
            toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )
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
    fn state_caps_load_from_the_environment_and_zero_or_huge_values_are_refused() {
        let c = BrokerConfig::load(
            None,
            env(&[
                ("WARREN_GROUP_MAX_SIZE", "7"),
                ("WARREN_OFFSETS_RETENTION_MINUTES", "1"),
                ("WARREN_FETCH_MAX_BYTES", "65536"),
            ]),
            toml::Table::new(),
        )
        .unwrap();
        assert_eq!(c.group_max_size, 7);
        assert_eq!(c.offsets_retention_minutes, 1);
        assert_eq!(c.fetch_max_bytes, 65536);
        assert_eq!(
            BrokerConfig::default().offsets_retention_minutes,
            10_080,
            "Kafka's 7 days"
        );
        for (key, value) in [
            ("WARREN_GROUP_MAX_GROUPS", "0"),
            ("WARREN_GROUP_SHARE_MAX_GROUPS", "0"),
            ("WARREN_HTTP_MAX_TOKENS_PER_USER", "0"),
            ("WARREN_FETCH_MAX_BYTES", "4294967295"),
        ] {
            let err = BrokerConfig::load(None, env(&[(key, value)]), toml::Table::new())
                .unwrap_err()
                .to_string();
            let field = key.trim_start_matches("WARREN_").to_ascii_lowercase();
            assert!(err.contains(&field), "{key}: {err}");
        }
    }

    #[test]
    fn hardening_keys_come_from_env_with_comma_lists_and_zero_timeouts_are_refused() {
        let c = BrokerConfig::load(
            None,
            env(&[
                (
                    "WARREN_HTTP_ALLOWED_HOSTS",
                    "broker.example, proxy.example:443",
                ),
                ("WARREN_HTTP_ALLOWED_ORIGINS", "https://console.example"),
                ("WARREN_ALLOW_ANONYMOUS", "true"),
                ("WARREN_CONNECTIONS_MAX_IDLE_MS", "1000"),
            ]),
            toml::Table::new(),
        )
        .unwrap();
        assert_eq!(
            c.http_allowed_hosts,
            vec![
                "broker.example".to_string(),
                "proxy.example:443".to_string()
            ]
        );
        assert_eq!(
            c.http_allowed_origins,
            vec!["https://console.example".to_string()]
        );
        assert!(c.allow_anonymous);
        assert_eq!(c.connections_max_idle_ms, 1000);
        assert!(!BrokerConfig::default().allow_anonymous);
        assert_eq!(BrokerConfig::default().connections_max_idle_ms, 600_000);
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_FRAME_READ_TIMEOUT_MS", "0")]),
            toml::Table::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("frame_read_timeout_ms"), "{err}");
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_HTTP_ALLOWED_ORIGINS", "evil.example")]),
            toml::Table::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an origin"), "{err}");
    }

    #[test]
    fn connection_write_timeout_ms_comes_from_env_defaults_to_30_s_and_refuses_zero() {
        assert_eq!(BrokerConfig::default().connection_write_timeout_ms, 30_000);
        let c = BrokerConfig::load(
            None,
            env(&[("WARREN_CONNECTION_WRITE_TIMEOUT_MS", "1500")]),
            toml::Table::new(),
        )
        .unwrap();
        assert_eq!(c.connection_write_timeout_ms, 1500);
        let err = BrokerConfig::load(
            None,
            env(&[("WARREN_CONNECTION_WRITE_TIMEOUT_MS", "0")]),
            toml::Table::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("connection_write_timeout_ms"),
            "{err}"
        );
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
