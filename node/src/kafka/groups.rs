//! Offsets over Kafka's protocol: FindCoordinator, OffsetCommit and
//! OffsetFetch, through the same `__consumer_offsets` store and the same
//! fencing as the HTTP API: a simple consumer (generation -1, no member)
//! commits to an empty group, a member with its current generation.

use faultline_client::api::{OffsetCommit, OffsetCommitRequest as HttpCommit};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Node;
use super::api::{code, host_port};
use crate::error::ApiError;

/// FindCoordinator's key type for groups; transactions are not served.
const KEY_TYPE_GROUP: i8 = 0;

/// One group's coordinator: node id, host and port, or the error.
async fn coordinator(node: &Node, key_type: i8, group: &str) -> Result<(i32, String, i32), (i16, String)> {
    if key_type != KEY_TYPE_GROUP {
        return Err((faultline_client::api::ErrorCode::InvalidRequest.kafka_code(), "only group coordinators".into()));
    }
    let err = |e: ApiError| (e.code.kafka_code(), e.message);
    let id = node.groups.coordinator_id(&node.broker, group).await.map_err(err)?;
    let image = node.broker.image();
    let endpoint = image.brokers.get(&id).and_then(|b| host_port(b.kafka.as_deref()?));
    let (host, port) = endpoint.ok_or((code::COORDINATOR_NOT_AVAILABLE, format!("node {id} has no Kafka listener")))?;
    Ok((id, host, port))
}

/// v0–3 ask for one key; v4 for a list of keys, answered per key.
pub async fn find_coordinator(req: &FindCoordinatorRequest, version: i16, node: &Node) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 { req.coordinator_keys.clone() } else { vec![req.key.clone()] };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let found = coordinator(node, req.key_type, &key).await;
        let c = Coordinator::default().with_key(key);
        coordinators.push(match found {
            Ok((id, host, port)) => c
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_error_message(None),
            Err((error, message)) => c
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(error)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().expect("one key");
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

/// Commits the partitions the metadata knows as one durable batch; each
/// partition's answer is that batch's outcome, or its own refusal.
pub async fn offset_commit(req: &OffsetCommitRequest, node: &Node) -> OffsetCommitResponse {
    let image = node.broker.image();
    let known =
        |topic: &str, p: i32| image.topics.get(topic).is_some_and(|t| p >= 0 && (p as usize) < t.partitions.len());
    let offsets: Vec<OffsetCommit> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(t, p)| known(&t.name.0, p.partition_index) && p.committed_offset >= 0)
        .map(|(t, p)| OffsetCommit {
            topic: t.name.0.to_string(),
            partition: p.partition_index as u32,
            offset: p.committed_offset,
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).filter(|m| !m.is_empty()),
        })
        .collect();
    let outcome = if offsets.is_empty() {
        code::NONE
    } else {
        let commit = HttpCommit {
            offsets,
            generation: req.generation_id_or_member_epoch.max(-1),
            member_id: req.member_id.to_string(),
        };
        let done = node.groups.commit(&node.broker, &req.group_id.0, &commit).await;
        done.map_or_else(|e| e.code.kafka_code(), |_| code::NONE)
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match (known(&t.name.0, p.partition_index), p.committed_offset >= 0) {
                        (false, _) => code::UNKNOWN_TOPIC_OR_PARTITION,
                        (true, false) => faultline_client::api::ErrorCode::InvalidRequest.kafka_code(),
                        (true, true) => outcome,
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// The group's committed offsets for the named partitions (-1 where none
/// is committed), or for every partition it committed when none are named.
pub async fn offset_fetch(req: &OffsetFetchRequest, version: i16, node: &Node) -> OffsetFetchResponse {
    let committed = match node.groups.fetch(&node.broker, &req.group_id.0).await {
        Ok(r) => r.offsets,
        Err(e) => {
            let response = OffsetFetchResponse::default();
            // v2+ has a top-level error; v1 only per-partition codes.
            return if version >= 2 { response.with_error_code(e.code.kafka_code()) } else { response };
        }
    };
    let entry = |topic: &str, p: i32| {
        let found = committed.iter().find(|c| c.topic == topic && c.partition as i32 == p);
        OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(found.map_or(-1, |c| c.offset))
            .with_committed_leader_epoch(-1)
            .with_metadata(Some(StrBytes::from_string(found.and_then(|c| c.metadata.clone()).unwrap_or_default())))
    };
    let topics = match &req.topics {
        Some(topics) => topics
            .iter()
            .map(|t| {
                let partitions = t.partition_indexes.iter().map(|p| entry(&t.name.0, *p)).collect();
                OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
            })
            .collect(),
        None => {
            let mut names: Vec<&str> = committed.iter().map(|c| c.topic.as_str()).collect();
            names.dedup();
            names
                .into_iter()
                .map(|name| {
                    let partitions =
                        committed.iter().filter(|c| c.topic == name).map(|c| entry(name, c.partition as i32)).collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect()
        }
    };
    OffsetFetchResponse::default().with_topics(topics)
}
