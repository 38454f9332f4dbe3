//! A typed HTTP client for one broker node.
//!
//! Every call has a timeout, and a response that is not a success is decoded
//! into [`ClientError::Api`] with Kafka's error name, so callers can classify
//! outcomes (ok / fail / info) without parsing strings.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::*;

/// What went wrong with one request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error body.
    #[error("{status}: {}: {}", .body.error, .body.message)]
    Api { status: u16, body: ErrorBody },
    /// The request timed out on the client side; the outcome is unknown.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection failed or broke; the outcome may be unknown.
    #[error("transport: {0}")]
    Transport(String),
    /// The node answered something that is not the documented body.
    #[error("undecodable response ({status}): {detail}")]
    Decode { status: u16, detail: String },
}

impl ClientError {
    /// Kafka's error name, when the node gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error),
            _ => None,
        }
    }

    /// A machine-readable name for the error, as histories record it in
    /// `error_code`: Kafka's error name when the node gave one, else what
    /// went wrong on the way (`timeout`, `disconnected`,
    /// `undecodable-response`).
    pub fn code_name(&self) -> String {
        match self {
            ClientError::Api { body, .. } => body.error.to_string(),
            ClientError::Timeout(_) => "timeout".into(),
            ClientError::Transport(_) => "disconnected".into(),
            ClientError::Decode { .. } => "undecodable-response".into(),
        }
    }

    fn from_reqwest(err: reqwest::Error) -> ClientError {
        if err.is_timeout() { ClientError::Timeout(err.to_string()) } else { ClientError::Transport(err.to_string()) }
    }
}

/// Client for one node's HTTP API, e.g. `Client::new("http://127.0.0.1:9092")`.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    /// Applied to every request unless a call gives its own.
    request_timeout: Duration,
}

/// Default per-request timeout; Kafka's `request.timeout.ms` default.
const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Idle pooled connections are dropped quickly, so a connection kept alive
/// across a network partition does not hide the partition from the client.
const POOL_IDLE_TIMEOUT_MS: u64 = 2_000;
/// Connecting to a live node on a LAN takes milliseconds; a connect that
/// takes longer means the node is down or cut off.
const CONNECT_TIMEOUT_MS: u64 = 2_000;

impl Client {
    pub fn new(base_url: impl Into<String>) -> Client {
        Client::with_timeout(base_url, Duration::from_millis(REQUEST_TIMEOUT_MS_DEFAULT))
    }

    pub fn with_timeout(base_url: impl Into<String>, request_timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_TIMEOUT_MS))
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .tcp_nodelay(true)
            .build()
            .expect("a reqwest client without TLS always builds");
        Client { http, base_url: base_url.into().trim_end_matches('/').to_string(), request_timeout }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get(paths::HEALTH.to_string()).await
    }

    /// `/metrics`: Prometheus text, as it is.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let send = self.http.get(format!("{}{}", self.base_url, paths::METRICS)).timeout(self.request_timeout).send();
        let resp = send.await.map_err(ClientError::from_reqwest)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(ClientError::from_reqwest)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(ClientError::Decode { status, detail: format!("/metrics answered {status}") })
        }
    }

    pub async fn cluster(&self) -> Result<ClusterInfo, ClientError> {
        self.get(paths::CLUSTER.to_string()).await
    }

    pub async fn create_topic(&self, req: &CreateTopicRequest) -> Result<TopicDescription, ClientError> {
        self.post(paths::TOPICS.to_string(), req, self.request_timeout).await
    }

    pub async fn list_topics(&self) -> Result<TopicList, ClientError> {
        self.get(paths::TOPICS.to_string()).await
    }

    pub async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, ClientError> {
        self.get(paths::TOPIC.replace("{topic}", topic)).await
    }

    /// Produces one batch. The HTTP timeout is the request's broker-side
    /// `timeout_ms` plus a margin, so the broker's answer wins when it exists.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        req: &ProduceRequest,
    ) -> Result<ProduceResponse, ClientError> {
        let timeout = req.timeout_ms.map(|ms| Duration::from_millis(ms + 1_000)).unwrap_or(self.request_timeout);
        self.post(partition_path(paths::PRODUCE, topic, partition), req, timeout).await
    }

    pub async fn fetch(&self, topic: &str, partition: u32, req: &FetchRequest) -> Result<FetchResponse, ClientError> {
        let timeout = self.request_timeout + Duration::from_millis(req.max_wait_ms.unwrap_or(0));
        self.post(partition_path(paths::FETCH, topic, partition), req, timeout).await
    }

    pub async fn init_producer_id(&self) -> Result<InitProducerIdResponse, ClientError> {
        self.post(paths::INIT_PRODUCER_ID.to_string(), &serde_json::json!({}), self.request_timeout).await
    }

    /// Admin hook (nodes with `faultline.admin.hooks=true` only): pause or
    /// resume this node's follower fetchers.
    pub async fn set_fetchers_paused(&self, paused: bool) -> Result<FetcherControl, ClientError> {
        self.post(paths::ADMIN_FETCHERS.to_string(), &FetcherControl { paused }, self.request_timeout).await
    }

    pub async fn commit_offsets(
        &self,
        group: &str,
        req: &OffsetCommitRequest,
    ) -> Result<OffsetCommitResponse, ClientError> {
        self.post(paths::GROUP_OFFSETS.replace("{group}", group), req, self.request_timeout).await
    }

    pub async fn committed_offsets(&self, group: &str) -> Result<OffsetFetchResponse, ClientError> {
        self.get(paths::GROUP_OFFSETS.replace("{group}", group)).await
    }

    /// JoinGroup: waits for the rebalance, so the HTTP timeout is the
    /// rebalance timeout (or the initial delay, up to `initial_delay`) plus
    /// the request timeout.
    pub async fn join_group(
        &self,
        group: &str,
        req: &JoinGroupRequest,
        initial_delay: Duration,
    ) -> Result<JoinGroupResponse, ClientError> {
        let timeout = self.request_timeout + Duration::from_millis(req.rebalance_timeout_ms).max(initial_delay);
        self.post(paths::GROUP_JOIN.replace("{group}", group), req, timeout).await
    }

    /// SyncGroup: a follower waits for the leader's assignment, at most
    /// `wait` (the leader's session timeout) plus the request timeout.
    pub async fn sync_group(
        &self,
        group: &str,
        req: &SyncGroupRequest,
        wait: Duration,
    ) -> Result<SyncGroupResponse, ClientError> {
        self.post(paths::GROUP_SYNC.replace("{group}", group), req, self.request_timeout + wait).await
    }

    pub async fn heartbeat(&self, group: &str, req: &MemberRequest) -> Result<MemberResponse, ClientError> {
        self.post(paths::GROUP_HEARTBEAT.replace("{group}", group), req, self.request_timeout).await
    }

    pub async fn leave_group(&self, group: &str, req: &MemberRequest) -> Result<MemberResponse, ClientError> {
        self.post(paths::GROUP_LEAVE.replace("{group}", group), req, self.request_timeout).await
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        self.get(paths::GROUP.replace("{group}", group)).await
    }

    /// This node's replica of `topic/partition`, record by record.
    pub async fn replica_log(&self, topic: &str, partition: u32) -> Result<ReplicaLogDump, ClientError> {
        self.get(partition_path(paths::DEBUG_REPLICA_LOG, topic, partition)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: String) -> Result<T, ClientError> {
        let send = self.http.get(format!("{}{}", self.base_url, path)).timeout(self.request_timeout).send();
        decode(send.await.map_err(ClientError::from_reqwest)?).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: String,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let send = self.http.post(format!("{}{}", self.base_url, path)).json(body).timeout(timeout).send();
        decode(send.await.map_err(ClientError::from_reqwest)?).await
    }
}

fn partition_path(template: &str, topic: &str, partition: u32) -> String {
    template.replace("{topic}", topic).replace("{partition}", &partition.to_string())
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(ClientError::from_reqwest)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode { status: status.as_u16(), detail: e.to_string() });
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(ClientError::Api { status: status.as_u16(), body }),
        Err(_) => Err(ClientError::Decode {
            status: status.as_u16(),
            detail: format!(
                "{} with a non-error body: {}",
                status.canonical_reason().unwrap_or("?"),
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
        }),
    }
}
