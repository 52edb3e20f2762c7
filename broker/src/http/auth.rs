//! HTTP authentication and authorization: a layer over every route, and
//! `POST /api/auth/token`.
//!
//! With no user defined every request passes (anonymous, as on the native
//! protocol). Once users exist, every route but the exempt ones needs
//! `Authorization: Basic base64(user:password)` or `Authorization: Bearer
//! TOKEN`; then [`requirement`] says what the route needs:
//!
//! | route | needs |
//! |---|---|
//! | `/healthz`, `/readyz`, `/`, `/ui`, `/ui/*`, `POST /api/auth/token` | nothing (the token route checks Basic itself) |
//! | `GET /api/topics`, `GET /api/groups` | any user; the JSON array is filtered to the entries whose `name` the user may read (describe, for topics); a group's lag sums only the topics the user may read |
//! | `POST /api/topics` | `admin` on the topic named in the body (and, checked by the route, `write` on its alternate and dead-letter topics) |
//! | `GET /api/topics/NAME[/...]` | `read` or `write` on NAME for the topic itself and its partitions and bindings; `read` for `.../messages` |
//! | `POST`/`DELETE /api/topics/NAME[/...]` | `admin` on NAME |
//! | `GET /api/groups/NAME` | `read` on the group NAME; offsets and lag are shown only for topics the user may read |
//! | `GET /api/overview`, `GET /api/openapi.json` | any user (aggregates only) |
//! | `GET /metrics` | `read` on `cluster` |
//! | `GET /api/connections` | `admin` on `cluster` (it shows every peer and user) |
//! | anything else | `admin` on `cluster` (a route this table does not know is for superusers until it is added here) |
//!
//! Unauthenticated: 401 `{"error":"UNAUTHORIZED"}` with `WWW-Authenticate:
//! Bearer realm="warren"` (not `Basic`: a browser would pop up its own login
//! dialog over the page's). Missing permission: 403 `FORBIDDEN`.
//!
//! Basic costs a PBKDF2 per check (milliseconds), run on a blocking thread;
//! successes are cached for a minute by
//! [`Auth::verify_password_cached`](crate::auth::Auth::verify_password_cached)
//! (cleared on every user or ACL change). Tokens are 256 random bits,
//! base64url, kept in memory for [`TOKEN_TTL`](crate::auth::TOKEN_TTL) (1 h) and lost on restart; a token
//! of a deleted user stops working at once. A user holds at most
//! `http_max_tokens_per_user` live tokens (default 64) and the broker at most
//! [`MAX_TOKENS`](crate::auth::MAX_TOKENS): beyond, `POST /api/auth/token`
//! answers 429 `TOO_MANY_TOKENS`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warren_protocol::api::auth::{Permission, ResourceType};

use crate::auth::{Grants, TokenError};
use crate::http::{RouteEntry, table_router};
use crate::state::Shared;

/// Largest `POST /api/topics` body read to find the topic name.
const MAX_CREATE_BODY_BYTES: usize = 64 * 1024;
/// Largest listing response the layer filters (`GET /api/topics`, `/api/groups`).
const MAX_LISTING_BYTES: usize = 64 << 20;

/// The grants of the user a request authenticated as, put in the request's
/// extensions by [`layer`] for handlers that filter their answer (absent
/// when the broker has no users: everything is allowed, [`Grants::Open`]).
#[derive(Debug, Clone)]
pub struct RequestGrants(pub Arc<Grants>);

impl RequestGrants {
    /// The grants of an extension that may be absent.
    pub fn or_open(found: Option<axum::Extension<RequestGrants>>) -> Arc<Grants> {
        found.map_or_else(|| Arc::new(Grants::Open), |axum::Extension(g)| g.0)
    }
}

/// What a request needs, from its method and path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No authentication.
    Exempt,
    /// Any authenticated user.
    Authenticated,
    /// A permission on one resource.
    Permission(ResourceType, String, Permission),
    /// `read` or `write` on a topic.
    DescribeTopic(String),
    /// `admin` on the topic named by the JSON body's `name`.
    CreateTopic,
    /// Any user; the JSON array answered is filtered by each entry's `name`.
    FilteredListing(ResourceType),
}

/// What `method path` needs; see the table in the module docs.
pub fn requirement(method: &Method, path: &str) -> Requirement {
    use Requirement as R;
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let cluster = |p| R::Permission(ResourceType::Cluster, String::new(), p);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    match segments.as_slice() {
        ["healthz"] | ["readyz"] | [""] | ["ui", ..] => R::Exempt,
        ["api", "auth", "token"] if method == Method::POST => R::Exempt,
        ["metrics"] if get => cluster(Permission::Read),
        ["api", "overview"] | ["api", "openapi.json"] if get => R::Authenticated,
        ["api", "connections"] if get => cluster(Permission::Admin),
        ["api", "topics"] if get => R::FilteredListing(ResourceType::Topic),
        ["api", "topics"] if method == Method::POST => R::CreateTopic,
        ["api", "topics", name, rest @ ..] => {
            let name = percent_decode(name);
            if get {
                match rest {
                    [.., "messages"] => R::Permission(ResourceType::Topic, name, Permission::Read),
                    _ => R::DescribeTopic(name),
                }
            } else {
                R::Permission(ResourceType::Topic, name, Permission::Admin)
            }
        }
        ["api", "groups"] if get => R::FilteredListing(ResourceType::Group),
        ["api", "groups", name, ..] if get => {
            R::Permission(ResourceType::Group, percent_decode(name), Permission::Read)
        }
        _ => cluster(Permission::Admin),
    }
}

/// Decodes `%XX` escapes of a path segment (names are ASCII; anything that
/// does not decode stays as is and simply matches no pattern).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// `POST /api/auth/token`.
pub(crate) const ROUTES: &[RouteEntry] = &[("POST", "/api/auth/token", || post(issue_token))];

/// The token route ([`ROUTES`]).
pub fn routes() -> Router<Arc<Shared>> {
    table_router(ROUTES)
}

/// The JSON error shape of the admin API.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = format!(
        "{{\"error\":{},\"message\":{}}}",
        json_string(code),
        json_string(&message.into())
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"warren\""),
        );
    }
    response
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn unauthorized(message: &str) -> Response {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

/// The user a request authenticates as, or the 401 to send.
async fn authenticate(shared: &Arc<Shared>, headers: &HeaderMap) -> Result<String, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "authentication required: send Basic credentials or a Bearer token from POST /api/auth/token",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return shared
            .auth
            .token_user(token.trim())
            .ok_or_else(|| unauthorized("invalid or expired token"));
    }
    let (user, password) = basic_credentials(value)
        .ok_or_else(|| unauthorized("malformed Authorization header (Basic or Bearer)"))?;
    let check = {
        let shared = Arc::clone(shared);
        let user = user.clone();
        // PBKDF2 takes milliseconds: off the runtime's worker threads.
        tokio::task::spawn_blocking(move || shared.auth.verify_password_cached(&user, &password))
    };
    match check.await {
        Ok(true) => Ok(user),
        Ok(false) => {
            tracing::info!(user = %user, "HTTP Basic authentication failed");
            Err(unauthorized("wrong user name or password"))
        }
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            e.to_string(),
        )),
    }
}

/// `Basic base64(user:password)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The layer: checks every request against [`requirement`] before the route
/// runs. Installed over the whole router (fallback included) in
/// [`super::router`].
pub async fn layer(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let needed = requirement(request.method(), request.uri().path());
    if needed == Requirement::Exempt || !shared.auth.has_users() {
        return next.run(request).await;
    }
    let user = match authenticate(&shared, request.headers()).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let grants = shared.auth.grants_for(Some(&user));
    if !grants.is_authenticated() {
        return unauthorized("the user no longer exists");
    }
    // Routes that filter what they answer by the user's permissions read them.
    request
        .extensions_mut()
        .insert(RequestGrants(Arc::new(grants.clone())));
    let forbidden = |what: String| {
        error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("user {user} is not authorized: {what}"),
        )
    };
    match needed {
        Requirement::Exempt | Requirement::Authenticated => next.run(request).await,
        Requirement::Permission(resource_type, name, permission) => {
            if grants.allows(resource_type, &name, permission) {
                next.run(request).await
            } else {
                forbidden(describe(resource_type, &name, permission.name()))
            }
        }
        Requirement::DescribeTopic(name) => {
            if grants.allows_describe(ResourceType::Topic, &name) {
                next.run(request).await
            } else {
                forbidden(describe(ResourceType::Topic, &name, "read or write"))
            }
        }
        Requirement::CreateTopic => {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_CREATE_BODY_BYTES).await else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "request body too large or unreadable",
                );
            };
            let name = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("name")?.as_str().map(str::to_owned));
            let Some(name) = name else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "the body must be JSON with a \"name\"",
                );
            };
            if !grants.allows(ResourceType::Topic, &name, Permission::Admin) {
                return forbidden(describe(ResourceType::Topic, &name, "admin"));
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Requirement::FilteredListing(resource_type) => {
            let response = next.run(request).await;
            filter_listing(response, &grants, resource_type).await
        }
    }
}

fn describe(resource_type: ResourceType, name: &str, permission: &str) -> String {
    match resource_type {
        ResourceType::Cluster => format!("{permission} on the cluster is needed"),
        t => format!("{permission} on {} {name:?} is needed", t.name()),
    }
}

/// Leaves out of a successful JSON array the entries whose `name` the user
/// may not see; anything else passes unchanged.
async fn filter_listing(
    response: Response,
    grants: &Grants,
    resource_type: ResourceType,
) -> Response {
    if !response.status().is_success()
        || matches!(
            grants,
            Grants::User {
                superuser: true,
                ..
            }
        )
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LISTING_BYTES).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "listing too large to filter",
        );
    };
    let visible = |name: &str| match resource_type {
        ResourceType::Topic => grants.allows_describe(resource_type, name),
        _ => grants.allows(resource_type, name, Permission::Read),
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(items)) => {
            let kept: Vec<serde_json::Value> = items
                .into_iter()
                .filter(|item| {
                    item.get("name")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(visible)
                })
                .collect();
            Body::from(serde_json::Value::Array(kept).to_string())
        }
        _ => Body::from(bytes),
    };
    let mut response = Response::from_parts(parts, body);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// `POST /api/auth/token` with Basic credentials: a bearer token for an hour.
async fn issue_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.auth.has_users() {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "no users are defined: the API is open and needs no token",
        );
    }
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        return unauthorized("a token is issued for Basic credentials only");
    }
    let user = match authenticate(&shared, &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let max_per_user =
        usize::try_from(shared.config.http_max_tokens_per_user).unwrap_or(usize::MAX);
    match shared.auth.issue_token(&user, max_per_user) {
        Ok((token, expires_at_ms)) => {
            let body = format!(
                "{{\"token\":{},\"expires_at_ms\":{expires_at_ms}}}",
                json_string(&token)
            );
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(TokenError::TooMany(message)) => {
            error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_TOKENS", message)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    fn req(method: Method, path: &str) -> Requirement {
        requirement(&method, path)
    }

    #[test]
    fn every_contract_route_has_its_requirement() {
        use Requirement as R;
        let topic = |n: &str, p| R::Permission(ResourceType::Topic, n.into(), p);
        let group = |n: &str, p| R::Permission(ResourceType::Group, n.into(), p);
        let cluster = |p| R::Permission(ResourceType::Cluster, String::new(), p);
        for (method, path, expected) in [
            (Method::GET, "/healthz", R::Exempt),
            (Method::GET, "/readyz", R::Exempt),
            (Method::GET, "/", R::Exempt),
            (Method::GET, "/ui/app.js", R::Exempt),
            (Method::POST, "/api/auth/token", R::Exempt),
            (Method::GET, "/api/auth/token", cluster(Permission::Admin)),
            (Method::GET, "/metrics", cluster(Permission::Read)),
            (Method::GET, "/api/overview", R::Authenticated),
            (Method::GET, "/api/openapi.json", R::Authenticated),
            (Method::GET, "/api/connections", cluster(Permission::Admin)),
            (
                Method::GET,
                "/api/topics",
                R::FilteredListing(ResourceType::Topic),
            ),
            (
                Method::GET,
                "/api/topics/",
                R::FilteredListing(ResourceType::Topic),
            ),
            (Method::POST, "/api/topics", R::CreateTopic),
            (
                Method::GET,
                "/api/topics/orders",
                R::DescribeTopic("orders".into()),
            ),
            (
                Method::DELETE,
                "/api/topics/orders",
                topic("orders", Permission::Admin),
            ),
            (
                Method::GET,
                "/api/topics/orders/partitions",
                R::DescribeTopic("orders".into()),
            ),
            (
                Method::GET,
                "/api/topics/orders/bindings",
                R::DescribeTopic("orders".into()),
            ),
            (
                Method::POST,
                "/api/topics/orders/bindings",
                topic("orders", Permission::Admin),
            ),
            (
                Method::DELETE,
                "/api/topics/orders/bindings",
                topic("orders", Permission::Admin),
            ),
            (
                Method::GET,
                "/api/topics/orders/partitions/0/messages",
                topic("orders", Permission::Read),
            ),
            (
                Method::GET,
                "/api/topics/a%2Eb",
                R::DescribeTopic("a.b".into()),
            ),
            (
                Method::GET,
                "/api/groups",
                R::FilteredListing(ResourceType::Group),
            ),
            (
                Method::GET,
                "/api/groups/billing",
                group("billing", Permission::Read),
            ),
            (
                Method::DELETE,
                "/api/groups/billing",
                cluster(Permission::Admin),
            ),
            (
                Method::GET,
                "/api/something-new",
                cluster(Permission::Admin),
            ),
            (Method::POST, "/metrics", cluster(Permission::Admin)),
        ] {
            assert_eq!(req(method.clone(), path), expected, "{method} {path}");
        }
    }

    /// Every route the router serves, all areas, has the rule this table
    /// gives it: a route added anywhere fails here until it is given one
    /// (and the unknown-route default, cluster admin, is chosen on purpose).
    #[test]
    fn every_served_route_has_a_deliberate_rule() {
        use Requirement as R;
        let topic = |p| R::Permission(ResourceType::Topic, "orders".into(), p);
        let cluster = |p| R::Permission(ResourceType::Cluster, String::new(), p);
        let expected = [
            ("GET", "/healthz", R::Exempt),
            ("GET", "/readyz", R::Exempt),
            ("GET", "/", R::Exempt),
            ("GET", "/ui", R::Exempt),
            ("GET", "/ui/", R::Exempt),
            ("GET", "/ui/{*file}", R::Exempt),
            ("POST", "/api/auth/token", R::Exempt),
            ("GET", "/metrics", cluster(Permission::Read)),
            ("GET", "/api/overview", R::Authenticated),
            ("GET", "/api/openapi.json", R::Authenticated),
            ("GET", "/api/connections", cluster(Permission::Admin)),
            (
                "GET",
                "/api/topics",
                R::FilteredListing(ResourceType::Topic),
            ),
            ("POST", "/api/topics", R::CreateTopic),
            (
                "GET",
                "/api/topics/{name}",
                R::DescribeTopic("orders".into()),
            ),
            ("DELETE", "/api/topics/{name}", topic(Permission::Admin)),
            (
                "GET",
                "/api/topics/{name}/partitions",
                R::DescribeTopic("orders".into()),
            ),
            (
                "GET",
                "/api/topics/{name}/bindings",
                R::DescribeTopic("orders".into()),
            ),
            (
                "POST",
                "/api/topics/{name}/bindings",
                topic(Permission::Admin),
            ),
            (
                "DELETE",
                "/api/topics/{name}/bindings",
                topic(Permission::Admin),
            ),
            (
                "GET",
                "/api/topics/{name}/partitions/{partition}/messages",
                topic(Permission::Read),
            ),
            (
                "GET",
                "/api/groups",
                R::FilteredListing(ResourceType::Group),
            ),
            (
                "GET",
                "/api/groups/{name}",
                R::Permission(ResourceType::Group, "orders".into(), Permission::Read),
            ),
        ];
        let served = crate::http::routes_served();
        for route in &served {
            let (_, _, rule) = expected
                .iter()
                .find(|(m, p, _)| *m == route.method && *p == route.path)
                .unwrap_or_else(|| panic!("{} {} has no rule here", route.method, route.path));
            let path = route
                .path
                .replace("{name}", "orders")
                .replace("{partition}", "0")
                .replace("{*file}", "app.js");
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            assert_eq!(
                &requirement(&method, &path),
                rule,
                "{} {}",
                route.method,
                route.path
            );
        }
        assert_eq!(
            served.len(),
            expected.len(),
            "a rule here for a route not served"
        );
    }

    #[tokio::test]
    async fn listings_keep_only_what_the_user_may_see() {
        let grants = Grants::User {
            name: "bob".into(),
            superuser: false,
            acls: vec![
                ("topic:orders*".parse().unwrap(), Permission::Write),
                ("group:billing".parse().unwrap(), Permission::Read),
            ],
        };
        let listing = || {
            Response::new(Body::from(
                r#"[{"name":"orders","partitions":1},{"name":"secret"},{"name":"billing"}]"#,
            ))
        };
        let body = |r: Response| async {
            String::from_utf8(
                axum::body::to_bytes(r.into_body(), 1 << 20)
                    .await
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        };
        let topics = filter_listing(listing(), &grants, ResourceType::Topic).await;
        assert_eq!(body(topics).await, r#"[{"name":"orders","partitions":1}]"#);
        let groups = filter_listing(listing(), &grants, ResourceType::Group).await;
        assert_eq!(body(groups).await, r#"[{"name":"billing"}]"#);
        let mut failed = listing();
        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        let failed = filter_listing(failed, &grants, ResourceType::Topic).await;
        assert_eq!(body(failed).await.matches("name").count(), 3);
    }

    #[test]
    fn basic_credentials_parse() {
        let value = format!("Basic {}", STANDARD.encode("bob:pa:ss"));
        assert_eq!(
            basic_credentials(&value),
            Some(("bob".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
        assert_eq!(basic_credentials("Digest x"), None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }
}
