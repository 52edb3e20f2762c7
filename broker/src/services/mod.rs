//! The service layer: what the broker does, with no wire format in sight.
//! Front-ends (`native`, `http`; a Kafka or AMQP listener later) decode a
//! request, call a service with the caller's [`Grants`], and encode what it
//! returns; they never hold domain logic of their own and never call one
//! another.
//!
//! Each service checks the permissions its operation needs (the caller's
//! grants in, a [`ServiceError`] of an authorization kind out), so a new
//! front-end cannot forget one, and errors come as one enum ([`ErrorKind`])
//! that each front-end maps to its own codes.
//!
//! - [`produce`]: [`Producer`]: validate, route, append, wake fetches, wait
//!   for durability (acks), per entry.
//! - [`fetch`]: [`Fetcher`]: resolve what a fetch names, read file ranges up
//!   to the high watermark within the byte limits, long-poll until enough.
//! - [`admin`]: [`TopicAdmin`]: create and delete topics, bind and unbind.
//! - [`queues`]: [`Queues`]: share groups' fetch (acquire) and ack.
//! - [`access`]: [`Access`]: users and ACLs.
//! - [`sasl`]: [`Sasl`]: a connection's authentication (SCRAM-SHA-256,
//!   PLAIN on TLS).
//! - [`catalog`]: [`Catalog`]: list, describe and place topics (metadata),
//!   find offsets; the one place that assumes a single node.
//!
//! [`ServiceError`] and [`ErrorKind`] live in [`crate::error`], below every
//! domain module, and are re-exported here.

use warren_protocol::api::auth::{Permission, ResourceType};

use crate::auth::{Denied, Grants};

pub mod access;
pub mod admin;
pub mod catalog;
pub mod fetch;
pub mod produce;
pub mod queues;
pub mod sasl;

pub use crate::error::{ErrorKind, ServiceError, ServiceResult};
pub use access::Access;
pub use admin::{TopicAdmin, TopicSettings};
pub use catalog::Catalog;
pub use fetch::Fetcher;
pub use produce::Producer;
pub use queues::Queues;
pub use sasl::Sasl;

/// The services, built once at start (cheap to clone: each is a few `Arc`s).
#[derive(Clone)]
pub struct Services {
    pub produce: Producer,
    pub fetch: Fetcher,
    pub admin: TopicAdmin,
    pub catalog: Catalog,
    pub access: Access,
    pub queues: Queues,
    pub sasl: Sasl,
}

/// The error for a caller that lacks `needed` on a resource.
pub fn denied(
    denied: Denied,
    resource_type: ResourceType,
    name: &str,
    needed: Permission,
) -> ServiceError {
    let what = match resource_type {
        ResourceType::Cluster => "the cluster".to_string(),
        t => format!("{} {name:?}", t.name()),
    };
    ServiceError::new(
        denied_kind(denied, resource_type),
        format!("not authorized: {needed} on {what} is needed"),
    )
}

/// The kind of a denial on a resource of `resource_type`.
pub fn denied_kind(denied: Denied, resource_type: ResourceType) -> ErrorKind {
    match (denied, resource_type) {
        (Denied::Unauthenticated, _) => ErrorKind::AuthenticationRequired,
        (Denied::Unauthorized, ResourceType::Topic) => ErrorKind::TopicAuthorizationFailed,
        (Denied::Unauthorized, ResourceType::Group) => ErrorKind::GroupAuthorizationFailed,
        (Denied::Unauthorized, ResourceType::Cluster) => ErrorKind::ClusterAuthorizationFailed,
    }
}

/// Checks one permission of the caller.
///
/// # Errors
/// [`denied`]'s error when `grants` lack it.
pub fn require(
    grants: &Grants,
    resource_type: ResourceType,
    name: &str,
    needed: Permission,
) -> ServiceResult<()> {
    grants
        .check(resource_type, name, needed)
        .map_err(|d| denied(d, resource_type, name, needed))
}
