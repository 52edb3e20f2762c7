//! DeleteTopic: the topic admin service checks admin on the topic (a refusal
//! is answered at once), then removes the topic, its files, its bindings,
//! and every group's offsets and share-group state on it, from a task. See
//! [`crate::services::admin`].

use std::sync::Arc;

use warren_protocol::api::topics::DeleteTopicRequest;

use super::create_topic::answer;
use super::{Reply, error};
use crate::auth::Grants;
use crate::state::Shared;

pub fn handle(cid: u32, req: DeleteTopicRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    match shared.services.admin.delete(grants, req.name) {
        Ok(delete) => Reply::later(async move { answer(cid, delete.await) }),
        Err(e) => Reply::Now(error::response(cid, &e)),
    }
}
