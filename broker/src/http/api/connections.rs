//! `GET /api/connections`: the open native-protocol connections, in accept
//! order, from the broker's connection registry.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::state::Shared;

/// One open connection.
#[derive(Debug, Serialize)]
pub struct Connection {
    pub id: u64,
    pub peer: String,
    /// When it was accepted, ms since the Unix epoch.
    pub connected_at_ms: u64,
    /// The authenticated user, null while anonymous.
    pub user: Option<String>,
    pub tls: bool,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The handler.
pub async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<Connection>> {
    Json(
        shared
            .connections
            .list()
            .iter()
            .map(|c| Connection {
                id: c.id,
                peer: c.peer.to_string(),
                connected_at_ms: c
                    .connected_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                user: c.user(),
                tls: c.tls,
                requests: c.requests.load(Ordering::Relaxed),
                bytes_in: c.bytes_in.load(Ordering::Relaxed),
                bytes_out: c.bytes_out.load(Ordering::Relaxed),
            })
            .collect(),
    )
}
