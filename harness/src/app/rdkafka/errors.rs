//! librdkafka's errors in the history's vocabulary: a broker's error gets
//! Kafka's current name from the client's one table (librdkafka still says
//! `NOT_LEADER_FOR_PARTITION` where Kafka says `NOT_LEADER_OR_FOLLOWER`),
//! librdkafka's name where that table does not know the code,
//! the library's own errors that mean "no answer in time" or "the connection
//! broke" become `timeout` and `disconnected`, as the Rust model records
//! them, and every other local error keeps librdkafka's name (`_PURGE_QUEUE`,
//! `_FATAL`, …), so nothing is hidden behind a generic code.

use std::ffi::CStr;

use faultline_client::api::ErrorCode;
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

/// librdkafka's name of an error code: Kafka's for a broker error, `_NAME`
/// for the library's own.
pub fn librdkafka_name(code: RDKafkaErrorCode) -> String {
    match RDKafkaRespErr::try_from(code as i32) {
        // SAFETY: rd_kafka_err2name returns a static NUL-terminated string
        // for every code, known or not.
        Ok(err) => unsafe { CStr::from_ptr(rdkafka::bindings::rd_kafka_err2name(err)) }.to_string_lossy().into_owned(),
        Err(_) => format!("ERR_{}", code as i32),
    }
}

/// Whether the error came from a broker (Kafka's codes are positive).
pub fn is_broker_error(code: RDKafkaErrorCode) -> bool {
    (code as i32) > 0
}

/// The history's `error_code` for a librdkafka error code.
pub fn code_name(code: RDKafkaErrorCode) -> String {
    let known = i16::try_from(code as i32).ok().filter(|_| is_broker_error(code)).and_then(ErrorCode::from_kafka_code);
    if let Some(e) = known {
        return e.name().to_string();
    }
    let name = librdkafka_name(code);
    match name.as_str() {
        "_MSG_TIMED_OUT" | "_TIMED_OUT" | "_TIMED_OUT_QUEUE" => "timeout".into(),
        "_TRANSPORT" | "_ALL_BROKERS_DOWN" => "disconnected".into(),
        "_QUEUE_FULL" => "max.block.ms".into(),
        _ => name,
    }
}

/// The history's `error_code` for any error of the crate.
pub fn kafka_error_code(e: &KafkaError) -> String {
    e.rdkafka_error_code().map_or_else(|| "librdkafka".to_string(), code_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_keep_kafkas_names_and_local_ones_map_or_keep_theirs() {
        assert_eq!(code_name(RDKafkaErrorCode::NotEnoughReplicas), "NOT_ENOUGH_REPLICAS");
        assert_eq!(code_name(RDKafkaErrorCode::NotLeaderForPartition), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(code_name(RDKafkaErrorCode::MessageTimedOut), "timeout");
        assert_eq!(code_name(RDKafkaErrorCode::BrokerTransportFailure), "disconnected");
        assert_eq!(code_name(RDKafkaErrorCode::PurgeQueue), "_PURGE_QUEUE");
        assert_eq!(code_name(RDKafkaErrorCode::GroupAuthorizationFailed), "GROUP_AUTHORIZATION_FAILED");
        assert!(is_broker_error(RDKafkaErrorCode::NotEnoughReplicas));
        assert!(!is_broker_error(RDKafkaErrorCode::MessageTimedOut));
    }
}
