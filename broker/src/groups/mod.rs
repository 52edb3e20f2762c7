//! Consumer groups: the target assignment ([`assignor`]) and one group's
//! membership and incremental hand-over ([`state`]). The coordinator that
//! serves JoinGroup, Heartbeat, LeaveGroup and the offset apis over them is
//! being built on top.

pub mod assignor;
pub mod state;
