//! The HTTP listener: health and readiness probes, Prometheus metrics, the
//! admin JSON API and the management web page, all on one port
//! (`http`, default 127.0.0.1:7180), over TLS when `tls_cert`/`tls_key` are set.
//! Stops once a shutdown has drained the native connections (until then
//! `/readyz` answers 503).
//!
//! # Layout
//! - `mod.rs`: [`router`] assembles the routes of every area; [`serve`] runs them.
//! - one file per area, each exporting `fn routes() -> Router<Arc<Shared>>`.
//! - `auth.rs`: Basic/Bearer authentication and per-route authorization (a
//!   layer over everything), and `POST /api/auth/token`.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

pub(crate) mod api;
mod auth;
mod metrics;
mod ui;

/// Every route the HTTP listener serves, with the broker's shared state.
/// The auth layer goes on last, over the whole router (fallback included),
/// so every route merged above it is checked (see `auth.rs`).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(api::routes())
        .merge(ui::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .with_state(Arc::clone(&shared))
        .layer(from_fn_with_state(shared, auth::layer))
}

/// Serves [`router`] on `listener` until `stop` is cancelled (after the
/// broker's shutdown token, so `/readyz` can say the broker is stopping);
/// over TLS when the broker has a certificate (see [`crate::tls::TlsListener`]).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let shutdown = {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let served = match shared.tls.clone() {
        None => {
            axum::serve(listener, router(shared))
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => match crate::tls::TlsListener::new(listener, acceptor, stop) {
            Ok(listener) => {
                axum::serve(listener, router(shared))
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}
