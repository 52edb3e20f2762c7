//! Access administration: users and ACLs. Every operation needs admin on
//! the cluster; changes are written to the metadata store and fsynced on a
//! blocking thread (the returned future), reads answer at once.
//!
//! Two rules protect a broker from being taken over or locked out: the
//! first user may be created only from the broker's own machine (before it
//! exists every client is anonymous, see [`Auth::create_user_from`]), and on
//! a broker reachable beyond loopback the last superuser cannot be deleted
//! ([`Auth::delete_user_keeping_one`]).

use std::net::IpAddr;
use std::sync::Arc;

use warren_protocol::api::auth::{AclEntry, Permission, ResourceType, UserListing};
use warren_protocol::scram::ScramCredential;
use warren_storage::KvStore;

use super::{ErrorKind, ServiceError, ServiceResult, require};
use crate::auth::{Auth, AuthError, Grants};

/// The access administration service; see the module docs.
#[derive(Clone)]
pub struct Access {
    auth: Arc<Auth>,
    kv: KvStore,
    /// Whether a listener is reachable beyond loopback without
    /// `allow_anonymous` (then the last superuser must stay).
    exposed: bool,
}

/// A change, checked now, done by the future on a blocking thread.
pub type Change = ServiceResult<std::pin::Pin<Box<dyn Future<Output = ServiceResult<()>> + Send>>>;

impl Access {
    /// The service over `auth`'s users and ACLs, stored in `kv`; `exposed`
    /// as [`BrokerConfig::check_anonymous_exposure`](crate::BrokerConfig::check_anonymous_exposure)
    /// refuses without users.
    pub fn new(auth: Arc<Auth>, kv: KvStore, exposed: bool) -> Access {
        Access { auth, kv, exposed }
    }

    fn admin(grants: &Grants) -> ServiceResult<()> {
        require(grants, ResourceType::Cluster, "", Permission::Admin)
    }

    /// Runs `f` on a blocking thread and logs `done` once it succeeded.
    fn change(
        &self,
        f: impl FnOnce(&Auth, &KvStore) -> Result<(), AuthError> + Send + 'static,
    ) -> Change {
        let (auth, kv) = (Arc::clone(&self.auth), self.kv.clone());
        Ok(Box::pin(async move {
            match tokio::task::spawn_blocking(move || f(&auth, &kv)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.into_service_error()),
                Err(e) => Err(ServiceError::new(ErrorKind::Internal, e.to_string())),
            }
        }))
    }

    /// Creates user `name` with a SCRAM `credential`, asked from `peer` (the
    /// first user only from loopback).
    ///
    /// # Errors
    /// Now: `ClusterAuthorizationFailed` (or `AuthenticationRequired`); the
    /// future's: `UserAlreadyExists`, `InvalidUser`, the loopback rule
    /// (`ClusterAuthorizationFailed`), storage errors.
    pub fn create_user(
        &self,
        grants: &Grants,
        name: String,
        credential: ScramCredential,
        superuser: bool,
        peer: IpAddr,
    ) -> Change {
        Access::admin(grants)?;
        self.change(move |auth, kv| {
            auth.create_user_from(kv, &name, credential, superuser, peer)?;
            tracing::info!(user = %name, superuser, "user created");
            Ok(())
        })
    }

    /// Deletes user `name` (never the last superuser of an exposed broker).
    ///
    /// # Errors
    /// Now: as [`create_user`](Self::create_user); the future's:
    /// `UserNotFound`, `SuperuserRequired`, storage errors.
    pub fn delete_user(&self, grants: &Grants, name: String) -> Change {
        Access::admin(grants)?;
        let exposed = self.exposed;
        self.change(move |auth, kv| {
            auth.delete_user_keeping_one(kv, &name, exposed)?;
            tracing::info!(user = %name, "user deleted");
            Ok(())
        })
    }

    /// Every user.
    ///
    /// # Errors
    /// `ClusterAuthorizationFailed` (or `AuthenticationRequired`).
    pub fn list_users(&self, grants: &Grants) -> ServiceResult<Vec<UserListing>> {
        Access::admin(grants)?;
        Ok(self.auth.list_users())
    }

    /// Grants `acl`.
    ///
    /// # Errors
    /// Now: as [`create_user`](Self::create_user); the future's:
    /// `InvalidAcl`, `UserNotFound`, storage errors.
    pub fn grant(&self, grants: &Grants, acl: AclEntry) -> Change {
        Access::admin(grants)?;
        self.change(move |auth, kv| {
            let text = acl.to_string();
            auth.grant(kv, acl)?;
            tracing::info!(acl = %text, "ACL granted");
            Ok(())
        })
    }

    /// Revokes `acl`.
    ///
    /// # Errors
    /// As [`grant`](Self::grant).
    pub fn revoke(&self, grants: &Grants, acl: AclEntry) -> Change {
        Access::admin(grants)?;
        self.change(move |auth, kv| {
            auth.revoke(kv, &acl)?;
            tracing::info!(acl = %acl, "ACL revoked");
            Ok(())
        })
    }

    /// The ACL entries, of `user` only if given.
    ///
    /// # Errors
    /// `ClusterAuthorizationFailed` (or `AuthenticationRequired`).
    pub fn list_acls(&self, grants: &Grants, user: Option<&str>) -> ServiceResult<Vec<AclEntry>> {
        Access::admin(grants)?;
        Ok(self.auth.list_acls(user))
    }
}
