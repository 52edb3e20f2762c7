//! `GET /api/overview` (the management page's front: counts, disk use,
//! traffic totals and the throughput history of [`crate::throughput`]) and
//! `GET /readyz` (200 while serving, 503 once a shutdown has begun, so a
//! load balancer stops sending new work before the listeners close).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult};
use crate::state::Shared;
use crate::throughput::Sample;

/// The overview.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// Open native-protocol connections.
    pub connections: u64,
    pub topics: u64,
    pub partitions: u64,
    /// Bytes of every partition's segments.
    pub disk_bytes: u64,
    /// Consumer groups plus share groups.
    pub groups: u64,
    pub totals: Totals,
    /// One sample per 5 s, the last 10 minutes, oldest first.
    pub throughput: Vec<Sample>,
}

/// Traffic since the broker started (closed connections included).
#[derive(Debug, Serialize)]
pub struct Totals {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests: u64,
    /// Records appended to any partition.
    pub records_in: u64,
    /// Native connections accepted.
    pub connections: u64,
}

/// `GET /api/overview`.
pub async fn overview(State(shared): State<Arc<Shared>>) -> ApiResult<Json<Overview>> {
    let topics = shared.topics.list();
    let (partitions, disk_bytes) = topics
        .iter()
        .flat_map(|t| &t.partitions)
        .fold((0u64, 0u64), |(n, bytes), p| {
            (n + 1, bytes + p.log.size_bytes())
        });
    // ListGroups scans the committed offsets in the store: a blocking thread.
    let worker = Arc::clone(&shared);
    let consumer_groups = tokio::task::spawn_blocking(move || worker.groups.list(&worker.kv))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .groups
        .len();
    let share_groups: BTreeSet<String> = shared
        .share
        .list()
        .iter()
        .map(|sp| sp.key.group.clone())
        .collect();
    let totals = shared.connections.totals();
    Ok(Json(Overview {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: shared.throughput.uptime().as_secs(),
        connections: shared.connections.len() as u64,
        topics: topics.len() as u64,
        partitions,
        disk_bytes,
        groups: (consumer_groups + share_groups.len()) as u64,
        totals: Totals {
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            requests: totals.requests,
            records_in: shared.throughput.records_in(&shared.topics),
            connections: totals.connections,
        },
        throughput: shared.throughput.samples(),
    }))
}

/// `GET /readyz`: the data dir is open and the listeners are up as soon as
/// this answers, so only a shutdown makes it 503.
pub async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
    if shared.shutdown.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "shutting down" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "ready": true })))
    }
}
