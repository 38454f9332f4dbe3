//! The HTTP API: axum routes over the [`Broker`], with JSON error bodies,
//! request metrics, and the OpenAPI document.

mod extract;
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
    Acks, BrokerInfo, ClusterInfo, CreateTopicRequest, FetchRequest, Health, OffsetCommitRequest, ProduceRequest,
    TopicList, paths,
};

use crate::broker::Broker;
use crate::error::ApiError;
use crate::groups::Groups;
use extract::{JsonBody, PartitionPath, Segment};
pub use metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub groups: Arc<Groups>,
    pub metrics: Arc<Metrics>,
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

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok".into(), node_id: state.broker.config.node_id })
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&state.broker))
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

async fn cluster(State(state): State<AppState>) -> Json<ClusterInfo> {
    let id = state.broker.config.node_id;
    Json(ClusterInfo {
        node_id: id,
        brokers: vec![BrokerInfo { id, address: state.advertised.clone(), fenced: false }],
        controller: Some(id),
        metadata_offset: 0,
        bugs: Vec::new(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn create_topic(State(state): State<AppState>, JsonBody(req): JsonBody<CreateTopicRequest>) -> Result<Response, ApiError> {
    let broker = state.broker.clone();
    let desc = tokio::task::spawn_blocking(move || broker.create_topic(&req))
        .await
        .map_err(|e| ApiError::new(faultline_client::api::ErrorCode::UnknownServerError, e.to_string()))??;
    Ok((StatusCode::CREATED, Json(desc)).into_response())
}

async fn list_topics(State(state): State<AppState>) -> Json<TopicList> {
    Json(TopicList { topics: state.broker.topic_names() })
}

async fn describe_topic(State(state): State<AppState>, Segment(topic): Segment) -> Result<Response, ApiError> {
    Ok(Json(state.broker.describe_topic(&topic)?).into_response())
}

async fn produce(State(state): State<AppState>, path: PartitionPath, JsonBody(req): JsonBody<ProduceRequest>) -> Result<Response, ApiError> {
    let (acks, resp) = state.broker.produce(&path.topic, path.partition, &req).await?;
    let status = if acks == Acks::None { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(resp)).into_response())
}

async fn fetch(State(state): State<AppState>, path: PartitionPath, JsonBody(req): JsonBody<FetchRequest>) -> Result<Response, ApiError> {
    Ok(Json(state.broker.fetch(&path.topic, path.partition, &req).await?).into_response())
}

async fn commit_offsets(State(state): State<AppState>, Segment(group): Segment, JsonBody(req): JsonBody<OffsetCommitRequest>) -> Result<Response, ApiError> {
    Ok(Json(state.groups.commit(&state.broker, &group, &req).await?).into_response())
}

async fn committed_offsets(State(state): State<AppState>, Segment(group): Segment) -> Result<Response, ApiError> {
    Ok(Json(state.groups.fetch(&group)?).into_response())
}
