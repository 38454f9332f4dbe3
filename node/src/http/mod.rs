//! The HTTP API: axum routes over the [`Broker`], with JSON error bodies,
//! request metrics, and the OpenAPI document.

mod debug;
mod extract;
mod groups;
mod metrics;
pub mod openapi;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline_client::api::{
    Acks, BrokerInfo, ClusterInfo, CreateTopicRequest, FetchRequest, FetchResponse, FetcherControl, Health,
    InitProducerIdResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchResponse, ProduceRequest,
    ProduceResponse, TopicDescription, TopicList, paths,
};

use crate::broker::Broker;
use crate::error::ApiError;
use crate::groups::Groups;
use crate::replica::manager::ReplicaManager;
use crate::replica::protocol::{FETCH_PATH, FetchRequest as ReplicaFetchRequest};
use extract::{GroupParam, JsonBody, PartitionPath, TopicParam};
pub use metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub groups: Arc<Groups>,
    pub metrics: Arc<Metrics>,
    pub replicas: Arc<ReplicaManager>,
    /// The address clients should use for this node.
    pub advertised: String,
}

/// Builds the router for `state`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.broker.config.socket_request_max_bytes;
    Router::new()
        .route(paths::HEALTH, get(health))
        .route(paths::METRICS, get(metrics_text))
        .route(paths::OPENAPI, get(openapi_json))
        .route(paths::CLUSTER, get(cluster))
        .route(paths::TOPICS, get(list_topics).post(create_topic))
        .route(paths::TOPIC, get(describe_topic))
        .route(paths::PRODUCE, post(produce))
        .route(paths::FETCH, post(fetch))
        .route(paths::GROUP_OFFSETS, get(committed_offsets).post(commit_offsets))
        .route(paths::GROUP, get(groups::describe))
        .route(paths::GROUP_JOIN, post(groups::join))
        .route(paths::GROUP_SYNC, post(groups::sync))
        .route(paths::GROUP_HEARTBEAT, post(groups::heartbeat))
        .route(paths::GROUP_LEAVE, post(groups::leave))
        .route(paths::INIT_PRODUCER_ID, post(init_producer_id))
        .route(paths::ADMIN_FETCHERS, post(admin_fetchers))
        .route(paths::DEBUG_REPLICA_LOG, get(debug::replica_log))
        .route(paths::DEBUG_HISTORY, get(debug::history))
        .route(FETCH_PATH, post(replica_fetch))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts and times every request by route template.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(&route, resp.status().as_u16(), start.elapsed());
    resp
}

async fn not_found(req: Request) -> Response {
    let err = ApiError::invalid(format!("no such endpoint: {} {}", req.method(), req.uri().path()));
    let mut resp = err.into_response();
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

async fn method_not_allowed(req: Request) -> Response {
    let err = ApiError::invalid(format!("method {} is not allowed on {}", req.method(), req.uri().path()));
    let mut resp = err.into_response();
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp
}

/// 200 once this broker is registered with the controller and serving;
/// 503 `starting` before.
#[utoipa::path(get, path = paths::HEALTH, operation_id = "health", tag = "node", responses(
    (status = 200, description = "registered and serving", body = Health),
    (status = 503, description = "starting: not registered with the controller yet", body = Health),
))]
async fn health(State(state): State<AppState>) -> Response {
    let node_id = state.broker.config.node_id;
    let image = state.broker.image();
    let registered = state
        .broker
        .control()
        .broker_epoch()
        .is_some_and(|e| image.brokers.get(&node_id).is_some_and(|b| b.epoch == e && !b.fenced));
    if registered {
        Json(Health { status: "ok".into(), node_id }).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "starting".into(), node_id })).into_response()
    }
}

/// Prometheus text-format metrics.
#[utoipa::path(get, path = paths::METRICS, operation_id = "metrics", tag = "node", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&state.broker))
}

/// This document.
#[utoipa::path(get, path = paths::OPENAPI, operation_id = "openapi", tag = "node", responses(
    (status = 200, description = "OpenAPI 3.1", body = Object),
))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::document())
}

/// Brokers, controller, metadata offset and active bug switches.
#[utoipa::path(get, path = paths::CLUSTER, operation_id = "cluster", tag = "node", responses(
    (status = 200, description = "this node's view of the cluster", body = ClusterInfo),
))]
async fn cluster(State(state): State<AppState>) -> Json<ClusterInfo> {
    let image = state.broker.image();
    Json(ClusterInfo {
        node_id: state.broker.config.node_id,
        brokers: image
            .brokers
            .values()
            .map(|b| BrokerInfo { id: b.id, address: b.address.clone(), fenced: b.fenced })
            .collect(),
        controller: state.broker.control().active_controller(),
        metadata_offset: image.offset as i64,
        bugs: state.broker.config.bugs.active().iter().map(|b| b.name().to_string()).collect(),
        admin_hooks: state.broker.config.admin_hooks,
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The leader's side of a follower fetch: binary body, see `replica::protocol`.
async fn replica_fetch(State(state): State<AppState>, JsonBody(req): JsonBody<ReplicaFetchRequest>) -> Response {
    let body = crate::replica::serve::serve_fetch(&state.replicas, req).await;
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

/// Create a topic.
#[utoipa::path(post, path = paths::TOPICS, operation_id = "createTopic", tag = "topics",
    request_body = CreateTopicRequest,
    responses((status = 201, description = "created", body = TopicDescription)),
)]
async fn create_topic(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateTopicRequest>,
) -> Result<Response, ApiError> {
    let desc = state.broker.create_topic(&req).await?;
    Ok((StatusCode::CREATED, Json(desc)).into_response())
}

/// Allocate a cluster-unique producer id (epoch 0) for an idempotent producer.
#[utoipa::path(post, path = paths::INIT_PRODUCER_ID, operation_id = "initProducerId", tag = "records", responses(
    (status = 200, description = "a fresh producer id", body = InitProducerIdResponse),
))]
async fn init_producer_id(State(state): State<AppState>) -> Result<Json<InitProducerIdResponse>, ApiError> {
    let producer_id = state.broker.init_producer_id().await?;
    Ok(Json(InitProducerIdResponse { producer_id, producer_epoch: 0 }))
}

/// Admin hook (faultline.admin.hooks=true only): pause or resume this node's follower fetchers.
#[utoipa::path(post, path = paths::ADMIN_FETCHERS, operation_id = "adminFetchers", tag = "admin",
    request_body = FetcherControl,
    responses((status = 200, description = "the fetchers' new state", body = FetcherControl)),
)]
async fn admin_fetchers(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<FetcherControl>,
) -> Result<Json<FetcherControl>, ApiError> {
    if !state.broker.config.admin_hooks {
        return Err(ApiError::invalid("admin hooks are disabled; start the node with faultline.admin.hooks=true"));
    }
    state.replicas.fetchers_paused.store(req.paused, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(paused = req.paused, "admin hook: follower fetchers");
    Ok(Json(req))
}

/// Names of all topics, internal ones included.
#[utoipa::path(get, path = paths::TOPICS, operation_id = "listTopics", tag = "topics", responses(
    (status = 200, description = "every topic", body = TopicList),
))]
async fn list_topics(State(state): State<AppState>) -> Json<TopicList> {
    Json(TopicList { topics: state.broker.topic_names() })
}

/// Per partition: leader, epoch, replicas, ISR, high watermark, log end offset.
#[utoipa::path(get, path = paths::TOPIC, operation_id = "describeTopic", tag = "topics",
    params(TopicParam),
    responses((status = 200, description = "the topic", body = TopicDescription)),
)]
async fn describe_topic(State(state): State<AppState>, TopicParam { topic }: TopicParam) -> Result<Response, ApiError> {
    Ok(Json(state.broker.describe_topic(&topic)?).into_response())
}

/// Append one batch. acks=0 is answered 202 with no offset once queued.
#[utoipa::path(post, path = paths::PRODUCE, operation_id = "produce", tag = "records",
    params(PartitionPath),
    request_body = ProduceRequest,
    responses(
        (status = 200, description = "appended (acks=1) or committed (acks=all)", body = ProduceResponse),
        (status = 202, description = "acks=0: queued, never acknowledged", body = ProduceResponse),
    ),
)]
async fn produce(
    State(state): State<AppState>,
    path: PartitionPath,
    JsonBody(req): JsonBody<ProduceRequest>,
) -> Result<Response, ApiError> {
    let (acks, resp) = state.broker.produce(&path.topic, path.partition, &req).await.inspect_err(|e| {
        state.broker.stats.produce_error(e.code);
    })?;
    let status = if acks == Acks::None { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(resp)).into_response())
}

/// Read records below the high watermark from an offset, with optional long poll.
#[utoipa::path(post, path = paths::FETCH, operation_id = "fetch", tag = "records",
    params(PartitionPath),
    request_body = FetchRequest,
    responses((status = 200, description = "records, possibly none", body = FetchResponse)),
)]
async fn fetch(
    State(state): State<AppState>,
    path: PartitionPath,
    JsonBody(req): JsonBody<FetchRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(state.broker.fetch(&path.topic, path.partition, &req).await?).into_response())
}

/// Commit offsets durably to __consumer_offsets (acks=all).
#[utoipa::path(post, path = paths::GROUP_OFFSETS, operation_id = "commitOffsets", tag = "groups",
    params(GroupParam),
    request_body = OffsetCommitRequest,
    responses((status = 200, description = "committed", body = OffsetCommitResponse)),
)]
async fn commit_offsets(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
    JsonBody(req): JsonBody<OffsetCommitRequest>,
) -> Result<Response, ApiError> {
    Ok(Json(state.groups.commit(&state.broker, &group, &req).await?).into_response())
}

/// The group's committed offsets.
#[utoipa::path(get, path = paths::GROUP_OFFSETS, operation_id = "committedOffsets", tag = "groups",
    params(GroupParam),
    responses((status = 200, description = "every committed offset of the group", body = OffsetFetchResponse)),
)]
async fn committed_offsets(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
) -> Result<Response, ApiError> {
    Ok(Json(state.groups.fetch(&state.broker, &group).await?).into_response())
}
