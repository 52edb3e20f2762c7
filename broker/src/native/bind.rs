//! Bind and Unbind: one module for both, as the two requests share their
//! layout, checks and path (they differ only in adding or removing). The
//! topic admin service's cheap checks (admin, topic, mode, partitions, key)
//! answer a refusal at once; the change answers from a task once it is
//! durable. See [`crate::services::admin`].

use std::sync::Arc;

use super::create_topic::answer;
use super::{Reply, error};
use crate::auth::Grants;
use crate::state::Shared;
use crate::topics::BindingChange;

/// Answers a Bind (`change = Bind`) or Unbind request for `topic`, `key`
/// and `partitions`.
pub fn handle(
    cid: u32,
    (topic, key, partitions): (String, String, Vec<u32>),
    change: BindingChange,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    match shared
        .services
        .admin
        .change_binding(grants, topic, key, partitions, change)
    {
        Ok(apply) => Reply::later(async move { answer(cid, apply.await) }),
        Err(e) => Reply::Now(error::response(cid, &e)),
    }
}
