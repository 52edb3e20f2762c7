//! TLS for the client's connections: the rustls client config built from
//! [`TlsConfig`](crate::TlsConfig) (the CA certificates to trust) and the
//! name the broker's certificate must carry.
//!
//! The config is rebuilt at each connect (reading a small PEM file): connects
//! are rare, and a CA file replaced on disk is picked up by the next
//! reconnect. Crypto is rustls with the `ring` provider, named explicitly so
//! a second provider elsewhere in the program cannot make the builder panic.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::config::TlsConfig;
use crate::error::{Error, Result};

/// The connector and the server name to verify for `bootstrap`.
///
/// # Errors
/// [`Error::Tls`] if the CA file cannot be read or holds no certificate, or
/// the server name is not a valid DNS name or IP address.
pub(crate) fn connector(
    tls: &TlsConfig,
    bootstrap: &str,
) -> Result<(TlsConnector, ServerName<'static>)> {
    let tls_error = |reason: String| Error::Tls {
        addr: bootstrap.to_owned(),
        reason,
    };
    let ca_file = tls.ca_file.display();
    let pem = std::fs::read(&tls.ca_file)
        .map_err(|e| tls_error(format!("cannot read the CA file {ca_file}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| tls_error(format!("CA file {ca_file}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| tls_error(format!("CA file {ca_file}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(tls_error(format!(
            "no certificate in the CA file {ca_file} (expected a PEM \"BEGIN CERTIFICATE\" block)"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("TLS protocol versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = match &tls.server_name {
        Some(name) => name.clone(),
        None => host_of(bootstrap).to_owned(),
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| tls_error(format!("server name {name:?}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(bootstrap: &str) -> &str {
    let host = match bootstrap.rsplit_once(':') {
        // A bare IPv6 address has more than one colon and no brackets.
        Some((host, _port)) if !host.contains(':') || host.starts_with('[') => host,
        _ => bootstrap,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A failed handshake as an error: a certificate or protocol problem is
/// [`Error::Tls`] (not retriable: trying again will not fix it); an I/O
/// failure during the handshake is [`Error::Connect`] (the broker may have
/// gone away).
pub(crate) fn handshake_error(bootstrap: &str, tls: &TlsConfig, e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(cert)) => Error::Tls {
            addr: bootstrap.to_owned(),
            reason: format!(
                "the broker's certificate was refused ({cert}); trusted CA file: {}",
                tls.ca_file.display()
            ),
        },
        Some(other) => Error::Tls {
            addr: bootstrap.to_owned(),
            reason: format!("handshake failed: {other}"),
        },
        None => Error::Connect {
            addr: bootstrap.to_owned(),
            source: Arc::new(std::io::Error::new(
                e.kind(),
                format!("TLS handshake: {e} (is the broker's listener TLS?)"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_strips_the_port_and_brackets() {
        assert_eq!(host_of("127.0.0.1:7171"), "127.0.0.1");
        assert_eq!(host_of("broker.example:7171"), "broker.example");
        assert_eq!(host_of("[::1]:7171"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
