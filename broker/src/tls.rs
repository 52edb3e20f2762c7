//! TLS for both listeners: loading the certificate chain and private key
//! (`tls_cert`, `tls_key`, PEM) into a rustls server config, and the
//! handshake timeout.
//!
//! Both listeners do the handshake in each connection's own task (see
//! `connection::run` and `http::serve`), so a client that connects and sends
//! nothing costs its own task [`HANDSHAKE_TIMEOUT`], never the accept loop.
//! After the handshake the connection's own timeouts apply, the same as over
//! plain TCP.
//!
//! Crypto is rustls with the `ring` provider, chosen explicitly (not the
//! process-wide default) so that another crate enabling a second provider can
//! never make the config builder panic. TLS 1.2 and 1.3, rustls's safe
//! defaults; no client certificates.
//!
//! Thread-safe: the acceptor is an `Arc` around an immutable config.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// Longest a client may take to finish the TLS handshake after connecting;
/// then the connection is closed. Not configurable: a real client needs a few
/// milliseconds on loopback and a few round trips elsewhere.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
