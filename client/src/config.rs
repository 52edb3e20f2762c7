//! Configuration of connections, producers and consumers.
//!
//! Every field is public; `Default` is the one place defaults live, and each
//! field's doc states its default and unit. Build a config with struct update
//! syntax and let the constructor ([`Producer::connect`](crate::Producer::connect),
//! [`Consumer::connect`](crate::Consumer::connect), [`Admin::connect`](crate::Admin::connect))
//! validate it:
//!
//! ```
//! use std::time::Duration;
//! use warren_client::{ConnectionConfig, ProducerConfig};
//! let config = ProducerConfig {
//!     connection: ConnectionConfig { bootstrap: "127.0.0.1:7171".into(), ..Default::default() },
//!     linger: Duration::from_millis(10),
//!     ..Default::default()
//! };
//! assert!(config.validate().is_ok());
//! ```

use std::path::PathBuf;
use std::time::Duration;

use warren_protocol::Compression;
use warren_protocol::frame::{DEFAULT_MAX_FRAME_BYTES, LENGTH_FIELD_BYTES, REQUEST_HEADER_BYTES};

use crate::error::{Error, Result};

/// Bytes a produce request spends around its record batches, counted
/// generously: request header, acks, timeout, topic names and per-entry fields.
/// Used to keep `max_request_bytes` below the frame limit.
pub(crate) const PRODUCE_OVERHEAD_BYTES: usize = 64 << 10;

/// How to reach the broker and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// `host:port` of the broker. Default `127.0.0.1:7171` (the broker's
    /// default listener).
    pub bootstrap: String,
    /// Longest wait for the TCP connect plus the ApiVersions handshake.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for a response, on top of any long-poll wait the request
    /// itself asks for (a fetch's `max_wait_ms`). A request that times out
    /// closes its connection (responses arrive in order, so a lost one wedges
    /// every later one); the next request reconnects. Default 30 s.
    pub request_timeout: Duration,
    /// Wait before the first reconnect after a failed connect; doubles with
    /// each further failure up to `reconnect_backoff_max`. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// Upper bound of the reconnect backoff. Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// Requests in flight (sent, response not yet received) per connection;
    /// further requests wait. Default 8.
    pub max_in_flight: usize,
    /// Largest response frame accepted, length field excluded; larger frames
    /// close the connection. Also the largest request sent. Default 16 MiB (the
    /// broker's default limit).
    pub max_frame_bytes: usize,
    /// Who to authenticate as. Every connection (reconnects and a group
    /// consumer's second connection included) authenticates right after the
    /// ApiVersions handshake, before its first request. Default `None`:
    /// anonymous, which a broker allows only while it has no users.
    pub credentials: Option<Credentials>,
    /// Connect with TLS, trusting the CA certificate(s) of this config, for
    /// a broker started with `tls_cert`/`tls_key`. Every connection the
    /// client opens (reconnects, a group consumer's coordinator connection)
    /// uses it. Default none (plain TCP).
    pub tls: Option<TlsConfig>,
}

/// The SASL mechanism a client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677): the password never crosses the wire, and the
    /// broker proves it holds the user's credential. The default.
    #[default]
    ScramSha256,
    /// SASL PLAIN: the password is sent as is; brokers accept it only over
    /// TLS.
    Plain,
}

impl Mechanism {
    /// The SASL name: `SCRAM-SHA-256` or `PLAIN`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => warren_protocol::scram::MECHANISM,
            Mechanism::Plain => warren_protocol::api::auth::PLAIN,
        }
    }
}

impl std::str::FromStr for Mechanism {
    type Err = Error;

    fn from_str(s: &str) -> Result<Mechanism> {
        match s.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "PLAIN" => Ok(Mechanism::Plain),
            _ => Err(Error::Config(format!(
                "unknown SASL mechanism {s:?} (SCRAM-SHA-256 or PLAIN)"
            ))),
        }
    }
}

/// A user name and password to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (kept in memory for reconnects; never logged).
    pub password: String,
    /// Default [`Mechanism::ScramSha256`].
    pub mechanism: Mechanism,
}

impl Credentials {
    /// SCRAM-SHA-256 credentials.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            mechanism: Mechanism::default(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    // The password stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// TLS settings of a [`ConnectionConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) that signed the broker's certificate
    /// (or the broker's self-signed certificate itself). Read at each connect.
    pub ca_file: PathBuf,
    /// The name the broker's certificate must carry (a DNS name or an IP
    /// address in its subject alternative names). Default: the host part of
    /// `bootstrap`.
    pub server_name: Option<String>,
}

impl TlsConfig {
    /// TLS trusting the certificates in `ca_file`, verifying the bootstrap host.
    pub fn new(ca_file: impl Into<PathBuf>) -> Self {
        TlsConfig {
            ca_file: ca_file.into(),
            server_name: None,
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            bootstrap: "127.0.0.1:7171".into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            max_in_flight: 8,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            credentials: None,
            tls: None,
        }
    }
}

impl ConnectionConfig {
    /// Defaults with `bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ConnectionConfig {
            bootstrap: bootstrap.into(),
            ..Default::default()
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap.is_empty() {
            return Err(Error::Config("bootstrap is empty".into()));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1024 {
            return Err(Error::Config(format!(
                "max_in_flight {} must be in 1..=1024",
                self.max_in_flight
            )));
        }
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > u32::MAX as usize {
            return Err(Error::Config(format!(
                "max_frame_bytes {} must be in 1024..=u32::MAX",
                self.max_frame_bytes
            )));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::Config(
                "connect_timeout and request_timeout must be positive".into(),
            ));
        }
        if self.credentials.as_ref().is_some_and(|c| c.user.is_empty()) {
            return Err(Error::Config("credentials have an empty user name".into()));
        }
        if self.reconnect_backoff > self.reconnect_backoff_max {
            return Err(Error::Config(
                "reconnect_backoff must not exceed reconnect_backoff_max".into(),
            ));
        }
        Ok(())
    }

    /// The wait before reconnect attempt number `failures + 1`.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        exponential(self.reconnect_backoff, self.reconnect_backoff_max, failures)
    }
}

/// `base * 2^(attempt - 1)`, at most `max`; zero for attempt 0.
pub(crate) fn exponential(base: Duration, max: Duration, attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
}

/// When the broker answers a produce request (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks = 0`: the broker sends no response at all. A record counts as
    /// delivered once its request is written to the socket; its offset is
    /// unknown and delivery is not confirmed (records are lost silently if
    /// the broker refuses them).
    None,
    /// `acks = 1`: answered once appended to the partition (page cache).
    Leader,
    /// `acks = -1`: answered once durable as the topic's durability mode says
    /// (after the shared fsync for `fsync`). The default.
    #[default]
    All,
}

impl Acks {
    /// The wire value: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl TryFrom<i16> for Acks {
    type Error = Error;

    fn try_from(v: i16) -> Result<Acks> {
        match v {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            -1 => Ok(Acks::All),
            other => Err(Error::Config(format!("acks {other} must be 0, 1 or -1"))),
        }
    }
}

/// Configuration of a [`Producer`](crate::Producer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// The broker and connection settings; `connection.max_in_flight` bounds
    /// the produce requests pipelined on the producer's connection.
    pub connection: ConnectionConfig,
    /// How long a partition's batch may wait for more records before it is
    /// sent even though it is not full. Default 5 ms.
    pub linger: Duration,
    /// Size at which a partition's batch is sent without waiting for `linger`,
    /// in encoded bytes (61-byte batch header included, before compression). A
    /// record that would take a batch past it starts a new batch, so a batch
    /// exceeds it only when it holds a single larger record. Keep it at or
    /// below the topic's `max.message.bytes` (broker default 1 MiB): a batch
    /// the broker refuses fails every record in it with
    /// [`Error::MessageTooLarge`]. Default 1 MiB.
    pub batch_bytes: usize,
    /// Largest produce request, in bytes of record batches: every batch ready
    /// for the broker is drained into one request up to this size. Default
    /// 4 MiB; at most `connection.max_frame_bytes` less 64 KiB of overhead.
    pub max_request_bytes: usize,
    /// Compression of each batch's records. Default none.
    pub compression: Compression,
    /// When the broker answers. Default [`Acks::All`].
    pub acks: Acks,
    /// Memory for records not yet acknowledged (encoded record bytes, counted
    /// from `send` until the record's batch is answered). When it is used up,
    /// `send` waits for space: this is the producer's back-pressure. A record
    /// larger than the whole buffer fails with [`Error::MessageTooLarge`].
    /// Default 64 MiB.
    pub buffer_bytes: usize,
    /// How long a record may take from `send` to acknowledgement, retries
    /// included; after that its batch fails with [`Error::Timeout`]. Also sent
    /// to the broker as the produce request's `timeout_ms`. Default 30 s.
    pub delivery_timeout: Duration,
    /// Wait before the first retry of a batch that failed with a retriable
    /// error; doubles per attempt up to `retry_backoff_max`. Default 100 ms.
    pub retry_backoff: Duration,
    /// Upper bound of the retry backoff. Default 1 s.
    pub retry_backoff_max: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            connection: ConnectionConfig::default(),
            linger: Duration::from_millis(5),
            batch_bytes: 1 << 20,
            max_request_bytes: 4 << 20,
            compression: Compression::None,
            acks: Acks::All,
            buffer_bytes: 64 << 20,
            delivery_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

impl ProducerConfig {
    /// Defaults with `connection.bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProducerConfig {
            connection: ConnectionConfig::new(bootstrap),
            ..Default::default()
        }
    }

    /// Checks the fields and their relations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.connection.validate()?;
        let frame_room = self
            .connection
            .max_frame_bytes
            .saturating_sub(PRODUCE_OVERHEAD_BYTES);
        if self.batch_bytes < 1024 {
            return Err(Error::Config(format!(
                "batch_bytes {} must be at least 1024",
                self.batch_bytes
            )));
        }
        if self.max_request_bytes < self.batch_bytes || self.max_request_bytes > frame_room {
            return Err(Error::Config(format!(
                "max_request_bytes {} must be between batch_bytes ({}) and max_frame_bytes less 64 KiB ({frame_room})",
                self.max_request_bytes, self.batch_bytes
            )));
        }
        // Permits of tokio's semaphore are bounded; 1 TiB is far beyond any real buffer.
        if self.buffer_bytes < 1024 || self.buffer_bytes > 1 << 40 {
            return Err(Error::Config(format!(
                "buffer_bytes {} must be in 1 KiB..=1 TiB",
                self.buffer_bytes
            )));
        }
        if self.delivery_timeout.is_zero() {
            return Err(Error::Config("delivery_timeout must be positive".into()));
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(Error::Config(
                "retry_backoff must not exceed retry_backoff_max".into(),
            ));
        }
        Ok(())
    }

    /// The produce request's `timeout_ms`.
    pub(crate) fn timeout_ms(&self) -> u32 {
        u32::try_from(self.delivery_timeout.as_millis()).unwrap_or(u32::MAX)
    }
}

/// Where a consumer starts reading a partition it has no position for, and
/// what [`Admin::list_offsets`](crate::Admin::list_offsets) looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetSpec {
    /// The log start offset (the oldest record still kept).
    #[default]
    Earliest,
    /// The high watermark: the offset the next record will get.
    Latest,
    /// The first offset whose batch has a timestamp at or after this many
    /// milliseconds since the Unix epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets request's `timestamp` field.
    pub(crate) fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => warren_protocol::api::list_offsets::EARLIEST,
            OffsetSpec::Latest => warren_protocol::api::list_offsets::LATEST,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// Configuration of a [`Consumer`](crate::Consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The broker and connection settings.
    pub connection: ConnectionConfig,
    /// Where to start a newly assigned partition that was not given a
    /// position with [`Consumer::seek`](crate::Consumer::seek). Default
    /// [`OffsetSpec::Earliest`].
    pub start_at: OffsetSpec,
    /// The broker answers a fetch once this many record bytes are available
    /// (or the poll timeout passes). Default 1 byte.
    pub min_bytes: u32,
    /// Most record bytes one fetch returns over all partitions (the broker
    /// still returns one whole batch if the first is larger). Must stay below
    /// `connection.max_frame_bytes`. Default 8 MiB.
    pub max_bytes: u32,
    /// Most record bytes one fetch returns per partition. Default 4 MiB.
    pub partition_max_bytes: u32,
    /// Keep one fetch in flight while the caller processes the records of
    /// the previous one: after a poll that returned records, the next fetch
    /// (from the new positions) is sent before `poll` returns. Default true.
    pub prefetch: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            connection: ConnectionConfig::default(),
            start_at: OffsetSpec::Earliest,
            min_bytes: 1,
            max_bytes: 8 << 20,
            partition_max_bytes: 4 << 20,
            prefetch: true,
        }
    }
}

impl ConsumerConfig {
    /// Defaults with `connection.bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ConsumerConfig {
            connection: ConnectionConfig::new(bootstrap),
            ..Default::default()
        }
    }

    /// Checks the fields and their relations.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.connection.validate()?;
        let frame_room = self
            .connection
            .max_frame_bytes
            .saturating_sub(LENGTH_FIELD_BYTES + REQUEST_HEADER_BYTES + (64 << 10));
        if self.max_bytes == 0 || self.max_bytes as usize > frame_room {
            return Err(Error::Config(format!(
                "max_bytes {} must be in 1..={frame_room} (max_frame_bytes less 64 KiB)",
                self.max_bytes
            )));
        }
        if self.partition_max_bytes == 0 || self.partition_max_bytes > self.max_bytes {
            return Err(Error::Config(format!(
                "partition_max_bytes {} must be in 1..=max_bytes ({})",
                self.partition_max_bytes, self.max_bytes
            )));
        }
        Ok(())
    }
}

/// Configuration of a [`ShareConsumer`](crate::ShareConsumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConsumerConfig {
    /// The broker and connection settings.
    pub connection: ConnectionConfig,
    /// Most records one poll acquires (over all partitions). The broker locks
    /// each for the topic's `share.lock.timeout.ms` (default 30 s): acquire no
    /// more than the caller processes in that time. Default 1000; 1..=100 000.
    pub max_records: u32,
    /// The member id the records are locked for; unique within the group.
    /// Default `None`: one is made from the process id, the time and a counter.
    pub member_id: Option<String>,
}

impl Default for ShareConsumerConfig {
    fn default() -> Self {
        ShareConsumerConfig {
            connection: ConnectionConfig::default(),
            max_records: 1000,
            member_id: None,
        }
    }
}

impl ShareConsumerConfig {
    /// Defaults with `connection.bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ShareConsumerConfig {
            connection: ConnectionConfig::new(bootstrap),
            ..Default::default()
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.connection.validate()?;
        if !(1..=100_000).contains(&self.max_records) {
            return Err(Error::Config(format!(
                "max_records {} must be in 1..=100000",
                self.max_records
            )));
        }
        if let Some(m) = &self.member_id
            && (m.is_empty() || m.len() > warren_protocol::api::share::MAX_MEMBER_ID_LEN)
        {
            return Err(Error::Config("member_id must be 1 to 255 bytes".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ProducerConfig::default().validate().is_ok());
        assert!(ConsumerConfig::default().validate().is_ok());
        assert!(ConnectionConfig::default().validate().is_ok());
        assert!(ShareConsumerConfig::default().validate().is_ok());
        let c = ShareConsumerConfig {
            max_records: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = ShareConsumerConfig {
            member_id: Some(String::new()),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn bad_relations_are_refused() {
        let c = ProducerConfig {
            max_request_bytes: 1 << 10,
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(Error::Config(_))));
        let c = ProducerConfig {
            max_request_bytes: 16 << 20,
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(Error::Config(_))));
        let c = ConsumerConfig {
            max_bytes: 16 << 20,
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(Error::Config(_))));
        assert!(Acks::try_from(2).is_err());
        assert_eq!(Acks::try_from(-1).ok(), Some(Acks::All));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(50);
        let max = Duration::from_secs(1);
        assert_eq!(exponential(base, max, 0), Duration::ZERO);
        assert_eq!(exponential(base, max, 1), base);
        assert_eq!(exponential(base, max, 2), base * 2);
        assert_eq!(exponential(base, max, 40), max);
    }
}
