//! Admin over Kafka's protocol: CreateTopics through the controller, as
//! the HTTP API creates, and DescribeConfigs for the keys this node has:
//! a topic's effective settings (its overrides, else the broker's value)
//! and the broker's own keys.

use crate::broker::control::QuorumView;
use kafka_protocol::messages::describe_quorum_response::{
    PartitionData as QuorumPartition, ReplicaState, TopicData as QuorumTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use std::collections::BTreeMap;

use faultline_client::api::CreateTopicRequest as HttpCreate;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Node;
use super::api::code;
use crate::config::{BROKER_KEYS, KeySpec, Kind, TOPIC_KEYS};
use crate::error::ApiError;

/// Kafka's resource types in DescribeConfigs.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One effective setting: name, value, where it came from, its spec.
struct Setting {
    name: &'static str,
    value: Option<String>,
    source: i8,
    spec: &'static KeySpec,
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The HTTP create a CreateTopics entry asks for; -1 means the broker's
/// default, as in Kafka. Manual replica assignments are not supported.
fn create_of(t: &CreatableTopic) -> Result<HttpCreate, ApiError> {
    if !t.assignments.is_empty() {
        return Err(ApiError::invalid("manual replica assignments are not supported; give partitions and a factor"));
    }
    let configs = t
        .configs
        .iter()
        .map(|c| (c.name.to_string(), serde_json::Value::String(c.value.as_deref().unwrap_or_default().into())))
        .collect();
    Ok(HttpCreate {
        name: t.name.0.to_string(),
        partitions: (t.num_partitions != -1).then_some(i64::from(t.num_partitions)),
        replication_factor: (t.replication_factor != -1).then_some(i64::from(t.replication_factor)),
        configs,
    })
}

/// Creates each topic in turn (or only checks it, with `validate_only`).
pub async fn create_topics(req: &CreateTopicsRequest, node: &Node) -> CreateTopicsResponse {
    let broker = &node.broker;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let result = CreatableTopicResult::default().with_name(t.name.clone());
        let outcome = match create_of(t) {
            Ok(create) if req.validate_only => broker.validate_create_topic(&create).map(|()| create),
            Ok(create) => broker.create_topic(&create).await.map(|_| create),
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(_) => {
                let desc = broker.describe_topic(&t.name.0).ok();
                let overrides = desc.as_ref().map(|d| d.configs.clone()).unwrap_or_default();
                let configs = topic_settings(node, &overrides)
                    .into_iter()
                    .map(|s| {
                        CreatableTopicConfigs::default()
                            .with_name(text(s.name))
                            .with_value(s.value.map(text))
                            .with_config_source(s.source)
                    })
                    .collect();
                let partitions = desc.as_ref().map_or(t.num_partitions, |d| d.partitions.len() as i32);
                let rf = desc
                    .as_ref()
                    .and_then(|d| d.partitions.first())
                    .map_or(t.replication_factor, |p| p.replicas.len() as i16);
                result
                    .with_error_message(None)
                    .with_num_partitions(partitions)
                    .with_replication_factor(rf)
                    .with_configs(Some(configs))
            }
            Err(e) => result
                .with_error_code(e.code.kafka_code())
                .with_error_message(Some(text(e.message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// A topic's effective settings: each topic key's override, else the value
/// of the broker key that supplies its default.
fn topic_settings(node: &Node, overrides: &BTreeMap<String, String>) -> Vec<Setting> {
    let settings = &node.broker.config.settings;
    TOPIC_KEYS
        .iter()
        .map(|(spec, broker_key)| match overrides.get(spec.name) {
            Some(v) => Setting { name: spec.name, value: Some(v.clone()), source: SOURCE_TOPIC, spec },
            None => {
                let broker_spec = BROKER_KEYS.iter().find(|s| s.name == *broker_key).expect("a broker key");
                let value = settings.get(broker_key).map(str::to_string);
                let source =
                    if value.as_deref() == broker_spec.default { SOURCE_DEFAULT } else { SOURCE_STATIC_BROKER };
                Setting { name: spec.name, value, source, spec: broker_spec }
            }
        })
        .collect()
}

/// The broker's own keys with their values.
fn broker_settings(node: &Node) -> Vec<Setting> {
    let settings = &node.broker.config.settings;
    BROKER_KEYS
        .iter()
        .map(|spec| {
            let value = settings.get(spec.name).map(str::to_string);
            let source = if value.as_deref() == spec.default { SOURCE_DEFAULT } else { SOURCE_STATIC_BROKER };
            Setting { name: spec.name, value, source, spec }
        })
        .collect()
}

/// Kafka's config types (v3+): BOOLEAN 1, STRING 2, LONG 5.
fn config_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => 1,
        Kind::Text => 2,
        Kind::Int { .. } => 5,
    }
}

/// Describes topics and this broker; other resources are refused per
/// resource with `INVALID_REQUEST`.
pub fn describe_configs(req: &DescribeConfigsRequest, version: i16, node: &Node) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let settings = match resource_settings(r.resource_type, &r.resource_name, node) {
                Ok(s) => s,
                Err(e) => return result.with_error_code(e.code.kafka_code()).with_error_message(Some(text(e.message))),
            };
            let wanted =
                |name: &str| r.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| **k == *name));
            let configs = settings
                .into_iter()
                .filter(|s| wanted(s.name))
                .map(|s| {
                    let entry = DescribeConfigsResourceResult::default()
                        .with_name(text(s.name))
                        .with_value(s.value.map(text))
                        .with_read_only(true)
                        .with_config_source(s.source);
                    let documented = version >= 3 && req.include_documentation && !s.spec.doc.is_empty();
                    entry
                        .with_config_type(if version >= 3 { config_type(s.spec.kind) } else { 0 })
                        .with_documentation(documented.then(|| text(s.spec.doc)))
                })
                .collect();
            result.with_error_code(code::NONE).with_error_message(None).with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn resource_settings(resource_type: i8, name: &str, node: &Node) -> Result<Vec<Setting>, ApiError> {
    match resource_type {
        RESOURCE_TOPIC => {
            let desc = node.broker.describe_topic(name)?;
            Ok(topic_settings(node, &desc.configs))
        }
        RESOURCE_BROKER if name.is_empty() || name == node.broker.config.node_id.to_string() => {
            Ok(broker_settings(node))
        }
        RESOURCE_BROKER => Err(ApiError::invalid(format!(
            "broker `{name}` is not this node ({}); ask that broker",
            node.broker.config.node_id
        ))),
        other => Err(ApiError::invalid(format!("resource type {other} is not supported (topics 2, brokers 4)"))),
    }
}

/// KRaft's metadata log, whose leader is the active controller.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// DescribeQuorum: the controller quorum as this node's Raft state shows it
/// (leader, epoch = term, voters, applied offset). Kafka answers it on the
/// active controller only; any node answers here, each with its own view,
/// which names the same leader once the quorum has one. Voters' log end
/// offsets are not tracked per voter, so they read -1 (unknown).
pub fn describe_quorum(req: &DescribeQuorumRequest, node: &Node) -> DescribeQuorumResponse {
    let view = node.broker.control().quorum();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let metadata_log = t.topic_name.as_str() == METADATA_TOPIC;
            let partitions =
                t.partitions.iter().map(|p| quorum_partition(view.as_ref(), metadata_log, p.partition_index)).collect();
            QuorumTopic::default().with_topic_name(t.topic_name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

/// One asked partition: the quorum for the metadata log's partition 0,
/// `UNKNOWN_TOPIC_OR_PARTITION` for any other.
fn quorum_partition(view: Option<&QuorumView>, metadata_log: bool, index: i32) -> QuorumPartition {
    let base = QuorumPartition::default().with_partition_index(index);
    let Some(q) = view.filter(|_| metadata_log && index == 0) else {
        return base.with_error_code(faultline_client::api::ErrorCode::UnknownTopicOrPartition.kafka_code());
    };
    let voters = q.voters.iter().map(|v| ReplicaState::default().with_replica_id(BrokerId(*v)).with_log_end_offset(-1));
    base.with_leader_id(BrokerId(q.leader.unwrap_or(-1)))
        .with_leader_epoch(q.epoch)
        .with_high_watermark(q.applied_offset)
        .with_current_voters(voters.collect())
}
