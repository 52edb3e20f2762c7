//! Cross-site and DNS-rebinding protection for the HTTP listener: a layer
//! over every route, before authentication, and the per-request timeout.
//!
//! Without it any web page a developer visits could change a local broker:
//! a page may POST to `http://127.0.0.1:7180/api/topics` with a `text/plain`
//! body (a "simple" request the browser sends without asking), or rebind its
//! own DNS name to 127.0.0.1 and read the answers. Each request must pass,
//! in this order:
//!
//! | check | refused with |
//! |---|---|
//! | `Host` names this listener: its own IP (any IP when bound to every interface, any loopback IP when bound to loopback), `localhost` when bound to loopback or every interface, or an entry of `http_allowed_hosts`; the port, when given, is the listener's (entries may name their own) | `421 MISDIRECTED_REQUEST` |
//! | `Origin`, when sent, is this listener's own (`scheme://` + the request's `Host`) or an entry of `http_allowed_origins` | `403 FORBIDDEN_ORIGIN` |
//! | a `POST`/`PUT`/`PATCH`/`DELETE` that carries a body says `Content-Type: application/json` | `415 UNSUPPORTED_MEDIA_TYPE` |
//!
//! `/healthz` and `/readyz` skip the checks: they reveal nothing, and probes
//! address the broker by whatever name their platform uses. A request with
//! no `Host` at all (HTTP/1.0) passes the Host check: browsers always send
//! one. Only names are checked for rebinding: an attacker controls the name
//! a browser puts in `Host`, never an IP literal of this machine, which is
//! why any of the listener's IPs is accepted.
//!
//! `http_allowed_hosts = ["*"]` turns the Host check off on purpose (behind a
//! proxy that rewrites `Host`, for instance); the Origin check still compares
//! `Origin` with the `Host` sent, which is what stops cross-site requests.
//!
//! Thread-safe: [`Guard`] is immutable after [`Guard::new`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{ANY_HOST, BrokerConfig};
use crate::http::api::ApiError;

/// What the HTTP listener accepts as `Host` and `Origin`; see the module docs.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The listener's bound address (its real port, also with port 0).
    bound: SocketAddr,
    /// `https` with TLS, else `http`: the scheme of the listener's own origin.
    scheme: &'static str,
    /// `http_allowed_hosts` lower-cased, without `*`.
    allowed_hosts: Vec<String>,
    /// `http_allowed_hosts` held `*`.
    any_host: bool,
    /// `http_allowed_origins` lower-cased, without a trailing `/`.
    allowed_origins: Vec<String>,
    /// `http_request_timeout_ms`.
    request_timeout: Duration,
}

impl Guard {
    /// The guard of a listener bound to `bound`.
    pub fn new(config: &BrokerConfig, bound: SocketAddr, tls: bool) -> Guard {
        let hosts: Vec<String> = config
            .http_allowed_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Guard {
            bound,
            scheme: if tls { "https" } else { "http" },
            any_host: hosts.iter().any(|h| h == ANY_HOST),
            allowed_hosts: hosts.into_iter().filter(|h| h != ANY_HOST).collect(),
            allowed_origins: config
                .http_allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            request_timeout: Duration::from_millis(config.http_request_timeout_ms),
        }
    }

    /// Whether a `Host` header value names this listener.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let own_port = port.is_none_or(|p| p == self.bound.port());
        let bound_ip = self.bound.ip().to_canonical();
        let own_name = match name.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                bound_ip.is_unspecified()
                    || ip == bound_ip
                    || (bound_ip.is_loopback() && ip.is_loopback())
            }
            Err(_) => name == "localhost" && (bound_ip.is_loopback() || bound_ip.is_unspecified()),
        };
        if own_name && own_port {
            return true;
        }
        self.allowed_hosts
            .iter()
            .any(|entry| match split_host(entry) {
                Some((entry_name, None)) => entry_name == name,
                Some((entry_name, Some(entry_port))) => {
                    entry_name == name && port == Some(entry_port)
                }
                None => false,
            })
    }

    /// Whether an `Origin` header value may send requests here, given the
    /// request's `Host` (already checked).
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let own = host.is_some_and(|h| {
            origin == format!("{}://{}", self.scheme, h.trim().to_ascii_lowercase())
        });
        own || self.allowed_origins.contains(&origin)
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` as (name, port); an IPv6 name
/// loses its brackets. `None` when it is none of these.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return match after {
            "" => Some((name, None)),
            _ => Some((name, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match host.split_once(':') {
        None if !host.is_empty() => Some((host, None)),
        None => None,
        Some((name, port)) if !name.is_empty() => Some((name, Some(port.parse().ok()?))),
        Some(_) => None,
    }
}

/// Whether the request carries a body (a length above zero, or chunked).
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
}

/// Whether the `Content-Type` is `application/json` (parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The layer: the checks of the module docs, then the route, bounded by
/// `http_request_timeout_ms` (`408 REQUEST_TIMEOUT` past it).
pub async fn layer(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = check(&guard, request.method(), request.uri(), request.headers()) {
        return refusal.into_response();
    }
    match tokio::time::timeout(guard.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            format!(
                "the request took longer than {} ms (http_request_timeout_ms)",
                guard.request_timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// The checks of the module docs, in order.
///
/// # Errors
/// The refusal to answer with.
fn check(
    guard: &Guard,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if matches!(uri.path(), "/healthz" | "/readyz") {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    if let Some(host) = &host
        && !guard.host_allowed(host)
    {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "MISDIRECTED_REQUEST",
            format!(
                "this broker does not answer to Host {host:?}; add it to http_allowed_hosts \
                 if it is a name of this broker"
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !guard.origin_allowed(origin, host.as_deref()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN_ORIGIN",
                format!(
                    "requests from origin {origin:?} are refused (cross-site); add it to \
                     http_allowed_origins to allow it"
                ),
            ));
        }
    }
    let mutating = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if mutating && has_body(headers) && !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used)]
    use super::*;

    fn guard(bound: &str, hosts: &[&str], origins: &[&str]) -> Guard {
        let config = BrokerConfig {
            http_allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            http_allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..BrokerConfig::default()
        };
        Guard::new(&config, bound.parse().unwrap(), false)
    }

    #[test]
    fn a_loopback_listener_answers_to_its_loopback_names_only() {
        let g = guard("127.0.0.1:7180", &[], &[]);
        for ok in [
            "127.0.0.1:7180",
            "localhost:7180",
            "LOCALHOST:7180",
            "[::1]:7180",
            "127.0.0.2:7180",
            "localhost",
            "127.0.0.1",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:7180",
            "localhost:80",
            "127.0.0.1:7181",
            "10.0.0.1:7180",
            "localhost.evil.example:7180",
            "",
            ":7180",
            "[::1",
            "a:b:c",
        ] {
            assert!(!g.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn a_wildcard_listener_answers_to_any_ip_and_a_public_one_to_its_own() {
        let any = guard("0.0.0.0:7180", &[], &[]);
        assert!(any.host_allowed("192.0.2.7:7180"));
        assert!(any.host_allowed("localhost:7180"));
        assert!(!any.host_allowed("broker.example:7180"));
        let public = guard("192.0.2.7:7180", &[], &[]);
        assert!(public.host_allowed("192.0.2.7:7180"));
        assert!(!public.host_allowed("127.0.0.1:7180"));
        assert!(!public.host_allowed("localhost:7180"));
    }

    #[test]
    fn configured_hosts_are_added_and_a_star_turns_the_check_off() {
        let g = guard(
            "127.0.0.1:7180",
            &["Broker.Example", "proxy.example:443"],
            &[],
        );
        assert!(g.host_allowed("broker.example"));
        assert!(g.host_allowed("broker.example:9999"));
        assert!(g.host_allowed("proxy.example:443"));
        assert!(!g.host_allowed("proxy.example:80"));
        assert!(!g.host_allowed("evil.example"));
        assert!(guard("127.0.0.1:7180", &["*"], &[]).host_allowed("evil.example"));
    }

    #[test]
    fn only_the_listeners_own_origin_and_configured_ones_pass() {
        let g = guard("127.0.0.1:7180", &[], &["https://console.example/"]);
        let host = Some("127.0.0.1:7180");
        assert!(g.origin_allowed("http://127.0.0.1:7180", host));
        assert!(g.origin_allowed("https://console.example", host));
        assert!(!g.origin_allowed("http://evil.example", host));
        assert!(!g.origin_allowed("null", host));
        assert!(!g.origin_allowed("https://127.0.0.1:7180", host), "scheme");
        assert!(!g.origin_allowed("http://127.0.0.1:7180", None));
    }

    #[test]
    fn host_names_split_with_and_without_ports() {
        assert_eq!(split_host("a:1"), Some(("a", Some(1))));
        assert_eq!(split_host("[::1]:2"), Some(("::1", Some(2))));
        assert_eq!(split_host("[::1]"), Some(("::1", None)));
        assert_eq!(split_host("a:99999"), None);
        assert_eq!(split_host("[::1]x"), None);
    }
}
