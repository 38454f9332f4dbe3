//! [`ApiError`]: an outcome the broker reports to a client, with Kafka's
//! error name and the HTTP status that carries it.
//!
//! Client mistakes are 4xx; conditions of the cluster that a client may
//! retry (no leader, not enough replicas, timeouts, storage trouble) are
//! 5xx other than 500. 500 is kept for bugs in the broker itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use faultline_client::api::{ErrorBody, ErrorCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub leader_id: Option<i32>,
    pub leader_address: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), leader_id: None, leader_address: None }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn unknown_partition(topic: &str, partition: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("this server does not host topic-partition {topic}/{partition}"),
        )
    }
}

/// The HTTP status for each Kafka error name.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        UnknownTopicOrPartition => StatusCode::NOT_FOUND,
        TopicAlreadyExists => StatusCode::CONFLICT,
        InvalidTopicException
        | InvalidPartitions
        | InvalidReplicationFactor
        | InvalidRequiredAcks
        | InvalidConfig
        | InvalidRequest
        | InvalidGroupId
        | InconsistentGroupProtocol
        | InvalidSessionTimeout
        | Unrecognized => StatusCode::BAD_REQUEST,
        MessageTooLarge | RecordListTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        OffsetOutOfRange => StatusCode::RANGE_NOT_SATISFIABLE,
        RequestTimedOut => StatusCode::GATEWAY_TIMEOUT,
        NotLeaderOrFollower | NotCoordinator => StatusCode::MISDIRECTED_REQUEST,
        FencedLeaderEpoch
        | UnknownLeaderEpoch
        | InvalidProducerEpoch
        | OutOfOrderSequenceNumber
        | UnknownProducerId
        | IllegalGeneration
        | UnknownMemberId
        | RebalanceInProgress => StatusCode::CONFLICT,
        NotEnoughReplicas | NotEnoughReplicasAfterAppend | KafkaStorageError | CoordinatorNotAvailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        UnknownServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            leader_id: self.leader_id,
            leader_address: self.leader_address,
        };
        (status_of(self.code), axum::Json(body)).into_response()
    }
}
