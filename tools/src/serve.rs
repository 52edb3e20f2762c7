//! `warren serve`: runs the broker in the foreground until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use warren_broker::{Broker, BrokerConfig};

/// Run the broker in the foreground (stop it with Ctrl-C or SIGTERM).
///
/// Settings come from, highest precedence first: these flags, the TOML file
/// given with --config, WARREN_* environment variables, then the defaults.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ServeArgs {
    /// Data directory [default: ./warren-data] [env: WARREN_DATA_DIR] [toml: data_dir]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Native protocol address [default: 127.0.0.1:7171] [env: WARREN_LISTEN] [toml: listen]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// HTTP address (probes, /metrics, admin API, web page) [default: 127.0.0.1:7180] [env: WARREN_HTTP] [toml: http]
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// TOML configuration file (keys as listed below)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Default durability of new topics: fsync, none or interval:<ms> [default: fsync]
    /// [env: WARREN_LOG_DURABILITY] [toml: log.durability]
    #[arg(long, value_name = "MODE")]
    durability: Option<String>,
    /// Serve Prometheus metrics at /metrics (the default) [env: WARREN_METRICS] [toml: metrics]
    #[arg(long, overrides_with = "no_metrics")]
    metrics: bool,
    /// Turn metrics off: handles become no-ops and /metrics answers 404
    #[arg(long, overrides_with = "metrics")]
    no_metrics: bool,
    /// PEM certificate chain: with --tls-key, both listeners speak only TLS
    /// [env: WARREN_TLS_CERT] [toml: tls_cert]
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [env: WARREN_TLS_KEY] [toml: tls_key]
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve with no users on a non-loopback address on purpose (everyone
    /// who reaches it has full access) [env: WARREN_ALLOW_ANONYMOUS] [toml: allow_anonymous]
    #[arg(long)]
    allow_anonymous: bool,
    /// Print the effective configuration as TOML and exit
    #[arg(long)]
    print_config: bool,
}

const AFTER_HELP: &str = "\
Every setting, with its TOML key, environment variable and default:
  data_dir               WARREN_DATA_DIR               ./warren-data
  listen                 WARREN_LISTEN                 127.0.0.1:7171
  http                   WARREN_HTTP                   127.0.0.1:7180
  max_connections        WARREN_MAX_CONNECTIONS        1024
  max_frame_bytes        WARREN_MAX_FRAME_BYTES        16777216 (16 MiB)
  max_inflight_requests  WARREN_MAX_INFLIGHT_REQUESTS  128 per connection
  max_inflight_bytes     WARREN_MAX_INFLIGHT_BYTES     33554432 (32 MiB) per connection
  shutdown_timeout_ms    WARREN_SHUTDOWN_TIMEOUT_MS    10000
  retention_check_ms     WARREN_RETENTION_CHECK_MS     300000
  group_heartbeat_interval_ms  WARREN_GROUP_HEARTBEAT_INTERVAL_MS  250
  group_min_session_timeout_ms WARREN_GROUP_MIN_SESSION_TIMEOUT_MS 1000
  group_max_session_timeout_ms WARREN_GROUP_MAX_SESSION_TIMEOUT_MS 300000
  metrics                WARREN_METRICS                true (--metrics / --no-metrics)
  tls_cert               WARREN_TLS_CERT               none (PEM certificate chain; TLS on both listeners)
  tls_key                WARREN_TLS_KEY                none (PEM private key; set both or neither)
  fetch_max_bytes        WARREN_FETCH_MAX_BYTES        57671680 (55 MiB) record bytes per Fetch response
  group_max_size         WARREN_GROUP_MAX_SIZE         1000 members per consumer group
  group_max_groups       WARREN_GROUP_MAX_GROUPS       10000 consumer groups
  group_share_max_groups WARREN_GROUP_SHARE_MAX_GROUPS 1000 share groups
  offsets_retention_minutes WARREN_OFFSETS_RETENTION_MINUTES 10080 (7 days) for groups without members
  offsets_retention_check_ms WARREN_OFFSETS_RETENTION_CHECK_MS 600000
  http_max_tokens_per_user WARREN_HTTP_MAX_TOKENS_PER_USER 64 live HTTP tokens
  metrics_max_group_series WARREN_METRICS_MAX_GROUP_SERIES 10000 per family and scrape
  allow_anonymous        WARREN_ALLOW_ANONYMOUS        false (no users on a non-loopback address: refuse to start)
  http_allowed_hosts     WARREN_HTTP_ALLOWED_HOSTS     none beyond the listener's own (* turns the Host check off)
  http_allowed_origins   WARREN_HTTP_ALLOWED_ORIGINS   none beyond the listener's own
  http_max_connections   WARREN_HTTP_MAX_CONNECTIONS   256
  http_header_timeout_ms WARREN_HTTP_HEADER_TIMEOUT_MS 30000 (also the keep-alive idle timeout)
  http_request_timeout_ms WARREN_HTTP_REQUEST_TIMEOUT_MS 60000
  connections_max_idle_ms WARREN_CONNECTIONS_MAX_IDLE_MS 600000 (10 minutes)
  frame_read_timeout_ms  WARREN_FRAME_READ_TIMEOUT_MS  30000 (rest of a started request frame)
  connection_setup_timeout_ms WARREN_CONNECTION_SETUP_TIMEOUT_MS 10000 (first request; authentication)
  message_timestamp_max_skew_ms WARREN_MESSAGE_TIMESTAMP_MAX_SKEW_MS 3600000 (record timestamps at most 1 hour ahead)
  connection_write_timeout_ms WARREN_CONNECTION_WRITE_TIMEOUT_MS 30000 (close a client that reads none of its responses)
Defaults for new topics ([log] table in TOML):
  log.durability         WARREN_LOG_DURABILITY         fsync (or none, interval:<ms>)
  log.segment_bytes      WARREN_LOG_SEGMENT_BYTES      1073741824 (1 GiB)
  log.segment_ms         WARREN_LOG_SEGMENT_MS         604800000 (7 days)
  log.retention_bytes    WARREN_LOG_RETENTION_BYTES    unlimited
  log.retention_ms       WARREN_LOG_RETENTION_MS       604800000 (7 days)
  log.max_message_bytes  WARREN_LOG_MAX_MESSAGE_BYTES  1048576 (1 MiB)
  log.index_interval_bytes WARREN_LOG_INDEX_INTERVAL_BYTES 4096
  log.max_index_bytes    WARREN_LOG_MAX_INDEX_BYTES    10485760 (10 MiB)
Logs go to stderr; RUST_LOG sets the level (default: info).";

impl ServeArgs {
    fn overrides(&self) -> toml::Table {
        let mut t = toml::Table::new();
        if let Some(d) = &self.data_dir {
            t.insert("data_dir".into(), d.display().to_string().into());
        }
        if let Some(a) = self.listen {
            t.insert("listen".into(), a.to_string().into());
        }
        if let Some(a) = self.http {
            t.insert("http".into(), a.to_string().into());
        }
        if self.metrics || self.no_metrics {
            t.insert("metrics".into(), self.metrics.into());
        }
        if let Some(p) = &self.tls_cert {
            t.insert("tls_cert".into(), p.display().to_string().into());
        }
        if let Some(p) = &self.tls_key {
            t.insert("tls_key".into(), p.display().to_string().into());
        }
        if self.allow_anonymous {
            t.insert("allow_anonymous".into(), true.into());
        }
        if let Some(d) = &self.durability {
            let mut log = toml::Table::new();
            log.insert("durability".into(), d.clone().into());
            t.insert("log".into(), log.into());
        }
        t
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let config = BrokerConfig::load(args.config.as_deref(), std::env::vars(), args.overrides())?;
    if args.print_config {
        print!(
            "{}",
            toml::to_string(&config).context("printing the config")?
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warren-broker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let broker = Broker::start(config).await?;
        broker.run_until_signal().await?;
        anyhow::Ok(())
    })
}
