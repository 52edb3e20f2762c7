//! `GET /api/openapi.json`: the OpenAPI 3.0 document of the admin API,
//! written by hand in `openapi.json` beside this file and compiled in.
//! Every operation carries examples (path and query parameters, request
//! bodies) that make a valid call on a broker holding topic `orders` and
//! group `billing`; `broker/tests/http_api.rs` makes each call and checks
//! the documented status. The document covers the whole listener (probes,
//! metrics, page, token route), not just `/api`: the unit tests below check
//! that it and [`crate::http::routes_served`] list the same routes, and
//! that its security and 401/403 responses follow `http/auth.rs`.

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

    use axum::http::Method;

    use super::*;
    use crate::http::auth::{Requirement, requirement};

    fn doc() -> serde_json::Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    /// `(METHOD, path, operation)` of every operation in the document.
    fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method != "parameters" {
                    all.push((method.to_uppercase(), path.clone(), op.clone()));
                }
            }
        }
        all
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let doc = doc();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..2), Some("3."));
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let served: BTreeSet<(String, String)> = crate::http::routes_served()
            .iter()
            .map(|r| (r.method.to_owned(), r.openapi_path()))
            .collect();
        assert_eq!(documented, served);
    }

    /// The document's security says what the auth layer does: exempt routes
    /// override the global requirement (with none, or Basic for the token
    /// route, which checks it itself); every other route answers 401, and
    /// 403 exactly when it needs a permission (listings are filtered and
    /// aggregates need only a user, so they never answer 403).
    #[test]
    fn security_and_auth_responses_follow_the_auth_layer() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["basicAuth"]["scheme"], "basic");
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        for (method, path, op) in operations(&doc) {
            let concrete = path
                .replace("{name}", "orders")
                .replace("{partition}", "0")
                .replace("{file}", "app.js");
            let needed = requirement(&Method::from_bytes(method.as_bytes()).unwrap(), &concrete);
            let responses = op["responses"].as_object().unwrap();
            let what = format!("{method} {path}: {needed:?}");
            let token_route = path == "/api/auth/token";
            if needed == Requirement::Exempt && !token_route {
                assert_eq!(op["security"], serde_json::json!([]), "{what}");
                assert!(!responses.contains_key("401"), "{what}");
            } else if token_route {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"basicAuth": []}]),
                    "{what}"
                );
                assert!(responses.contains_key("401"), "{what}");
            } else {
                assert!(op.get("security").is_none(), "{what}");
                assert!(responses.contains_key("401"), "{what}");
                let may_forbid = !matches!(
                    needed,
                    Requirement::Authenticated | Requirement::FilteredListing(_)
                );
                assert_eq!(responses.contains_key("403"), may_forbid, "{what}");
            }
        }
    }
}
