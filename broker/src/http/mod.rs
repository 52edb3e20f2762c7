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
//! - `guard.rs`: `Host`, `Origin` and `Content-Type` checks against
//!   cross-site requests and DNS rebinding, and the per-request timeout (a
//!   layer over the auth layer).
//!
//! Limits: `http_max_connections` connections at once (beyond it `503` and
//! close), `http_header_timeout_ms` to send a request's headers (also the
//! keep-alive idle timeout), `http_request_timeout_ms` per request.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, get};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod guard;
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
/// The auth layer goes over the whole router (fallback included), so every
/// route merged above it is checked (see `auth.rs`); the guard goes over
/// that, so a cross-site or misdirected request is refused before anything
/// else runs (see `guard.rs`).
pub fn router(shared: Arc<Shared>, guard: Arc<guard::Guard>) -> Router {
    table_router(PROBES)
        .merge(api::routes())
        .merge(ui::routes())
        .merge(metrics::routes())
        .merge(auth::routes())
        .with_state(Arc::clone(&shared))
        .layer(from_fn_with_state(shared, auth::layer))
        .layer(from_fn_with_state(guard, guard::layer))
}

/// Longest [`serve`] waits, once stopped, for open HTTP connections to
/// finish their requests. Not configurable: requests are short, and the
/// native connections have already drained by then.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What an HTTP connection over `http_max_connections` gets before it is
/// closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 87\r\n\r\n\
{\"error\":\"TOO_MANY_CONNECTIONS\",\"message\":\"too many HTTP connections; try again later\"}";

/// Over-cap connections answered at once; more are closed silently.
const MAX_REFUSALS: usize = 64;
/// Longest an over-cap connection is kept to be answered.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Answers an over-cap connection with [`BUSY_RESPONSE`], then reads what
/// the client sent until it closes (at most [`REFUSAL_LINGER`]): closing
/// with its request unread would reset the connection, and the reset can
/// overtake the answer.
async fn refuse_busy(mut socket: tokio::net::TcpStream, _slot: tokio::sync::OwnedSemaphorePermit) {
    let answer = async {
        socket.write_all(BUSY_RESPONSE).await?;
        socket.shutdown().await?;
        let mut sink = [0u8; 1024];
        while socket.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
}

/// Serves [`router`] on `listener` until `stop` is cancelled (after the
/// broker's shutdown token, so `/readyz` can say the broker is stopping);
/// over TLS when the broker has a certificate.
///
/// Its own accept loop rather than `axum::serve`, for two limits that one
/// lacks: at most `http_max_connections` connections at once (one more gets
/// [`BUSY_RESPONSE`] at once and is closed, rather than waiting unseen in
/// the backlog; see [`refuse_busy`]), and hyper's header read timeout
/// (`http_header_timeout_ms`), which also closes idle keep-alive
/// connections. Each connection (its TLS handshake included, bounded by
/// [`crate::tls::HANDSHAKE_TIMEOUT`]) runs in its own task holding one
/// permit of the cap.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let bound = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "HTTP listener failed: no local address");
            return;
        }
    };
    let guard = Arc::new(guard::Guard::new(
        &shared.config,
        bound,
        shared.tls.is_some(),
    ));
    let app = router(Arc::clone(&shared), guard);
    let max = shared.config.http_max_connections;
    let limit = Arc::new(Semaphore::new(max));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let header_timeout = Duration::from_millis(shared.config.http_header_timeout_ms);
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
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
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            tracing::debug!(%peer, max, "HTTP connection refused: http_max_connections reached");
            // Answered by a task of its own, a bounded number at once; past
            // that, closed without a word.
            if let Ok(refusing) = Arc::clone(&refusals).try_acquire_owned() {
                tokio::spawn(refuse_busy(socket, refusing));
            }
            continue;
        };
        let app = app.clone();
        let tls = shared.tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(socket, app, header_timeout, stop).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        crate::tls::HANDSHAKE_TIMEOUT,
                        acceptor.accept(socket),
                    );
                    let stream = tokio::select! {
                        r = handshake => r,
                        () = stop.cancelled() => return,
                    };
                    match stream {
                        Ok(Ok(stream)) => serve_connection(stream, app, header_timeout, stop).await,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "HTTP TLS handshake failed; connection closed");
                        }
                        Err(_) => {
                            tracing::info!(%peer, timeout = ?crate::tls::HANDSHAKE_TIMEOUT, "HTTP TLS handshake timed out; connection closed");
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    // Every connection task holds a permit: all of them back means all done.
    let drained = tokio::time::timeout(
        HTTP_DRAIN_TIMEOUT,
        limit.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)),
    )
    .await;
    if drained.is_err() {
        tracing::warn!("HTTP connections still open after {HTTP_DRAIN_TIMEOUT:?}; closing anyway");
    }
}

/// One HTTP/1.1 connection: hyper with a header read timeout, shut down
/// gracefully (the request in progress finishes) when `stop` is cancelled.
async fn serve_connection<I>(io: I, app: Router, header_timeout: Duration, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
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
