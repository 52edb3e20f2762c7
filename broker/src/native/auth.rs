//! Authenticate, one step of the connection's SASL exchange
//! ([`crate::services::sasl`]: SCRAM-SHA-256 in two round trips, PLAIN on
//! TLS only), and the user/ACL management apis (CreateUser, DeleteUser,
//! ListUsers, CreateAcl, DeleteAcl, ListAcls), which the access service
//! ([`crate::services::access`]) does, checking `admin` on `cluster`.
//! Management changes are fsynced on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::api::auth::{
    AuthenticateRequest, AuthenticateResponse, CreateAclRequest, CreateUserRequest,
    DeleteAclRequest, DeleteUserRequest, ListAclsRequest, ListAclsResponse, ListUsersResponse,
};
use warren_protocol::scram::ScramCredential;

use super::Reply;
use super::response;
use crate::auth::{Grants, Session};
use crate::state::Shared;

pub fn authenticate(
    cid: u32,
    req: AuthenticateRequest,
    shared: &Arc<Shared>,
    session: &mut Session,
) -> Reply {
    let sasl = &shared.services.sasl;
    match sasl.step(session, &req.mechanism, &req.auth_bytes) {
        Ok(answer) => Reply::Now(response::ok(
            cid,
            &AuthenticateResponse {
                auth_bytes: Bytes::from(answer),
            },
        )),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

/// Answers a user/ACL change once it is done: an empty body, or its error.
fn change(cid: u32, change: crate::services::access::Change) -> Reply {
    match change {
        Ok(done) => Reply::later(async move { super::create_topic::answer(cid, done.await) }),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

/// CreateUser from a client at `peer` (the first user only from loopback).
pub fn create_user(
    cid: u32,
    req: CreateUserRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
    peer: std::net::SocketAddr,
) -> Reply {
    let credential = ScramCredential {
        salt: req.salt.to_vec(),
        iterations: req.iterations,
        stored_key: req.stored_key,
        server_key: req.server_key,
    };
    let access = &shared.services.access;
    change(
        cid,
        access.create_user(grants, req.name, credential, req.superuser, peer.ip()),
    )
}

pub fn delete_user(
    cid: u32,
    req: DeleteUserRequest,
    shared: &Arc<Shared>,
    grants: &Grants,
) -> Reply {
    change(cid, shared.services.access.delete_user(grants, req.name))
}

pub fn list_users(cid: u32, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    match shared.services.access.list_users(grants) {
        Ok(users) => Reply::Now(response::ok(cid, &ListUsersResponse { users })),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}

pub fn create_acl(cid: u32, req: CreateAclRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    change(cid, shared.services.access.grant(grants, req.acl))
}

pub fn delete_acl(cid: u32, req: DeleteAclRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    change(cid, shared.services.access.revoke(grants, req.acl))
}

pub fn list_acls(cid: u32, req: ListAclsRequest, shared: &Arc<Shared>, grants: &Grants) -> Reply {
    match shared
        .services
        .access
        .list_acls(grants, req.user.as_deref())
    {
        Ok(acls) => Reply::Now(response::ok(cid, &ListAclsResponse { acls })),
        Err(e) => Reply::Now(super::error::response(cid, &e)),
    }
}
