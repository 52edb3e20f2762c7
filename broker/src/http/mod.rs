//! The HTTP listener: health and readiness probes, Prometheus metrics, the
//! admin JSON API and the management web page, all on one port
//! (`http`, default 127.0.0.1:7180), over TLS when `tls_cert`/`tls_key` are set.
//! Stops once a shutdown has drained the native connections (until then
//! `/readyz` answers 503).
//!
//! # Layout
//! - `mod.rs`: [`router`] assembles the routes of every area; [`serve`] runs them;
//!   [`routes_served`] lists every route (the OpenAPI document must list the same).
//! - one file per area, each exporting `fn routes() -> Router<Arc<Shared>>` built
//!   from its own table of [`RouteEntry`], so what an area lists is what it serves.
//! - `auth.rs`: Basic/Bearer authentication and per-route authorization (a
//!   layer over everything), and `POST /api/auth/token`.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

pub(crate) mod api;
pub(crate) mod auth;
mod metrics;
mod ui;

/// One route the HTTP listener serves: its method and its path as axum
/// spells it (`{name}` one segment, `{*name}` the rest of the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpRoute {
    pub method: &'static str,
    pub path: &'static str,
}

impl HttpRoute {
    /// The path as OpenAPI spells it: a rest-of-path `{*name}` is `{name}`
    /// (OpenAPI has no wildcard; the parameter's schema says what it takes).
    pub fn openapi_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

/// Builds the handler of one route.
pub(crate) type Handler = fn() -> MethodRouter<Arc<Shared>>;

/// One row of an area's route table: method, path, handler.
pub(crate) type RouteEntry = (&'static str, &'static str, Handler);

/// The routes of `table`, one method router per path.
pub(crate) fn table_router(table: &[RouteEntry]) -> Router<Arc<Shared>> {
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<Shared>>)> = Vec::new();
    for &(_, path, handler) in table {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(handler()),
            None => by_path.push((path, handler())),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
}

/// The routes of `table`, without their handlers.
pub(crate) fn table_routes(table: &[RouteEntry]) -> impl Iterator<Item = HttpRoute> + '_ {
    table
        .iter()
        .map(|&(method, path, _)| HttpRoute { method, path })
}

/// The liveness probe: answers as long as the process runs.
const PROBES: &[RouteEntry] = &[("GET", "/healthz", || get(|| async { "ok\n" }))];

/// Every route [`router`] serves, all areas, in merge order. Left out: the
/// JSON 404 catch-all under `/api` and the 405s of a known path's other
/// methods, which answer errors only.
pub fn routes_served() -> Vec<HttpRoute> {
    table_routes(PROBES)
        .chain(api::routes_served())
        .chain(table_routes(ui::ROUTES))
        .chain(table_routes(metrics::ROUTES))
        .chain(table_routes(auth::ROUTES))
        .collect()
}

/// Every route the HTTP listener serves, with the broker's shared state.
/// The auth layer goes on last, over the whole router (fallback included),
/// so every route merged above it is checked (see `auth.rs`).
pub fn router(shared: Arc<Shared>) -> Router {
    table_router(PROBES)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn no_route_is_listed_twice_across_areas() {
        let all = routes_served();
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn openapi_paths_drop_the_wildcard_star() {
        let route = HttpRoute {
            method: "GET",
            path: "/ui/{*file}",
        };
        assert_eq!(route.openapi_path(), "/ui/{file}");
    }
}
