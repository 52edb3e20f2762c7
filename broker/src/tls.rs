//! TLS for both listeners: loading the certificate chain and private key
//! (`tls_cert`, `tls_key`, PEM) into a rustls server config, the handshake
//! timeout, and the HTTP listener's TLS accept queue.
//!
//! The native listener does its handshake in each connection's own task (see
//! `connection::run`), so a client that connects and sends nothing costs its
//! own task [`HANDSHAKE_TIMEOUT`], never the accept loop. The HTTP listener
//! does the same through [`TlsListener`]: a task accepts TCP connections and
//! spawns one handshake per connection; finished streams go through a channel
//! to `axum::serve`, which keeps its own graceful shutdown.
//!
//! Crypto is rustls with the `ring` provider, chosen explicitly (not the
//! process-wide default) so that another crate enabling a second provider can
//! never make the config builder panic. TLS 1.2 and 1.3, rustls's safe
//! defaults; no client certificates.
//!
//! Thread-safe: the acceptor is an `Arc` around an immutable config.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Longest a client may take to finish the TLS handshake after connecting;
/// then the connection is closed. Not configurable: a real client needs a few
/// milliseconds on loopback and a few round trips elsewhere.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP connections that finished their handshake and wait for `axum::serve`
/// to take them. Small: axum takes each at once, this only absorbs bursts.
const HTTP_ACCEPT_QUEUE: usize = 64;

/// Builds the acceptor from a PEM certificate chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`Error::Tls`] naming the file and what is wrong with it: it cannot be
/// read, it holds no certificate (or no private key), or the key does not
/// belong to the certificate.
pub fn acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor> {
    let tls_error = |path: &Path, reason: String| Error::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| tls_error(cert_path, format!("cannot read the certificate file: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(cert_path, format!("not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(
            cert_path,
            "no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)".into(),
        ));
    }
    let key_pem = std::fs::read(key_path)
        .map_err(|e| tls_error(key_path, format!("cannot read the private key file: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_error(
            key_path,
            format!("no private key in it (expected a PEM \"BEGIN PRIVATE KEY\" block): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cert_path, format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => tls_error(
                key_path,
                format!(
                    "the private key does not match the certificate in {}",
                    cert_path.display()
                ),
            ),
            other => tls_error(key_path, format!("unusable key or certificate: {other}")),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The HTTP listener with TLS, as an [`axum::serve::Listener`]: yields only
/// connections whose handshake succeeded. Each handshake runs in its own task
/// with [`HANDSHAKE_TIMEOUT`]; a failed one is logged and dropped. Stops
/// accepting when `shutdown` is cancelled.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`.
    ///
    /// # Errors
    /// If the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(HTTP_ACCEPT_QUEUE);
        tokio::spawn(accept_http(listener, acceptor, shutdown, tx));
        Ok(TlsListener { ready, local_addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task stopped (shutdown): nothing more will come, and
            // axum's graceful shutdown is about to stop calling us.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_http(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "HTTP accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket));
            let stream = tokio::select! {
                r = handshake => r,
                () = shutdown.cancelled() => return,
            };
            match stream {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "HTTP TLS handshake failed; connection closed");
                }
                Err(_) => {
                    tracing::info!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "HTTP TLS handshake timed out; connection closed");
                }
            }
        });
    }
}
