//! The Kafka APIs the listener answers, the versions of each, and their
//! handlers. A known API at a version outside its range is answered with
//! `UNSUPPORTED_VERSION` (ApiVersions in its v0 form, so the client can
//! retry); an API not in [`SUPPORTED`] closes the connection.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest, DescribeConfigsRequest,
    DescribeQuorumRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{Node, Reply};
use crate::broker::Broker;

/// Each supported API with its oldest and newest version.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Produce, 3, 9),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeQuorum, 0, 1),
];

/// Kafka's error codes the listener sends.
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNSUPPORTED_VERSION: i16 = 35;
}

/// Answers one request whose header was read; `None` when Kafka sends no
/// answer (produce with acks=0).
pub async fn handle(key: ApiKey, version: i16, mut body: Bytes, node: &Node) -> Result<Option<Reply>, String> {
    let Some(&(_, min, max)) = SUPPORTED.iter().find(|(k, _, _)| *k == key) else {
        return Err(format!("unsupported API {key:?}"));
    };
    if !(min..=max).contains(&version) {
        return unsupported_version(key).map(Some);
    }
    let bad = |e: anyhow::Error| format!("undecodable {key:?} v{version} request: {e}");
    let broker = &*node.broker;
    match key {
        ApiKey::ApiVersions => {
            ApiVersionsRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&api_versions(code::NONE), version).map(Some)
        }
        ApiKey::Metadata => {
            let req = MetadataRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&metadata(&req, broker), version).map(Some)
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::fetch::fetch(&req, version, broker).await, version).map(Some)
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::fetch::list_offsets(&req, version, broker), version).map(Some)
        }
        ApiKey::InitProducerId => {
            let req = InitProducerIdRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::produce::init_producer_id(&req, broker).await, version).map(Some)
        }
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut body, version).map_err(bad)?;
            super::produce::produce(&req, version, broker).await.map(|r| Reply::encode(&r, version)).transpose()
        }
        ApiKey::FindCoordinator => {
            let req = FindCoordinatorRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::groups::find_coordinator(&req, version, node).await, version).map(Some)
        }
        ApiKey::OffsetCommit => {
            let req = OffsetCommitRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::groups::offset_commit(&req, node).await, version).map(Some)
        }
        ApiKey::OffsetFetch => {
            let req = OffsetFetchRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::groups::offset_fetch(&req, version, node).await, version).map(Some)
        }
        ApiKey::JoinGroup => {
            let req = JoinGroupRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::membership::join_group(&req, version, node).await, version).map(Some)
        }
        ApiKey::SyncGroup => {
            let req = SyncGroupRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::membership::sync_group(&req, node).await, version).map(Some)
        }
        ApiKey::Heartbeat => {
            let req = HeartbeatRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::membership::heartbeat(&req, node).await, version).map(Some)
        }
        ApiKey::LeaveGroup => {
            let req = LeaveGroupRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::membership::leave_group(&req, version, node).await, version).map(Some)
        }
        ApiKey::CreateTopics => {
            let req = CreateTopicsRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::admin::create_topics(&req, node).await, version).map(Some)
        }
        ApiKey::DescribeConfigs => {
            let req = DescribeConfigsRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::admin::describe_configs(&req, version, node), version).map(Some)
        }
        ApiKey::DescribeQuorum => {
            let req = DescribeQuorumRequest::decode(&mut body, version).map_err(bad)?;
            Reply::encode(&super::admin::describe_quorum(&req, node), version).map(Some)
        }
        _ => Err(format!("unsupported API {key:?}")),
    }
}

/// `UNSUPPORTED_VERSION`: for ApiVersions, a v0 answer with the ranges;
/// for another API, the connection is closed (its error field's place
/// differs by API, and clients ask ApiVersions first).
fn unsupported_version(key: ApiKey) -> Result<Reply, String> {
    match key {
        ApiKey::ApiVersions => Reply::encode(&api_versions(code::UNSUPPORTED_VERSION), 0),
        _ => Err(format!("{key:?} at a version outside the advertised range")),
    }
}

fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let keys = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            ApiVersion::default().with_api_key(*k as i16).with_min_version(*min).with_max_version(*max)
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(keys)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `host:port` → (host, port), for a broker's advertised Kafka endpoint.
pub(super) fn host_port(endpoint: &str) -> Option<(String, i32)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port.parse().ok()?))
}

/// The brokers with a Kafka listener, the controller, and the requested
/// topics (all of them when none are named), from this node's metadata.
fn metadata(req: &MetadataRequest, broker: &Broker) -> MetadataResponse {
    let image = broker.image();
    let brokers = image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let (host, port) = host_port(b.kafka.as_deref()?)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str_bytes(&host))
                    .with_port(port),
            )
        })
        .collect();
    let names: Vec<String> = match &req.topics {
        Some(topics) => topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect(),
        None => image.topics.keys().cloned().collect(),
    };
    let topics = names
        .iter()
        .map(|name| {
            let topic = MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(name))));
            let Some(t) = image.topics.get(name) else {
                return topic.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
            };
            let partitions = t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let ids = |v: &[i32]| v.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
                    let error = if p.leader.is_some() { code::NONE } else { code::LEADER_NOT_AVAILABLE };
                    MetadataResponsePartition::default()
                        .with_error_code(error)
                        .with_partition_index(i as i32)
                        .with_leader_id(BrokerId(p.leader.unwrap_or(-1)))
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(ids(&p.replicas))
                        .with_isr_nodes(ids(&p.isr))
                })
                .collect();
            topic.with_is_internal(name.starts_with("__")).with_partitions(partitions)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes("faultline")))
        .with_controller_id(BrokerId(broker.control().active_controller().unwrap_or(-1)))
        .with_topics(topics)
}
