//! The OpenAPI 3.1 document served at `GET /openapi.json`.
//!
//! It is generated: paths, parameters and success responses from each
//! handler's `#[utoipa::path]`, schemas (with their bounds and patterns) from
//! the wire types' `ToSchema` derives in `faultline_client::api`. Error
//! responses are added here from [`ERRORS`], one typed list of Kafka error
//! names per operation, each placed under the status `error::status_of`
//! gives it, so that a documented status cannot disagree with the one sent.

use std::collections::BTreeMap;

use faultline_client::api::{ErrorBody, ErrorCode};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};

use crate::error::status_of;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "faultline-node",
        description = "A Kafka-like broker's HTTP/JSON API. Errors carry Kafka's error names."
    ),
    paths(
        super::health,
        super::metrics_text,
        super::openapi_json,
        super::cluster,
        super::list_topics,
        super::create_topic,
        super::describe_topic,
        super::produce,
        super::fetch,
        super::committed_offsets,
        super::commit_offsets,
        super::groups::join,
        super::groups::sync,
        super::groups::heartbeat,
        super::groups::leave,
        super::groups::describe,
        super::init_producer_id,
        super::admin_fetchers,
        super::debug::replica_log,
        super::debug::history,
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The errors each operation can answer with, beyond the two every
/// operation with a path parameter or a body has (see [`implied`]).
const ERRORS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        ("health", &[]),
        ("metrics", &[]),
        ("openapi", &[]),
        ("cluster", &[]),
        ("listTopics", &[]),
        (
            "createTopic",
            &[
                TopicAlreadyExists,
                InvalidTopicException,
                InvalidPartitions,
                InvalidReplicationFactor,
                InvalidConfig,
                KafkaStorageError,
                RequestTimedOut,
            ],
        ),
        ("describeTopic", &[UnknownTopicOrPartition]),
        (
            "produce",
            &[
                UnknownTopicOrPartition,
                InvalidTopicException,
                InvalidRequiredAcks,
                NotEnoughReplicas,
                NotEnoughReplicasAfterAppend,
                NotLeaderOrFollower,
                RequestTimedOut,
                KafkaStorageError,
                InvalidProducerEpoch,
                OutOfOrderSequenceNumber,
            ],
        ),
        ("fetch", &[UnknownTopicOrPartition, OffsetOutOfRange, NotLeaderOrFollower, KafkaStorageError]),
        ("committedOffsets", &[InvalidGroupId, CoordinatorNotAvailable, NotCoordinator]),
        (
            "commitOffsets",
            &[
                InvalidGroupId,
                UnknownTopicOrPartition,
                RequestTimedOut,
                CoordinatorNotAvailable,
                NotCoordinator,
                NotEnoughReplicas,
                KafkaStorageError,
                UnknownMemberId,
                IllegalGeneration,
                RebalanceInProgress,
            ],
        ),
        (
            "joinGroup",
            &[
                InvalidGroupId,
                InconsistentGroupProtocol,
                InvalidSessionTimeout,
                UnknownMemberId,
                RebalanceInProgress,
                CoordinatorNotAvailable,
                NotCoordinator,
            ],
        ),
        (
            "syncGroup",
            &[
                InvalidGroupId,
                UnknownMemberId,
                IllegalGeneration,
                RebalanceInProgress,
                RequestTimedOut,
                CoordinatorNotAvailable,
                NotCoordinator,
            ],
        ),
        (
            "heartbeat",
            &[
                InvalidGroupId,
                UnknownMemberId,
                IllegalGeneration,
                RebalanceInProgress,
                CoordinatorNotAvailable,
                NotCoordinator,
            ],
        ),
        ("leaveGroup", &[InvalidGroupId, UnknownMemberId, CoordinatorNotAvailable, NotCoordinator]),
        ("describeGroup", &[InvalidGroupId, UnknownMemberId, CoordinatorNotAvailable, NotCoordinator]),
        ("initProducerId", &[CoordinatorNotAvailable, RequestTimedOut]),
        ("adminFetchers", &[]),
        ("debugReplicaLog", &[UnknownTopicOrPartition, NotLeaderOrFollower, KafkaStorageError]),
        ("debugHistory", &[UnknownTopicOrPartition]),
    ]
};

/// The document, with every operation's error responses.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            add_errors(op);
        }
    }
    doc
}

/// Errors an operation has by its shape: `INVALID_REQUEST` for a path or
/// body that does not parse or breaks a bound, `MESSAGE_TOO_LARGE` for a
/// body over `socket.request.max.bytes`.
fn implied(op: &Operation) -> Vec<ErrorCode> {
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    let mut errors = Vec::new();
    if has_params || has_body {
        errors.push(ErrorCode::InvalidRequest);
    }
    if has_body {
        errors.push(ErrorCode::MessageTooLarge);
    }
    errors
}

/// Adds one response per error status, listing its error names both in the
/// description and as `x-error-names`.
fn add_errors(op: &mut Operation) {
    let id = op.operation_id.clone().unwrap_or_default();
    let listed = ERRORS.iter().find(|(name, _)| *name == id).map_or(&[][..], |(_, e)| e);
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for code in implied(op).into_iter().chain(listed.iter().copied()) {
        let names = by_status.entry(status_of(code).as_u16()).or_default();
        if !names.contains(&code.name()) {
            names.push(code.name());
        }
    }
    for (status, names) in by_status {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .extensions(Some(extension("x-error-names", &names)))
            .build();
        let response = ResponseBuilder::new()
            .description(format!("error: {}", names.join(", ")))
            .content("application/json", content)
            .build();
        op.responses.responses.insert(status.to_string(), response.into());
    }
}

fn extension(key: &str, names: &[&str]) -> utoipa::openapi::extensions::Extensions {
    let mut ext = utoipa::openapi::extensions::Extensions::default();
    ext.insert(key.to_string(), serde_json::json!(names));
    ext
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_client::api::paths;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                all.push((format!("{} {path}", method.to_uppercase()), op));
            }
        }
        all
    }

    #[test]
    fn every_path_and_every_error_name_is_documented() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
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
            paths::GROUP,
            paths::GROUP_JOIN,
            paths::GROUP_SYNC,
            paths::GROUP_HEARTBEAT,
            paths::GROUP_LEAVE,
            paths::INIT_PRODUCER_ID,
            paths::ADMIN_FETCHERS,
            paths::DEBUG_REPLICA_LOG,
            paths::DEBUG_HISTORY,
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is undocumented");
        }
        let names = doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
        for code in ErrorCode::ALL {
            assert!(names.iter().any(|n| n == code.name()), "{code} missing");
        }
        let text = doc.to_string();
        for r in text.match_indices("#/components/schemas/") {
            let name: String = text[r.0 + 21..].chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(doc["components"]["schemas"][&name].is_object(), "dangling $ref {name}");
        }
    }

    /// Every operation is in `ERRORS` and every entry names an operation;
    /// each error sits under the status the server sends it with.
    #[test]
    fn errors_are_listed_once_per_operation_under_their_status() {
        let doc = doc();
        let ids: Vec<&str> = operations(&doc).iter().map(|(_, op)| op["operationId"].as_str().unwrap()).collect();
        for (id, _) in ERRORS {
            assert!(ids.contains(id), "{id} in ERRORS is no operation");
        }
        for (name, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap();
            assert!(ERRORS.iter().any(|(e, _)| *e == id), "{name} ({id}) has no ERRORS entry");
            for (status, response) in op["responses"].as_object().unwrap() {
                let listed = &response["content"]["application/json"]["x-error-names"];
                for error in listed.as_array().into_iter().flatten() {
                    let code = ErrorCode::ALL.iter().find(|c| c.name() == error).unwrap();
                    assert_eq!(status_of(*code).as_str(), status, "{name}: {error}");
                }
            }
        }
    }

    /// Operations with a path parameter or a body document the 400 their
    /// extractors send for a malformed one (the debug endpoints had none).
    #[test]
    fn malformed_paths_and_bodies_are_documented_400s() {
        let doc = doc();
        for (name, op) in operations(&doc) {
            if op["parameters"].is_array() || op["requestBody"].is_object() {
                let names = &op["responses"]["400"]["content"]["application/json"]["x-error-names"];
                assert!(names.as_array().is_some_and(|n| n.iter().any(|e| e == "INVALID_REQUEST")), "{name}");
            }
        }
    }

    /// The documented bounds are the ones the handlers enforce.
    #[test]
    fn bounds_match_the_server_limits() {
        use crate::broker::{FETCH_BYTES_MAX, FETCH_RECORDS_MAX, FETCH_WAIT_MS_MAX, PRODUCE_TIMEOUT_MS_MAX};
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let max = |schema: &str, field: &str| schemas[schema]["properties"][field]["maximum"].as_u64();
        assert_eq!(max("FetchRequest", "max_records"), Some(u64::from(FETCH_RECORDS_MAX)));
        assert_eq!(max("FetchRequest", "max_bytes"), Some(u64::from(FETCH_BYTES_MAX)));
        assert_eq!(max("FetchRequest", "max_wait_ms"), Some(FETCH_WAIT_MS_MAX));
        assert_eq!(max("ProduceRequest", "timeout_ms"), Some(PRODUCE_TIMEOUT_MS_MAX));
        assert_eq!(max("CreateTopicRequest", "partitions"), Some(crate::config::PARTITIONS_PER_TOPIC_MAX as u64));
        let commits = &schemas["OffsetCommitRequest"]["properties"]["offsets"]["maxItems"];
        assert_eq!(commits.as_u64(), Some(crate::groups::COMMIT_ENTRIES_MAX as u64));
        let metadata = &schemas["OffsetCommit"]["properties"]["metadata"]["maxLength"];
        assert_eq!(metadata.as_u64(), Some(crate::groups::COMMIT_METADATA_LEN_MAX as u64));
        // Every topic name in the document has the same rule.
        let text = doc.to_string();
        let rules: std::collections::BTreeSet<&str> = text
            .match_indices("\"pattern\":\"")
            .map(|(i, m)| &text[i + m.len()..])
            .map(|rest| &rest[..rest.find("\",").or_else(|| rest.find("\"}")).unwrap()])
            .filter(|p| p.contains("a-zA-Z0-9"))
            .collect();
        assert_eq!(rules.len(), 1, "{rules:?}");
    }
}
