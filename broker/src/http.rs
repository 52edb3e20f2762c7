//! The HTTP listener: `GET /healthz` for now (metrics and the admin API come
//! with the operations issue). Stops with the broker's shutdown token.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::server::Shared;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let token = shared.shutdown.clone();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}
