//! `GET /metrics`: the broker's metrics in the Prometheus text format
//! (version 0.0.4), rendered by [`Metrics::render`](crate::metrics::Metrics::render).
//! With metrics off (`metrics = false`) the route answers 404 with the admin
//! API's JSON error body, so a scraper sees a clear reason.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::http::{RouteEntry, table_router};
use crate::metrics::StateSources;
use crate::state::Shared;

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(crate) const ROUTES: &[RouteEntry] = &[("GET", "/metrics", || get(metrics))];

/// The `/metrics` route ([`ROUTES`]).
pub fn routes() -> Router<Arc<Shared>> {
    table_router(ROUTES)
}

/// The admin API's error body: `{"error": CODE, "message": ...}`.
#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: &'static str,
}

async fn metrics(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> Response {
    let state = StateSources {
        topics: &shared.topics,
        connections: &shared.connections,
        kv: &shared.kv,
        share: &shared.share,
        max_group_series: shared.config.metrics_max_group_series,
    };
    match shared.metrics.render(&state) {
        Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(ErrorBody {
                error: "NOT_FOUND",
                message: "metrics are off on this broker (metrics = false / --no-metrics)",
            }),
        )
            .into_response(),
    }
}
