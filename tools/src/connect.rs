//! What every client subcommand shares: the `--broker`, `--user`,
//! `--password` and `--tls-*` options, the connection
//! settings the CLI uses, the async runtime, and turning a client error into
//! one line.
//!
//! Thread safety: nothing here is shared; each subcommand builds its own runtime.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use warren_client::{ConnectionConfig, Credentials, TlsConfig};

/// Longest wait for the TCP connect and the ApiVersions handshake. A refused
/// connection fails at once; this bounds the wait for an address that drops
/// packets, well below the client's 10 s default so a script does not hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `--broker ADDR` and the TLS options, flattened into every subcommand that
/// talks to a broker.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker address (host:port)
    #[arg(
        long,
        value_name = "ADDR",
        env = "WARREN_BROKER",
        default_value = "127.0.0.1:7171",
        global = true
    )]
    pub broker: String,
    /// User to authenticate as (SCRAM-SHA-256); without it the CLI is
    /// anonymous, which a broker allows only while it has no users
    #[arg(long, value_name = "NAME", env = "WARREN_USER", global = true)]
    pub user: Option<String>,
    /// Password of --user. Prefer the WARREN_PASSWORD environment variable: a
    /// flag's value shows in `ps` and in shell history
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "WARREN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,
    /// Connect with TLS, trusting the CA certificate(s) in this PEM file (for a
    /// broker started with --tls-cert/--tls-key; its self-signed certificate works)
    #[arg(long, value_name = "FILE", env = "WARREN_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Name the broker's certificate must carry [default: the host of --broker]
    #[arg(
        long,
        value_name = "NAME",
        env = "WARREN_TLS_SERVER_NAME",
        global = true,
        requires = "tls_ca"
    )]
    pub tls_server_name: Option<String>,
}

impl BrokerArgs {
    /// The connection settings for this broker.
    pub fn connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            bootstrap: self.broker.clone(),
            connect_timeout: CONNECT_TIMEOUT,
            // A missing password is an empty one: the broker then refuses the
            // login with a message naming the user.
            credentials: self.user.as_ref().map(|user| {
                Credentials::new(user.clone(), self.password.clone().unwrap_or_default())
            }),
            tls: self.tls_ca.as_ref().map(|ca_file| TlsConfig {
                ca_file: ca_file.clone(),
                server_name: self.tls_server_name.clone(),
            }),
            ..ConnectionConfig::default()
        }
    }
}

/// A single-threaded runtime: the CLI does one thing at a time, and the
/// client's background tasks run whenever `block_on` waits.
///
/// # Errors
/// If the runtime cannot be built (out of file descriptors or threads).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The client error as one message. The client's `Display` already includes
/// its source (`cannot connect to ADDR: Connection refused`), so keeping the
/// error chain would print the cause twice under `{:#}`.
pub fn client_error(err: warren_client::Error) -> anyhow::Error {
    anyhow::Error::msg(err.to_string())
}

/// A failed `connect` of a client as one message that names the broker:
/// [`warren_client::Error::Connect`] already does (`cannot connect to ADDR:
/// Connection refused`); a timeout or a failed handshake gets the same prefix.
pub fn connect_error(broker: &BrokerArgs, err: warren_client::Error) -> anyhow::Error {
    match err {
        warren_client::Error::Connect { .. } | warren_client::Error::Tls { .. } => {
            client_error(err)
        }
        other => client_error(other).context(format!("cannot connect to {}", broker.broker)),
    }
}

/// Adds what we were doing to a client result: `creating topic "x": <cause>`.
pub trait ClientContext<T> {
    /// # Errors
    /// The client error, flattened to one message and prefixed with `what`.
    fn doing(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T> ClientContext<T> for Result<T, warren_client::Error> {
    fn doing(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| client_error(e).context(what()))
    }
}
