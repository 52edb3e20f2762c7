//! The management web page: three static files (`ui/index.html`, `ui/app.js`,
//! `ui/style.css`) compiled into the binary with `include_str!`, served at
//! `/` and `/ui/*`. The page is plain HTML/CSS/JS with no framework, build step
//! or CDN, because the broker may run on a machine with no internet; all it
//! needs is the admin JSON API on the same port.
//!
//! Every answer carries `Cache-Control: no-cache` (a browser revalidates, so an
//! upgraded broker never runs an old script against a new API), `nosniff`, and
//! a Content-Security-Policy that allows only this origin: the page builds its
//! DOM with `textContent`, and the policy is the second fence should a record
//! value ever reach the page as markup.
//!
//! Stateless, so thread-safe: the handlers only read `'static` strings.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::{RouteEntry, table_router};
use crate::state::Shared;

/// One file of the page.
struct Asset {
    /// Its name under `/ui/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("ui/index.html"),
};

/// Every file of the page, [`INDEX`] first.
const ASSETS: [Asset; 3] = [
    INDEX,
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("ui/style.css"),
    },
];

/// Only this origin may serve scripts, styles, images and API answers; no
/// inline script, no framing by other sites. SVG and `data:` images are for
/// the throughput chart, which is built as DOM nodes.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`, `GET /ui`, `GET /ui/` (the page) and `GET /ui/FILE` (its files).
pub(crate) const ROUTES: &[RouteEntry] = &[
    ("GET", "/", || get(index)),
    ("GET", "/ui", || get(index)),
    ("GET", "/ui/", || get(index)),
    ("GET", "/ui/{*file}", || get(asset)),
];

/// The page's routes ([`ROUTES`]).
pub fn routes() -> Router<Arc<Shared>> {
    table_router(ROUTES)
}

/// The admin API's error shape, for a file the page does not have.
#[derive(serde::Serialize)]
struct NotFound {
    error: &'static str,
    message: String,
}

async fn index() -> Response {
    serve(&INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
            axum::Json(NotFound {
                error: "NOT_FOUND",
                message: format!("the management page has no file {name:?}"),
            }),
        )
            .into_response(),
    }
}

fn serve(asset: &Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        asset.body,
    )
        .into_response()
}
