//! ApiVersions: the api keys and versions this broker speaks.

use warren_protocol::api::api_versions::ApiVersionsResponse;

use super::Reply;
use super::response;

pub fn handle(cid: u32) -> Reply {
    Reply::Now(response::ok(cid, &ApiVersionsResponse::supported()))
}
