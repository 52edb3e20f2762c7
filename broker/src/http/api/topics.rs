//! Topics, their partitions and their bindings:
//! `GET/POST /api/topics`, `GET/DELETE /api/topics/{name}`,
//! `GET /api/topics/{name}/partitions`,
//! `GET/POST/DELETE /api/topics/{name}/bindings`.
//!
//! Create, delete, bind and unbind go through the topic admin service
//! ([`crate::services::admin`]) as the native CreateTopic, DeleteTopic, Bind
//! and Unbind requests do, so a topic made over HTTP is checked, stored and
//! logged like one made with the CLI.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiResult, parse_body, parse_query};
use crate::auth::Grants;
use crate::http::auth::RequestGrants;
use crate::state::Shared;
use crate::topics::{BindingChange, Topic};

/// One line of `GET /api/topics`.
#[derive(Debug, Serialize)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: u32,
    pub routing: &'static str,
    /// Records readable now: high watermark minus log start, summed.
    pub records: u64,
    pub size_bytes: u64,
}

/// `GET /api/topics/{name}` and the answer to a create.
#[derive(Debug, Serialize)]
pub struct TopicDetail {
    pub name: String,
    pub partitions: u32,
    pub routing: &'static str,
    pub alternate_topic: Option<String>,
    /// Every topic config (log, routing and share-group settings) as the
    /// CreateTopic request would take it.
    pub configs: BTreeMap<String, String>,
    pub records: u64,
    pub size_bytes: u64,
    pub bindings: Vec<Binding>,
}

/// A routing key and the partitions it is bound to.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub key: String,
    pub partitions: Vec<u32>,
}

/// One partition's offsets and files.
#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: u32,
}

/// The body of `POST /api/topics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    name: String,
    partitions: u32,
    #[serde(default)]
    routing: Option<String>,
    #[serde(default)]
    alternate_topic: Option<String>,
    /// Topic configs by key; values are strings (numbers and booleans are
    /// taken as their JSON text).
    #[serde(default)]
    configs: BTreeMap<String, Value>,
}

/// `?key=K&partitions=0,1` for `DELETE /api/topics/{name}/bindings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingQuery {
    key: Option<String>,
    partitions: Option<String>,
}

fn records_and_size(topic: &Topic) -> (u64, u64) {
    topic.partitions.iter().fold((0, 0), |(records, size), p| {
        let readable = p
            .log
            .high_watermark()
            .0
            .saturating_sub(p.log.log_start_offset().0);
        (records + readable, size + p.log.size_bytes())
    })
}

fn summary(topic: &Topic) -> TopicSummary {
    let (records, size_bytes) = records_and_size(topic);
    TopicSummary {
        name: topic.config.name.clone(),
        partitions: topic.config.partitions,
        routing: topic.routing().name(),
        records,
        size_bytes,
    }
}

fn detail(topic: &Topic) -> TopicDetail {
    let (records, size_bytes) = records_and_size(topic);
    let mut configs: BTreeMap<String, String> = topic.config.log.entries().into_iter().collect();
    configs.extend(topic.config.routing.entries());
    configs.extend(topic.config.share.entries());
    TopicDetail {
        name: topic.config.name.clone(),
        partitions: topic.config.partitions,
        routing: topic.routing().name(),
        alternate_topic: topic.config.routing.alternate_topic.clone(),
        configs,
        records,
        size_bytes,
        bindings: bindings_of(topic),
    }
}

fn bindings_of(topic: &Topic) -> Vec<Binding> {
    topic
        .bindings()
        .into_iter()
        .map(|(key, partitions)| Binding { key, partitions })
        .collect()
}

/// 503 `SHUTTING_DOWN` once a shutdown has begun: changes stop with the
/// native listener's reads, while the HTTP port stays up for `/readyz`.
fn refuse_if_stopping(shared: &Shared) -> ApiResult<()> {
    if shared.shutdown.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the broker is shutting down",
        ));
    }
    Ok(())
}

/// The topic, or 404 `TOPIC_NOT_FOUND`.
pub(super) fn topic(shared: &Shared, name: &str) -> ApiResult<Arc<Topic>> {
    shared
        .topics
        .get(name)
        .ok_or_else(|| ApiError::no_topic(name))
}

/// `GET /api/topics`: every topic, sorted by name.
pub async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<TopicSummary>> {
    Json(shared.topics.list().iter().map(|t| summary(t)).collect())
}

/// The grants the auth layer attached to a request (none: no user exists,
/// or the request did not pass the layer, which is then judged as
/// unauthenticated). The services check them.
fn caller_grants(shared: &Shared, caller: Option<Extension<RequestGrants>>) -> Arc<Grants> {
    caller.map_or_else(
        || Arc::new(shared.auth.grants_for(None)),
        |Extension(c)| c.0,
    )
}

/// `POST /api/topics`: 201 with the new topic's detail. The auth layer has
/// checked admin on the name; the topic admin service checks it again, and
/// write on the alternate and dead-letter topics, with the caller's grants.
pub async fn create(
    State(shared): State<Arc<Shared>>,
    caller: Option<Extension<RequestGrants>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TopicDetail>)> {
    refuse_if_stopping(&shared)?;
    let req: CreateTopic = parse_body(&body)?;
    warren_storage::validate_topic_name(&req.name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut configs = Vec::with_capacity(req.configs.len() + 2);
    for (key, value) in req.configs {
        let value = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ApiError::invalid(format!(
                    "config {key:?} must be a string, number or boolean, got {other}"
                )));
            }
        };
        configs.push((key, value));
    }
    if let Some(routing) = req.routing {
        configs.push(("routing".to_owned(), routing));
    }
    if let Some(alternate) = req.alternate_topic {
        configs.push(("alternate.topic".to_owned(), alternate));
    }
    let grants = caller_grants(&shared, caller);
    shared
        .services
        .admin
        .create(&grants, req.name.clone(), req.partitions, &configs)?
        .await?;
    let created = topic(&shared, &req.name)?;
    Ok((StatusCode::CREATED, Json(detail(&created))))
}

/// `GET /api/topics/{name}`.
pub async fn describe(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<Json<TopicDetail>> {
    let topic = topic(&shared, &name)?;
    Ok(Json(detail(&topic)))
}

/// `DELETE /api/topics/{name}`: 204.
pub async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    caller: Option<Extension<RequestGrants>>,
) -> ApiResult<StatusCode> {
    refuse_if_stopping(&shared)?;
    topic(&shared, &name)?;
    let grants = caller_grants(&shared, caller);
    shared.services.admin.delete(&grants, name)?.await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/topics/{name}/partitions`.
pub async fn partitions(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PartitionInfo>>> {
    let topic = topic(&shared, &name)?;
    Ok(Json(
        topic
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                partition: p.index,
                log_start_offset: p.log.log_start_offset().0,
                log_end_offset: p.log.log_end_offset().0,
                high_watermark: p.high_watermark().0,
                size_bytes: p.log.size_bytes(),
                segments: u32::try_from(p.log.segments().len()).unwrap_or(u32::MAX),
            })
            .collect(),
    ))
}

/// `GET /api/topics/{name}/bindings`: keys sorted, partitions ascending.
pub async fn bindings(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Binding>>> {
    let topic = topic(&shared, &name)?;
    Ok(Json(bindings_of(&topic)))
}

/// `POST /api/topics/{name}/bindings` with `{"key","partitions"}`: 201 once
/// the binding is durable, with the topic's bindings.
pub async fn bind(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    caller: Option<Extension<RequestGrants>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Vec<Binding>>)> {
    let binding: Binding = parse_body(&body)?;
    let grants = caller_grants(&shared, caller);
    change(&shared, &grants, name.clone(), binding, BindingChange::Bind).await?;
    let topic = topic(&shared, &name)?;
    Ok((StatusCode::CREATED, Json(bindings_of(&topic))))
}

/// `DELETE /api/topics/{name}/bindings` with `{"key","partitions"}` as the
/// body or `?key=K&partitions=0,1`: 204 once the removal is durable.
pub async fn unbind(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    query: Result<Query<BindingQuery>, QueryRejection>,
    caller: Option<Extension<RequestGrants>>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let query = parse_query(query)?;
    let binding = match (query.key, query.partitions) {
        (None, None) => parse_body(&body)?,
        (Some(key), Some(partitions)) => Binding {
            key,
            partitions: parse_partitions(&partitions)?,
        },
        _ => {
            return Err(ApiError::invalid(
                "give both key and partitions in the query string, or a JSON body",
            ));
        }
    };
    let grants = caller_grants(&shared, caller);
    change(&shared, &grants, name, binding, BindingChange::Unbind).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `"0,1,2"` as partition numbers.
fn parse_partitions(list: &str) -> ApiResult<Vec<u32>> {
    list.split(',')
        .map(|p| {
            p.trim().parse::<u32>().map_err(|_| {
                ApiError::invalid(format!("partitions: {p:?} is not a partition number"))
            })
        })
        .collect()
}

async fn change(
    shared: &Shared,
    grants: &Grants,
    name: String,
    binding: Binding,
    change: BindingChange,
) -> ApiResult<()> {
    refuse_if_stopping(shared)?;
    shared
        .services
        .admin
        .change_binding(grants, name, binding.key, binding.partitions, change)?
        .await?;
    Ok(())
}
