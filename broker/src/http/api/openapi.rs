//! `GET /api/openapi.json`: the OpenAPI 3.0 document of the admin API,
//! written by hand in `openapi.json` beside this file and compiled in.
//! Every operation carries examples (path and query parameters, request
//! bodies) that make a valid call on a broker holding topic `orders` and
//! group `billing`; `broker/tests/http_api.rs` makes each call and checks
//! the documented status, and the unit test below checks that the document
//! and [`super::routes_served`] list the same routes.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The handler.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..2), Some("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method != "parameters" {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut served: BTreeSet<(String, String)> = super::super::routes_served()
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        // Served by `http::router` itself, not the API table.
        served.insert(("GET".into(), "/healthz".into()));
        assert_eq!(documented, served);
    }
}
