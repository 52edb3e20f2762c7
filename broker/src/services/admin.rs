//! Topic administration: create and delete topics, bind and unbind routing
//! keys. The native requests (CreateTopic, DeleteTopic, Bind, Unbind) and
//! the admin HTTP API call the same functions, so a topic made either way is
//! checked, stored and logged alike.
//!
//! Each operation checks everything it can at once and returns the work as a
//! future, so a front-end answers a refusal without waiting and the slow
//! part (files, fsyncs) runs where the front-end likes.
//!
//! - **Create** needs admin on the new topic; its partition count and
//!   configs (log, routing and share-group settings; the broker's log
//!   defaults fill what is left out) are checked ([`TopicAdmin::settings`]),
//!   then a topic that names an `alternate.topic` or a `dead.letter.topic`
//!   sends records there on its users' behalf, so it needs write on those
//!   too ([`TopicAdmin::authorize`]; produce and dead-lettering check write
//!   again when they append, as grants change). The partition directories
//!   are created on a blocking thread. The topic starts with no bindings.
//! - **Delete** needs admin; it removes the topic, its files and its
//!   bindings on a blocking thread, then every group's committed offsets and
//!   share-group state on it (a topic created later under the same name
//!   starts afresh).
//! - **Bind / Unbind** need admin on the topic. The cheap checks (topic,
//!   mode, partitions, key length) come first ([`TopicAdmin::check_binding`]);
//!   the change runs on a blocking thread ([`Topics::change_bindings`]:
//!   metadata store, fsync, then the in-memory bindings) and returns once it
//!   is durable, so produce requests that arrive after see it.

use std::sync::Arc;

use warren_protocol::api::auth::{Permission, ResourceType};
use warren_storage::log_manager::MAX_PARTITIONS;
use warren_storage::{KvStore, LogConfig};

use super::{ErrorKind, ServiceError, ServiceResult, require};
use crate::auth::Grants;
use crate::groups::Coordinator;
use crate::metadata::{ShareConfig, TopicRouting};
use crate::routing::BindingError;
use crate::share::ShareGroups;
use crate::topics::{BindingChange, Topics};

/// A new topic's checked settings.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub partitions: u32,
    pub log: LogConfig,
    pub routing: TopicRouting,
    pub share: ShareConfig,
}

/// The topic administration service; see the module docs.
#[derive(Clone)]
pub struct TopicAdmin {
    topics: Arc<Topics>,
    kv: KvStore,
    groups: Arc<Coordinator>,
    share: Arc<ShareGroups>,
    /// The broker's log settings, which a new topic's configs override.
    log_defaults: LogConfig,
}

impl TopicAdmin {
    /// The service over these topics, the metadata store, and the groups
    /// whose state a deleted topic takes with it.
    pub fn new(
        topics: Arc<Topics>,
        kv: KvStore,
        groups: Arc<Coordinator>,
        share: Arc<ShareGroups>,
        log_defaults: LogConfig,
    ) -> TopicAdmin {
        TopicAdmin {
            topics,
            kv,
            groups,
            share,
            log_defaults,
        }
    }

    /// Checks a partition count and a list of topic configs (the broker's log
    /// defaults apply to keys left out) for a topic named `name`.
    ///
    /// # Errors
    /// `InvalidPartitions` or `InvalidConfig` with the reason.
    pub fn settings(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(String, String)],
    ) -> ServiceResult<TopicSettings> {
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(ServiceError::new(
                ErrorKind::InvalidPartitions,
                format!("partitions must be in 1..={MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        let mut log = self.log_defaults.clone();
        let mut routing = TopicRouting::default();
        let mut share = ShareConfig::default();
        for (key, value) in configs {
            let set = if TopicRouting::KEYS.contains(&key.as_str()) {
                routing.set(key, value).map_err(|e| e.to_string())
            } else if ShareConfig::is_key(key) {
                share.set(key, value).map_err(|e| e.to_string())
            } else if LogConfig::KEYS.contains(&key.as_str()) {
                log.set(key, value).map_err(|e| e.to_string())
            } else {
                Err(format!(
                    "unknown topic config {key:?} (known: {}, {}, dead.letter.topic, max.delivery.attempts, share.lock.timeout.ms)",
                    LogConfig::KEYS.join(", "),
                    TopicRouting::KEYS.join(", ")
                ))
            };
            set.map_err(|message| ServiceError::new(ErrorKind::InvalidConfig, message))?;
        }
        log.validate()
            .and_then(|()| routing.validate(name))
            .and_then(|()| share.validate(name))
            .map_err(|e| ServiceError::new(ErrorKind::InvalidConfig, e.to_string()))?;
        Ok(TopicSettings {
            partitions,
            log,
            routing,
            share,
        })
    }

    /// Checks that the caller may send records where topic `name`'s
    /// `settings` route them: write on its `alternate.topic` and its
    /// `dead.letter.topic`, if set (whether or not they exist yet).
    ///
    /// # Errors
    /// `TopicAuthorizationFailed` naming the setting and the topic.
    pub fn authorize(grants: &Grants, name: &str, settings: &TopicSettings) -> ServiceResult<()> {
        let targets = [
            (
                "alternate.topic",
                settings.routing.alternate_topic.as_deref(),
            ),
            (
                "dead.letter.topic",
                settings.share.dead_letter_topic.as_deref(),
            ),
        ];
        for (key, target) in targets {
            if let Some(target) = target
                && !grants.allows(ResourceType::Topic, target, Permission::Write)
            {
                return Err(ServiceError::new(
                    ErrorKind::TopicAuthorizationFailed,
                    format!(
                        "not authorized: topic {name:?} with {key} {target:?} needs write on topic {target:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Creates topic `name` for a caller with `grants`. The checks run now,
    /// in this order: admin on `name`, [`settings`](Self::settings), then
    /// [`authorize`](Self::authorize) (write on where they send records).
    /// The creation itself is the returned future: the partition
    /// directories on a blocking thread (files and fsyncs), then a log line.
    ///
    /// # Errors
    /// The first check that fails; the future's, the storage error's kind
    /// (`TopicAlreadyExists`, `InvalidTopicName`, `DiskFull`, ...) and message.
    pub fn create(
        &self,
        grants: &Grants,
        name: String,
        partitions: u32,
        configs: &[(String, String)],
    ) -> ServiceResult<impl Future<Output = ServiceResult<()>> + Send + use<>> {
        require(grants, ResourceType::Topic, &name, Permission::Admin)?;
        let settings = self.settings(&name, partitions, configs)?;
        TopicAdmin::authorize(grants, &name, &settings)?;
        let TopicSettings {
            partitions,
            log,
            routing,
            share,
        } = settings;
        let (topics, kv) = (Arc::clone(&self.topics), self.kv.clone());
        Ok(async move {
            let mode = routing.mode;
            let topic = name.clone();
            let created = tokio::task::spawn_blocking(move || {
                topics.create(&kv, &topic, partitions, log, routing, share)
            })
            .await;
            match created {
                Ok(Ok(())) => {
                    tracing::info!(topic = %name, partitions, routing = %mode, "topic created");
                    Ok(())
                }
                Ok(Err(e)) => Err(ServiceError::storage(&e, "create topic")),
                Err(e) => Err(ServiceError::new(ErrorKind::Internal, e.to_string())),
            }
        })
    }

    /// Deletes topic `name` for a caller with `grants` (admin on it,
    /// checked now) with its bindings, committed offsets and share-group
    /// state: the returned future does it on a blocking thread and logs it.
    ///
    /// # Errors
    /// `TopicAuthorizationFailed` (or `AuthenticationRequired`); the
    /// future's, the storage error's kind (`UnknownTopic`, ...) and message.
    pub fn delete(
        &self,
        grants: &Grants,
        name: String,
    ) -> ServiceResult<impl Future<Output = ServiceResult<()>> + Send + use<>> {
        require(grants, ResourceType::Topic, &name, Permission::Admin)?;
        let topic = name.clone();
        let (topics, kv, groups, share) = (
            Arc::clone(&self.topics),
            self.kv.clone(),
            Arc::clone(&self.groups),
            Arc::clone(&self.share),
        );
        // The topic's committed offsets go too, so a new topic of the same
        // name starts with none (deleted after the topic: a crash between the
        // two leaves offsets for a topic that is gone, which DescribeGroup
        // shows with lag -1 and a later delete of a new topic removes).
        Ok(async move {
            let deleted = tokio::task::spawn_blocking(move || {
                topics.delete(&kv, &topic)?;
                if let Some(end) = groups.forget_topic(&topic, &kv)? {
                    kv.sync_to(end)?;
                }
                if let Err(e) = share.remove_topic(&kv, &topic) {
                    tracing::warn!(%topic, error = %e, "could not delete the topic's share-group state");
                }
                Ok::<_, warren_storage::Error>(())
            })
            .await;
            match deleted {
                Ok(Ok(())) => {
                    tracing::info!(topic = %name, "topic deleted");
                    Ok(())
                }
                Ok(Err(e)) => Err(ServiceError::storage(&e, "delete topic")),
                Err(e) => Err(ServiceError::new(ErrorKind::Internal, e.to_string())),
            }
        })
    }

    /// Binds or unbinds (`change`) `key` to `partitions` of `topic` for a
    /// caller with `grants`. The cheap checks run now: admin on the topic,
    /// then topic, mode, partitions and key length, so a bad request costs
    /// no blocking thread. The returned future makes the change on a
    /// blocking thread (checking again under the admin lock) and completes
    /// once it is durable.
    ///
    /// # Errors
    /// `TopicAuthorizationFailed`, `UnknownTopic` or `InvalidBinding` with a
    /// message naming topic and key; the future's, those and the store's.
    pub fn change_binding(
        &self,
        grants: &Grants,
        topic: String,
        key: String,
        partitions: Vec<u32>,
        change: BindingChange,
    ) -> ServiceResult<impl Future<Output = ServiceResult<()>> + Send + use<>> {
        require(grants, ResourceType::Topic, &topic, Permission::Admin)?;
        let checked = match self.topics.get(&topic) {
            Some(t) => t.check_binding(&key, &partitions),
            None => Err(BindingError::UnknownTopic(topic.clone())),
        };
        checked.map_err(|e| binding_refusal(&topic, &key, &e))?;
        let (topics, kv) = (Arc::clone(&self.topics), self.kv.clone());
        Ok(async move {
            let (t, k, ps) = (topic.clone(), key.clone(), partitions.clone());
            let done = tokio::task::spawn_blocking(move || {
                topics.change_bindings(&kv, &t, &k, &ps, change)
            })
            .await;
            match done {
                Ok(Ok(())) => {
                    tracing::info!(%topic, %key, ?partitions, ?change, "bindings changed");
                    Ok(())
                }
                Ok(Err(e)) => {
                    if let BindingError::Storage(source) = &e {
                        // Logged as storage failures are.
                        ServiceError::storage(source, "storing a binding");
                    }
                    Err(binding_refusal(&topic, &key, &e))
                }
                Err(e) => Err(ServiceError::new(ErrorKind::Internal, e.to_string())),
            }
        })
    }
}

/// The error for a refused or failed binding change, naming the topic and
/// key.
fn binding_refusal(topic: &str, key: &str, e: &BindingError) -> ServiceError {
    let message = match e {
        BindingError::UnknownTopic(_) => e.to_string(),
        _ => format!("binding {key:?} on topic {topic:?}: {e}"),
    };
    ServiceError::new(e.kind(), message)
}
