//! Consumer groups: the target assignment ([`assignor`]), one group's
//! membership and incremental hand-over ([`state`]), and the coordinator that
//! serves the group apis over them and the metadata store ([`coordinator`]).

use warren_protocol::api::auth::{Permission, ResourceType};
use warren_protocol::api::groups::DescribeGroupResponse;

use crate::auth::Grants;

pub mod assignor;
pub mod coordinator;
pub mod state;

pub use coordinator::Coordinator;

/// Leaves out of a DescribeGroup answer the committed offsets, log end
/// offsets and lag of topics `grants` may not read: the group permission
/// covers the group (members, their subscriptions and assignments), not the
/// topics' positions. Shared by the native api and `GET /api/groups/NAME`.
pub fn keep_readable_offsets(r: &mut DescribeGroupResponse, grants: &Grants) {
    r.offsets
        .retain(|t| grants.allows(ResourceType::Topic, &t.topic, Permission::Read));
}
