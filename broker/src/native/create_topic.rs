//! CreateTopic: the topic admin service checks (admin on the topic, the
//! partition count and configs, write on where its settings send records)
//! and a refusal is answered at once; the creation (files, fsyncs) answers
//! from a task. See [`crate::services::admin`].

use std::sync::Arc;

use warren_protocol::api::topics::{CreateTopicRequest, EmptyResponse};

use super::response;
use super::{Reply, error};
use crate::auth::Grants;
use crate::state::Shared;
use crate::transport::response::Response;

pub fn handle(cid: u32, req: CreateTopicRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    let admin = &shared.services.admin;
    match admin.create(grants, req.name, req.partitions, &req.configs) {
        Ok(create) => Reply::later(async move { answer(cid, create.await) }),
        Err(e) => Reply::Now(error::response(cid, &e)),
    }
}

/// The response to an admin change: empty, or the error.
pub(super) fn answer(cid: u32, done: crate::services::ServiceResult<()>) -> Response {
    match done {
        Ok(()) => response::ok(cid, &EmptyResponse),
        Err(e) => error::response(cid, &e),
    }
}
