//! The admin JSON API under `/api` (and `/readyz`): topics, partitions,
//! bindings, message peek, consumer and share groups, connections, the
//! overview, and the OpenAPI document that describes them all. The JSON
//! shapes are a contract with the management page (docs/OPERATIONS.md,
//! "Admin HTTP API"): fields may be added, never renamed or removed.
//!
//! Handlers reuse the protocol handlers' paths (topic create and delete,
//! binding changes) and run blocking storage work on blocking threads, as
//! they do. Request bodies and query strings are parsed here rather than by
//! axum's extractors so that every refusal is the JSON error of [`error`].
//!
//! # Layout
//! - `mod.rs`: the route table ([`ROUTES`] is what [`routes`] serves and
//!   what [`routes_served`] lists), body and query parsing.
//! - `error.rs`: [`ApiError`], the JSON error body.
//! - `topics.rs`: topics, partitions, bindings.
//! - `messages.rs`: reading records of one partition.
//! - `groups.rs`: consumer groups and share groups.
//! - `connections.rs`: open native connections.
//! - `overview.rs`: totals, throughput history, and `/readyz`.
//! - `openapi.rs` + `openapi.json`: the OpenAPI 3.0 document.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, any, delete, get, post};
use serde::de::DeserializeOwned;

use crate::http::{HttpRoute, RouteEntry, table_routes};
use crate::state::Shared;

mod connections;
mod error;
mod groups;
mod messages;
mod openapi;
mod overview;
mod topics;

pub use error::{ApiError, ApiResult};

/// Every route [`routes`] serves, with its handler. The OpenAPI document
/// must list exactly these and the other areas' routes
/// ([`crate::http::routes_served`]; a unit test and
/// `broker/tests/http_api.rs` check it).
const ROUTES: &[RouteEntry] = &[
    ("GET", "/readyz", || get(overview::readyz)),
    ("GET", "/api/overview", || get(overview::overview)),
    ("GET", "/api/openapi.json", || get(openapi::document)),
    ("GET", "/api/topics", || get(topics::list)),
    ("POST", "/api/topics", || post(topics::create)),
    ("GET", "/api/topics/{name}", || get(topics::describe)),
    ("DELETE", "/api/topics/{name}", || delete(topics::delete)),
    ("GET", "/api/topics/{name}/partitions", || {
        get(topics::partitions)
    }),
    ("GET", "/api/topics/{name}/bindings", || {
        get(topics::bindings)
    }),
    ("POST", "/api/topics/{name}/bindings", || post(topics::bind)),
    ("DELETE", "/api/topics/{name}/bindings", || {
        delete(topics::unbind)
    }),
    (
        "GET",
        "/api/topics/{name}/partitions/{partition}/messages",
        || get(messages::peek),
    ),
    ("GET", "/api/groups", || get(groups::list)),
    ("GET", "/api/groups/{name}", || get(groups::describe)),
    ("GET", "/api/connections", || get(connections::list)),
];

/// The admin API's routes, for [`crate::http::router`].
pub fn routes() -> Router<Arc<Shared>> {
    // One method router per path, so a method the path lacks gets the JSON
    // 405 (axum allows one fallback per path).
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<Shared>>)> = Vec::new();
    for &(_, path, handler) in ROUTES {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(handler()),
            None => by_path.push((path, handler())),
        }
    }
    let router = by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods.fallback(method_not_allowed))
        });
    // Anything else under /api is a JSON 404, like the other errors.
    router.route("/api/{*rest}", any(not_found))
}

/// The routes [`routes`] serves (the catch-all 404 under `/api` aside), in
/// table order.
pub fn routes_served() -> impl Iterator<Item = HttpRoute> {
    table_routes(ROUTES)
}

async fn method_not_allowed(method: Method, uri: Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} does not answer {method}", uri.path()),
    )
}

async fn not_found(uri: Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no admin API route {}", uri.path()),
    )
}

/// Parses a JSON request body.
///
/// # Errors
/// `INVALID_REQUEST` with serde's message (which names the field and
/// position).
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body: {e}")))
}

/// The query string as `T`, or `INVALID_REQUEST` naming the problem.
fn parse_query<T>(query: Result<axum::extract::Query<T>, QueryRejection>) -> ApiResult<T> {
    query
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn no_route_is_listed_twice() {
        let all: Vec<_> = routes_served().collect();
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
