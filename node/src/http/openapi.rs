//! The OpenAPI 3.1 document served at `GET /openapi.json`: every endpoint,
//! its request and response bodies, and every error it can return.
//!
//! Paths come from `faultline_client::api::paths`, the same constants the
//! router uses, and a test checks that every routed path is documented.

use faultline_client::api::{ErrorCode, paths};
use serde_json::{Value, json};

use crate::error::status_of;

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// One operation: its summary, request body schema, success status and
/// schema, and the error names it can return.
fn op(id: &str, summary: &str, request: Option<&str>, ok: (u16, &str), errors: &[ErrorCode]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.0.to_string(),
        json!({ "description": "success", "content": { "application/json": { "schema": schema(ok.1) } } }),
    );
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
    for &e in errors {
        by_status.entry(status_of(e).as_u16()).or_default().push(e.name());
    }
    for (status, names) in by_status {
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("error: {}", names.join(", ")),
                "content": { "application/json": { "schema": schema("ErrorBody"), "x-error-names": names } }
            }),
        );
    }
    let mut o = json!({ "operationId": id, "summary": summary, "responses": responses });
    if let Some(r) = request {
        o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema(r) } } });
    }
    o
}

fn path_params(names: &[&str]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|n| {
                let ty = if *n == "partition" { "integer" } else { "string" };
                json!({ "name": n, "in": "path", "required": true, "schema": { "type": ty } })
            })
            .collect(),
    )
}

pub fn document() -> Value {
    let mut p = serde_json::Map::new();
    node_paths(&mut p);
    topic_paths(&mut p);
    record_paths(&mut p);
    producer_and_admin_paths(&mut p);
    debug_paths(&mut p);
    group_paths(&mut p);
    let all_errors: Vec<&str> = ErrorCode::ALL.iter().map(|e| e.name()).collect();
    json!({
        "openapi": "3.1.0",
        "info": { "title": "faultline-node", "version": env!("CARGO_PKG_VERSION"),
                  "description": "A Kafka-like broker's HTTP/JSON API. Errors carry Kafka's error names." },
        "paths": p,
        "components": { "schemas": schemas(&all_errors) },
    })
}

/// The node's own endpoints. Metrics and this document are not JSON, or
/// not of a named schema, so they are spelled out rather than built by `op`.
fn node_paths(p: &mut serde_json::Map<String, Value>) {
    p.insert(
        paths::HEALTH.into(),
        json!({ "get": op("health", "Liveness: the node is up and serving.", None, (200, "Health"), &[]) }),
    );
    let metrics = json!({
        "operationId": "metrics",
        "summary": "Prometheus text-format metrics.",
        "responses": { "200": {
            "description": "metrics",
            "content": { "text/plain": { "schema": { "type": "string" } } },
        } },
    });
    p.insert(paths::METRICS.into(), json!({ "get": metrics }));
    let openapi = json!({
        "operationId": "openapi",
        "summary": "This document.",
        "responses": { "200": {
            "description": "OpenAPI 3.1",
            "content": { "application/json": { "schema": { "type": "object" } } },
        } },
    });
    p.insert(paths::OPENAPI.into(), json!({ "get": openapi }));
    let cluster =
        op("cluster", "Brokers, controller, metadata offset and active bug switches.", None, (200, "ClusterInfo"), &[]);
    p.insert(paths::CLUSTER.into(), json!({ "get": cluster }));
}

fn topic_paths(p: &mut serde_json::Map<String, Value>) {
    use ErrorCode::*;
    let create_errors = [
        TopicAlreadyExists,
        InvalidTopicException,
        InvalidPartitions,
        InvalidReplicationFactor,
        InvalidConfig,
        InvalidRequest,
        MessageTooLarge,
        KafkaStorageError,
    ];
    let list = op("listTopics", "Names of all topics, internal ones included.", None, (200, "TopicList"), &[]);
    let create =
        op("createTopic", "Create a topic.", Some("CreateTopicRequest"), (201, "TopicDescription"), &create_errors);
    p.insert(paths::TOPICS.into(), json!({ "get": list, "post": create }));
    let describe = op(
        "describeTopic",
        "Per partition: leader, epoch, replicas, ISR, high watermark, log end offset.",
        None,
        (200, "TopicDescription"),
        &[UnknownTopicOrPartition],
    );
    p.insert(paths::TOPIC.into(), json!({ "parameters": path_params(&["topic"]), "get": describe }));
}

/// Produce and fetch. Produce has a second success status (202 for acks=0)
/// that `op` cannot express, so it is added afterwards.
fn record_paths(p: &mut serde_json::Map<String, Value>) {
    use ErrorCode::*;
    let produce_errors = [
        UnknownTopicOrPartition,
        InvalidTopicException,
        InvalidRequiredAcks,
        InvalidRequest,
        MessageTooLarge,
        NotEnoughReplicas,
        NotEnoughReplicasAfterAppend,
        NotLeaderOrFollower,
        RequestTimedOut,
        KafkaStorageError,
        InvalidProducerEpoch,
        OutOfOrderSequenceNumber,
    ];
    let fetch_errors = [
        UnknownTopicOrPartition,
        InvalidRequest,
        MessageTooLarge,
        OffsetOutOfRange,
        NotLeaderOrFollower,
        KafkaStorageError,
    ];
    let mut produce = op(
        "produce",
        "Append one batch. acks=0 is answered 202 with no offset once queued.",
        Some("ProduceRequest"),
        (200, "ProduceResponse"),
        &produce_errors,
    );
    produce["responses"]["202"] = json!({
        "description": "acks=0: queued, never acknowledged",
        "content": { "application/json": { "schema": schema("ProduceResponse") } },
    });
    p.insert(paths::PRODUCE.into(), json!({ "parameters": path_params(&["topic", "partition"]), "post": produce }));
    let fetch = op(
        "fetch",
        "Read records below the high watermark from an offset, with optional long poll.",
        Some("FetchRequest"),
        (200, "FetchResponse"),
        &fetch_errors,
    );
    p.insert(paths::FETCH.into(), json!({ "parameters": path_params(&["topic", "partition"]), "post": fetch }));
}

fn producer_and_admin_paths(p: &mut serde_json::Map<String, Value>) {
    use ErrorCode::*;
    let init_producer_id = op(
        "initProducerId",
        "Allocate a cluster-unique producer id (epoch 0) for an idempotent producer.",
        None,
        (200, "InitProducerIdResponse"),
        &[CoordinatorNotAvailable, RequestTimedOut],
    );
    p.insert(paths::INIT_PRODUCER_ID.into(), json!({ "post": init_producer_id }));
    let admin_fetchers = op(
        "adminFetchers",
        "Admin hook (faultline.admin.hooks=true only): pause or resume this node's follower fetchers.",
        Some("FetcherControl"),
        (200, "FetcherControl"),
        &[InvalidRequest],
    );
    p.insert(paths::ADMIN_FETCHERS.into(), json!({ "post": admin_fetchers }));
}

fn debug_paths(p: &mut serde_json::Map<String, Value>) {
    use ErrorCode::*;
    let replica_log = op(
        "debugReplicaLog",
        "This node's replica of a partition, record by record: [offset, leader_epoch, value].",
        None,
        (200, "ReplicaLogDump"),
        &[UnknownTopicOrPartition, NotLeaderOrFollower, KafkaStorageError],
    );
    p.insert(
        paths::DEBUG_REPLICA_LOG.into(),
        json!({ "parameters": path_params(&["topic", "partition"]), "get": replica_log }),
    );
    let history = op(
        "debugHistory",
        "Every leader and ISR change of a partition: epoch, leader, ISR, clean or unclean.",
        None,
        (200, "PartitionHistory"),
        &[UnknownTopicOrPartition],
    );
    p.insert(
        paths::DEBUG_HISTORY.into(),
        json!({ "parameters": path_params(&["topic", "partition"]), "get": history }),
    );
}

fn group_paths(p: &mut serde_json::Map<String, Value>) {
    use ErrorCode::*;
    let commit_errors = [
        InvalidGroupId,
        UnknownTopicOrPartition,
        InvalidRequest,
        MessageTooLarge,
        RequestTimedOut,
        CoordinatorNotAvailable,
        NotCoordinator,
        NotEnoughReplicas,
        KafkaStorageError,
    ];
    let committed =
        op("committedOffsets", "The group's committed offsets.", None, (200, "OffsetFetchResponse"), &[InvalidGroupId]);
    let commit = op(
        "commitOffsets",
        "Commit offsets durably to __consumer_offsets (acks=all).",
        Some("OffsetCommitRequest"),
        (200, "OffsetCommitResponse"),
        &commit_errors,
    );
    p.insert(
        paths::GROUP_OFFSETS.into(),
        json!({ "parameters": path_params(&["group"]), "get": committed, "post": commit }),
    );
}

fn int() -> Value {
    json!({ "type": "integer" })
}
fn string() -> Value {
    json!({ "type": "string" })
}
fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

/// All component schemas, gathered from per-area groups so that each group
/// stays readable; the names are unique across groups.
fn schemas(all_errors: &[&str]) -> Value {
    let mut all = serde_json::Map::new();
    for group in [node_schemas(all_errors), topic_schemas(), record_schemas(), group_schemas(), debug_schemas()] {
        let Value::Object(group) = group else { unreachable!("schema groups are objects") };
        all.extend(group);
    }
    Value::Object(all)
}

fn node_schemas(all_errors: &[&str]) -> Value {
    let broker =
        obj(&["id", "address", "fenced"], json!({ "id": int(), "address": string(), "fenced": { "type": "boolean" } }));
    json!({
        "ErrorBody": obj(&["error", "message"], json!({
            "error": { "type": "string", "enum": all_errors },
            "message": string(),
            "leader_id": int(), "leader_address": string(),
        })),
        "Health": obj(&["status", "node_id"], json!({ "status": string(), "node_id": int() })),
        "ClusterInfo": obj(&["node_id", "brokers", "metadata_offset", "bugs", "version"], json!({
            "node_id": int(), "controller": int(), "metadata_offset": int(), "version": string(),
            "bugs": { "type": "array", "items": string() }, "admin_hooks": { "type": "boolean" },
            "brokers": { "type": "array", "items": broker },
        })),
        "FetcherControl": obj(&["paused"], json!({ "paused": { "type": "boolean" } })),
        "InitProducerIdResponse": obj(
            &["producer_id", "producer_epoch"],
            json!({ "producer_id": int(), "producer_epoch": int() }),
        ),
    })
}

fn topic_schemas() -> Value {
    let partition = obj(
        &["partition", "leader_epoch", "replicas", "isr", "high_watermark", "log_end_offset", "log_start_offset"],
        json!({
            "partition": int(), "leader": int(), "leader_epoch": int(),
            "replicas": { "type": "array", "items": int() }, "isr": { "type": "array", "items": int() },
            "high_watermark": int(), "log_end_offset": int(), "log_start_offset": int(),
        }),
    );
    json!({
        "TopicList": obj(&["topics"], json!({ "topics": { "type": "array", "items": string() } })),
        "CreateTopicRequest": obj(&["name"], json!({
            "name": { "type": "string", "pattern": "^[a-zA-Z0-9._-]{1,249}$" },
            "partitions": int(), "replication_factor": int(),
            "configs": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
        })),
        "TopicDescription": obj(&["name", "internal", "partitions", "configs"], json!({
            "name": string(), "internal": { "type": "boolean" },
            "configs": { "type": "object", "additionalProperties": string() },
            "partitions": { "type": "array", "items": partition },
        })),
    })
}

fn record_schemas() -> Value {
    let produced = obj(&["value"], json!({ "key": string(), "value": string(), "timestamp": int() }));
    let fetched = obj(
        &["offset", "leader_epoch", "timestamp", "value"],
        json!({ "offset": int(), "leader_epoch": int(), "timestamp": int(), "key": string(), "value": string() }),
    );
    json!({
        "ProduceRequest": obj(&["records"], json!({
            "acks": {
                "oneOf": [
                    { "type": "integer", "enum": [0, 1, -1] },
                    { "type": "string", "enum": ["0", "1", "-1", "all"] },
                ],
                "default": "all",
            },
            "timeout_ms": int(), "producer_id": int(), "producer_epoch": int(), "base_sequence": int(),
            "records": { "type": "array", "minItems": 1, "items": produced },
        })),
        "ProduceResponse": obj(&["base_offset"], json!({
            "base_offset": { "type": ["integer", "null"] },
            "log_start_offset": { "type": ["integer", "null"] },
        })),
        "FetchRequest": obj(
            &["offset"],
            json!({ "offset": int(), "max_records": int(), "max_bytes": int(), "max_wait_ms": int() }),
        ),
        "FetchResponse": obj(&["records", "high_watermark", "log_start_offset", "next_offset"], json!({
            "high_watermark": int(), "log_start_offset": int(), "next_offset": int(),
            "records": { "type": "array", "items": fetched },
        })),
    })
}

fn group_schemas() -> Value {
    let offsets = json!({ "type": "array", "items": schema("OffsetCommit") });
    json!({
        "OffsetCommitRequest": obj(&["offsets"], json!({ "offsets": offsets.clone() })),
        "OffsetCommit": obj(
            &["topic", "partition", "offset"],
            json!({ "topic": string(), "partition": int(), "offset": int(), "metadata": string() }),
        ),
        "OffsetCommitResponse": obj(&["committed"], json!({ "committed": int() })),
        "OffsetFetchResponse": obj(
            &["group", "offsets"],
            json!({ "group": string(), "offsets": offsets }),
        ),
    })
}

fn debug_schemas() -> Value {
    let replica_log_required = [
        "topic",
        "partition",
        "node_id",
        "role",
        "leader_epoch",
        "log_start_offset",
        "log_end_offset",
        "high_watermark",
        "records",
        "truncated",
    ];
    let history_entry = obj(
        &["metadata_offset", "kind", "leader_epoch", "isr"],
        json!({
            "metadata_offset": int(),
            "kind": { "type": "string", "enum": ["created", "clean", "unclean", "offline", "isr-change"] },
            "leader": int(), "leader_epoch": int(), "isr": { "type": "array", "items": int() },
        }),
    );
    json!({
        "ReplicaLogDump": obj(&replica_log_required, json!({
            "topic": string(), "partition": int(), "node_id": int(),
            "role": { "type": "string", "enum": ["leader", "follower", "offline"] },
            "leader_epoch": int(), "log_start_offset": int(), "log_end_offset": int(), "high_watermark": int(),
            "truncated": { "type": "boolean" },
            "records": { "type": "array", "items": { "type": "array", "prefixItems": [int(), int(), string()] } },
        })),
        "PartitionHistory": obj(&["topic", "partition", "dropped", "entries"], json!({
            "topic": string(), "partition": int(), "dropped": int(),
            "entries": { "type": "array", "items": history_entry },
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_and_every_error_name_is_documented() {
        let doc = document();
        for path in [
            paths::HEALTH,
            paths::METRICS,
            paths::OPENAPI,
            paths::CLUSTER,
            paths::TOPICS,
            paths::TOPIC,
            paths::PRODUCE,
            paths::FETCH,
            paths::GROUP_OFFSETS,
            paths::INIT_PRODUCER_ID,
            paths::ADMIN_FETCHERS,
            paths::DEBUG_REPLICA_LOG,
            paths::DEBUG_HISTORY,
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is undocumented");
        }
        let names = doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]["enum"].as_array().unwrap();
        for code in ErrorCode::ALL {
            assert!(names.iter().any(|n| n == code.name()), "{code} missing");
        }
        let text = doc.to_string();
        for r in text.match_indices("#/components/schemas/") {
            let name: String = text[r.0 + 21..].chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(doc["components"]["schemas"][&name].is_object(), "dangling $ref {name}");
        }
    }
}
