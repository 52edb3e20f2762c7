//! ApiVersions: the api keys and versions this broker speaks.

use warren_protocol::api::api_versions::ApiVersionsResponse;

use super::Reply;
use crate::transport::response::Response;

pub fn handle(cid: u32) -> Reply {
    Reply::Now(Response::ok(cid, &ApiVersionsResponse::supported()))
}
