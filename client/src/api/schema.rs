//! OpenAPI schemas of the wire values whose serde shape the `ToSchema`
//! derive cannot see: Kafka's error names (with a catch-all variant that is
//! never sent), `acks` in its number and string spellings, `[offset, epoch,
//! value]` triples, and strings that hold one of a few names. The structs in
//! [`super`] point at these with `#[schema(schema_with = …)]`.

use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::ErrorCode;

/// A schema written as JSON Schema; only called with literals that a test
/// of the document proves well-formed.
fn from_json(value: serde_json::Value) -> Schema {
    serde_json::from_value(value).expect("a well-formed literal schema")
}

/// A string that is one of `names`.
fn one_of_names(names: &[&str], description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|e| e.name()).collect();
        RefOr::T(one_of_names(&names, "Kafka's error name."))
    }
}

impl utoipa::ToSchema for ErrorCode {}

/// `acks`: 0, 1, -1 or their string spellings, or `all`.
pub fn acks() -> Schema {
    from_json(json!({
        "oneOf": [
            { "type": "integer", "enum": [0, 1, -1] },
            { "type": "string", "enum": ["0", "1", "-1", "all"] },
        ],
        "default": "all",
        "description": "0, 1, -1 or \"all\" (-1 and \"all\" are the same); Kafka's producer default is all.",
    }))
}

/// Topic-level overrides: Kafka's key names to strings, numbers or booleans.
pub fn topic_configs() -> Schema {
    from_json(json!({
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean"] },
        "description": "Per-topic overrides with Kafka's topic-level names (min.insync.replicas, flush.messages, …).",
        "example": { "min.insync.replicas": "1" },
    }))
}

/// `[offset, leader_epoch, value]` per record.
pub fn record_triples() -> Schema {
    from_json(json!({
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [
                { "type": "integer", "format": "int64" },
                { "type": "integer", "format": "int32" },
                { "type": "string" },
            ],
            "minItems": 3,
            "maxItems": 3,
        },
        "description": "[offset, leader_epoch, value] for every record.",
    }))
}

pub fn replica_role() -> Schema {
    one_of_names(&["leader", "follower", "offline"], "This node's role for the partition.")
}

pub fn change_kind() -> Schema {
    one_of_names(&["created", "clean", "unclean", "offline", "isr-change"], "What changed.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_schemas_are_well_formed() {
        for s in [acks(), topic_configs(), record_triples(), replica_role(), change_kind()] {
            let text = serde_json::to_string(&s).unwrap();
            assert!(text.contains("\"type\""), "{text}");
        }
        let RefOr::T(Schema::Object(errors)) = <ErrorCode as utoipa::PartialSchema>::schema() else { panic!() };
        assert_eq!(errors.enum_values.unwrap().len(), ErrorCode::ALL.len());
    }

    #[test]
    fn every_error_name_has_one_kafka_code_that_maps_back() {
        for &e in ErrorCode::ALL {
            match e {
                ErrorCode::UnknownServerError | ErrorCode::Unrecognized => assert_eq!(e.kafka_code(), -1),
                _ => assert_eq!(ErrorCode::from_kafka_code(e.kafka_code()), Some(e), "{}", e.name()),
            }
        }
        assert_eq!(ErrorCode::from_kafka_code(6), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(ErrorCode::from_kafka_code(30), None, "a code this client does not name");
    }
}
