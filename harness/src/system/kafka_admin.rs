//! What the harness asks any Kafka-protocol cluster, over Kafka's protocol
//! itself (the `kafka-protocol` crate's codecs, one request per short-lived
//! connection, each bounded by a timeout): Metadata (brokers, partition
//! leaders, replicas and ISRs), the active controller (DescribeQuorum under
//! KRaft, Metadata's `controller_id` where DescribeQuorum is not served),
//! high watermarks (ListOffsets), topic creation (CreateTopics) and a
//! group's committed offsets (FindCoordinator, OffsetFetch). A broker's
//! error is data in the answer; only an unreachable or garbled broker is an
//! `Err`, naming the address.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_quorum_request::{PartitionData as QuorumPartition, TopicData as QuorumTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest answer accepted from a broker.
const RESPONSE_BYTES_MAX: usize = 64 << 20;
/// KRaft's metadata log, whose leader is the active controller.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: u32,
    /// `None` while the partition has no leader.
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A cluster's Metadata answer for one topic.
#[derive(Debug, Clone, Default)]
pub struct MetadataView {
    /// `(broker id, host, port)`.
    pub brokers: Vec<(i32, String, u16)>,
    pub controller: Option<i32>,
    /// Empty when the topic is unknown.
    pub partitions: Vec<PartitionView>,
}

/// A client for the cluster whose brokers listen at `bootstrap` (`host:port`).
#[derive(Debug, Clone)]
pub struct KafkaAdmin {
    bootstrap: Vec<String>,
    timeout: Duration,
}

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl KafkaAdmin {
    pub fn new(bootstrap: Vec<String>, timeout: Duration) -> KafkaAdmin {
        KafkaAdmin { bootstrap, timeout }
    }

    /// Sends `req` to `addr` and decodes its answer, within the timeout.
    async fn call<Req: Encodable, Resp: Decodable>(
        &self,
        addr: &str,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        tokio::time::timeout(self.timeout, call(addr, key, version, req))
            .await
            .unwrap_or_else(|_| Err(format!("{addr}: no answer to {key:?} within {:?}", self.timeout)))
    }

    /// The first broker that answers, in bootstrap order.
    async fn any<Req: Encodable, Resp: Decodable>(&self, key: ApiKey, version: i16, req: &Req) -> Result<Resp, String> {
        let mut errors = Vec::new();
        for addr in &self.bootstrap {
            match self.call(addr, key, version, req).await {
                Ok(r) => return Ok(r),
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }

    /// Brokers, controller and `topic`'s partitions, as the first broker that answers sees them.
    pub async fn metadata(&self, topic: &str) -> Result<MetadataView, String> {
        let t = MetadataRequestTopic::default().with_name(Some(TopicName(name(topic))));
        let req = MetadataRequest::default().with_topics(Some(vec![t])).with_allow_auto_topic_creation(false);
        let resp: MetadataResponse = self.any(ApiKey::Metadata, 9, &req).await?;
        let brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), u16::try_from(b.port).unwrap_or(0)))
            .collect();
        let mut partitions: Vec<PartitionView> = resp
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .flat_map(|t| &t.partitions)
            .map(|p| PartitionView {
                partition: p.partition_index.max(0) as u32,
                leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        let controller = (resp.controller_id.0 >= 0).then_some(resp.controller_id.0);
        Ok(MetadataView { brokers, controller, partitions })
    }

    /// The active controller: the leader of KRaft's metadata log
    /// (DescribeQuorum), or Metadata's `controller_id` where DescribeQuorum
    /// is not served (under KRaft that id is an arbitrary broker).
    pub async fn controller(&self) -> Option<i32> {
        let part = QuorumPartition::default().with_partition_index(0);
        let topic = QuorumTopic::default().with_topic_name(TopicName(name(METADATA_TOPIC))).with_partitions(vec![part]);
        let req = DescribeQuorumRequest::default().with_topics(vec![topic]);
        if let Ok(r) = self.any::<_, DescribeQuorumResponse>(ApiKey::DescribeQuorum, 0, &req).await {
            let leader = r.topics.iter().flat_map(|t| &t.partitions).find(|p| p.error_code == 0).map(|p| p.leader_id.0);
            if let Some(id) = leader.filter(|id| *id >= 0) {
                return Some(id);
            }
        }
        self.metadata(METADATA_TOPIC).await.ok()?.controller
    }

    /// Each partition's high watermark, asked of its leader; partitions
    /// without a leader or an answer are left out.
    pub async fn high_watermarks(&self, view: &MetadataView, topic: &str) -> Vec<(u32, i64)> {
        let mut out = Vec::new();
        for p in &view.partitions {
            let Some(addr) = p.leader.and_then(|l| view.brokers.iter().find(|b| b.0 == l)) else { continue };
            let part = ListOffsetsPartition::default().with_partition_index(p.partition as i32).with_timestamp(-1);
            let t = ListOffsetsTopic::default().with_name(TopicName(name(topic))).with_partitions(vec![part]);
            let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t]);
            let Ok(r) = self
                .call::<_, ListOffsetsResponse>(&format!("{}:{}", addr.1, addr.2), ApiKey::ListOffsets, 4, &req)
                .await
            else {
                continue;
            };
            let found = r.topics.iter().flat_map(|t| &t.partitions).find(|x| x.error_code == 0);
            if let Some(x) = found {
                out.push((p.partition, x.offset));
            }
        }
        out
    }

    /// Creates `topic`; `Err` carries the broker's error name and message.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication_factor: u32,
        configs: &[(&str, String)],
    ) -> Result<(), String> {
        let configs = configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig::default().with_name(name(k)).with_value(Some(name(v))))
            .collect();
        let t = CreatableTopic::default()
            .with_name(TopicName(name(topic)))
            .with_num_partitions(partitions as i32)
            .with_replication_factor(replication_factor as i16)
            .with_configs(configs);
        let req = CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(self.timeout.as_millis() as i32);
        let resp: CreateTopicsResponse = self.any(ApiKey::CreateTopics, 5, &req).await?;
        match resp.topics.first() {
            Some(t) if t.error_code == 0 => Ok(()),
            Some(t) => Err(format!(
                "CreateTopics {topic}: error {} {}",
                t.error_code,
                t.error_message.as_deref().unwrap_or("")
            )),
            None => Err(format!("CreateTopics {topic}: an empty answer")),
        }
    }

    /// The offsets `group` committed for `topic`'s partitions (absent: none).
    pub async fn committed(&self, group: &str, topic: &str, partitions: u32) -> Result<Vec<(u32, i64)>, String> {
        let req = FindCoordinatorRequest::default().with_key(name(group)).with_key_type(0);
        let found: FindCoordinatorResponse = self.any(ApiKey::FindCoordinator, 3, &req).await?;
        if found.error_code != 0 {
            return Err(format!("FindCoordinator {group}: error {}", found.error_code));
        }
        let addr = format!("{}:{}", found.host, found.port);
        let t = OffsetFetchRequestTopic::default()
            .with_name(TopicName(name(topic)))
            .with_partition_indexes((0..partitions as i32).collect());
        let req = OffsetFetchRequest::default().with_group_id(GroupId(name(group))).with_topics(Some(vec![t]));
        let resp: OffsetFetchResponse = self.call(&addr, ApiKey::OffsetFetch, 6, &req).await?;
        if resp.error_code != 0 {
            return Err(format!("OffsetFetch {group}: error {}", resp.error_code));
        }
        let offsets = resp.topics.iter().flat_map(|t| &t.partitions);
        Ok(offsets
            .filter(|p| p.committed_offset >= 0)
            .map(|p| (p.partition_index as u32, p.committed_offset))
            .collect())
    }
}

/// One request and its answer on a fresh connection.
async fn call<Req: Encodable, Resp: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Result<Resp, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{addr}: {what}: {e}");
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("faultline-harness")));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(version)).map_err(|e| fail("encoding", &e))?;
    req.encode(&mut body, version).map_err(|e| fail("encoding", &e))?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| fail("connecting", &e))?;
    s.write_all(&frame).await.map_err(|e| fail("sending", &e))?;
    let len = s.read_i32().await.map_err(|e| fail(&format!("reading the answer to {key:?}"), &e))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= RESPONSE_BYTES_MAX)
        .ok_or_else(|| format!("{addr}: a frame of {len} bytes"))?;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.map_err(|e| fail("reading", &e))?;
    let mut buf = Bytes::from(buf);
    let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(version) };
    ResponseHeader::decode(&mut buf, header_version).map_err(|e| fail("decoding the header", &e))?;
    let resp = Resp::decode(&mut buf, version).map_err(|e| fail(&format!("decoding {key:?}"), &e))?;
    if buf.has_remaining() {
        tracing::debug!("{addr}: {} bytes after the {key:?} answer", buf.remaining());
    }
    Ok(resp)
}
