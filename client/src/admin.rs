//! [`Admin`]: topic administration, offsets lookup and metadata.
//!
//! Each call is one request on the admin's connection (made on first use,
//! remade after a failure). Reads (list, describe, offsets, metadata) are
//! retried once on a new connection if the old one turns out to be lost;
//! create and delete are not (a lost answer does not say whether they
//! happened). Bind and unbind are: binding twice, or unbinding what is gone,
//! changes nothing.
//!
//! Thread-safe: `Admin` is `Send + Sync`; concurrent calls are pipelined.

use std::time::Duration;

use warren_protocol::ErrorCode;
use warren_protocol::api::ApiKey;
use warren_protocol::api::bindings::{BindRequest, UnbindRequest};
use warren_protocol::api::groups::{
    CommitOffsetsRequest, CommitPartition, CommitTopic, DescribeGroupRequest,
    DescribeGroupResponse, GroupListing, ListGroupsRequest,
};
use warren_protocol::api::list_offsets::{ListOffsetsRequest, ListOffsetsTopic};
use warren_protocol::api::metadata::{MetadataRequest, MetadataResponse};
use warren_protocol::api::topics::{
    CreateTopicRequest, DeleteTopicRequest, DescribeTopicRequest, DescribeTopicResponse,
    ListTopicsRequest, TopicListing,
};

pub use warren_protocol::api::auth::{AclEntry, Permission, Resource, ResourceType, UserListing};
use warren_protocol::api::auth::{
    CreateAclRequest, CreateUserRequest, DeleteAclRequest, DeleteUserRequest, ListAclsRequest,
    ListUsersRequest,
};
use warren_protocol::scram::ScramCredential;

use crate::config::{ConnectionConfig, OffsetSpec};
use crate::connection::Connector;
use crate::error::{Error, Result};

/// The apis an admin client needs from the broker.
const ADMIN_APIS: &[ApiKey] = &[
    ApiKey::Metadata,
    ApiKey::CreateTopic,
    ApiKey::DeleteTopic,
    ApiKey::DescribeTopic,
    ApiKey::ListTopics,
    ApiKey::ListOffsets,
    ApiKey::ListGroups,
    ApiKey::DescribeGroup,
    ApiKey::CommitOffsets,
    ApiKey::Bind,
    ApiKey::Unbind,
];

/// The answer of a ListOffsets lookup for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `None` for a timestamp newer than every record.
    pub offset: Option<u64>,
    /// For a timestamp lookup, the timestamp of the batch found; `None` for
    /// earliest and latest.
    pub timestamp: Option<i64>,
}

/// Topic administration; see the module docs.
///
/// ```no_run
/// # async fn run() -> warren_client::Result<()> {
/// use warren_client::{Admin, ConnectionConfig};
/// let admin = Admin::connect(ConnectionConfig::new("127.0.0.1:7171")).await?;
/// admin.create_topic("orders", 4, &[("retention.ms", "86400000")]).await?;
/// for topic in admin.list_topics().await? {
///     println!("{} ({} partitions)", topic.name, topic.partitions);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Admin {
    connector: Connector,
}

/// Maps a whole-request `UNKNOWN_TOPIC` to [`Error::UnknownTopic`].
fn topic_error(name: &str, e: Error) -> Error {
    match e {
        Error::Broker {
            code: ErrorCode::UNKNOWN_TOPIC,
            ..
        } => Error::UnknownTopic(name.to_owned()),
        other => other,
    }
}

impl Admin {
    /// Validates `config` and connects (ApiVersions included).
    ///
    /// # Errors
    /// [`Error::Config`]; the connection's errors.
    pub async fn connect(config: ConnectionConfig) -> Result<Admin> {
        config.validate()?;
        let connector = Connector::new(config, ADMIN_APIS);
        connector.get().await?;
        Ok(Admin { connector })
    }

    /// Creates a topic with `partitions` partitions and topic configs
    /// (`durability`, `retention.bytes`, `retention.ms`, `segment.bytes`,
    /// `segment.ms`, `max.message.bytes`, and the routing ones: `routing` =
    /// `hash` (default), `direct` or `topic`, and `alternate.topic`, a topic
    /// that takes routed records no binding matches).
    ///
    /// ```no_run
    /// # async fn run(admin: warren_client::Admin) -> warren_client::Result<()> {
    /// admin
    ///     .create_topic("events", 4, &[("routing", "topic"), ("alternate.topic", "unrouted")])
    ///     .await?;
    /// admin.bind("events", "orders.*.eu", &[0, 1]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Broker`] with `TOPIC_ALREADY_EXISTS`, `INVALID_TOPIC_NAME`,
    /// `INVALID_PARTITIONS` or `INVALID_CONFIG`; connection errors.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let request = CreateTopicRequest {
            name: name.to_owned(),
            partitions,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        self.connector.call(&request, Duration::ZERO, false).await?;
        Ok(())
    }

    /// Every consumer group with members or committed offsets, sorted by name.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let response = self
            .connector
            .call(&ListGroupsRequest, Duration::ZERO, true)
            .await?;
        Ok(response.groups)
    }

    /// A group's members and assignment, and per partition its committed
    /// offset, log end offset and lag. An unknown group has no members and no
    /// offsets.
    ///
    /// # Errors
    /// [`Error::Broker`] with `INVALID_GROUP_ID`; connection errors.
    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse> {
        let request = DescribeGroupRequest {
            group: group.to_owned(),
        };
        self.connector.call(&request, Duration::ZERO, true).await
    }

    /// Sets a group's committed offsets for `topic` (`(partition, offset)`,
    /// the offset being the next one to consume); refused while the group has
    /// members. Returns once durable.
    ///
    /// # Errors
    /// [`Error::Broker`] with `GROUP_NOT_EMPTY` or `INVALID_GROUP_ID`;
    /// [`Error::UnknownTopic`]; [`Error::Partition`] for a partition the topic
    /// does not have (the others are set); connection errors.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: &[(u32, u64)],
    ) -> Result<()> {
        let request = CommitOffsetsRequest {
            group: group.to_owned(),
            member_id: String::new(),
            generation: 0,
            topics: vec![CommitTopic {
                topic: topic.to_owned(),
                partitions: offsets
                    .iter()
                    .map(|&(partition, offset)| CommitPartition {
                        partition,
                        offset,
                        metadata: None,
                    })
                    .collect(),
            }],
        };
        let response = self.connector.call(&request, Duration::ZERO, false).await?;
        for t in &response.topics {
            if let Some(&(partition, code)) =
                t.partitions.iter().find(|(_, c)| *c != ErrorCode::NONE)
            {
                return Err(Error::from_partition_code(&t.topic, partition, code));
            }
        }
        Ok(())
    }

    /// Deletes a topic and its data.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; connection errors.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let request = DeleteTopicRequest {
            name: name.to_owned(),
        };
        self.connector
            .call(&request, Duration::ZERO, false)
            .await
            .map_err(|e| topic_error(name, e))?;
        Ok(())
    }

    /// Binds `key` (an exact routing key on a `direct` topic, a pattern with
    /// `*` and `#` on a `topic` topic) to each of `partitions`. Returns once
    /// the binding is durable; produces sent after it are routed by it.
    /// Binding what is already bound changes nothing.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::Broker`] with `INVALID_BINDING` (a
    /// `hash` topic, no partitions, a partition the topic does not have, a
    /// key over 255 bytes) and the broker's reason; storage and connection
    /// errors.
    pub async fn bind(&self, topic: &str, key: &str, partitions: &[u32]) -> Result<()> {
        let request = BindRequest {
            topic: topic.to_owned(),
            key: key.to_owned(),
            partitions: partitions.to_vec(),
        };
        self.connector
            .call(&request, Duration::ZERO, true)
            .await
            .map_err(|e| topic_error(topic, e))?;
        Ok(())
    }

    /// Removes the bindings of `key` to each of `partitions`; ones that do
    /// not exist are ignored. Returns once the change is durable.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub async fn unbind(&self, topic: &str, key: &str, partitions: &[u32]) -> Result<()> {
        let request = UnbindRequest {
            topic: topic.to_owned(),
            key: key.to_owned(),
            partitions: partitions.to_vec(),
        };
        self.connector
            .call(&request, Duration::ZERO, true)
            .await
            .map_err(|e| topic_error(topic, e))?;
        Ok(())
    }

    /// Every topic with its partition count, sorted by name.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn list_topics(&self) -> Result<Vec<TopicListing>> {
        Ok(self
            .connector
            .call(&ListTopicsRequest, Duration::ZERO, true)
            .await?
            .topics)
    }

    /// A topic's effective configs (`routing` and `alternate.topic`
    /// included), each partition's offsets and size, and its bindings.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; connection errors.
    pub async fn describe_topic(&self, name: &str) -> Result<DescribeTopicResponse> {
        let request = DescribeTopicRequest {
            name: name.to_owned(),
        };
        self.connector
            .call(&request, Duration::ZERO, true)
            .await
            .map_err(|e| topic_error(name, e))
    }

    /// The earliest or latest offset of a partition, or the first offset at
    /// or after a timestamp.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::Partition`] (e.g.
    /// `UNKNOWN_PARTITION`); connection errors.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset> {
        let mut found = list_offsets(&self.connector, topic, &[partition], spec).await?;
        found.pop().ok_or_else(|| Error::Partition {
            topic: topic.to_owned(),
            partition,
            code: ErrorCode::UNKNOWN_PARTITION,
        })
    }

    /// The brokers and the partitions of `topics` (every topic when empty).
    /// Unknown topics come back with `UNKNOWN_TOPIC` in their entry.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn metadata(&self, topics: &[&str]) -> Result<MetadataResponse> {
        let request = MetadataRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        self.connector.call(&request, Duration::ZERO, true).await
    }

    /// Creates a user. The SCRAM-SHA-256 credential is derived here (random
    /// salt, 4096 iterations): the password never leaves this process. The
    /// first user of a broker must be a superuser. Needs `admin` on
    /// `cluster` (or no user yet).
    ///
    /// # Errors
    /// [`Error::Broker`] with `USER_ALREADY_EXISTS`, `INVALID_USER` or
    /// `SUPERUSER_REQUIRED`; [`Error::NotAuthorized`]; connection errors.
    pub async fn create_user(&self, name: &str, password: &str, superuser: bool) -> Result<()> {
        let password = password.to_owned();
        // PBKDF2 takes milliseconds: off the runtime's worker threads.
        let credential = tokio::task::spawn_blocking(move || ScramCredential::generate(&password))
            .await
            .map_err(|e| Error::Config(format!("deriving the credential: {e}")))?
            .map_err(|e| Error::Config(format!("deriving the credential: {e}")))?;
        let request = CreateUserRequest {
            name: name.to_owned(),
            superuser,
            salt: credential.salt.into(),
            iterations: credential.iterations,
            stored_key: credential.stored_key,
            server_key: credential.server_key,
        };
        self.connector.call(&request, Duration::ZERO, false).await?;
        Ok(())
    }

    /// Deletes a user and its ACL entries.
    ///
    /// # Errors
    /// [`Error::Broker`] with `USER_NOT_FOUND` or `SUPERUSER_REQUIRED` (the
    /// last superuser while other users exist); [`Error::NotAuthorized`];
    /// connection errors.
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let request = DeleteUserRequest {
            name: name.to_owned(),
        };
        self.connector.call(&request, Duration::ZERO, false).await?;
        Ok(())
    }

    /// Every user, sorted by name.
    ///
    /// # Errors
    /// [`Error::NotAuthorized`]; connection errors.
    pub async fn list_users(&self) -> Result<Vec<UserListing>> {
        let r = self
            .connector
            .call(&ListUsersRequest, Duration::ZERO, true)
            .await?;
        Ok(r.users)
    }

    /// Grants an ACL entry (granting one that exists changes nothing).
    ///
    /// # Errors
    /// [`Error::Broker`] with `USER_NOT_FOUND` or `INVALID_ACL`;
    /// [`Error::NotAuthorized`]; connection errors.
    pub async fn grant(&self, acl: AclEntry) -> Result<()> {
        self.connector
            .call(&CreateAclRequest { acl }, Duration::ZERO, true)
            .await?;
        Ok(())
    }

    /// Revokes an ACL entry (revoking one that does not exist changes nothing).
    ///
    /// # Errors
    /// [`Error::Broker`] with `INVALID_ACL`; [`Error::NotAuthorized`];
    /// connection errors.
    pub async fn revoke(&self, acl: AclEntry) -> Result<()> {
        self.connector
            .call(&DeleteAclRequest { acl }, Duration::ZERO, true)
            .await?;
        Ok(())
    }

    /// ACL entries of `user`, or of every user; sorted.
    ///
    /// # Errors
    /// [`Error::NotAuthorized`]; connection errors.
    pub async fn list_acls(&self, user: Option<&str>) -> Result<Vec<AclEntry>> {
        let request = ListAclsRequest {
            user: user.map(str::to_owned),
        };
        Ok(self
            .connector
            .call(&request, Duration::ZERO, true)
            .await?
            .acls)
    }
}

/// Looks up `spec` for `partitions` of `topic` in one ListOffsets request;
/// the answers are in the order of `partitions`.
///
/// # Errors
/// The first partition's error ([`Error::UnknownTopic`], [`Error::Partition`]);
/// a protocol error when the response misses a partition; connection errors.
pub(crate) async fn list_offsets(
    connector: &Connector,
    topic: &str,
    partitions: &[u32],
    spec: OffsetSpec,
) -> Result<Vec<ListedOffset>> {
    let ts = spec.wire_timestamp();
    let request = ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            topic: topic.to_owned(),
            partitions: partitions.iter().map(|p| (*p, ts)).collect(),
        }],
    };
    let response = connector
        .call(&request, Duration::ZERO, true)
        .await
        .map_err(|e| topic_error(topic, e))?;
    let answers: Vec<_> = response
        .topics
        .iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.partitions.iter())
        .collect();
    partitions
        .iter()
        .map(|p| {
            let answer = answers.iter().find(|a| a.partition == *p).ok_or_else(|| {
                Error::from(warren_protocol::Error::InvalidField {
                    field: "ListOffsets response (a requested partition is missing)",
                    value: i64::from(*p),
                })
            })?;
            if answer.error_code != ErrorCode::NONE {
                return Err(Error::from_partition_code(topic, *p, answer.error_code));
            }
            Ok(ListedOffset {
                offset: u64::try_from(answer.offset).ok(),
                timestamp: match spec {
                    OffsetSpec::Timestamp(_) if answer.timestamp >= 0 => Some(answer.timestamp),
                    _ => None,
                },
            })
        })
        .collect()
}
